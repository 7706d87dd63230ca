"""accept/no_accept, vrrp_strict/strict_mode and the nftables keywords (config/strict.py).

Expected messages and values are keepalived 2.2.7's (vrrp.c vrrp_complete_instance,
global_parser.c), so a mixed keepalived/pyvrrpd pair runs the same instance.
"""

from __future__ import annotations

import pytest

from pyvrrpd.config import ConfigError, parse_text
from pyvrrpd.config.model import Config, VrrpInstance
from pyvrrpd.config.strict import needs_firewall

VIP = "  virtual_ipaddress {\n    192.0.2.10/24\n  }\n"


def parse(body: str, globals_: str = "", vips: str = VIP) -> Config:
    text = (
        f"global_defs {{\n{globals_}\n}}\n"
        "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n"
        f"{body}\n{vips}}}\n"
    )
    return parse_text(text, "k.conf")


def inst(body: str, globals_: str = "", vips: str = VIP) -> VrrpInstance:
    return parse(body, globals_, vips).instances[0]


def messages(cfg: Config) -> list[str]:
    return [w.message for w in cfg.warnings]


def test_accept_is_the_default_and_no_accept_turns_it_off() -> None:
    assert inst("priority 100").accept is True
    off = inst("priority 100\n  no_accept")
    assert off.accept is False and needs_firewall(off)
    # The last of accept/no_accept wins, as in keepalived.
    assert inst("no_accept\n  accept").accept is True


def test_the_address_owner_never_needs_the_firewall() -> None:
    owner = inst("priority 255\n  no_accept")
    assert owner.accept is False
    assert not needs_firewall(owner)


def test_strict_mode_defaults_accept_off_below_255_silently() -> None:
    cfg = parse("priority 100", "vrrp_strict")
    i = cfg.instances[0]
    assert i.strict_mode and not i.accept and needs_firewall(i)
    assert not [m for m in messages(cfg) if "accept" in m]
    assert inst("priority 255\n  state MASTER", "vrrp_strict").accept is True


def test_strict_mode_resets_explicit_accept_with_keepalived_message() -> None:
    cfg = parse("priority 100\n  accept", "vrrp_strict")
    assert cfg.instances[0].accept is False
    assert (
        "(VI_1) warning - accept mode for VRRP version 2 does not comply with RFC3768 - resetting"
        in messages(cfg)
    )


def test_strict_removes_authentication_preempt_delay_and_fixes_state() -> None:
    body = (
        "state MASTER\n  priority 100\n  preempt_delay 10\n"
        "  authentication {\n    auth_type PASS\n    auth_pass secret\n  }"
    )
    cfg = parse(body, "vrrp_strict")
    i = cfg.instances[0]
    assert i.auth_type is None and i.auth_pass == b""
    assert i.preempt_delay == 0
    assert i.state == "BACKUP"
    got = messages(cfg)
    assert "(VI_1) Strict mode does not support authentication. Ignoring." in got
    assert "(VI_1) preempt_delay is incompatible with strict mode - resetting" in got
    assert "(VI_1) State MASTER must match being address owner" in got


def test_strict_state_backup_with_priority_255_becomes_master() -> None:
    assert inst("state BACKUP\n  priority 255", "vrrp_strict").state == "MASTER"


def test_strict_zeroes_lower_prio_garps() -> None:
    silent = parse("priority 100", "vrrp_strict\n  vrrp_garp_lower_prio_repeat 3")
    assert silent.instances[0].garp_lower_prio_repeat == 0
    assert silent.instances[0].garp_lower_prio_delay == 0
    cfg = parse("garp_lower_prio_repeat 2\n  garp_lower_prio_delay 4", "vrrp_strict")
    assert "(VI_1) Strict mode requires no repeat garps. resetting" in messages(cfg)
    assert "(VI_1) Strict mode requires no repeat garp delay. resetting" in messages(cfg)


