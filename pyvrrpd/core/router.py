"""One VRRPv2 virtual router: the RFC 3768 section 6 state machine.

Owns: state, timers (as deadlines), the current master, effective priority,
tracker status and the keepalived-named counters of one instance. Feed it
events with `handle(event, now)`; carry out the actions it returns; call it
again with `TimerFired()` at `next_deadline()`. Must not read a clock or do
I/O: `now` is a monotonic time in seconds chosen by the caller.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any

from pyvrrpd.core.actions import (
    Action,
    AddVips,
    Dropped,
    LowerPriorityDiscarded,
    LowerPriorityHeard,
    MasterSeen,
    PriorityChanged,
    PriorityZeroHeard,
    RemoveVips,
    SendAdvert,
    SendGarp,
    StateChanged,
    Warned,
)
from pyvrrpd.core.events import (
    Event,
    HostFault,
    LinkChanged,
    MacChanged,
    PacketReceived,
    ShutdownRequested,
    Started,
    TimerFired,
    TrackerChanged,
    VipRemoved,
)
from pyvrrpd.core.state import State, check_transition
from pyvrrpd.core.timers import master_down_interval, skew_time
from pyvrrpd.core.tracking import PRIO_OWNER, TrackerSpec, contribution, effective_priority, faulted
from pyvrrpd.wire.ah import AhSequence
from pyvrrpd.wire.check import Accepted, Expect, Peer, check_packet
from pyvrrpd.wire.vrrp import Advert, AuthType

# A master answers a lower-priority advert at once (RFC 9568 6.4.3; keepalived
# answers every such packet). One answer per this many seconds is enough: a
# genuine lower-priority master sends one advert per Advertisement_Interval
# (>= 1 s in VRRPv2) and one multicast reply reaches all of them, while a flood
# of valid lower-priority adverts costs at most 10 extra adverts a second.
LOWER_PRIO_ADVERT_GAP = 0.1
# keepalived's "a bit more than" max(adver_int, rogue's adver_int) that an
# address owner waits for a second owner to back off (vrrp_state_master_tx()).
ROGUE_OWNER_WAIT = 1.2
# After a host fault (VIPs not installable) a BACKUP does not preempt for one
# Master_Down_Interval, doubled per consecutive fault up to this (seconds)...
HOST_FAULT_HOLD_MAX = 300.0
# ...and a fault that arrives after this long as MASTER counts as the first.
HOST_FAULT_RESET_AFTER = 10.0

# keepalived's stats keys, in its JSON dump's order (keepalived.md 4.2).
KEEPALIVED_STAT_KEYS: tuple[str, ...] = (
    "advert_rcvd",
    "advert_sent",
    "become_master",
    "release_master",
    "packet_len_err",
    "advert_interval_err",
    "ip_ttl_err",
    "invalid_type_rcvd",
    "addr_list_err",
    "invalid_authtype",
    "authtype_mismatch",
    "auth_failure",
    "pri_zero_rcvd",
    "pri_zero_sent",
)
# ... plus the drops keepalived only logs.
STAT_KEYS: tuple[str, ...] = (
    *KEEPALIVED_STAT_KEYS,
    "version_err",
    "checksum_err",
    "vrid_mismatch",
    "not_ipv4_vrrp",
    "own_packet",
)


@dataclass(frozen=True, slots=True)
class RouterConfig:
    """What the protocol needs to know about one `vrrp_instance`."""

    name: str
    vrid: int
    priority: int = 100
    advert_int: float = 1.0
    vips: tuple[IPv4Address, ...] = ()
    preempt: bool = True
    preempt_delay: float = 0.0
    initial_master: bool = False  # `state MASTER` in the config
    auth_type: int = 0
    auth_data: bytes = b""
    trackers: tuple[TrackerSpec, ...] = ()
    garp_master_delay: float = 5.0
    garp_master_repeat: int = 5
    garp_master_refresh: float = 0.0
    garp_master_refresh_repeat: int = 1
    garp_lower_prio_repeat: int = 5
    garp_lower_prio_delay: float = 5.0  # second lower-priority GARP burst; 0: none
    lower_prio_no_advert: bool = False
    skip_check_adv_addr: bool = False  # no VIP-list check for adverts from the known master
    # keepalived's higher_prio_send_advert: a master answers a higher-priority
    # advert with one of its own before stepping down (PR #551).
    higher_prio_send_advert: bool = False
    # keepalived's down_timer_adverts (1..100): adverts missed before a backup
    # takes over; Master_Down_Interval = N * Advertisement_Interval + Skew_Time.
    down_timer_adverts: int = 3
    # vrrp_startup_delay / vrrp_delay_after_boot, already resolved to seconds
    # after `Started`: no backup timer runs out before it has passed.
    startup_delay: float = 0.0
    # dont_track_primary: the instance's own interface going down (IFF_UP or
    # IFF_RUNNING cleared) is not a fault. A missing interface still is.
    dont_track_primary: bool = False
    # Unicast (config/unicast.py): adverts go to these peers, never the group;
    # src_ip (unicast_src_ip / mcast_src_ip) is our advert source, so the
    # equal-priority tie-break compares against it; config_fault holds the
    # instance in FAULT (unicast_fault_no_peer without peers, no interface).
    unicast_peers: tuple[Peer, ...] = ()
    check_unicast_src: bool = False
    src_ip: IPv4Address | None = None
    config_fault: str | None = None


@dataclass(slots=True)
class RouterStatus:
    """A snapshot for `pyvrrpd status`."""

    name: str
    state: State
    vrid: int
    priority: int
    effective_priority: int
    master: IPv4Address | None
    master_priority: int | None
    trackers: dict[str, bool | None]
    stats: dict[str, int]
    last_transition: float | None
    fault_reasons: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state.name,
            "vrid": self.vrid,
            "priority": self.priority,
            "effective_priority": self.effective_priority,
            "master": str(self.master) if self.master else None,
            "master_priority": self.master_priority,
            "trackers": dict(self.trackers),
            "stats": dict(self.stats),
            "fault_reasons": list(self.fault_reasons),
        }


class VirtualRouter:
    """The state machine of one virtual router (RFC 3768 6.4, keepalived semantics)."""

    def __init__(self, config: RouterConfig) -> None:
        self.config = config
        # auth_type AH: keepalived's anti-replay counter, shared by the received
        # adverts' check and our own (the shell numbers adverts from it; wire.ah).
        self.ah_seq = AhSequence() if config.auth_type == AuthType.AH else None
        self.state = State.INIT
        self.primary_ip: IPv4Address | None = None
        self.link_up = True
        self.link_present = True
        self.started = False
        self.master_ip: IPv4Address | None = None
        self.master_priority: int | None = None
        self.last_transition: float | None = None
        self.stats: dict[str, int] = dict.fromkeys(STAT_KEYS, 0)
        self.tracker_status: dict[str, bool | None] = {t.name: None for t in config.trackers}
        # What each tracker last measured (TrackerChanged.value); a scaled
        # (track_file) tracker's priority change is computed from it.
        self.tracker_values: dict[str, int | None] = {t.name: None for t in config.trackers}
        # Another address owner did not back off: we act as 254 (keepalived).
        self._owner_demoted = False
        self._rogue_counter = 0  # our adverts still to send before the rogue's deadline
        self._rogue_adver_int = 0.0
        self._rogue_until: float | None = None  # a 255 advert before this: we back off
        # Lower-priority adverts: when the next immediate answer may go out,
        # when the next GARP cycle may start, and the pending second burst.
        self._lower_prio_advert_after: float | None = None
        self._lower_prio_garp_after: float | None = None
        self._lower_prio_garp_deadline: float | None = None
        self.effective_priority = self._compute_priority()
        self._down_deadline: float | None = None
        self._advert_deadline: float | None = None
        self._garp_deadline: float | None = None
        self._garp_is_refresh = False
        self._preempt_until: float | None = None
        # A host fault (VIPs not installable, an internal error) holds the
        # instance in FAULT until this deadline.
        self._host_fault: str | None = None
        self._host_fault_deadline: float | None = None
        #: Consecutive host faults (the preemption hold doubles with each;
        #: see _on_host_fault) and until when a BACKUP does not preempt.
        self.host_faults = 0
        self._no_preempt_until: float | None = None
        # vrrp_startup_delay: backup timers count from this time until it passes.
        self._hold_until: float | None = None
        self._expect = self._make_expect()
        # vrrp_sync_group (core/syncgroup.py sets these; None/False outside a group):
        # asked before a BACKUP becomes MASTER, False holds it in BACKUP; whether
        # it wants MASTER (keepalived's wantstate); why its group holds it in FAULT.
        self.master_gate: Callable[[VirtualRouter], bool] | None = None
        self.wants_master = False
        self.group_fault: str | None = None
        # Offsets for a member held or demoted by its sync group: drawn from a
        # generator seeded by our address (pure: same inputs, same offsets),
        # so two boxes re-arm at different times (see _group_offset()).
        self._group_rng: random.Random | None = None

    # ------------------------------------------------------------------ public

    def handle(self, event: Event, now: float) -> list[Action]:
        """Process one event at time `now`; return the actions to carry out."""
        out: list[Action] = []
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(self, event, now, out)
        return out

    def next_deadline(self) -> float | None:
        """The earliest time at which `TimerFired` must be delivered, if any."""
        times = [
            t
            for t in (
                self._down_deadline,
                self._advert_deadline,
                self._garp_deadline,
                self._host_fault_deadline,
                self._lower_prio_garp_deadline,
            )
            if t is not None
        ]
        return min(times) if times else None

    @property
    def master_down_interval(self) -> float:
        """RFC 3768 6.1, with keepalived's down_timer_adverts in place of the 3."""
        adverts = self.config.down_timer_adverts
        if adverts == 3:
            return master_down_interval(self.effective_priority, self.config.advert_int)
        return adverts * self.config.advert_int + self.skew_time

    @property
    def skew_time(self) -> float:
        return skew_time(self.effective_priority, self.config.advert_int)

    def fault_reasons(self) -> tuple[str, ...]:
        """Why the instance is (or would be) in FAULT; empty when healthy."""
        reasons: list[str] = []
        if not self.link_present:
            reasons.append("interface missing")
        elif not self.link_up and not self.config.dont_track_primary:
            reasons.append("interface down")
        elif self.primary_ip is None:
            reasons.append("no IPv4 address on interface")
        for spec in self.config.trackers:
            if faulted(spec, self.tracker_status[spec.name], self.tracker_values[spec.name]):
                reasons.append(f"tracker {spec.name} failed")
        if self._host_fault is not None:
            reasons.append(self._host_fault)
        if self.group_fault is not None:
            reasons.append(self.group_fault)
        if self.config.config_fault is not None:
            reasons.append(self.config.config_fault)
        return tuple(reasons)

    @property
    def own_ip(self) -> IPv4Address | None:
        """The source of our adverts: src_ip if configured (keepalived's saddr), else primary."""
        return self.config.src_ip or self.primary_ip

    def adopt(self, old: VirtualRouter) -> None:
        """Carry over what survives an internal error in `old` (a fresh router
        replaces one whose event handling raised): counters, tracker results,
        link facts, the AH sequence numbers and the state it claimed, so a
        MASTER still resigns and its peers accept the resignation."""
        self.stats.update(old.stats)
        if old.ah_seq is not None and self.ah_seq is not None:
            # AH anti-replay: a peer drops adverts numbered again from 1.
            self.ah_seq = old.ah_seq
        self.tracker_status.update(
            {k: v for k, v in old.tracker_status.items() if k in self.tracker_status}
        )
        self.tracker_values.update(
            {k: v for k, v in old.tracker_values.items() if k in self.tracker_values}
        )
        self.primary_ip, self.link_up = old.primary_ip, old.link_up
        self.link_present, self.started = old.link_present, old.started
        self.state = old.state if isinstance(old.state, State) else State.INIT
        self.last_transition = old.last_transition
        self._hold_until = old._hold_until
        self.effective_priority = self._compute_priority()
        self._expect = self._make_expect()

    def reconfigure(self, config: RouterConfig, now: float) -> list[Action]:
        """Take a reloaded config in place (SIGHUP; shell/ops/reload.py), keeping state.

        keepalived's reload (keepalived.md 4.4) keeps a MASTER a MASTER: no
        election, no advert missed (Adver_Timer keeps its phase; a shorter
        interval pulls it in), counters and tracker results of the trackers
        still configured kept. What the new values mean is RFC 3768's: the
        priority is recomputed at once (a BACKUP's Master_Down_Timer shifts
        with Skew_Time, as on a tracker change), a BACKUP re-arms
        Master_Down_Interval when the advert timing changed, and a MASTER
        whose priority dropped stays MASTER until a higher advert arrives
        (6.4.3); a BACKUP that now outranks the master preempts on its next
        advert (6.4.2). The shell matches VRID, interface and auth type
        before calling this (a change there is a new router).
        """
        out: list[Action] = []
        old = self.config
        self.config = config
        self.tracker_status = {t.name: self.tracker_status.get(t.name) for t in config.trackers}
        self.tracker_values = {t.name: self.tracker_values.get(t.name) for t in config.trackers}
        self._expect = self._make_expect()
        self._reprioritise(now, out)
        timing = (old.advert_int, old.down_timer_adverts) != (
            config.advert_int,
            config.down_timer_adverts,
        )
        if self.state is State.MASTER and self._advert_deadline is not None:
            self._advert_deadline = min(self._advert_deadline, now + config.advert_int)
        elif self.state is State.BACKUP and timing and self._down_deadline is not None:
            self._arm_down(now, self.master_down_interval)
        if self.started:
            # A removed failing tracker (or a changed weight) may end a FAULT.
            self._settle(now, out, reason="reload")
        return out

    def status(self) -> RouterStatus:
        master = self.master_ip
        master_prio = self.master_priority
        if self.state is State.MASTER:
            master, master_prio = self.own_ip, self.effective_priority
        return RouterStatus(
            name=self.config.name,
            state=self.state,
            vrid=self.config.vrid,
            priority=self.config.priority,
            effective_priority=self.effective_priority,
            master=master,
            master_priority=master_prio,
            trackers=dict(self.tracker_status),
            stats=dict(self.stats),
            last_transition=self.last_transition,
            fault_reasons=self.fault_reasons(),
        )

    # ------------------------------------------------------ sync group hooks

    def group_promote(self, now: float) -> list[Action]:
        """The sync group went MASTER: a BACKUP member follows at once
        (keepalived's vrrp_sync_master())."""
        out: list[Action] = []
        if self.state is State.BACKUP:
            self._become_master(now, out, "sync group MASTER")
        return out

    def group_demote(self, now: float, resign: bool = False) -> list[Action]:
        """The sync group went BACKUP: a MASTER member steps down, without a
        priority-0 advert after a higher-priority one (keepalived's
        vrrp_sync_backup(), advF false), with one (`resign`) when another
        member resigned, so the peer takes over within Skew_Time."""
        out: list[Action] = []
        if self.state is State.MASTER:
            if resign:
                self._send(0, out)
            out.append(RemoveVips())
            self.stats["release_master"] += 1
            self._clear_timers()
            self._enter_backup(now, out, "sync group BACKUP")
            if self._down_deadline is not None:
                self._down_deadline += self._group_offset()
        return out

    def set_group_fault(self, reason: str | None, now: float) -> list[Action]:
        """Hold the member in FAULT while its sync group is in FAULT (`reason`),
        or release it (None); a MASTER resigns as on any fault."""
        out: list[Action] = []
        if reason != self.group_fault:
            self.group_fault = reason
            if self.started:
                self._settle(now, out, reason=reason or "sync group left FAULT")
        return out

    def _try_master(self, now: float, out: list[Action], reason: str) -> None:
        """Become MASTER unless the sync group holds us in BACKUP."""
        self.wants_master = True
        if self.master_gate is None or self.master_gate(self):
            self._become_master(now, out, reason)
            return
        # keepalived's vrrp_sync_can_goto_master(): another member does not
        # want MASTER yet ("prefer backup to avoid thrashing"); wait in BACKUP,
        # still wanting MASTER, for another Master_Down_Interval.
        if self.state is not State.BACKUP:
            self._enter_backup(now, out, reason)
            self.wants_master = True
        else:
            self._down_deadline = now + self.master_down_interval
        if self._down_deadline is not None:
            self._down_deadline += self._group_offset()

    def _group_offset(self) -> float:
        """A fresh offset in [0, advert_int/2) for a timer re-armed by the group.

        Crossed priorities (box A prefers VI_0, box B VI_1) started together
        make both boxes promote their groups at the same instant; the crossing
        adverts then demote both groups, whose timers restart in step, and so
        on: no VIP anywhere for as long as the clocks stay aligned. A different
        offset per box and per round breaks the tie: the box whose member
        fires first takes its whole group and the other box's members hear
        it before their own timers run out. Seeded by our address and VRID so
        two boxes draw different sequences without the core reading a clock
        or an entropy source.
        """
        if self._group_rng is None:
            ip = self.own_ip
            self._group_rng = random.Random((int(ip) if ip else 0) << 8 | self.config.vrid)
        return self._group_rng.uniform(0.0, self.config.advert_int / 2)

    # ----------------------------------------------------------------- events

    def _on_started(self, event: Started, now: float, out: list[Action]) -> None:
        self.started = True
        self.primary_ip = event.primary_ip
        self.link_up = event.link_up
        self.link_present = event.present
        self._expect = self._make_expect()
        if self.config.startup_delay > 0:
            # keepalived 2.2.7 (vrrp_init_instance_sands()): while the delay
            # runs, every backup timer is armed from the delay's end; adverts
            # are still received and followed.
            self._hold_until = now + self.config.startup_delay
        # keepalived removes leftovers of an earlier run before electing
        # (keepalived.md 2.8 "Restart after a crash").
        out.append(RemoveVips())
        self._settle(now, out, reason="startup")

    def _on_shutdown(self, _event: ShutdownRequested, now: float, out: list[Action]) -> None:
        if self.state is State.MASTER:
            # RFC 3768 6.4.3: Shutdown in Master sends an ADVERTISEMENT with Priority = 0.
            self._send(0, out)
            out.append(RemoveVips())
            self.stats["release_master"] += 1
        if self.state is not State.INIT:
            self._goto(State.INIT, now, out, "shutdown")
        self.started = False
        self._clear_timers()
        self._host_fault, self._host_fault_deadline = None, None

    def _on_timer(self, _event: TimerFired, now: float, out: list[Action]) -> None:
        if self._down_deadline is not None and now >= self._down_deadline:
            self._down_deadline = None
            if self.state is State.BACKUP:
                # RFC 3768 6.4.2: Master_Down_Timer fired -> become Master.
                self._try_master(now, out, "master_down_timer")
        if self._advert_deadline is not None and now >= self._advert_deadline:
            self._advert_deadline = None
            if self.state is State.MASTER:
                # RFC 3768 6.4.3: Adver_Timer fired -> advertise and re-arm.
                self._send(self.effective_priority, out)
                self._advert_deadline = now + self.config.advert_int
                self._count_rogue_advert(now)
        if self._garp_deadline is not None and now >= self._garp_deadline:
            self._garp_deadline = None
            if self.state is State.MASTER:
                self._delayed_garp(now, out)
        if self._lower_prio_garp_deadline is not None and now >= self._lower_prio_garp_deadline:
            self._lower_prio_garp_deadline = None
            if self.state is State.MASTER:
                # keepalived's vrrp_lower_prio_gratuitous_arp_thread(); the next
                # cycle waits a full window after this burst too (coalescing).
                self._lower_prio_garp_burst(now, out)
        if self._host_fault_deadline is not None and now >= self._host_fault_deadline:
            self._host_fault_deadline = None
            cleared, self._host_fault = self._host_fault, None
            if self.started:
                self._settle(now, out, reason=f"cleared: {cleared}")

    def _on_packet(self, event: PacketReceived, now: float, out: list[Action]) -> None:
        # keepalived ignores packets while in INIT or FAULT (keepalived.md 2.4).
        if self.state in (State.INIT, State.FAULT):
            return
        result = check_packet(event.datagram, self._expect)
        if not isinstance(result, Accepted):
            self.stats[str(result.reason)] = self.stats.get(str(result.reason), 0) + 1
            out.append(Dropped(str(result.reason), result.detail, result.src))
            return
        self.stats["advert_rcvd"] += 1
        advert = result.advert
        same_master = self.state is State.BACKUP and result.src == self.master_ip
        if not result.addr_list_ok and not (self.config.skip_check_adv_addr and same_master):
            # keepalived 2.3.3+ accepts and warns; 2.2.x dropped, which made a
            # backup with a different VIP list a second master (#1515, #2444).
            self.stats["addr_list_err"] += 1
            out.append(
                Warned(
                    "addr_list_err",
                    f"VIP list in advert from {result.src} differs from ours",
                    result.src,
                )
            )
        if advert.priority == 0:
            self.stats["pri_zero_rcvd"] += 1
        if self.state is State.BACKUP:
            self._backup_rx(result.src, advert, now, out)
        elif self.state is State.MASTER:
            self._master_rx(result.src, advert, now, out)

    def _on_tracker(self, event: TrackerChanged, now: float, out: list[Action]) -> None:
        spec = next((t for t in self.config.trackers if t.name == event.name), None)
        if spec is None:
            return
        ok = event.ok
        if spec.scaled:
            # keepalived.md 1.6: a file's value decides; "ok" is "no FAULT".
            ok = None if event.value is None else not faulted(spec, True, event.value)
        if (self.tracker_status[event.name], self.tracker_values[event.name]) == (ok, event.value):
            return
        self.tracker_status[event.name] = ok
        self.tracker_values[event.name] = event.value
        self._reprioritise(now, out)
        if self.started:
            self._settle(now, out, reason=f"tracker {event.name} {_ok_word(ok)}")

    def _on_link(self, event: LinkChanged, now: float, out: list[Action]) -> None:
        same = (event.up, event.primary_ip, event.present) == (
            self.link_up,
            self.primary_ip,
            self.link_present,
        )
        if same and not event.reset:
            return
        self.link_up = event.up
        self.primary_ip = event.primary_ip
        self.link_present = event.present
        self._expect = self._make_expect()
        if not self.started:
            return
        if not event.present:
            reason = "interface missing"
        elif event.reset:
            reason = "interface re-created or primary address changed"
        else:
            reason = "interface up" if event.up else "interface down"
        if event.reset and not self.fault_reasons():
            if self.state is State.MASTER:
                # Our adverts now leave from another socket/address: resign
                # (priority 0, RFC 3768 6.4.3) and start over as BACKUP, so
                # the peer takes over within Skew_Time rather than seeing two
                # masters or none.
                self._send(0, out)
                out.append(RemoveVips())
                self.stats["release_master"] += 1
                self._clear_timers()
                self._enter_backup(now, out, reason)
                return
            if self.state is State.BACKUP:
                # Whatever we heard came through the old socket: listen afresh.
                self.master_ip, self.master_priority = None, None
                self._arm_down(now, self.master_down_interval)
                return
        self._settle(now, out, reason=reason)

    def _on_mac_changed(self, _event: MacChanged, _now: float, out: list[Action]) -> None:
        # The LAN's ARP caches point at the old MAC: a MASTER re-announces.
        if self.state is State.MASTER and self.config.garp_master_repeat > 0:
            out.append(SendGarp(self.config.garp_master_repeat))

    def _on_host_fault(self, event: HostFault, now: float, out: list[Action]) -> None:
        self._host_fault = event.reason
        # FAULT for one Master_Down_Interval: long enough for the peer to take
        # over and a transient host problem to pass, short enough to be a
        # standby again soon (if the peer dies we may still take over).
        self._host_fault_deadline = now + self.master_down_interval
        # But no preempting a working master for a hold that doubles per
        # consecutive host fault (one Master_Down_Interval, two, four, ... up
        # to HOST_FAULT_HOLD_MAX): a box whose VIP install keeps failing (a
        # hung `nft`) would otherwise take the VIP from the healthy peer
        # every few seconds and, each time, leave it nowhere until it gave
        # up. The count restarts when the fault arrives after
        # HOST_FAULT_RESET_AFTER as a steady MASTER: the VIPs went in then
        # (the shell gives up within seconds of becoming MASTER), so this is
        # a new problem, not the same one again.
        if (
            self.state is State.MASTER
            and self.last_transition is not None
            and now - self.last_transition >= HOST_FAULT_RESET_AFTER
        ):
            self.host_faults = 0
        self.host_faults += 1
        first = self.master_down_interval
        hold = first * 2 ** min(self.host_faults - 1, 16)
        self._no_preempt_until = now + min(hold, max(HOST_FAULT_HOLD_MAX, first))
        if not self.started:
            return
        if self.state is State.INIT:
            self._goto(State.FAULT, now, out, event.reason)
        elif self.state is not State.FAULT:
            self._enter_fault(now, out, event.reason)

    def _on_vip_removed(self, event: VipRemoved, _now: float, out: list[Action]) -> None:
        if self.state is not State.MASTER:
            return  # we removed it ourselves, or never had it
        # Someone removed a VIP we own: put it back. keepalived resigns with
        # priority 0 instead; re-adding keeps the service up without a flap.
        out.append(Warned("vip_removed", f"{event.address} was removed externally; re-adding"))
        out.append(AddVips())

    _handlers: dict[type, Callable[[VirtualRouter, Any, float, list[Action]], None]] = {
        Started: _on_started,
        ShutdownRequested: _on_shutdown,
        TimerFired: _on_timer,
        PacketReceived: _on_packet,
        TrackerChanged: _on_tracker,
        LinkChanged: _on_link,
        VipRemoved: _on_vip_removed,
        MacChanged: _on_mac_changed,
        HostFault: _on_host_fault,
    }

    # -------------------------------------------------------------- receiving

    def _backup_rx(self, src: IPv4Address, advert: Advert, now: float, out: list[Action]) -> None:
        if self._owner_demoted and (src != self.master_ip or advert.priority != PRIO_OWNER):
            # keepalived: the other owner is gone or no longer claims 255:
            # "Restoring our priority to 255 since received advert with lower priority".
            self._owner_demoted = False
            self._reprioritise(now, out)
        if advert.priority == 0:
            # RFC 3768 6.4.2: priority 0 -> Master_Down_Timer = Skew_Time.
            self._arm_down(now, self.skew_time)
            self.master_ip, self.master_priority = None, None
            out.append(PriorityZeroHeard(src))
            return
        mine = self.effective_priority
        preempt = self.config.preempt or self.config.priority == PRIO_OWNER
        if advert.priority >= mine:
            self._preempt_until = None  # keepalived: "stop preempt delay"
        elif preempt and self.config.preempt_delay > 0:
            if self._preempt_until is None:
                self._preempt_until = now + self.config.preempt_delay
            preempt = now >= self._preempt_until
        if self._no_preempt_until is not None and now < self._no_preempt_until:
            preempt = False  # after a host fault: follow the working master
        if not preempt or advert.priority >= mine:
            # RFC 3768 6.4.2: reset Master_Down_Timer to Master_Down_Interval.
            self._arm_down(now, self.master_down_interval)
            if self.master_ip != src or self.master_priority != advert.priority:
                out.append(MasterSeen(src, advert.priority))
            self.master_ip, self.master_priority = src, advert.priority
            self.wants_master = False  # keepalived: following a master, wantstate BACKUP
        else:
            # Preempting: discard the lower-priority advert and let the
            # master-down timer run out (RFC 3768 6.4.2 "Discard the ADVERTISEMENT").
            out.append(LowerPriorityDiscarded(src, advert.priority))

    def _master_rx(self, src: IPv4Address, advert: Advert, now: float, out: list[Action]) -> None:
        mine = self.effective_priority
        if advert.priority == 0:
            # RFC 3768 6.4.3: priority 0 -> send an advert, reset Adver_Timer.
            self._send(mine, out)
            self._advert_deadline = now + self.config.advert_int
            return
        counting = self._rogue_counter > 0  # a second owner was seen before this packet
        own = self.own_ip
        if advert.priority == mine == PRIO_OWNER and src != own:
            self._second_owner(src, advert, now, out)
            mine = self.effective_priority  # 254 if we backed off
        higher = advert.priority > mine or (
            advert.priority == mine
            and own is not None
            # RFC 3768 6.4.3 tie-break; RFC 9568 says unsigned compare in network order.
            and int(src) > int(own)
        )
        if higher:
            if self.config.higher_prio_send_advert:
                # keepalived (vrrp_state_master_rx()): one last advert at our
                # priority, so the winner hears us and re-announces itself.
                self._send(mine, out)
            out.append(RemoveVips())
            self.stats["release_master"] += 1
            self._clear_timers()
            self._enter_backup(now, out, f"higher priority advert from {src}")
            self.master_ip, self.master_priority = src, advert.priority
            out.append(MasterSeen(src, advert.priority))
            return
        # Lower priority (or equal with a lower address): RFC 9568 asserts
        # mastership with an immediate advert; keepalived also re-GARPs so
        # hosts that followed the other router come back (PR #551). keepalived
        # does both for every such packet; we coalesce them (issue 5 item 2):
        # a flood of valid lower-priority adverts must not become a flood of
        # adverts and GARP bursts.
        after = self._lower_prio_advert_after
        if not self.config.lower_prio_no_advert and (after is None or now >= after):
            self._send(mine, out)
            self._advert_deadline = now + self.config.advert_int
            self._lower_prio_advert_after = now + LOWER_PRIO_ADVERT_GAP
            if counting:
                # keepalived counts only its periodic adverts, but each answer
                # re-arms Adver_Timer: a rogue owner advertising as often as we
                # do could keep the periodic one from ever firing.
                self._count_rogue_advert(now)
        after = self._lower_prio_garp_after
        if after is None or now >= after:
            self._lower_prio_garp_burst(now, out)
            if self.config.garp_lower_prio_delay > 0 and self.config.garp_lower_prio_repeat > 0:
                # keepalived: a second burst garp_lower_prio_delay later.
                self._lower_prio_garp_deadline = now + self.config.garp_lower_prio_delay
        # keepalived: notify_master_rx_lower_pri and FIFO MASTER_RX_LOWER_PRI.
        out.append(LowerPriorityHeard(src, advert.priority))

    def _lower_prio_garp_burst(self, now: float, out: list[Action]) -> None:
        """GARPs after a lower-priority advert; no new cycle for one window after.

        The window is garp_lower_prio_delay (at least one advert interval), so
        a single lower-priority advert gets keepalived's two bursts and a
        flood of them about one burst per delay, never one per packet.
        """
        cfg = self.config
        if cfg.garp_lower_prio_repeat > 0:
            out.append(SendGarp(cfg.garp_lower_prio_repeat))
        self._lower_prio_garp_after = now + max(cfg.garp_lower_prio_delay, cfg.advert_int)

    def _second_owner(
        self, src: IPv4Address, advert: Advert, now: float, out: list[Action]
    ) -> None:
        """Another router claims to be the address owner (priority 255) too.

        RFC 3768 7.1 has an owner discard every advert, which leaves both
        owners MASTER; RFC 9568 erratum 8298 processes them and logs the
        misconfiguration. keepalived (vrrp_state_master_rx()) does that and
        more: the owner with the lower address yields by the normal tie-break;
        the one with the higher address waits for two of its own adverts plus
        1.2 advert intervals for the other to back off, then acts as 254 and
        yields itself, so there is never more than one master.
        """
        own = self.own_ip
        assert own is not None
        conflict = (
            f"CONFIGURATION ERROR: local instance and {src} are both configured"
            " as address owner, please resolve"
        )
        if int(src) > int(own):
            out.append(Warned("owner_conflict", conflict, src))  # we yield below
            return
        if self._rogue_until is not None and now > self._rogue_until:
            # The other owner stayed quiet through the window: it had stopped.
            self._rogue_until = None
        if self._rogue_until is not None:
            out.append(
                Warned(
                    "owner_conflict",
                    f"{src} is still advertising as address owner, please resolve"
                    " - reducing our priority",
                    src,
                )
            )
            self._rogue_until = None
            self._owner_demoted = True
            self._reprioritise(now, out)
        elif self._rogue_counter == 0:
            out.append(Warned("owner_conflict", conflict, src))
            self._rogue_counter = 2
            self._rogue_adver_int = float(advert.advert_int)

    def _count_rogue_advert(self, now: float) -> None:
        """One more of our periodic adverts since a second owner showed up."""
        if self.config.priority != PRIO_OWNER or self._rogue_counter == 0:
            return
        self._rogue_counter -= 1
        if self._rogue_counter == 0:
            wait = max(self._rogue_adver_int, self.config.advert_int) * ROGUE_OWNER_WAIT
            self._rogue_until = now + wait

    # ------------------------------------------------------------ transitions

    def _settle(self, now: float, out: list[Action], reason: str) -> None:
        """Move to the state the fault conditions call for, after a change."""
        faults = self.fault_reasons()
        waiting = any(
            spec.weight == 0 and self.tracker_status[spec.name] is None
            for spec in self.config.trackers
        )
        if self.state is State.INIT:
            if faults:
                self._goto(State.FAULT, now, out, "; ".join(faults))
            elif waiting:
                # keepalived holds the instance until every weight-0 tracker
                # has reported once (keepalived.md 2.4, last point).
                return
            elif self.config.priority == PRIO_OWNER and self.config.initial_master:
                if self._hold_until is not None and now < self._hold_until:
                    # keepalived: the owner's 1 us down timer, counted from
                    # the end of vrrp_startup_delay.
                    self._goto(State.BACKUP, now, out, reason)
                    self._down_deadline = self._hold_until
                    return
                # RFC 3768 6.4.1: the address owner goes straight to Master.
                self._try_master(now, out, reason)
            else:
                self._enter_backup(now, out, reason)
        elif faults and self.state is not State.FAULT:
            self._enter_fault(now, out, "; ".join(faults))
        elif not faults and not waiting and self.state is State.FAULT:
            self._enter_backup(now, out, reason)

    def _enter_backup(self, now: float, out: list[Action], reason: str) -> None:
        self._goto(State.BACKUP, now, out, reason)
        self.wants_master = False
        self._preempt_until = None
        self._arm_down(now, self.master_down_interval)

    def _enter_fault(self, now: float, out: list[Action], reason: str) -> None:
        if self.state is State.MASTER:
            # keepalived: leaving MASTER for FAULT resigns with priority 0 so
            # the backup takes over after Skew_Time, not Master_Down_Interval.
            # It sends it twice, back to back (vrrp_state_leave_master() for
            # FAULT, then vrrp_restore_interface(advF)), so one lost packet
            # does not cost the peer a whole Master_Down_Interval; it counts
            # one pri_zero_sent and two advert_sent, as we do.
            self._send(0, out)
            self.stats["advert_sent"] += 1
            out.append(SendAdvert(0))
            out.append(RemoveVips())
            self.stats["release_master"] += 1
        self._clear_timers()
        self.master_ip, self.master_priority = None, None
        self.wants_master = False
        self._goto(State.FAULT, now, out, reason)

    def _become_master(self, now: float, out: list[Action], reason: str) -> None:
        # RFC 3768 6.4.2: send an ADVERTISEMENT, then gratuitous ARP; keepalived
        # adds the VIPs between the two (keepalived.md 2.7).
        self._send(self.effective_priority, out)
        self.wants_master = True
        self._goto(State.MASTER, now, out, reason)
        self.stats["become_master"] += 1
        self.master_ip, self.master_priority = None, None
        out.append(AddVips())
        if self.config.garp_master_repeat > 0:
            out.append(SendGarp(self.config.garp_master_repeat))
        self._down_deadline = None
        self._preempt_until = None
        self._advert_deadline = now + self.config.advert_int
        self._garp_is_refresh = False
        self._garp_deadline = None
        if self.config.garp_master_delay > 0:
            self._garp_deadline = now + self.config.garp_master_delay
        elif self.config.garp_master_refresh > 0:
            self._garp_is_refresh = True
            self._garp_deadline = now + self.config.garp_master_refresh

    def _delayed_garp(self, now: float, out: list[Action]) -> None:
        cfg = self.config
        repeat = cfg.garp_master_refresh_repeat if self._garp_is_refresh else cfg.garp_master_repeat
        if repeat > 0:
            out.append(SendGarp(repeat))
        if cfg.garp_master_refresh > 0:
            self._garp_is_refresh = True
            self._garp_deadline = now + cfg.garp_master_refresh

    def _goto(self, new: State, now: float, out: list[Action], reason: str) -> None:
        old = self.state
        self.state = check_transition(old, new)
        self.last_transition = now
        out.append(StateChanged(old, new, reason))

    # ---------------------------------------------------------------- helpers

    def _reprioritise(self, now: float, out: list[Action]) -> None:
        old = self.effective_priority
        new = self._compute_priority()
        if new == old:
            return
        self.effective_priority = new
        out.append(PriorityChanged(old, new))
        if self.state is State.BACKUP and self._down_deadline is not None:
            # keepalived shifts a running master-down timer by the skew change.
            self._down_deadline += skew_time(new, self.config.advert_int) - skew_time(
                old, self.config.advert_int
            )

    def _arm_down(self, now: float, interval: float) -> None:
        """Master_Down_Timer = `interval`, from the end of a running startup delay."""
        start = now
        if self._hold_until is not None:
            if now < self._hold_until:
                start = self._hold_until
            else:
                self._hold_until = None
        self._down_deadline = start + interval

    def _compute_priority(self) -> int:
        if self._owner_demoted:
            return PRIO_OWNER - 1
        return effective_priority(
            self.config.priority,
            (
                contribution(t, self.tracker_status[t.name], self.tracker_values[t.name])
                for t in self.config.trackers
            ),
        )

    def _send(self, priority: int, out: list[Action]) -> None:
        self.stats["advert_sent"] += 1
        if priority == 0:
            self.stats["pri_zero_sent"] += 1
        out.append(SendAdvert(priority))

    def _clear_timers(self) -> None:
        self._down_deadline = None
        self._advert_deadline = None
        self._garp_deadline = None
        self._preempt_until = None
        # keepalived's vrrp_state_leave_master(): forget a second owner.
        self._rogue_counter = 0
        self._rogue_until = None
        self._lower_prio_garp_deadline = None
        self._lower_prio_garp_after = None
        self._lower_prio_advert_after = None

    def _make_expect(self) -> Expect:
        cfg = self.config
        return Expect(
            vrid=cfg.vrid,
            advert_int=round(cfg.advert_int),
            auth_type=cfg.auth_type,
            auth_data=cfg.auth_data.ljust(8, b"\0")[:8] if cfg.auth_type else b"\0" * 8,
            vips=frozenset(cfg.vips),
            local_ips=frozenset(a for a in (self.primary_ip, cfg.src_ip) if a is not None),
            ah_seq=self.ah_seq,
            # keepalived.md 2.10 rows 3, 11, 13: no TTL-255 check on unicast.
            check_ttl=not cfg.unicast_peers,
            unicast=bool(cfg.unicast_peers),
            peers=cfg.unicast_peers,
            check_unicast_src=cfg.check_unicast_src,
        )


def _ok_word(ok: bool | None) -> str:
    return {True: "succeeded", False: "failed", None: "unknown"}[ok]
