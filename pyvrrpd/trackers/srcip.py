"""The configured source address (`unicast_src_ip` / `mcast_src_ip`): FAULT while it is missing.

Owns: the tracker every instance with a configured source address carries,
named ``src_ip:ADDR`` with weight 0 (down means FAULT, keepalived.md 2.2),
and its up/down state, from the daemon's netlink address events. Never polls.
Must not decide states (pyvrrpd.core.tracking does).

keepalived 2.2.7 puts an instance whose configured source address is not
local in FAULT at start ("bind unicast_src ... failed", then "entering FAULT
state (src address not configured)"); with `track_src_ip` it also follows the
address on the instance's interface afterwards (keepalived_netlink.c: deleted
means down, added back means up). Without `track_src_ip` keepalived keeps
sending from a vanished address through its bound socket; pyvrrpd sends with
IP_PKTINFO, which the kernel refuses for a non-local source, so a MASTER
would keep the VIPs and go silent while the peer also becomes MASTER. So
pyvrrpd always follows the address (a deliberate difference, README):
- with `track_src_ip`: present means on the instance's interface (keepalived);
- without: present means on any interface (what the kernel needs to send
  from it; keepalived's start-time bind check).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address

import structlog

from pyvrrpd.config.model import VrrpInstance
from pyvrrpd.core.tracking import TrackerSpec
from pyvrrpd.io.netlink import LinkEvent

log = structlog.get_logger("pyvrrpd.track")

PREFIX = "src_ip:"
ANY = ""  # key: the address on any interface (no track_src_ip)


def _source(inst: VrrpInstance) -> IPv4Address | None:
    src = getattr(inst, "src_ip", None)
    return src if isinstance(src, IPv4Address) else None


def _key(inst: VrrpInstance) -> tuple[str, IPv4Address] | None:
    src = _source(inst)
    if src is None:
        return None
    return (inst.interface if inst.track_src_ip else ANY, src)


def tracker_name(address: IPv4Address) -> str:
    return f"{PREFIX}{address}"


def srcip_specs(inst: VrrpInstance) -> tuple[TrackerSpec, ...]:
    """The instance's source-address tracker (weight 0: missing means FAULT), if any."""
    src = _source(inst)
    return () if src is None else (TrackerSpec(tracker_name(src), 0, False),)


def _interface_names() -> list[str]:
    return [name for _, name in socket.if_nameindex()]


class SrcIpTracker:
    """Presence of each configured source address; tells the core on changes.

    Keys are (interface, address), interface ``""`` meaning any interface.
    """

    def __init__(
        self,
        instances: Iterable[VrrpInstance],
        on_change: Callable[[str, bool | None], None],
        interfaces: Callable[[], list[str]] = _interface_names,
    ) -> None:
        self.state: dict[tuple[str, IPv4Address], bool | None] = {}
        self.users: dict[tuple[str, IPv4Address], list[str]] = {}
        for inst in instances:
            key = _key(inst)
            if key is not None:
                self.state[key] = None
                self.users.setdefault(key, []).append(inst.name)
        self._on_change = on_change
        self._interfaces = interfaces
        self._has: Callable[[str, IPv4Address], bool] = lambda _i, _a: False

    def __bool__(self) -> bool:
        return bool(self.state)

    def start(self, has_address: Callable[[str, IPv4Address], bool]) -> None:
        """Read each address once (from the link monitor's view) at start.

        `has_address` is asked again on later events, so it must follow the
        kernel (the monitor updates its view before it yields an event)."""
        self._has = has_address
        for key in list(self.state):
            self._set(key, self._present(key))

    def _present(self, key: tuple[str, IPv4Address]) -> bool:
        ifname, address = key
        if ifname != ANY:
            return self._has(ifname, address)
        return any(self._has(name, address) for name in self._interfaces())

    def observe(self, ev: LinkEvent) -> None:
        """An address event: a configured source address came or went."""
        if ev.kind == "link" or ev.address is None:
            # An interface deleted takes its addresses along (the monitor
            # forgets them without an address event): look again.
            for key in list(self.state):
                if key[0] == ANY:
                    self._set(key, self._present(key))
            return
        for key in ((ev.ifname, ev.address), (ANY, ev.address)):
            if key in self.state:
                self._set(key, ev.kind == "addr_add" if key[0] else self._present(key))

    def _set(self, key: tuple[str, IPv4Address], present: bool) -> None:
        if self.state.get(key) == present:
            return
        self.state[key] = present
        ifname, address = key
        where = f"interface {ifname}" if ifname else "any interface"
        fields = {"address": str(address), "instances": self.users.get(key, [])}
        if present:
            log.info("src_ip_present", interface=ifname or None, **fields)
        else:
            # keepalived: "(VI_1) entering FAULT state (src address not configured)".
            log.error(
                "src_ip_missing",
                detail=f"src address not configured: {address} is not on {where}",
                **fields,
            )
        self._on_change(tracker_name(address), present)
