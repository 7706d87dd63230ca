"""virtual_routes / virtual_rules and the static_* blocks (config/routes.py)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from pyvrrpd.config import ConfigError, parse_text
from pyvrrpd.config.model import Config
from pyvrrpd.config.routemodel import RTPROT_KEEPALIVED, Route, Rule


def parse(inner: str, top: str = "") -> Config:
    text = (
        f"{top}\nvrrp_instance VI_1 {{\n  interface eth0\n  virtual_router_id 51\n"
        f"  virtual_ipaddress {{\n    192.0.2.10/24\n  }}\n{inner}\n}}\n"
    )
    return parse_text(text, "k.conf")


def routes(lines: str) -> tuple[Route, ...]:
    return parse(f"  virtual_routes {{\n{lines}\n  }}").instances[0].virtual_routes


def rules(lines: str) -> tuple[Rule, ...]:
    return parse(f"  virtual_rules {{\n{lines}\n  }}").instances[0].virtual_rules


def test_route_subset() -> None:
    (r,) = routes(
        "    to 198.51.100.0/24 via 192.0.2.1 dev eth0 src 192.0.2.10 metric 5 table 100"
        " scope link protocol keepalived onlink"
    )
    assert r.dst == IPv4Network("198.51.100.0/24")
    assert (r.via, r.dev, r.src) == (IPv4Address("192.0.2.1"), "eth0", IPv4Address("192.0.2.10"))
    assert (r.metric, r.table, r.scope, r.protocol, r.onlink) == (5, 100, 253, 18, True)
    assert str(r).startswith("to 198.51.100.0/24 via")


def test_route_defaults_and_types() -> None:
    plain, hole, default = routes(
        "    203.0.113.0/24 dev eth0\n    blackhole 10.0.0.0/8\n    default via 192.0.2.1"
    )
    assert (plain.table, plain.protocol, plain.type, plain.no_track) == (
        254,
        RTPROT_KEEPALIVED,
        "unicast",
        False,
    )
    assert hole.type == "blackhole" and hole.dst == IPv4Network("10.0.0.0/8")
    assert default.dst == IPv4Network("0.0.0.0/0")
    assert routes("    198.51.100.0/24 dev eth0 no_track")[0].no_track


def test_route_protocol_reset_unless_no_track() -> None:
    cfg = parse("  virtual_routes {\n    198.51.100.0/24 dev eth0 protocol static\n  }")
    assert cfg.instances[0].virtual_routes[0].protocol == RTPROT_KEEPALIVED
    assert any("Route cannot be tracked" in w.message for w in cfg.warnings)
    (kept,) = routes("    198.51.100.0/24 dev eth0 protocol static no_track")
    assert kept.protocol == 4


def test_gw_is_deprecated() -> None:
    cfg = parse("  virtual_routes {\n    198.51.100.0/24 gw 192.0.2.1\n  }")
    assert cfg.instances[0].virtual_routes[0].via == IPv4Address("192.0.2.1")
    assert any('"gw" for routes is deprecated' in w.message for w in cfg.warnings)


@pytest.mark.parametrize(
    ("line", "col", "why"),
    [
        ("198.51.100.0/24 nexthop via 192.0.2.1", 21, "route option 'nexthop' is not supported"),
        ("198.51.100.0/24 mtu 1400", 21, "route option 'mtu' is not supported"),
        ("2001:db8::/32 dev eth0", 5, "IPv6 routes need VRRPv3"),
        ("198.51.100.1/24 dev eth0", 5, "not an IPv4 prefix"),
        ("198.51.100.0/24 via nowhere", 25, "invalid route via address nowhere"),
        ("198.51.100.0/24 table nosuch", 27, "Routing table nosuch not found"),
        ("198.51.100.0/24 proto static", 21, "unknown route keyword proto"),
        ("via 192.0.2.1", 5, "Route must have a destination"),
        ("blackhole 10.0.0.0/8 dev eth0", 5, "a blackhole route takes no 'via' or 'dev'"),
    ],
)
def test_route_refusals_are_located(line: str, col: int, why: str) -> None:
    with pytest.raises(ConfigError) as err:
        routes(f"    {line}")
    assert f"k.conf:9:{col}: error: virtual_routes: " in str(err.value)
    assert why in str(err.value)


def test_rule_subset() -> None:
    (r,) = rules(
        "    from 192.0.2.10 to 198.51.100.0/24 iif eth0 oif eth1 fwmark 0x10/0xff"
        " priority 100 lookup 200"
    )
    assert r.src == IPv4Network("192.0.2.10/32") and r.dst == IPv4Network("198.51.100.0/24")
    assert (r.iif, r.oif, r.fwmark, r.fwmask, r.priority, r.table) == (
        "eth0",
        "eth1",
        16,
        255,
        100,
        200,
    )
    (all_,) = rules("    from all table main")
    assert all_.src is None and all_.table == 254 and all_.protocol == RTPROT_KEEPALIVED


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("from 192.0.2.10", "a rule needs 'table ID'"),
        ("from 192.0.2.10 table 100 uidrange 1-2", "rule option 'uidrange' is not supported"),
        ("from 192.0.2.10 goto 5", "rule option 'goto' is not supported"),
        ("frm 192.0.2.10 table 100", "unknown rule keyword 'frm'"),
        ("from 2001:db8::1 table 100", "invalid rule from address"),
    ],
)
def test_rule_refusals(line: str, why: str) -> None:
    with pytest.raises(ConfigError, match="virtual_rules: ") as err:
        rules(f"    {line}")
    assert why in str(err.value)


def test_static_blocks() -> None:
    top = (
        "static_ipaddress {\n  198.51.100.5/24 dev eth1\n}\n"
        "static_routes {\n  203.0.113.0/24 via 198.51.100.1\n}\n"
        "static_rules {\n  from 198.51.100.5 table 100\n}\n"
        "static_routes {\n  10.0.0.0/8 dev eth1\n}\n"
    )
    cfg = parse("", top)
    assert [str(v) for v in cfg.static_ipaddress] == ["198.51.100.5/24"]
    assert [r.dst for r in cfg.static_routes] == [
        IPv4Network("203.0.113.0/24"),
        IPv4Network("10.0.0.0/8"),
    ]
    assert cfg.static_rules[0].table == 100


def test_static_address_needs_a_device() -> None:
    with pytest.raises(ConfigError, match=r"static_ipaddress: 198\.51\.100\.5/24 needs 'dev IF'"):
        parse("", "static_ipaddress {\n  198.51.100.5/24\n}\n")
