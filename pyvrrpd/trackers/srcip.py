"""`track_src_ip`: FAULT while the configured source address is not on the interface.

Owns: the tracker each instance with `track_src_ip` (and a configured
`unicast_src_ip` / `mcast_src_ip`) carries, named ``src_ip:ADDR`` with weight
0 (down means FAULT, keepalived.md 2.2), and its up/down state, from the
daemon's netlink address events (keepalived_netlink.c: an address deleted
from the instance's interface that equals its configured saddr takes the
instance down; added back, up). Never polls.
Must not decide states (pyvrrpd.core.tracking does).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from ipaddress import IPv4Address

import structlog

from pyvrrpd.config.model import VrrpInstance
from pyvrrpd.core.tracking import TrackerSpec
from pyvrrpd.io.netlink import LinkEvent

log = structlog.get_logger("pyvrrpd.track")

PREFIX = "src_ip:"


def _tracked(inst: VrrpInstance) -> IPv4Address | None:
    src = getattr(inst, "src_ip", None)
    return src if inst.track_src_ip and isinstance(src, IPv4Address) else None


def tracker_name(address: IPv4Address) -> str:
    return f"{PREFIX}{address}"


def srcip_specs(inst: VrrpInstance) -> tuple[TrackerSpec, ...]:
    """The instance's source-address tracker (weight 0: missing means FAULT), if any."""
    src = _tracked(inst)
    return () if src is None else (TrackerSpec(tracker_name(src), 0, False),)


class SrcIpTracker:
    """Presence of each tracked (interface, source address); tells the core on changes."""

    def __init__(
        self,
        instances: Iterable[VrrpInstance],
        on_change: Callable[[str, bool | None], None],
    ) -> None:
        self.state: dict[tuple[str, IPv4Address], bool | None] = {}
        for inst in instances:
            src = _tracked(inst)
            if src is not None:
                self.state[(inst.interface, src)] = None
        self._on_change = on_change

    def __bool__(self) -> bool:
        return bool(self.state)

    def start(self, has_address: Callable[[str, IPv4Address], bool]) -> None:
        """Read each tracked address once (from the link monitor's view) at start."""
        for ifname, address in list(self.state):
            self._set(ifname, address, has_address(ifname, address))

    def observe(self, ev: LinkEvent) -> None:
        """An address event: a tracked source address came or went."""
        if ev.kind == "link" or ev.address is None:
            return
        if (ev.ifname, ev.address) in self.state:
            self._set(ev.ifname, ev.address, ev.kind == "addr_add")

    def _set(self, ifname: str, address: IPv4Address, present: bool) -> None:
        if self.state.get((ifname, address)) == present:
            return
        self.state[(ifname, address)] = present
        log.info(
            "tracked_src_ip",
            interface=ifname,
            address=str(address),
            state="present" if present else "missing",
        )
        self._on_change(tracker_name(address), present)
