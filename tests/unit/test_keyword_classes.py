"""Every keyword the reader knows is in exactly one class, and the README table says which."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyvrrpd.config import ConfigError, lint, parse_text
from pyvrrpd.config import keywords as kw

README = Path(__file__).parents[2] / "README.md"


def test_every_keyword_is_in_exactly_one_class() -> None:
    # Derived from the reader: a handler anywhere counts as implemented, so a
    # feature registering its handler shows up here without editing a list.
    assert lint.problems() == []


def test_every_keepalived_227_keyword_is_classified() -> None:
    table = {(r.block, r.keyword): r.klass for r in lint.rows()}
    for block, words in kw.KEEPALIVED_227.items():
        for word in words:
            assert table[(block, word)] != lint.UNKNOWN, (block, word)


def test_every_handler_table_entry_dispatches() -> None:
    # The tables the reader uses for hints must name keywords it really handles.
    for block in (kw.TOP, kw.GLOBAL, kw.INSTANCE, kw.SCRIPT, kw.VIP):
        for word in lint.handler_keywords(block):
            assert lint.probe(block, word) == lint.IMPLEMENTED, (block, word)


def test_readme_table_is_the_generated_one() -> None:
    text = README.read_text(encoding="utf-8")
    assert lint.readme_section(text) == lint.table_markdown(), (
        "README keyword table is stale: python -m pyvrrpd.config.lint --write README.md"
    )


def test_a_handler_wins_over_the_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    refused = {**kw.REFUSED, kw.INSTANCE: {**kw.REFUSED[kw.INSTANCE], "priority": "test"}}
    monkeypatch.setattr(kw, "REFUSED", refused)
    cfg = parse_text("vrrp_instance V {\n interface eth0\n virtual_router_id 1\n priority 50\n}\n")
    assert cfg.instances[0].priority == 50


def test_refused_is_a_located_error_and_no_effect_a_silent_warning() -> None:
    text = (
        "global_defs {\n  enable_snmp_vrrp\n}\n"
        "vrrp_instance V {\n  interface eth0\n  virtual_router_id 1\n"
        "  virtual_ipaddress {\n    192.0.2.10 preferred_lft 0 -nodad\n  }\n}\n"
    )
    with pytest.raises(ConfigError) as ei:
        parse_text(text, "k.conf")
    (err,) = ei.value.errors
    assert (str(err.loc), err.message) == (
        "k.conf:8:16",
        "'preferred_lft' is not supported by pyvrrpd: address lifetimes are not implemented",
    )
    warns = [d for d in ei.value.diagnostics if d not in ei.value.errors]
    # keepalived 2.2.7 knows both no-effect words: `keepalived -t` stays at 0 for them.
    assert [(d.loc.line, d.keepalived_silent) for d in warns] == [(2, True), (8, True)]


def test_newer_keepalived_keyword_is_not_silent() -> None:
    # keepalived 2.2.7 reports json_version as unknown (exit 5): so must our -t.
    cfg = parse_text("global_defs {\n  json_version 2\n}\n")
    (w,) = cfg.warnings
    assert "keepalived 2.3+" in w.message
    assert not w.keepalived_silent


@pytest.mark.parametrize(("value", "ok"), [("2", True), ("3", False)])
def test_vrrp_version(value: str, ok: bool) -> None:
    text = f"global_defs {{\n  vrrp_version {value}\n}}\n"
    if ok:
        assert parse_text(text).warnings == ()
    else:
        with pytest.raises(ConfigError, match="VRRPv3"):
            parse_text(text)


def test_vrrp_min_garp_sets_keepalived_values_without_overriding_earlier_ones() -> None:
    cfg = parse_text("global_defs {\n  vrrp_garp_master_delay 3\n  vrrp_min_garp\n}\n")
    gd = cfg.global_defs
    assert (gd.vrrp_garp_master_repeat, gd.vrrp_garp_master_refresh) == (1, 0.0)
    assert gd.vrrp_garp_master_delay == 3.0  # written before it: kept
    off = parse_text("global_defs {\n  vrrp_min_garp off\n}\n").global_defs
    assert off.vrrp_garp_master_repeat == 5
