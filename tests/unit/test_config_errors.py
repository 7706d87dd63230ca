"""What a user sees for a bad config: every problem, located, with a caret."""

from __future__ import annotations

import pytest

from pyvrrpd.config import ConfigError, parse_text
from pyvrrpd.config.model import Severity

GOOD_HEAD = "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n"


def errors_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as ei:
        parse_text(text, "keepalived.conf")
    return ei.value


def test_bad_value_has_location_message_and_caret() -> None:
    text = GOOD_HEAD + "  state MASTER\n  interface eth0\n  priority            300\n}\n"
    err = errors_of(text)
    (d,) = err.errors
    assert d.format() == (
        "keepalived.conf:6:23: error: priority must be an integer 1..255, got '300'\n"
        "      priority            300\n"
        "                          ^"
    )


def test_all_errors_are_reported_at_once() -> None:
    text = (
        "global_defs {\n  vrrp_garp_master_delay soon\n}\n"
        "vrrp_script chk {\n  interval 2\n  weight 300\n}\n"
        + GOOD_HEAD
        + "  priority 0\n  advert_int fast\n  preempt_delay 1001\n"
        "  authentication {\n    auth_type MD5\n  }\n"
        "  virtual_ipaddress {\n    192.0.2.300\n    192.0.2.1/33\n  }\n}\n"
    )
    err = errors_of(text)
    got = [(d.loc.line, d.loc.col, d.message) for d in err.errors]
    assert got == [
        (2, 26, "vrrp_garp_master_delay must be an integer 0..4294, got 'soon'"),
        (4, 13, "vrrp_script chk has no 'script' command"),
        (6, 10, "weight must be an integer -253..253, got '300'"),
        (11, 12, "priority must be an integer 1..255, got '0'"),
        (12, 14, "advert_int must be an integer 1..255 (seconds; VRRPv2), got 'fast'"),
        (13, 17, "preempt_delay must be a number 0..1000 (seconds), got '1001'"),
        (18, 5, "virtual_ipaddress: '192.0.2.300' is not an IPv4 address[/prefix]"),
        (19, 5, "virtual_ipaddress: prefix length must be an integer 0..32, got '33'"),
    ]
    # The exception text is the whole compiler-style listing.
    assert str(err).count("error:") == len(got)
    # keepalived 2.2.7 runs an unknown auth type without authentication: so do we, loudly.
    assert (15, 15) in [(d.loc.line, d.loc.col) for d in err.diagnostics if d not in err.errors]
    assert "WITHOUT authentication" in str(err)


def test_unknown_keyword_is_a_located_warning() -> None:
    cfg = parse_text(GOOD_HEAD + "  priorty 150\n}\nvrrp_instanse X {\n  a b\n}\n", "k.conf")
    assert [(str(w.loc), w.severity, w.message) for w in cfg.warnings] == [
        ("k.conf:1:15", Severity.WARNING, "(VI_1) No VIP specified; at least one is sensible"),
        (
            "k.conf:4:3",
            Severity.WARNING,
            "unknown keyword 'priorty' in vrrp_instance (did you mean 'priority'?)",
        ),
        (
            "k.conf:6:1",
            Severity.WARNING,
            "unknown keyword 'vrrp_instanse' (did you mean 'vrrp_instance'?)",
        ),
    ]
    assert cfg.instances[0].priority == 100


def test_no_effect_keywords_warn_and_skip_their_blocks() -> None:
    # keepalived's other half (LVS, SNMP): a warning naming what pyvrrpd lacks.
    text = (
        "global_defs {\n  enable_snmp_vrrp\n  lvs_flush\n}\n"
        "virtual_server 192.0.2.1 80 {\n  real_server 192.0.2.2 80 {\n    weight 1\n  }\n}\n"
        + GOOD_HEAD
        + "  virtual_ipaddress {\n    192.0.2.10\n  }\n  kernel_rx_buf_size 4096\n}\n"
    )
    cfg = parse_text(text, "k.conf")
    assert [(w.loc.line, w.message.split(" (")[0]) for w in cfg.warnings] == [
        (2, "'enable_snmp_vrrp' in global_defs has no effect in pyvrrpd"),
        (3, "'lvs_flush' in global_defs has no effect in pyvrrpd"),
        (5, "'virtual_server' has no effect in pyvrrpd"),
        (16, "'kernel_rx_buf_size' in vrrp_instance has no effect in pyvrrpd"),
    ]
    assert all(w.message.endswith("; ignored") for w in cfg.warnings)
    assert len(cfg.instances) == 1