def test_strict_forces_advert_keywords() -> None:
    cfg = parse(
        "lower_prio_no_advert false\n  higher_prio_send_advert\n  down_timer_adverts 7",
        "vrrp_strict",
    )
    i = cfg.instances[0]
    assert i.lower_prio_no_advert is True
    assert i.higher_prio_send_advert is False
    assert i.down_timer_adverts == 3
    got = messages(cfg)
    assert "(VI_1) down_timer_adverts is incompatible with strict mode - resetting" in got
    assert "(VI_1) strict mode requires higher_prio_send_advert to be clear. resetting" in got


def test_strict_refuses_no_vip_and_unicast_peers() -> None:
    with pytest.raises(ConfigError, match=r"\(VI_1\) No VIP specified; at least one is required"):
        parse("priority 100", "vrrp_strict", vips="")
    with pytest.raises(ConfigError, match="Unicast peers are not supported in strict mode"):
        parse(
            "unicast_src_ip 192.0.2.11\n  unicast_peer {\n    192.0.2.12\n  }",
            "vrrp_strict",
        )


def test_strict_mode_instance_keyword_overrides_the_global() -> None:
    assert inst("strict_mode", "").strict_mode is True
    assert inst("strict_mode off", "vrrp_strict").strict_mode is False
    assert inst("strict_mode false\n  accept", "vrrp_strict").accept is True


def test_vrrp_strict_false_is_still_strict_like_keepalived_227() -> None:
    cfg = parse("priority 100", "vrrp_strict false")
    assert cfg.instances[0].strict_mode is True
    assert any("ignores the value of vrrp_strict" in m for m in messages(cfg))


def test_nftables_keywords() -> None:
    gd = parse("", "nftables\n  nftables_priority -5\n  nftables_counters").global_defs
    assert (gd.nftables_table, gd.nftables_priority, gd.nftables_counters) == (
        "keepalived",
        -5,
        True,
    )
    named = parse("", "nftables my_table\n  nftables other")
    assert named.global_defs.nftables_table == "my_table"
    assert "nftables already specified - ignoring" in messages(named)
    assert parse("", "").global_defs.nftables_table is None


def test_vrrp_iptables_means_nftables_as_in_debians_keepalived() -> None:
    cfg = parse("", "vrrp_iptables")
    assert cfg.global_defs.nftables_table == "keepalived"
    assert any(
        m.startswith("iptables not supported, using nftables instead") for m in messages(cfg)
    )
    ipsets = parse("", "vrrp_ipsets keepalived")
    assert any("vrrp_ipsets" in m for m in messages(ipsets))


def test_bad_values_are_located_errors() -> None:
    with pytest.raises(ConfigError) as err:
        parse("", "nftables_priority high")
    assert "k.conf:2:19: error: nftables chain priority must be an integer" in str(err.value)
    # keepalived reports a bad strict_mode and keeps the global setting.
    cfg = parse("strict_mode maybe", "vrrp_strict")
    assert "(VI_1) invalid strict_mode maybe specified" in messages(cfg)
    assert cfg.instances[0].strict_mode is True


def test_dynamic_interfaces() -> None:
    gd = parse("", "dynamic_interfaces").global_defs
    assert gd.dynamic_interfaces and not gd.allow_if_changes
    gd = parse("", "dynamic_interfaces allow_if_changes").global_defs
    assert gd.dynamic_interfaces and gd.allow_if_changes
    cfg = parse("", "dynamic_interfaces sometimes")
    assert "Unknown dynamic_interfaces option 'sometimes'" in messages(cfg)
    assert not parse("", "").global_defs.dynamic_interfaces


def test_track_src_ip_needs_a_configured_source_address() -> None:
    # keepalived clears it silently without unicast_src_ip / mcast_src_ip.
    assert inst("track_src_ip").track_src_ip is False
    assert inst("mcast_src_ip 192.0.2.11\n  track_src_ip").track_src_ip is True


def test_nftables_table_name_cannot_smuggle_nft_syntax() -> None:
    with pytest.raises(ConfigError, match="nftables table name 'x;flush' is not supported"):
        parse("", 'nftables "x;flush"')
    assert parse("", "nftables my_table.v4").global_defs.nftables_table == "my_table.v4"
