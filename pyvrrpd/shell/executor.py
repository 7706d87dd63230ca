"""Carrying out the core's actions, in order, and logging what the core decided.

Owns: adverts on the wire (encoded once per priority), VIP add/remove through
netlink (one failing address does not stop the others), GARP bursts on each
VIP's device, and the log events for state changes, priority changes, new
masters and (rate-limited) dropped packets. Must not decide anything: every
action comes from `pyvrrpd.core`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from ipaddress import IPv4Address

import structlog

from pyvrrpd.core.actions import (
    Action,
    AddVips,
    Dropped,
    MasterSeen,
    PriorityChanged,
    RemoveVips,
    SendAdvert,
    SendGarp,
    StateChanged,
    Warned,
)
from pyvrrpd.io.errors import HostError
from pyvrrpd.io.garp import GarpSender
from pyvrrpd.io.netlink import Netlink
from pyvrrpd.shell.instance import Instance
from pyvrrpd.wire.vrrp import encode_advert

log = structlog.get_logger("pyvrrpd")

DROP_WARN_EVERY = 10.0  # seconds between WARNING summaries of dropped packets
LOG_ONLY = (StateChanged, PriorityChanged, MasterSeen, Dropped, Warned)


class Executor:
    """Executes side-effect actions for instances; logs the informational ones."""

    def __init__(self, netlink: Netlink, garp_senders: dict[str, GarpSender]) -> None:
        self._netlink = netlink
        self._garp = garp_senders

    async def run(self, inst: Instance, actions: Sequence[Action]) -> None:
        """Carry out `actions` in order; a host error is logged and the rest still run."""
        async with inst.lock:
            for action in actions:
                try:
                    await self._do(inst, action)
                except HostError as exc:
                    log.error(
                        "action_failed",
                        instance=inst.name,
                        action=type(action).__name__,
                        error=str(exc),
                    )

    async def _do(self, inst: Instance, action: Action) -> None:
        if isinstance(action, SendAdvert):
            inst.iface.sock.send(self._advert(inst, action.priority))
            if action.priority == 0:
                log.info("sent_priority_0", instance=inst.name)
        elif isinstance(action, AddVips):
            added = []
            for vip in inst.addresses:
                try:
                    if await self._netlink.add_address(
                        inst.dev(vip),
                        vip.address,
                        vip.prefixlen,
                        broadcast=vip.broadcast,
                        scope=vip.scope,
                        label=vip.label,
                    ):
                        added.append(str(vip))
                except HostError as exc:
                    # One bad address must not cost the others (keep going).
                    log.error("vip_add_failed", instance=inst.name, vip=str(vip), error=str(exc))
            inst.vips_installed = True
            log.info(
                "vips_set", instance=inst.name, vips=[str(v) for v in inst.addresses], added=added
            )
        elif isinstance(action, RemoveVips):
            removed = []
            for vip in inst.addresses:
                try:
                    if await self._netlink.remove_address(
                        inst.dev(vip), vip.address, vip.prefixlen
                    ):
                        removed.append(str(vip))
                except HostError as exc:
                    log.error("vip_remove_failed", instance=inst.name, vip=str(vip), error=str(exc))
            inst.vips_installed = False
            if removed:
                log.info("vips_removed", instance=inst.name, vips=removed)
        elif isinstance(action, SendGarp):
            by_dev: dict[str, list[IPv4Address]] = {}
            for vip in inst.addresses:
                by_dev.setdefault(inst.dev(vip), []).append(vip.address)
            for dev, ips in by_dev.items():
                sent = self._garp[dev].send(ips, action.repeat)
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
            log.info(
                "master_seen", instance=inst.name, master=str(action.src), priority=action.priority
            )
        elif isinstance(action, Warned) and action.reason == "vip_removed":
            log.warning("vip_removed_externally", instance=inst.name, detail=action.detail)
        elif isinstance(action, (Dropped, Warned)):
            self._log_drop(inst, action)

    def _log_drop(self, inst: Instance, action: Dropped | Warned) -> None:
        # Drops at DEBUG, with a rate-limited WARNING summary (design.md).
        log.debug("packet_dropped", instance=inst.name, reason=action.reason, detail=action.detail)
        inst.drops_since_warn[action.reason] = inst.drops_since_warn.get(action.reason, 0) + 1
        now = time.monotonic()
        if now - inst.last_drop_warn >= DROP_WARN_EVERY:
            log.warning(
                "packets_dropped" if isinstance(action, Dropped) else "packets_suspicious",
                instance=inst.name,
                counts=dict(inst.drops_since_warn),
                last=action.detail,
            )
            inst.drops_since_warn.clear()
            inst.last_drop_warn = now
