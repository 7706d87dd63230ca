"""Outputs of the core, named in the imperative.

Owns: the frozen action dataclasses `VirtualRouter.handle` returns. The shell
executes them in order (order matters: RFC 3768 6.4.2 sends the advert before
the gratuitous ARPs, and keepalived removes VIPs after the priority-0 advert).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from pyvrrpd.core.state import State


@dataclass(frozen=True, slots=True)
class SendAdvert:
    """Multicast one advertisement carrying `priority` (0 = resign)."""

    priority: int


@dataclass(frozen=True, slots=True)
class AddVips:
    """Install every virtual address of the instance."""


@dataclass(frozen=True, slots=True)
class RemoveVips:
    """Remove every virtual address of the instance."""


@dataclass(frozen=True, slots=True)
class SendGarp:
    """Send `repeat` rounds of gratuitous ARP for every virtual address."""

    repeat: int


@dataclass(frozen=True, slots=True)
class StateChanged:
    old: State
    new: State
    reason: str


@dataclass(frozen=True, slots=True)
class PriorityChanged:
    old: int
    new: int


@dataclass(frozen=True, slots=True)
class Dropped:
    """A received packet was discarded; `reason` is a stats key."""

    reason: str
    detail: str
    src: IPv4Address | None = None


@dataclass(frozen=True, slots=True)
class Warned:
    """A received packet was accepted but looks wrong (e.g. VIP list mismatch)."""

    reason: str
    detail: str
    src: IPv4Address | None = None


@dataclass(frozen=True, slots=True)
class MasterSeen:
    """A backup accepted `src` as the current master (for status and logs)."""

    src: IPv4Address
    priority: int


@dataclass(frozen=True, slots=True)
class LowerPriorityHeard:
    """A MASTER heard (and stays master over) a lower-priority advert from `src`.

    keepalived runs `notify_master_rx_lower_pri` and writes the FIFO line
    MASTER_RX_LOWER_PRI for each one (vrrp.c vrrp_state_master_rx()).
    """

    src: IPv4Address
    priority: int


@dataclass(frozen=True, slots=True)
class LowerPriorityDiscarded:
    """A preempting BACKUP discarded a lower-priority advert from `src` (RFC 3768 6.4.2).

    keepalived logs "(VI_1) received lower priority (P) advert from X -
    discarding" for each one (vrrp.c vrrp_state_backup()); one per packet,
    so the shell rate-limits it.
    """

    src: IPv4Address
    priority: int


@dataclass(frozen=True, slots=True)
class PriorityZeroHeard:
    """A BACKUP heard a priority-0 advert from `src`: Master_Down_Timer = Skew_Time.

    keepalived (-D) logs "(VI_1) Backup received priority 0 advertisement"
    (vrrp.c vrrp_state_backup()); one per packet, so the shell rate-limits it.
    """

    src: IPv4Address


Action = (
    SendAdvert
    | AddVips
    | RemoveVips
    | SendGarp
    | StateChanged
    | PriorityChanged
    | Dropped
    | Warned
    | MasterSeen
    | LowerPriorityHeard
    | LowerPriorityDiscarded
    | PriorityZeroHeard
)
