"""Inputs to the core, named in the past tense.

Owns: the frozen event dataclasses the shell feeds to `VirtualRouter.handle`.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address


@dataclass(frozen=True, slots=True)
class Started:
    """The daemon is ready; `primary_ip` is the interface's primary address.

    `present` is False when the interface does not exist (yet): the instance
    waits in FAULT until netlink reports it.
    """

    primary_ip: IPv4Address | None
    link_up: bool = True
    present: bool = True


@dataclass(frozen=True, slots=True)
class ShutdownRequested:
    """SIGTERM/SIGINT or removal: leave the protocol (RFC 3768 6.4.3 Shutdown)."""


@dataclass(frozen=True, slots=True)
class TimerFired:
    """The deadline published by `next_deadline()` has passed."""


@dataclass(frozen=True, slots=True)
class PacketReceived:
    """A whole IPv4 datagram (header included) read from the VRRP socket."""

    datagram: bytes


@dataclass(frozen=True, slots=True)
class TrackerChanged:
    """A tracked object changed: ok True (up), False (down) or None (unknown).

    `value` is what the tracker measured (a file's integer, a process count,
    an HTTP status), shown in status; for a scaled (track_file) tracker it is
    what the priority arithmetic uses and `ok` is derived from it.
    """

    name: str
    ok: bool | None
    value: int | None = None


@dataclass(frozen=True, slots=True)
class LinkChanged:
    """The instance's interface went up/down, appeared, vanished or changed address.

    `reset` is True when the interface was re-created (new ifindex) or its
    primary address changed while the instance was running: the shell has
    reopened its sockets and the instance starts over from BACKUP.
    """

    up: bool
    primary_ip: IPv4Address | None
    present: bool = True
    reset: bool = False


@dataclass(frozen=True, slots=True)
class MacChanged:
    """The interface's MAC address changed (bond failover, NIC hot-plug)."""


@dataclass(frozen=True, slots=True)
class HostFault:
    """The host failed this instance: its VIPs could not be installed, or handling
    an event raised. The instance resigns and stays in FAULT for one
    Master_Down_Interval (a later HostFault restarts the wait)."""

    reason: str


@dataclass(frozen=True, slots=True)
class VipRemoved:
    """One of the instance's addresses disappeared from its interface."""

    address: IPv4Address


Event = (
    Started
    | ShutdownRequested
    | TimerFired
    | PacketReceived
    | TrackerChanged
    | LinkChanged
    | VipRemoved
    | MacChanged
    | HostFault
)