def test_refused_keywords_are_located_errors_with_the_reason() -> None:
    # Changes VRRP behaviour and pyvrrpd does not do it: the config is refused.
    text = "garp_group {\n  interface eth0\n}\n" + GOOD_HEAD + "  track_bfd {\n    b1\n  }\n}\n"
    err = errors_of(text)
    assert [(str(d.loc), d.message) for d in err.errors] == [
        (
            "keepalived.conf:1:1",
            "'garp_group' is not supported by pyvrrpd: per-interface GARP groups are not "
            "implemented; use vrrp_garp_interval",
        ),
        (
            "keepalived.conf:7:3",
            "'track_bfd' is not supported by pyvrrpd: BFD is not provided by pyvrrpd",
        ),
    ]


def test_missing_closing_brace_at_eof() -> None:
    err = errors_of(GOOD_HEAD + "  virtual_ipaddress {\n    192.0.2.1\n")
    msgs = [(str(d.loc), d.message) for d in err.errors]
    assert (
        "keepalived.conf:1:20",
        "missing '}': the block of 'vrrp_instance VI_1' opened here is never closed",
    ) in msgs
    assert (
        "keepalived.conf:4:21",
        "missing '}': the block of 'virtual_ipaddress' opened here is never closed",
    ) in msgs


def test_extra_closing_brace() -> None:
    err = errors_of(GOOD_HEAD + "}\n}\n")
    (d,) = err.errors
    assert (str(d.loc), d.message) == ("keepalived.conf:5:1", "extra '}' with no block open")


def test_missing_opening_brace() -> None:
    err = errors_of("global_defs\n  router_id x\n")
    d = err.errors[0]
    assert (str(d.loc), d.message) == ("keepalived.conf:1:1", "missing '{' after 'global_defs'")


def test_instance_cross_checks() -> None:
    text = (
        GOOD_HEAD + "}\n"
        "vrrp_instance VI_2 {\n  interface eth0\n  virtual_router_id 51\n}\n"
        "vrrp_instance VI_2 {\n  interface eth1\n  virtual_router_id 51\n}\n"
        "vrrp_instance VI_3 {\n  priority 10\n}\n"
        'vrrp_script s {\n  script "/bin/true"\n}\nvrrp_script s {\n  script "/bin/false"\n}\n'
    )
    got = [(str(d.loc), d.message) for d in errors_of(text).errors]
    assert got == [
        (
            "keepalived.conf:7:21",
            "virtual_router_id 51 on eth0 is already used by vrrp_instance VI_1 "
            "(keepalived.conf:1:15)",
        ),
        (
            "keepalived.conf:9:15",
            "duplicate vrrp_instance 'VI_2' (first defined at keepalived.conf:5:15)",
        ),
        ("keepalived.conf:13:15", "vrrp_instance VI_3 has no 'interface'"),
        ("keepalived.conf:13:15", "vrrp_instance VI_3 has no 'virtual_router_id' (1..255)"),
        (
            "keepalived.conf:19:13",
            "duplicate vrrp_script 's' (first defined at keepalived.conf:16:13)",
        ),
    ]


def test_auth_type_without_auth_pass() -> None:
    err = errors_of(GOOD_HEAD + "  authentication {\n    auth_type PASS\n  }\n}\n")
    (d,) = err.errors
    assert (d.loc.line, d.loc.col, d.message) == (
        5,
        15,
        "auth_type is set but auth_pass is missing",
    )


def test_ipv6_vip_is_an_error() -> None:
    err = errors_of(GOOD_HEAD + "  virtual_ipaddress {\n    2001:db8::1/64\n  }\n}\n")
    (d,) = err.errors
    assert (d.loc.line, d.message) == (5, "IPv6 virtual addresses need VRRPv3, not supported yet")


def test_value_missing() -> None:
    (d,) = errors_of(GOOD_HEAD + "  priority\n}\n").errors
    assert (d.loc.line, d.loc.col, d.message) == (4, 3, "priority needs a value: an integer 1..255")


def test_warnings_are_included_in_config_error() -> None:
    err = errors_of(GOOD_HEAD + "  bogus\n  priority 999\n}\n")
    sev = [d.severity for d in err.diagnostics]
    assert sev == [Severity.WARNING, Severity.WARNING, Severity.ERROR]  # no VIP, bogus, 999


def test_caret_lines_up_under_the_token_with_tabs() -> None:
    from pyvrrpd.config import ConfigError, parse_text

    text = "vrrp_instance X {\n\tinterface eth0\n\tvirtual_router_id\t300\n}\n"
    try:
        parse_text(text, "k.conf")
    except ConfigError as exc:
        source, caret = str(exc).splitlines()[1:3]
    else:
        raise AssertionError("expected an error")
    assert source.expandtabs(8).index("300") == caret.expandtabs(8).index("^")
