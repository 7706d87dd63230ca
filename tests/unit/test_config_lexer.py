"""File-level syntax: comments, quotes, braces anywhere, includes, parameters."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyvrrpd.config import ConfigError, load_config, parse_text

MINI = """\
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 7
  %s
}
"""
VIPS = "virtual_ipaddress {\n    192.0.2.1\n  }"


def test_comments_with_hash_and_bang_anywhere() -> None:
    cfg = parse_text(
        "# top\n! also\nglobal_defs { router_id lb1 ! trailing\n  smtp_helo_name x # c\n}\n"
    )
    assert cfg.global_defs.router_id == "lb1"
    assert cfg.global_defs.smtp_helo_name == "x"
    assert cfg.warnings == ()


def test_comment_chars_inside_quotes_are_kept() -> None:
    cfg = parse_text('vrrp_script s {\n  script "/bin/check --tag=#1 !x" # real comment\n}\n')
    assert cfg.scripts[0].argv == ("/bin/check", "--tag=#1", "!x")


def test_escaped_hash_outside_quotes_is_literal() -> None:
    cfg = parse_text("global_defs {\n  router_id lb\\#1\n}\n")
    assert cfg.global_defs.router_id == "lb#1"


def test_braces_anywhere() -> None:
    text = (
        "global_defs { router_id a\n  enable_script_security }\n"
        "vrrp_instance X\n{\n interface eth0\n virtual_router_id 9\n"
        " virtual_ipaddress { 192.0.2.1 }\n"
        " authentication { auth_type PASS\n auth_pass secret }}\n"
    )
    cfg = parse_text(text)
    assert cfg.warnings == ()
    assert cfg.global_defs.router_id == "a"
    assert cfg.global_defs.enable_script_security
    (inst,) = cfg.instances
    assert str(inst.virtual_ipaddress[0]) == "192.0.2.1/32"
    assert inst.auth_pass == b"secret\0\0"


def test_token_columns_are_physical_columns() -> None:
    with pytest.raises(ConfigError) as ei:
        parse_text("global_defs {\n\tvrrp_garp_master_delay   x\n}\n", "k.conf")
    (d,) = ei.value.errors
    assert (d.loc.line, d.loc.col) == (2, 27)


def test_script_is_split_shell_like() -> None:
    cfg = parse_text(
        "vrrp_script a {\n  script \"/usr/bin/check arg1 'two words' x\\ y\"\n}\n"
        "vrrp_script b {\n  script /bin/pidof 'ha proxy'\n}\n"
        'vrrp_script c {\n  script ab"c d"e\n}\n'
    )
    assert cfg.script("a").argv == ("/usr/bin/check", "arg1", "two words", "x y")  # type: ignore[union-attr]
    assert cfg.script("b").argv == ("/bin/pidof", "ha proxy")  # type: ignore[union-attr]
    assert cfg.script("c").argv == ("abc de",)  # type: ignore[union-attr]


def test_unterminated_quote_is_an_error() -> None:
    with pytest.raises(ConfigError) as ei:
        parse_text('global_defs {\n  router_id "abc\n}\n', "k.conf")
    assert [str(d.loc) for d in ei.value.errors] == ["k.conf:2:13"]
    assert "unterminated quote" in ei.value.errors[0].message


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_include_glob_relative_to_including_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    main = _write(tmp_path / "etc" / "keepalived.conf", "include conf.d/*.conf\n")
    _write(
        tmp_path / "etc" / "conf.d" / "b.conf",
        MINI.replace("VI_1", "VI_B").replace(" 7", " 8") % VIPS,
    )
    _write(tmp_path / "etc" / "conf.d" / "a.conf", "include ../scripts/{x,y}.conf\n" + MINI % VIPS)
    _write(tmp_path / "etc" / "scripts" / "x.conf", 'vrrp_script x {\n  script "/bin/x"\n}\n')
    _write(tmp_path / "etc" / "scripts" / "y.conf", 'vrrp_script y {\n  script "/bin/y"\n}\n')
    monkeypatch.chdir(tmp_path)  # the cwd must not matter
    cfg = load_config(main)
    assert [i.name for i in cfg.instances] == ["VI_1", "VI_B"]  # sorted glob order
    assert [s.name for s in cfg.scripts] == ["x", "y"]
    assert [os.path.basename(f) for f in cfg.files] == [
        "keepalived.conf",
        "a.conf",
        "x.conf",
        "y.conf",
        "b.conf",
    ]
    assert cfg.warnings == ()


def test_include_inside_a_block(tmp_path: Path) -> None:
    _write(tmp_path / "vips.conf", "192.0.2.5/24\n192.0.2.6\n")
    main = _write(
        tmp_path / "k.conf",
        MINI % "virtual_ipaddress {\n    include vips.conf\n  }",
    )
    (inst,) = load_config(main).instances
    assert [str(v) for v in inst.virtual_ipaddress] == ["192.0.2.5/24", "192.0.2.6/32"]


def test_parse_text_includes_relative_to_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path / "g.conf", "global_defs {\n router_id from_include\n}\n")
    monkeypatch.chdir(tmp_path)
    assert parse_text("include g.conf\n").global_defs.router_id == "from_include"


def test_plain_include_of_nothing_is_fine_but_includem_is_an_error(tmp_path: Path) -> None:
    main = _write(tmp_path / "k.conf", "include none/*.conf\nincludem missing.conf\n")
    with pytest.raises(ConfigError) as ei:
        load_config(main)
    (err,) = ei.value.errors
    assert str(err.loc) == f"{main}:2:10"
    assert err.message == "includem: 'missing.conf' matches no file"


def test_include_cycle_is_an_error(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.conf", "include b.conf\n")
    _write(tmp_path / "b.conf", "\ninclude a.conf\n")
    with pytest.raises(ConfigError) as ei:
        load_config(a)
    (err,) = ei.value.errors
    assert err.loc.line == 2
    assert err.message.startswith("include cycle:")


def test_missing_main_file() -> None:
    with pytest.raises(ConfigError) as ei:
        load_config("/nonexistent/keepalived.conf")
    (err,) = ei.value.diagnostics
    assert err.format() == (
        "/nonexistent/keepalived.conf:0:0: error: cannot read config: No such file or directory"
    )


def test_parameters_are_substituted() -> None:
    text = (
        "$IF=eth1\n$PRIO=150\n$VIPS=192.0.2.1 \\\n192.0.2.2\n"
        "vrrp_instance VI_1 {\n  interface $IF\n  virtual_router_id 1\n  priority ${PRIO}\n"
        "  virtual_ipaddress {\n    $VIPS\n  }\n}\n"
    )
    (inst,) = parse_text(text).instances
    assert inst.interface == "eth1"
    assert inst.priority == 150
    assert [str(v.address) for v in inst.virtual_ipaddress] == ["192.0.2.1", "192.0.2.2"]


def test_substituted_bad_value_points_at_the_reference() -> None:
    with pytest.raises(ConfigError) as ei:
        parse_text("$P=300\n" + MINI % "priority $P", "k.conf")
    (err,) = ei.value.errors
    assert str(err.loc) == "k.conf:5:12"
    assert err.message == "priority must be an integer 1..255, got '300'"


def test_conditional_lines_follow_the_config_id() -> None:
    text = MINI % "@lb1 priority 200\n  @lb2 priority 50\n  @^lb1 advert_int 3"
    inst = parse_text(text, config_id="lb1").instances[0]
    assert (inst.priority, inst.advert_int) == (200, 1)
    inst = parse_text(text, config_id="lb2").instances[0]
    assert (inst.priority, inst.advert_int) == (50, 3)


def test_runaway_parameter_expansion_is_an_error() -> None:
    with pytest.raises(ConfigError) as ei:
        parse_text("$A=$A $A $A $A\nglobal_defs {\n  router_id $A\n}\n", "k.conf")
    (err,) = ei.value.errors
    assert (str(err.loc), err.message) == (
        "k.conf:3:13",
        "parameter expansion longer than 65536 characters",
    )


def test_include_depth_is_limited(tmp_path: Path) -> None:
    for i in range(40):
        _write(tmp_path / f"f{i}.conf", f"include f{i + 1}.conf\n")
    _write(tmp_path / "f40.conf", "global_defs {\n}\n")
    with pytest.raises(ConfigError) as ei:
        load_config(tmp_path / "f0.conf")
    (err,) = ei.value.errors
    assert err.message == "includes nested deeper than 32"
