"""track_src_ip follows address events; a missing interface without dynamic_interfaces."""

from __future__ import annotations

import asyncio
import errno
from ipaddress import IPv4Address
from typing import Any, cast

from pyvrrpd.config import parse_text
from pyvrrpd.io.errors import HostError
from pyvrrpd.io.netlink import LinkEvent, Netlink
from pyvrrpd.shell.host.statics import HostExtras
from pyvrrpd.shell.instance import router_config
from pyvrrpd.trackers.srcip import SrcIpTracker

SRC = IPv4Address("192.0.2.21")


def config(extra: str = "", globals_: str = "") -> Any:
    return parse_text(
        f"global_defs {{\n{globals_}\n}}\n"
        "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n"
        f"  mcast_src_ip {SRC}\n  track_src_ip\n{extra}\n"
        "  virtual_ipaddress {\n    192.0.2.10/24 dev eth2\n  }\n}\n",
        "k.conf",
    )


def test_the_core_gets_a_weight_0_tracker() -> None:
    cfg = config()
    specs = router_config(cfg.instances[0], cfg, mtu=1500).trackers
    assert [(s.name, s.weight) for s in specs] == [("src_ip:192.0.2.21", 0)]


def test_address_events_drive_the_tracker() -> None:
    seen: list[tuple[str, bool | None]] = []
    tr = SrcIpTracker(config().instances, lambda n, ok: seen.append((n, ok)))
    tr.start(lambda ifname, addr: ifname == "eth0" and addr == SRC)
    tr.observe(LinkEvent("eth0", "addr_del", None, IPv4Address("192.0.2.99")))  # not ours
    tr.observe(LinkEvent("eth1", "addr_del", None, SRC))  # another interface
    tr.observe(LinkEvent("eth0", "addr_del", None, SRC))
    tr.observe(LinkEvent("eth0", "addr_del", None, SRC))  # no change: no second call
    tr.observe(LinkEvent("eth0", "addr_add", None, SRC))
    assert seen == [
        ("src_ip:192.0.2.21", True),
        ("src_ip:192.0.2.21", False),
        ("src_ip:192.0.2.21", True),
    ]


class FakeNetlink:
    def __init__(self, present: set[str]) -> None:
        self.present = present

    async def link(self, name: str) -> object:
        if name not in self.present:
            raise HostError(f"interface {name!r} not found", errno_code=errno.ENODEV)
        return object()


def check(cfg: Any, known: dict[str, bool], present: set[str]) -> None:
    extras = HostExtras(cfg, cast(Netlink, FakeNetlink(present)))
    asyncio.run(extras.check_interfaces(known))


def test_missing_interface_is_logged_and_never_stops_the_daemon(capsys: Any) -> None:
    # keepalived 2.2.7 exits here without dynamic_interfaces; pyvrrpd logs
    # each missing interface and its instances wait in FAULT (README).
    routes = "  virtual_routes {\n    203.0.113.0/24 dev eth3\n  }"
    check(config(routes), {"eth0": True, "eth2": False}, set())
    out = capsys.readouterr().out
    assert "interface eth2 does not exist: vrrp_instance VI_1 wait in FAULT" in out
    assert "interface eth3 does not exist" in out
    check(config(routes), {"eth0": True, "eth2": True}, {"eth3"})  # all there
    assert "does not exist" not in capsys.readouterr().out
