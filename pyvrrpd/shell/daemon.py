"""The thin asyncio shell around the sans-IO core.

Owns: wiring config -> routers, feeding them events (packets, timers,
tracker and link changes, shutdown), executing the actions they return in
order, logging what they decided, and the daemon's lifetime (signals, pid
file, control socket). Protocol decisions live in `pyvrrpd.core`; sockets,
netlink and subprocesses in `pyvrrpd.io`.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import time
from collections.abc import Sequence
from ipaddress import IPv4Address
from typing import Any

import structlog

from pyvrrpd import __version__
from pyvrrpd.config.model import Config
from pyvrrpd.core.actions import (
    Action,
)
from pyvrrpd.core.events import (
    Event,
    LinkChanged,
    PacketReceived,
    ShutdownRequested,
    Started,
    TimerFired,
    TrackerChanged,
    VipRemoved,
)
from pyvrrpd.core.router import VirtualRouter
from pyvrrpd.io.errors import HostError
from pyvrrpd.io.garp import GarpSender
from pyvrrpd.io.netlink import LinkEvent, LinkMonitor, Netlink
from pyvrrpd.io.vrrp_socket import VrrpSocket
from pyvrrpd.shell.control import ControlServer
from pyvrrpd.shell.executor import LOG_ONLY, Executor
from pyvrrpd.shell.instance import Instance, Interface, router_config, without_trackers
from pyvrrpd.shell.pidfile import PidFiles
from pyvrrpd.shell.scripttrack import ScriptTracker, prepare_script
from pyvrrpd.shell.timerheap import TimerHeap
from pyvrrpd.wire.check import peek_vrid

log = structlog.get_logger("pyvrrpd")


class Daemon:
    """Runs every configured instance until asked to stop."""

    def __init__(
        self,
        config: Config,
        *,
        control_socket: str | None = None,
        pid_files: Sequence[str] = (),
        release_on_stop: bool = True,
    ) -> None:
        self.config = config
        self.control_path = control_socket
        self.pid_files = PidFiles(list(pid_files))
        # keepalived -V: leave VIPs in place (and send no priority 0) on stop.
        self.release_on_stop = release_on_stop
        self.instances: list[Instance] = []
        self.interfaces: dict[str, Interface] = {}
        self.garp_senders: dict[str, GarpSender] = {}
        self.scripts: dict[str, ScriptTracker] = {}
        self.disabled_scripts: dict[str, str] = {}
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timers: TimerHeap | None = None
        self._netlink: Netlink | None = None
        self._monitor: LinkMonitor | None = None
        self._control: ControlServer | None = None
        self._executor: Executor | None = None

    # ------------------------------------------------------------- lifecycle

    async def run(self) -> int:
        """Start, run until SIGTERM/SIGINT, shut down cleanly. Returns an exit code."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._timers = TimerHeap(loop)
        try:
            await self._setup()
        except HostError:
            # The CLI prints the one-line reason; just release what was opened.
            await self._close_io()
            raise
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop, sig.name)
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        log.info(
            "started",
            version=__version__,
            pid=os.getpid(),
            instances=[i.name for i in self.instances],
        )
        now = loop.time()
        for inst in self.instances:
            self._feed(inst, Started(inst.iface.link.primary_ip, inst.iface.link.up), now)
        for tracker in self.scripts.values():
            tracker.start(now)
        await self._stop.wait()
        await self._shutdown()
        return 0

    def request_stop(self, why: str = "request") -> None:
        if not self._stop.is_set():
            log.info("stopping", signal=why)
            self._stop.set()

    def _on_sighup(self) -> None:
        log.warning("reload_not_supported", detail="SIGHUP ignored; restart to apply changes")

    async def _setup(self) -> None:
        self.pid_files.acquire()
        self._netlink = await Netlink.open()
        for inst_cfg in self.config.instances:
            iface = await self._interface(inst_cfg.interface)
            router = VirtualRouter(router_config(inst_cfg, self.config))
            inst = Instance(inst_cfg, router, iface)
            iface.by_vrid[inst_cfg.virtual_router_id] = inst
            self.instances.append(inst)
            assert self._timers is not None
            self._timers.register(("vr", inst.name), functools.partial(self._timer_due, inst))
        await self._setup_garp_devices()
        self._executor = Executor(self._netlink, self.garp_senders)
        self._setup_scripts()
        self._monitor = await LinkMonitor.open()
        self._spawn(self._watch_links())
        if self.control_path:
            self._control = ControlServer(self.control_path, self.status)
            await self._control.start()

    async def _setup_garp_devices(self) -> None:
        """GARP goes out on each VIP's own device (`dev` may differ from `interface`)."""
        assert self._netlink is not None
        for name, iface in self.interfaces.items():
            self.garp_senders[name] = iface.garp
        for inst in self.instances:
            for vip in inst.addresses:
                dev = inst.dev(vip)
                if dev not in self.garp_senders:
                    link = await self._netlink.link(dev)
                    self.garp_senders[dev] = GarpSender.open(dev, link.mac)

    async def _interface(self, ifname: str) -> Interface:
        if ifname in self.interfaces:
            return self.interfaces[ifname]
        assert self._netlink is not None and self._loop is not None
        link = await self._netlink.link(ifname, self._vip_addresses(ifname))
        if link.primary_ip is None:
            raise HostError(f"interface '{ifname}' has no IPv4 address to send adverts from")
        sock = VrrpSocket.open(ifname, link.index, link.primary_ip)
        garp = GarpSender.open(ifname, link.mac)
        iface = Interface(link, sock, garp)
        sock.attach(self._loop, functools.partial(self._on_datagram, iface))
        self.interfaces[ifname] = iface
        return iface

    def _setup_scripts(self) -> None:
        assert self._timers is not None
        gdefs = self.config.global_defs
        used = {ref.name for inst in self.config.instances for ref in inst.track_script}
        if used and not gdefs.enable_script_security:
            log.warning(
                "script_security_disabled",
                detail="scripts are being executed but enable_script_security is not set",
            )
        for name in sorted(used):
            script = self.config.script(name)
            if script is None:
                continue
            prepared = prepare_script(script, gdefs)
            if isinstance(prepared, str):
                # keepalived removes a script it may not run from every
                # instance tracking it (keepalived.md 1.4); say so loudly.
                self.disabled_scripts[name] = prepared
                log.error("script_disabled", script=name, reason=prepared)
                for inst in self.instances:
                    self._feed_untracked(inst, name)
                continue
            argv, identity = prepared
            self.scripts[name] = ScriptTracker(
                script, argv, identity, self._timers, self._on_tracker_change
            )

    def _feed_untracked(self, inst: Instance, name: str) -> None:
        cfg = inst.router.config
        if any(t.name == name for t in cfg.trackers):
            kept = tuple(t for t in cfg.trackers if t.name != name)
            inst.router = VirtualRouter(without_trackers(cfg, kept))

    async def _shutdown(self) -> None:
        assert self._loop is not None
        for tracker in self.scripts.values():
            tracker.stop()
        now = self._loop.time()
        if not self.release_on_stop:
            log.info("leaving_vips", detail="-V/--dont-release-vrrp: VIPs stay, no priority 0")
        for inst in self.instances if self.release_on_stop else ():
            self._feed(inst, ShutdownRequested(), now)
        # Let the priority-0 adverts and VIP removals be carried out (bounded:
        # keepalived exits about a second after SIGTERM).
        pending = [t for t in self._tasks if t.get_name().startswith("exec:")]
        if pending:
            await asyncio.wait(pending, timeout=1.0)
        await self._close_io()
        log.info("stopped")

    async def _close_io(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._control is not None:
            await self._control.close()
        if self._monitor is not None:
            self._monitor.close()
        for iface in self.interfaces.values():
            iface.sock.close()
        for garp in self.garp_senders.values():
            garp.close()
        if self._netlink is not None:
            self._netlink.close()
        if self._timers is not None:
            self._timers.close()
        self.pid_files.release()

    # ---------------------------------------------------------------- events

    def _timer_due(self, inst: Instance, now: float) -> None:
        self._feed(inst, TimerFired(), now)

    def _on_datagram(self, iface: Interface, data: bytes) -> None:
        assert self._loop is not None
        vrid = peek_vrid(data)
        inst = iface.by_vrid.get(vrid) if vrid is not None else None
        if inst is None:
            iface.unknown_vrid += 1
            return
        self._feed(inst, PacketReceived(data), self._loop.time())

    def _on_tracker_change(self, name: str, ok: bool | None) -> None:
        assert self._loop is not None
        now = self._loop.time()
        for inst in self.instances:
            if name in inst.router.tracker_status:
                self._feed(inst, TrackerChanged(name, ok), now)

    async def _watch_links(self) -> None:
        """Feed link and address changes in; reopen the monitor if it fails."""
        while True:
            assert self._monitor is not None
            try:
                async for ev in self._monitor:
                    await self._link_event(ev)
                return  # closed at shutdown
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Without this watcher an interface going down would go
                # unnoticed: log loudly, resync from scratch, carry on.
                log.error("link_monitor_failed", error=str(exc))
                self._monitor.close()
                await asyncio.sleep(1.0)
                try:
                    self._monitor = await LinkMonitor.open()
                except HostError as again:
                    log.error("link_monitor_reopen_failed", error=str(again))
                    continue
                for name in list(self.interfaces):
                    await self._relink(name)

    async def _link_event(self, ev: LinkEvent) -> None:
        assert self._loop is not None
        if ev.kind != "link" and ev.address in self._vip_addresses(ev.ifname):
            if ev.kind == "addr_del":
                for inst in self.instances:
                    if any(
                        v.address == ev.address and inst.dev(v) == ev.ifname for v in inst.addresses
                    ):
                        self._feed(inst, VipRemoved(ev.address), self._loop.time())
            return
        if ev.ifname not in self.interfaces:
            return
        await self._relink(ev.ifname)

    def _vip_addresses(self, ifname: str) -> frozenset[IPv4Address]:
        """Every address we may install on `ifname` (never its primary address)."""
        return frozenset(
            v.address
            for inst in self.config.instances
            for v in inst.virtual_ipaddress + inst.virtual_ipaddress_excluded
            if (v.dev or inst.interface) == ifname
        )

    async def _relink(self, ifname: str) -> None:
        """Re-read an interface after a change and tell its instances."""
        assert self._netlink is not None and self._loop is not None
        iface = self.interfaces[ifname]
        try:
            link = await self._netlink.link(ifname, self._vip_addresses(ifname))
        except HostError as exc:
            log.error("interface_lost", interface=ifname, error=str(exc))
            for inst in iface.by_vrid.values():
                self._feed(inst, LinkChanged(False, None), self._loop.time())
            return
        old_primary = iface.link.primary_ip
        iface.link = link
        if link.primary_ip is not None and link.primary_ip != old_primary:
            # Adverts must leave from the primary address (RFC 3768 5.2.1):
            # rebind the send side to the new one.
            try:
                sock = VrrpSocket.open(ifname, link.index, link.primary_ip)
            except HostError as exc:
                log.error("vrrp_socket_reopen_failed", interface=ifname, error=str(exc))
            else:
                iface.sock.close()
                iface.sock = sock
                sock.attach(self._loop, functools.partial(self._on_datagram, iface))
                log.info("primary_address_changed", interface=ifname, address=str(link.primary_ip))
        for inst in iface.by_vrid.values():
            self._feed(inst, LinkChanged(link.up, link.primary_ip), self._loop.time())

    # ------------------------------------------------------------- execution

    def _feed(self, inst: Instance, event: Event, now: float) -> None:
        actions = inst.router.handle(event, now)
        assert self._timers is not None
        self._timers.set(("vr", inst.name), inst.router.next_deadline())
        if actions:
            self._execute_later(inst, actions)

    def _execute_later(self, inst: Instance, actions: Sequence[Action]) -> None:
        # Side effects run in order per instance (asyncio.Lock is FIFO), so an
        # advert always precedes the VIP add and the GARP that follow it.
        assert self._executor is not None
        effects = []
        for action in actions:
            if isinstance(action, LOG_ONLY):
                self._executor.log_action(inst, action)
            else:
                effects.append(action)
        if effects:
            self._spawn(self._executor.run(inst, effects), name=f"exec:{inst.name}")

    def _spawn(self, coro: Any, name: str | None = None) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("internal_error", error=repr(task.exception()))

    # ----------------------------------------------------------------- status

    def status(self) -> dict[str, Any]:
        out = []
        for inst in self.instances:
            st = inst.router.status()
            d = st.as_dict()
            d["interface"] = inst.cfg.interface
            d["vips"] = [str(v) for v in inst.cfg.virtual_ipaddress]
            d["excluded_vips"] = [str(v) for v in inst.cfg.virtual_ipaddress_excluded]
            d["vips_installed"] = inst.vips_installed
            d["trackers"] = [
                {
                    "name": spec.name,
                    "kind": "script",
                    "weight": spec.weight,
                    "reverse": spec.reverse,
                    "status": _status_word(st.trackers.get(spec.name)),
                }
                for spec in inst.router.config.trackers
            ]
            d["disabled_trackers"] = [
                {"name": ref.name, "reason": self.disabled_scripts[ref.name]}
                for ref in inst.cfg.track_script
                if ref.name in self.disabled_scripts
            ]
            d["master"] = (
                {"address": str(st.master), "priority": st.master_priority} if st.master else None
            )
            d["last_transition"] = (
                time.time() - (self._loop.time() - st.last_transition)
                if st.last_transition is not None and self._loop is not None
                else None
            )
            out.append(d)
        interfaces = {
            name: {"primary_ip": str(i.link.primary_ip), "unknown_vrid_packets": i.unknown_vrid}
            for name, i in self.interfaces.items()
        }
        return {
            "version": __version__,
            "pid": os.getpid(),
            "instances": out,
            "interfaces": interfaces,
        }


def _status_word(ok: bool | None) -> str:
    return {True: "up", False: "down", None: "unknown"}[ok]
