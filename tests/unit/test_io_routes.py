"""Route/rule deletion events match the configured routes as keepalived matches them."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from pyvrrpd.config.routemodel import Route, Rule
from pyvrrpd.io.routes import Gone, _gone
from pyvrrpd.shell.host.statics import _matches

DEL_ROUTE = {
    "event": "RTM_DELROUTE",
    "family": 2,
    "dst_len": 24,
    "proto": 18,
    "table": 254,
    "RTA_TABLE": 254,
    "RTA_DST": "198.51.100.0",
    "RTA_PRIORITY": 7,
}
DEL_RULE = {
    "event": "RTM_DELRULE",
    "family": 2,
    "table": 100,
    "FRA_TABLE": 100,
    "FRA_PRIORITY": 32765,
    "FRA_SRC": "192.0.2.10",
    "src_len": 32,
    "dst_len": 0,
    "FRA_PROTOCOL": 18,
}


def test_route_deletions_match_table_destination_and_metric() -> None:
    gone = _gone(DEL_ROUTE)
    assert gone is not None
    net = IPv4Network("198.51.100.0/24")
    assert _matches(Route(net, via=IPv4Address("192.0.2.1"), metric=7), gone)
    assert not _matches(Route(net, metric=8), gone)
    assert not _matches(Route(net, metric=7, table=100), gone)
    assert _gone({**DEL_ROUTE, "proto": 4}) is None  # not ours (protocol static)
    assert _gone({**DEL_ROUTE, "event": "RTM_NEWROUTE"}) is None


def test_rule_deletions_match_and_a_kernel_chosen_priority_is_any() -> None:
    gone = _gone(DEL_RULE)
    assert gone is not None
    src = IPv4Network("192.0.2.10/32")
    assert _matches(Rule(100, src=src), gone)
    assert _matches(Rule(100, src=src, priority=32765), gone)
    assert not _matches(Rule(100, src=src, priority=100), gone)
    assert not _matches(Rule(101, src=src), gone)
    assert not _matches(Rule(100), gone)
    assert not _matches(Rule(100, src=src), Gone(None, overflow=True))
