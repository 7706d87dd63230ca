"""Typos and VIP lists: warnings keepalived gives, located, with a hint for the typo."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from pyvrrpd.config import ConfigError, parse_text
from pyvrrpd.config.instance import max_advert_vips
from pyvrrpd.config.model import Config

HEAD = "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n"


def warnings(cfg: Config) -> list[tuple[str, str]]:
    return [(str(w.loc), w.message) for w in cfg.warnings]


def vip_block(n: int, first: int = 0) -> str:
    lines = "".join(f"    198.51.{(first + i) // 250}.{(first + i) % 250 + 1}\n" for i in range(n))
    return "  virtual_ipaddress {\n" + lines + "  }\n"


def test_misspelt_virtual_ipaddress_names_the_keyword_and_warns_no_vip() -> None:
    cfg = parse_text(HEAD + "  virtual_ipadress {\n    192.0.2.10\n  }\n}\n", "k.conf")
    assert warnings(cfg) == [
        ("k.conf:1:15", "(VI_1) No VIP specified; at least one is sensible"),
        (
            "k.conf:4:3",
            "unknown keyword 'virtual_ipadress' in vrrp_instance"
            " (did you mean 'virtual_ipaddress'?)",
        ),
    ]
    assert cfg.instances[0].virtual_ipaddress == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "global_defs {\n  router_ud x\n}\n",
            "unknown keyword 'router_ud' in global_defs (did you mean 'router_id'?)",
        ),
        (
            "global_defs {\n  vrrp_garp_master_dealy 5\n}\n",
            "unknown keyword 'vrrp_garp_master_dealy' in global_defs"
            " (did you mean 'vrrp_garp_master_delay'?)",
        ),
        (
            'vrrp_script c {\n  script "/bin/true"\n  intervall 2\n}\n',
            "unknown keyword 'intervall' in vrrp_script (did you mean 'interval'?)",
        ),
        (
            "global_def {\n}\n",
            "unknown keyword 'global_def' (did you mean 'global_defs'?)",
        ),
        (
            HEAD + "  Priority 50\n" + vip_block(1) + "}\n",
            "unknown keyword 'Priority' in vrrp_instance (did you mean 'priority'?)",
        ),
        (
            HEAD + "  authentication {\n    auth_pas 1111\n  }\n" + vip_block(1) + "}\n",
            "unknown keyword 'auth_pas' in authentication (did you mean 'auth_pass'?)",
        ),
        (
            HEAD + "  frobnicate\n" + vip_block(1) + "}\n",
            "unknown keyword 'frobnicate' in vrrp_instance",
        ),
    ],
)
def test_unknown_keywords_stay_warnings_with_the_closest_keyword(text: str, message: str) -> None:
    cfg = parse_text(text, "k.conf")
    assert message in [m for _, m in warnings(cfg)]


def test_no_virtual_ipaddress_silences_the_warning() -> None:
    cfg = parse_text(HEAD + "  no_virtual_ipaddress\n}\n", "k.conf")
    assert warnings(cfg) == []


def test_excluded_only_still_warns_like_keepalived() -> None:
    text = HEAD + "  virtual_ipaddress_excluded {\n    192.0.2.20\n  }\n}\n"
    cfg = parse_text(text, "k.conf")
    assert warnings(cfg) == [("k.conf:1:15", "(VI_1) No VIP specified; at least one is sensible")]


def test_more_than_255_vips_move_to_excluded_with_a_warning_at_the_256th() -> None:
    text = HEAD + vip_block(300) + "  virtual_ipaddress_excluded {\n    192.0.2.20\n  }\n}\n"
    cfg = parse_text(text, "k.conf")
    assert warnings(cfg) == [
        (
            "k.conf:260:5",  # the 256th address: 4 lines before the first
            "(VI_1) Number of VIPs (300) exceeds maximum/space available in packet"
            " (max 255 addresses) - excess moved to eVIPs",
        )
    ]
    (inst,) = cfg.instances
    assert len(inst.virtual_ipaddress) == 255
    assert inst.virtual_ipaddress[-1].address == IPv4Address("198.51.1.5")
    # keepalived appends the excess after the configured eVIPs.
    assert [str(v.address) for v in inst.virtual_ipaddress_excluded[:2]] == [
        "192.0.2.20",
        "198.51.1.6",
    ]
    assert len(inst.virtual_ipaddress_excluded) == 1 + 45


def test_exactly_255_vips_fit() -> None:
    cfg = parse_text(HEAD + vip_block(255) + "}\n", "k.conf")
    assert warnings(cfg) == []
    assert len(cfg.instances[0].virtual_ipaddress) == 255


def test_check_config_shows_the_vip_warning() -> None:
    # A warning never fails the load: ConfigError is only raised for errors.
    text = HEAD + vip_block(256) + "  priority 0\n}\n"
    with pytest.raises(ConfigError) as ei:
        parse_text(text, "k.conf")
    listing = str(ei.value)
    assert "k.conf:260:5: warning: (VI_1) Number of VIPs (256) exceeds" in listing


@pytest.mark.parametrize(
    ("mtu", "fits"),
    [(None, 255), (1500, 255), (1070, 255), (1069, 254), (1000, 237), (100, 12), (40, 0)],
)
def test_max_advert_vips_follows_keepalived(mtu: int | None, fits: int) -> None:
    # keepalived: (mtu - ethernet 14 - ip 20 - vrrp 8 - auth 8) / 4, at most 255.
    assert max_advert_vips(mtu) == fits


def test_garp_lower_prio_defaults_follow_the_global_master_values() -> None:
    body = vip_block(1)
    cfg = parse_text(HEAD + body + "}\n")
    assert (cfg.instances[0].garp_lower_prio_delay, cfg.instances[0].garp_lower_prio_repeat) == (
        5.0,
        5,
    )
    # keepalived: the global master values, not this instance's garp_master_*.
    glob = "global_defs {\n  vrrp_garp_master_delay 7\n  vrrp_garp_master_repeat 2\n}\n"
    cfg = parse_text(glob + HEAD + "  garp_master_delay 1\n  garp_master_repeat 9\n" + body + "}\n")
    inst = cfg.instances[0]
    assert (inst.garp_lower_prio_delay, inst.garp_lower_prio_repeat) == (7.0, 2)
    assert (inst.garp_master_delay, inst.garp_master_repeat) == (1.0, 9)


def test_garp_lower_prio_global_and_instance_values() -> None:
    glob = "global_defs {\n  vrrp_garp_lower_prio_delay 10\n  vrrp_garp_lower_prio_repeat 3\n}\n"
    body = vip_block(1)
    inst = parse_text(glob + HEAD + body + "}\n").instances[0]
    assert (inst.garp_lower_prio_delay, inst.garp_lower_prio_repeat) == (10.0, 3)
    own = "  garp_lower_prio_delay 0\n  garp_lower_prio_repeat 0\n"
    cfg = parse_text(glob + HEAD + own + body + "}\n")
    inst = cfg.instances[0]
    # 0 is valid for both: no second burst, no lower-priority GARP at all.
    assert (inst.garp_lower_prio_delay, inst.garp_lower_prio_repeat) == (0.0, 0)
    assert warnings(cfg) == []


def test_garp_lower_prio_bad_values_are_errors() -> None:
    text = HEAD + "  garp_lower_prio_delay soon\n  garp_lower_prio_repeat -1\n" + vip_block(1)
    with pytest.raises(ConfigError) as ei:
        parse_text(text + "}\n", "k.conf")
    assert [(str(d.loc), d.message) for d in ei.value.errors] == [
        ("k.conf:4:25", "garp_lower_prio_delay must be an integer 0..4294, got 'soon'"),
        ("k.conf:5:26", "garp_lower_prio_repeat must be an integer 0..65535, got '-1'"),
    ]
