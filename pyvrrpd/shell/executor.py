"""Carrying out the core's actions, in order, and logging what the core decided.

Owns: adverts on the wire (encoded once per priority), handing VIP wishes to
the instance's VipSet (which installs them in the background and sends the
GARP once they are in), GARP bursts on each VIP's device, and the log events
for state changes, priority changes, new masters and dropped packets.

Everything here is synchronous: an advert or a GARP burst is a few
non-blocking sends, so a batch of actions never becomes a task, and a flood
of packets that each trigger work never becomes a flood of tasks (issue 5).
Order is preserved because the only asynchronous work (netlink) is behind the
VipSet, and a GARP asked for before the addresses are in waits for them.

Lines a peer can trigger once per packet (master seen, drops, send errors,
lower-priority adverts discarded, priority-0 adverts heard)
are rate-limited per instance and reason, with counts of what was folded;
state changes are always logged. Must not decide anything: every action
comes from `pyvrrpd.core`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address

import structlog

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
from pyvrrpd.core.state import State
from pyvrrpd.io.errors import HostError
from pyvrrpd.io.garp import GarpSender
from pyvrrpd.io.vrrp_socket import AdvertNotSent
from pyvrrpd.shell.host.ahsend import send_ah_advert
from pyvrrpd.shell.instance import Instance
from pyvrrpd.shell.ops.katext import lead_in
from pyvrrpd.shell.ops.notify import Notifier
from pyvrrpd.shell.ratelimit import RateLimiter
from pyvrrpd.wire.vrrp import encode_advert

log = structlog.get_logger("pyvrrpd")

DROP_WARN_EVERY = 10.0  # seconds between WARNING summaries of dropped packets
PER_PACKET_EVERY = 5.0  # seconds between lines of one kind a peer can trigger per packet
LOG_ONLY = (
    StateChanged,
    PriorityChanged,
    MasterSeen,
    Dropped,
    Warned,
    LowerPriorityDiscarded,
    PriorityZeroHeard,
)
#: Warned reasons about the peers' configuration, logged as lines of their own.
OWN_LINE_WARNINGS = frozenset({"owner_conflict"})
#: A MASTER whose advert rounds reached no destination this many times in a
#: row resigns (HostFault): it holds the VIPs while its peers, hearing
#: nothing, take them too. Two rounds: one can be a transient refusal.
SILENT_ROUNDS = 2


class Executor:
    """Executes actions for instances; logs the informational ones."""

    def __init__(
        self,
        garp_senders: dict[str, GarpSender],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._garp = garp_senders
        self._limit = RateLimiter(PER_PACKET_EVERY, clock)
        self._drops = RateLimiter(DROP_WARN_EVERY, clock)
        #: notify hooks, FIFO lines and mails (shell/ops/notify.py); None: none configured
        self.notifier: Notifier | None = None
        #: Called (instance, reason) when a MASTER went SILENT_ROUNDS advert
        #: rounds without reaching anyone; the daemon feeds it a HostFault.
        self.on_silent: Callable[[Instance, str], None] | None = None
        self._silent: dict[str, int] = {}  # instance name -> failed rounds in a row

    @property
    def suppressed_lines(self) -> int:
        return self._limit.suppressed_total + self._drops.suppressed_total

    def run(self, inst: Instance, actions: Sequence[Action]) -> None:
        """Carry out `actions` in order; a host error is logged and the rest still run."""
        for action in actions:
            try:
                self._do(inst, action)
            except HostError as exc:
                self._limited(
                    "error",
                    (inst.name, "action_failed", type(action).__name__),
                    "action_failed",
                    instance=inst.name,
                    action=type(action).__name__,
                    error=str(exc),
                )
        if self.notifier is not None:
            # After the batch, as keepalived notifies once the VIPs are asked for.
            for action in actions:
                self._notify(inst, action)

    def _notify(self, inst: Instance, action: Action) -> None:
        """keepalived's notifies: on entering a state (not INIT: STOP is sent
        at shutdown), on priority changes and on lower-priority adverts."""
        notifier = self.notifier
        if notifier is None:
            return
        prio = inst.router.effective_priority
        if isinstance(action, StateChanged) and action.new is not State.INIT:
            notifier.instance_state(inst.name, action.new.name, prio)
        elif isinstance(action, PriorityChanged):
            notifier.priority_changed(inst.name, inst.router.state.name, action.new)
        elif isinstance(action, LowerPriorityHeard):
            notifier.master_rx_lower_pri(inst.name, prio)

    def _do(self, inst: Instance, action: Action) -> None:
        if isinstance(action, SendAdvert):
            self._send_advert(inst, action.priority)
            if action.priority == 0:
                log.info("sent_priority_0", instance=inst.name)
        elif isinstance(action, AddVips):
            log.info("setting_vips", instance=inst.name)  # keepalived: "(VI_1) setting VIPs."
            inst.vipset.add()
        elif isinstance(action, RemoveVips):
            log.info("removing_vips", instance=inst.name)
            inst.vipset.remove()
        elif isinstance(action, SendGarp):
            inst.vipset.garp(action.repeat)
        elif isinstance(action, LOG_ONLY):
            self.log_action(inst, action)

    def _send_advert(self, inst: Instance, priority: int) -> None:
        """One advert round; counts a MASTER's rounds that reached nobody."""
        try:
            sock = inst.iface.sock
            if sock is None:
                raise AdvertNotSent(f"no VRRP socket on {inst.cfg.interface!r} (interface missing)")
            if inst.router.ah_seq is not None:  # auth_type AH (shell/host/ahsend.py)
                if inst.iface.ah_sock is None:
                    raise AdvertNotSent(f"no AH socket on {inst.cfg.interface!r}")
                send_ah_advert(inst, priority)
            else:
                sock.send(self._advert(inst, priority))
        except AdvertNotSent as exc:
            r = getattr(inst, "router", None)  # unit-test fakes may have none
            if priority > 0 and r is not None and r.state is State.MASTER:
                self._silent_round(inst, str(exc))
            raise
        except HostError:
            self._silent.pop(inst.name, None)  # some peer got it: not silent
            raise
        self._silent.pop(inst.name, None)

    def _silent_round(self, inst: Instance, error: str) -> None:
        count = self._silent.get(inst.name, 0) + 1
        self._silent[inst.name] = count
        if count < SILENT_ROUNDS or self.on_silent is None:
            return
        self._silent.pop(inst.name, None)
        reason = f"adverts reach no peer: {error}"
        log.error("master_silent", instance=inst.name, rounds=count, detail=reason)
        self.on_silent(inst, reason)

    def send_garp(self, inst: Instance, repeat: int) -> None:
        """One GARP burst for every address of `inst`, on each address's device."""
        by_dev: dict[str, list[IPv4Address]] = {}
        for vip in inst.addresses:
            by_dev.setdefault(inst.dev(vip), []).append(vip.address)
        for dev, ips in by_dev.items():
            sender = self._garp.get(dev)
            try:
                if sender is None:
                    raise HostError(f"no ARP socket on {dev!r} (interface missing)")
                sent = sender.send(ips, repeat)
            except HostError as exc:
                self._limited(
                    "error",
                    (inst.name, "garp_failed", dev),
                    "garp_failed",
                    instance=inst.name,
                    interface=dev,
                    error=str(exc),
                )
                continue
            log.debug("garp_sent", instance=inst.name, interface=dev, frames=sent)

    def _advert(self, inst: Instance, priority: int) -> bytes:
        payload = inst.adverts.get(priority)
        if payload is None:
            cfg = inst.router.config
            payload = encode_advert(
                cfg.vrid, priority, cfg.vips, int(cfg.advert_int), cfg.auth_type, cfg.auth_data
            )
            inst.adverts[priority] = payload
        return payload

    def log_action(self, inst: Instance, action: Action) -> None:
        if isinstance(action, StateChanged):
            self._log_lead_in(inst, action)
            log.info(
                "state_change",
                instance=inst.name,
                old=action.old.name,
                new=action.new.name,
                reason=action.reason,
            )
        elif isinstance(action, PriorityChanged):
            log.info("priority_change", instance=inst.name, old=action.old, new=action.new)
        elif isinstance(action, MasterSeen):
            # Two senders alternating (a rogue box, a misconfigured peer) would
            # otherwise log one line per packet.
            self._limited(
                "info",
                (inst.name, "master_seen"),
                "master_seen",
                instance=inst.name,
                master=str(action.src),
                priority=action.priority,
            )
        elif isinstance(action, LowerPriorityDiscarded):
            # keepalived logs one line per discarded advert; a flood of them
            # (a misconfigured or rogue peer) must not flood the log.
            self._limited(
                "info",
                (inst.name, "lower_priority_advert"),
                "lower_priority_advert",
                instance=inst.name,
                src=str(action.src),
                priority=action.priority,
            )
        elif isinstance(action, PriorityZeroHeard):
            self._limited(
                "info",
                (inst.name, "priority_0_advert"),
                "priority_0_advert",
                instance=inst.name,
                src=str(action.src),
            )
        elif isinstance(action, Warned) and action.reason == "vip_removed":
            self._limited(
                "warning",
                (inst.name, "vip_removed"),
                "vip_removed_externally",
                instance=inst.name,
                detail=action.detail,
            )
        elif isinstance(action, Warned) and action.reason in OWN_LINE_WARNINGS:
            # A configuration problem on the LAN, not a bad packet: its own
            # line (rate-limited: it repeats with every advert).
            self._limited(
                "warning",
                (inst.name, action.reason),
                action.reason,
                instance=inst.name,
                src=str(action.src) if action.src else None,
                detail=action.detail,
            )
        elif isinstance(action, (Dropped, Warned)):
            self._log_drop(inst, action)

    def _log_lead_in(self, inst: Instance, action: StateChanged) -> None:
        """keepalived says why before the state line ("Receive advertisement timeout")."""
        r = getattr(inst, "router", None)  # unit-test fakes may have none
        if r is None:
            return
        for event, fields in lead_in(
            inst.name,
            action.old.name,
            action.new.name,
            action.reason,
            master=str(r.master_ip) if r.master_ip else None,
            master_priority=r.master_priority,
            ours=r.effective_priority,
        ):
            log.info(event, **fields)

    def _limited(self, level: str, key: tuple[str, ...], event: str, **kw: object) -> None:
        folded = self._limit.allow(key)
        if folded is None:
            return
        if folded:
            kw["suppressed"] = folded
        getattr(log, level)(event, **kw)

    def _log_drop(self, inst: Instance, action: Dropped | Warned) -> None:
        # Drops at DEBUG, with a rate-limited WARNING summary (design.md).
        log.debug("packet_dropped", instance=inst.name, reason=action.reason, detail=action.detail)
        inst.drops_since_warn[action.reason] = inst.drops_since_warn.get(action.reason, 0) + 1
        if self._drops.allow((inst.name, "drops")) is None:
            return
        log.warning(
            "packets_dropped" if isinstance(action, Dropped) else "packets_suspicious",
            instance=inst.name,
            counts=dict(inst.drops_since_warn),
            last=action.detail,
        )
        inst.drops_since_warn.clear()
