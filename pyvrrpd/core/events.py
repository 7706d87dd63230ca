"""Inputs to the core, named in the past tense.

Owns: the frozen event dataclasses the shell feeds to `VirtualRouter.handle`.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address


@dataclass(frozen=True, slots=True)
class Started:
    """The daemon has its sockets; `primary_ip` is the interface's primary address."""

    primary_ip: IPv4Address | None
    link_up: bool = True


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
    """A tracked object changed: ok True (up), False (down) or None (unknown)."""

    name: str
    ok: bool | None


@dataclass(frozen=True, slots=True)
class LinkChanged:
    """The instance's interface went up/down or its primary address changed."""

    up: bool
    primary_ip: IPv4Address | None


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
)
