"""Values and defaults of vrrp_instance, vrrp_script and global_defs keywords."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from pyvrrpd.config import ConfigError, parse_text
from pyvrrpd.config.model import Config, TrackScriptRef, VirtualIP, VrrpInstance

HEAD = "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n"


def parse(body: str, before: str = "") -> Config:
    return parse_text(before + HEAD + body + "\n}\n", "k.conf")


def inst(body: str, before: str = "") -> VrrpInstance:
    return parse(body, before).instances[0]


NO_VIP = "No VIP specified"  # most instances here have none; that warning has its own test


def messages(cfg: Config) -> list[tuple[int, int, str]]:
    return [(w.loc.line, w.loc.col, w.message) for w in cfg.warnings if NO_VIP not in w.message]


@pytest.mark.parametrize(
    ("password", "stored", "warned"),
    [
        ("1111", b"1111\0\0\0\0", False),
        ("12345678", b"12345678", False),
        ("123456789abc", b"12345678", True),
        ('"pa ss"', b"pa ss\0\0\0", False),
    ],
)
def test_auth_pass_is_padded_or_truncated_to_8_bytes(
    password: str, stored: bytes, warned: bool
) -> None:
    cfg = parse(f"  authentication {{\n    auth_type PASS\n    auth_pass {password}\n  }}")
    assert cfg.instances[0].auth_pass == stored
    expected = [(6, 15, "truncating auth_pass to 8 characters")] if warned else []
    assert messages(cfg) == expected


def test_per_vip_options() -> None:
    vi = inst(
        "  virtual_ipaddress {\n"
        "    192.0.2.10/24 dev eth1 brd 192.0.2.255 scope link label eth1:vip\n"
        "    192.0.2.11 brd + no_track\n"
        "  }\n"
        "  virtual_ipaddress_excluded {\n    192.0.2.12/32 dev eth2\n  }"
    )
    assert vi.virtual_ipaddress == (
        VirtualIP(IPv4Address("192.0.2.10"), 24, "eth1", "192.0.2.255", "link", "eth1:vip"),
        VirtualIP(IPv4Address("192.0.2.11"), 32, broadcast="+"),
    )
    assert vi.virtual_ipaddress_excluded == (VirtualIP(IPv4Address("192.0.2.12"), 32, "eth2"),)


def test_vip_unknown_word_warns() -> None:
    cfg = parse("  virtual_ipaddress {\n    192.0.2.10 devv eth1\n  }")
    assert messages(cfg) == [
        (5, 16, "virtual_ipaddress: unknown option 'devv' for address 192.0.2.10; ignored"),
        (5, 21, "virtual_ipaddress: unknown option 'eth1' for address 192.0.2.10; ignored"),
    ]


SCRIPTS = (
    'vrrp_script chk {\n  script "/bin/chk"\n  weight -20\n}\n'
    'vrrp_script rev {\n  script "/bin/rev"\n  weight 10 reverse\n}\n'
)


def test_track_script_weight_override_and_unknown_names() -> None:
    cfg = parse(
        "  track_script {\n    chk weight 50 reverse\n    rev\n    nosuch\n"
        "    chk2 weight 254\n  }",
        SCRIPTS,
    )
    assert cfg.script("rev") is not None
    assert cfg.script("rev").weight_reverse is True  # type: ignore[union-attr]
    assert cfg.instances[0].track_script == (
        TrackScriptRef("chk", 50, True),
        TrackScriptRef("rev"),
    )
    assert messages(cfg) == [
        (15, 5, "track_script 'nosuch' is not a defined vrrp_script; ignored"),
        (16, 5, "track_script 'chk2' is not a defined vrrp_script; ignored"),
        (16, 17, "track_script weight 254 is out of range; using 253"),
    ]


def test_track_script_weight_out_of_range_is_an_error() -> None:
    with pytest.raises(ConfigError) as ei:
        parse("  track_script {\n    chk weight 300\n  }", SCRIPTS)
    (d,) = ei.value.errors
    assert (d.loc.line, d.loc.col, d.message) == (
        13,
        16,
        "track_script weight must be an integer -254..254, got '300'",
    )


def test_scripts_may_be_defined_after_the_instance() -> None:
    cfg = parse_text(HEAD + "  track_script {\n    chk\n  }\n}\n" + SCRIPTS)
    assert cfg.instances[0].track_script == (TrackScriptRef("chk"),)
    assert messages(cfg) == []


def test_priority_and_state_defaults() -> None:
    assert inst("").priority == 100
    assert inst("").state == "BACKUP"
    assert inst("  state MASTER").priority == 255
    assert inst("  priority 255").state == "MASTER"
    assert inst("  state MASTER\n  priority 150").priority == 150


def test_bad_state_warns_and_uses_backup() -> None:
    cfg = parse("  state master")
    assert cfg.instances[0].state == "BACKUP"
    assert messages(cfg) == [(4, 9, "state must be MASTER or BACKUP, got 'master'; using BACKUP")]


def test_nopreempt_rules() -> None:
    assert inst("  nopreempt").nopreempt is True
    assert inst("  nopreempt\n  preempt").nopreempt is False
    cfg = parse("  state MASTER\n  priority 150\n  nopreempt")
    assert cfg.instances[0].nopreempt is False
    assert messages(cfg) == [
        (6, 3, "nopreempt does not work with initial state MASTER; clearing it")
    ]
    cfg = parse("  priority 255\n  nopreempt")
    assert messages(cfg) == [(5, 3, "nopreempt does not work with priority 255; clearing it")]


def test_advert_int_is_rounded_with_a_warning() -> None:
    cfg = parse("  advert_int 1.5")
    assert cfg.instances[0].advert_int == 2
    assert messages(cfg) == [
        (4, 14, "advert_int must be a whole number of seconds in VRRPv2; rounding 1.5 to 2")
    ]
    assert inst("  advert_int 0.2").advert_int == 1


def test_garp_values_default_to_global_and_can_be_overridden() -> None:
    before = (
        "global_defs {\n  vrrp_garp_master_delay 0\n  vrrp_garp_master_repeat 0\n"
        "  vrrp_garp_master_refresh 60\n  vrrp_garp_interval 0\n  vrrp_gna_interval 0\n}\n"
    )
    cfg = parse("  garp_master_refresh_repeat 3", before)
    vi = cfg.instances[0]
    assert (vi.garp_master_delay, vi.garp_master_repeat, vi.garp_master_refresh) == (0, 1, 60)
    assert vi.garp_master_refresh_repeat == 3
    assert cfg.global_defs.vrrp_garp_interval == 0
    assert messages(cfg) == [(3, 27, "vrrp_garp_master_repeat must be greater than 0; using 1")]
    vi = inst("  garp_master_delay 10\n  garp_master_repeat 2", before)
    assert (vi.garp_master_delay, vi.garp_master_repeat) == (10, 2)


@pytest.mark.parametrize(
    ("line", "expected"),
    [("", False), ("  skip_check_adv_addr", True), ("  skip_check_adv_addr off", False)],
)
def test_skip_check_adv_addr_honours_its_value(line: str, expected: bool) -> None:
    assert inst(line).skip_check_adv_addr is expected


def test_global_defs_values() -> None:
    cfg = parse_text(
        "global_defs {\n  router_id lb1\n  script_user keepalived_script:haproxy\n"
        "  notification_email {\n    a@example.com b@example.com\n    c@example.com\n  }\n"
        "  smtp_server 192.0.2.25 2525\n  smtp_connect_timeout 30\n  smtp_alert yes\n"
        "  vrrp_skip_check_adv_addr true\n}\n"
    )
    g = cfg.global_defs
    assert (g.router_id, g.script_user, g.script_group) == ("lb1", "keepalived_script", "haproxy")
    assert g.notification_email == ("a@example.com", "b@example.com", "c@example.com")
    assert (g.smtp_server, g.smtp_port, g.smtp_connect_timeout) == ("192.0.2.25", 2525, 30)
    assert g.smtp_alert is True
    assert g.vrrp_skip_check_adv_addr is True
    assert cfg.warnings == ()


def test_vrrp_script_values() -> None:
    cfg = parse_text(
        'vrrp_script s {\n  script "killall -0 haproxy"\n  interval 0.5\n  timeout 3\n'
        "  weight -20\n  rise 2\n  fall 3\n  user nobody nogroup\n  init_fail\n}\n"
        'vrrp_script z {\n  script "/bin/true"\n  interval 0\n}\n'
    )
    s = cfg.script("s")
    assert s is not None
    assert s.argv == ("killall", "-0", "haproxy")
    assert (s.interval, s.timeout, s.weight, s.rise, s.fall) == (0.5, 3, -20, 2, 3)
    assert (s.user, s.group, s.init_fail) == ("nobody", "nogroup", True)
    assert cfg.script("z").interval == 1  # type: ignore[union-attr]
    assert [(w.loc.line, w.message) for w in cfg.warnings] == [
        (13, "interval must be greater than 0; using 1")
    ]


def test_auth_type_ah_is_read() -> None:
    from pyvrrpd.config import parse_text

    text = (
        "vrrp_instance X {\n interface eth0\n virtual_router_id 1\n"
        " authentication {\n  auth_type AH\n  auth_pass secret\n }\n}\n"
    )
    inst = parse_text(text, "k.conf").instances[0]
    # keepalived's HMAC key: auth_pass zero-padded to 8 bytes, as for PASS.
    assert (inst.auth_type, inst.auth_pass) == ("AH", b"secret\0\0")
