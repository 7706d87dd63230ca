"""Config bombs: includes, long lines and huge files are bounded, each with one located error."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pyvrrpd.config import ConfigError, load_config, parse_text
from pyvrrpd.config import lexer as lexer_mod

INSTANCE = (
    "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 7\n"
    "  virtual_ipaddress {\n    192.0.2.1\n  }\n}\n"
)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _errors(path: Path) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as ei:
        load_config(path)
    return [(str(d.loc), d.message) for d in ei.value.errors]


def test_utf8_bom_is_ignored(tmp_path: Path) -> None:
    main = tmp_path / "k.conf"
    main.write_bytes(b"\xef\xbb\xbf" + INSTANCE.encode())
    inc = tmp_path / "g.conf"
    inc.write_bytes(b"\xef\xbb\xbfglobal_defs {\n  router_id lb1\n}\n")
    _write(tmp_path / "main.conf", "include g.conf\ninclude k.conf\n")
    cfg = load_config(tmp_path / "main.conf")
    assert cfg.global_defs.router_id == "lb1"
    assert [i.name for i in cfg.instances] == ["VI_1"]
    assert cfg.warnings == ()


def test_brace_bomb_errors_within_a_second(tmp_path: Path) -> None:
    # 2**20 alternatives, none of which exists.
    pattern = str(tmp_path / "x" / "") + "{a,b}" * 20
    main = _write(tmp_path / "k.conf", f"include {pattern}\n" + INSTANCE)
    t0 = time.monotonic()
    errors = _errors(main)
    took = time.monotonic() - t0
    assert took < 1.0, f"took {took:.2f} s"
    ((loc, msg),) = errors
    assert loc == f"{main}:1:9"
    assert msg.startswith("include: '") and msg.endswith(
        "' expands to more than 1024 patterns; line ignored"
    )


def test_nested_brace_flood_is_refused(tmp_path: Path) -> None:
    main = _write(tmp_path / "k.conf", "include " + "{" * 5000 + "a" + "}" * 5000 + "\n")
    ((loc, msg),) = _errors(main)
    assert loc == f"{main}:1:9"
    assert msg == "include: more than 256 braces in the pattern; line ignored"


def test_total_included_files_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lexer_mod, "MAX_INCLUDE_FILES", 20)
    for i in range(30):
        _write(tmp_path / "d" / f"f{i:02}.conf", "! empty\n")
    main = _write(tmp_path / "k.conf", INSTANCE + "include d/*.conf\n")
    ((loc, msg),) = _errors(main)
    assert (loc, msg) == (f"{main}:8:9", "include: more than 20 files included in all; stopped")


def test_diamond_includes_are_bounded_by_the_file_count(tmp_path: Path) -> None:
    # Each level includes the next one twice: 2**12 reads without a bound.
    for i in range(12):
        _write(tmp_path / f"l{i}.conf", f"include l{i + 1}.conf\ninclude l{i + 1}.conf\n")
    _write(tmp_path / "l12.conf", "! leaf\n")
    t0 = time.monotonic()
    errors = _errors(tmp_path / "l0.conf")
    assert time.monotonic() - t0 < 2.0
    assert [m for _, m in errors] == ["include: more than 1000 files included in all; stopped"]


def test_glob_walk_bounded_by_directory_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lexer_mod, "MAX_GLOB_ENTRIES", 50)
    for i in range(10):
        for j in range(10):
            (tmp_path / "t" / f"d{i}" / f"e{j}").mkdir(parents=True)
    main = _write(tmp_path / "k.conf", "include t/*/*/*/nothing.conf\n")
    ((loc, msg),) = _errors(main)
    assert loc == f"{main}:1:9"
    assert msg == (
        "include: matching 't/*/*/*/nothing.conf' looked at more than 50 directory entries;"
        " stopped reading"
    )


def test_glob_walk_bounded_in_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lexer_mod, "INCLUDE_TIME_BUDGET", -1.0)  # already spent
    _write(tmp_path / "d" / "a.conf", "! a\n")
    main = _write(tmp_path / "k.conf", "include d/*.conf\n")
    ((_, msg),) = _errors(main)
    assert msg == "include: matching 'd/*.conf' took longer than -1 s; stopped reading"


def test_glob_matches_like_glob_module(tmp_path: Path) -> None:
    for name in ("a.conf", "b.conf", ".hidden.conf", "c.txt"):
        _write(tmp_path / "d" / name, f"! {name}\n")
    (tmp_path / "d" / "sub.conf").mkdir()
    main = _write(tmp_path / "k.conf", "include d/[ab].conf\ninclude d/*.txt\n")
    cfg = load_config(main)
    assert [Path(f).name for f in cfg.files] == ["k.conf", "a.conf", "b.conf", "c.txt"]


def test_long_line_is_an_error_and_fast(tmp_path: Path) -> None:
    long = "  router_id " + "x" * 100_000
    main = _write(tmp_path / "k.conf", f"global_defs {{\n{long}\n}}\n" + INSTANCE)
    t0 = time.monotonic()
    with pytest.raises(ConfigError) as ei:
        load_config(main)
    assert time.monotonic() - t0 < 1.0
    (d,) = ei.value.errors
    assert (str(d.loc), d.message) == (f"{main}:2:1", "line longer than 65536 characters; ignored")
    # The listing shows the start of the line, not 100 kB of it.
    assert len(d.format()) < 400


def test_many_tokens_on_one_line_is_linear() -> None:
    # 60 KiB of VIPs on one line: under the line limit, parsed in well under a second.
    line = " ".join(f"192.0.2.{i % 250 + 1}" for i in range(5000))[:65000].rsplit(" ", 1)[0]
    text = "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n"
    text += line + "\n }\n}\n"
    t0 = time.monotonic()
    cfg = parse_text(text)  # the words after the first address draw warnings
    assert time.monotonic() - t0 < 1.0
    assert [str(v) for v in cfg.instances[0].virtual_ipaddress] == ["192.0.2.1/32"]


def test_huge_file_is_refused_unread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lexer_mod, "MAX_FILE_BYTES", 1024)
    main = _write(tmp_path / "k.conf", "include big.conf\n" + INSTANCE)
    _write(tmp_path / "big.conf", "! filler\n" * 200)
    ((loc, msg),) = _errors(main)
    assert loc == f"{main}:1:9"
    assert msg == f"'{tmp_path / 'big.conf'}' is larger than 0 MiB; not read"


def test_total_bytes_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lexer_mod, "MAX_TOTAL_BYTES", 3000)
    for i in range(5):
        _write(tmp_path / "d" / f"f{i}.conf", "! filler\n" * 100)
    main = _write(tmp_path / "k.conf", "include d/*.conf\n")
    ((_, msg),) = _errors(main)
    assert msg == "configuration files add up to more than 0 MiB; not read"


def test_parameter_expansion_bomb_bounded_in_total() -> None:
    # Each use stays under the per-line expansion limit; together they exceed the total.
    text = "$A=" + "x" * 60_000 + "\n" + "global_defs {\n" + "  router_id $A\n" * 400 + "}\n"
    t0 = time.monotonic()
    with pytest.raises(ConfigError) as ei:
        parse_text(text, "k.conf")
    assert time.monotonic() - t0 < 5.0
    msgs = [(d.loc.line, d.message) for d in ei.value.errors]
    # 16 Mi characters / 60 kB a line: line 282 is the first over the limit,
    # and reading stops there, so the block is left open.
    assert msgs == [
        (2, "missing '}': the block of 'global_defs' opened here is never closed"),
        (282, "configuration expands to more than 16 Mi characters; stopped reading"),
    ]


def test_long_parameter_continuation_is_an_error() -> None:
    text = "$A=x \\\n" + ("y" * 1000 + " \\\n") * 100 + "end\n"
    with pytest.raises(ConfigError) as ei:
        parse_text(text, "k.conf")
    (d,) = ei.value.errors
    assert (str(d.loc), d.message) == ("k.conf:1:1", "parameter $A is longer than 65536 characters")


def test_a_line_of_closing_braces_is_listed_briefly_and_fast() -> None:
    # 65,000 stray '}' on one line: one error each, and each would print the line.
    t0 = time.monotonic()
    with pytest.raises(ConfigError) as ei:
        parse_text("}" * 65_000 + "\n", "k.conf")
    listing = str(ei.value)
    assert time.monotonic() - t0 < 2.0
    assert len(ei.value.diagnostics) == 201
    assert ei.value.diagnostics[-1].message == "64800 more diagnostics not shown (64800 errors)"
    assert len(listing) < 100_000


def test_caret_in_a_long_line_points_into_a_window() -> None:
    text = "global_defs {\n  router_id " + "a" * 5000 + " extra\n}\n"
    cfg = parse_text(text, "k.conf")
    (w,) = cfg.warnings
    assert w.message == "unexpected extra word 'extra' after 'router_id'; ignored"
    _, line, caret = w.format().splitlines()
    assert len(line) < 200
    assert line[caret.index("^") :].startswith("extra")


def test_a_long_vip_list_parses_in_linear_time() -> None:
    # 20,000 addresses: the duplicate check once scanned the list for each one.
    vips = "".join(f"    10.{i >> 16}.{(i >> 8) & 255}.{i & 255}\n" for i in range(20_000))
    text = "vrrp_instance a {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n"
    t0 = time.monotonic()
    cfg = parse_text(text + vips + " }\n}\n")
    assert time.monotonic() - t0 < 3.0
    inst = cfg.instances[0]
    assert len(inst.virtual_ipaddress) == 255
    assert len(inst.virtual_ipaddress_excluded) == 20_000 - 255
