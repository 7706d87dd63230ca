"""The thin asyncio shell around the sans-IO core.

Owns: wiring config -> routers, feeding them events (packets, timers,
tracker and link changes, shutdown), executing the actions they return in
order, logging what they decided, and the daemon's lifetime (signals, pid
file, control socket). Protocol decisions live in `pyvrrpd.core`; sockets,
netlink and subprocesses in `pyvrrpd.io`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import functools
import os
import time
from collections.abc import Sequence
from ipaddress import IPv4Address
from typing import Any

import structlog

from pyvrrpd import __version__
from pyvrrpd.config.model import Config
from pyvrrpd.core.actions import Action, MasterSeen, RemoveVips, SendAdvert, StateChanged
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
from pyvrrpd.core.router import VirtualRouter
from pyvrrpd.core.state import State
from pyvrrpd.io.errors import HostError
from pyvrrpd.io.garp import GarpSender
from pyvrrpd.io.netlink import LinkEvent, LinkInfo, LinkMonitor, Netlink
from pyvrrpd.io.vrrp_socket import VrrpSocket
from pyvrrpd.shell import priority, signals
from pyvrrpd.shell.executor import Executor
from pyvrrpd.shell.faults import FaultSocket
from pyvrrpd.shell.faults import from_environment as faults_from_environment
from pyvrrpd.shell.host.ahsend import close_ah_socket, refilter_ah_socket, sync_ah_socket
from pyvrrpd.shell.host.statics import HostExtras
from pyvrrpd.shell.host.unicast import duplicate_vrid, resolve_interfaces, send_target
from pyvrrpd.shell.host.vips import VipSet
from pyvrrpd.shell.host.vmac import VmacManager
from pyvrrpd.shell.instance import Instance, Interface, router_config, without_trackers
from pyvrrpd.shell.ops import sdnotify
from pyvrrpd.shell.ops.control import ControlServer
from pyvrrpd.shell.ops.notify import Notifier
from pyvrrpd.shell.ops.pidfile import PidFiles
from pyvrrpd.shell.ops.runstate import RunState, state_file_for
from pyvrrpd.shell.reaper import Reaper
from pyvrrpd.shell.scripttrack import ScriptTracker, prepare_script
from pyvrrpd.shell.syncgroups import SyncGroups
from pyvrrpd.shell.timerheap import TimerHeap
from pyvrrpd.trackers import registry
from pyvrrpd.trackers.base import TrackerSource, tracker_kind
from pyvrrpd.trackers.interface import InterfaceTracker
from pyvrrpd.trackers.srcip import SrcIpTracker
from pyvrrpd.wire.bpf import FastPath
from pyvrrpd.wire.check import peek_vrid

log = structlog.get_logger("pyvrrpd")

REFILTER_EVERY = 0.1  # seconds between rebuilds of an interface's receive filter
#: how long a stop waits for a reload under way (shell/ops/reloader.py: its
#: longest waits are RELEASE_WAIT and a first HTTP probe)
RELOAD_WAIT = 3.0


class Daemon:
    """Runs every configured instance until asked to stop."""

    def __init__(
        self,
        config: Config,
        *,
        control_socket: str | None = None,
        pid_files: Sequence[str] = (),
        release_on_stop: bool = True,
        namespace: str | None = None,
    ) -> None:
        self.config = config
        self.control_path = control_socket
        self.pid_files = PidFiles(list(pid_files))
        # keepalived -V: leave VIPs in place (and send no priority 0) on stop.
        self.release_on_stop = release_on_stop
        # keepalived -s: names the USR1 dump with data_use_instance (shell/ops/dumps.py).
        self.namespace = namespace
        # keepalived -i ID: the `@ID` lines a reload selects (shell/ops/reloader.py).
        self.config_id: str | None = None
        self.instances: list[Instance] = []
        self.by_name: dict[str, Instance] = {}
        self.interfaces: dict[str, Interface] = {}
        self.garp_senders: dict[str, GarpSender] = {}
        self.scripts: dict[str, ScriptTracker] = {}
        self.disabled_scripts: dict[str, str] = {}
        self._stop = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timers: TimerHeap | None = None
        self._netlink: Netlink | None = None
        self._monitor: LinkMonitor | None = None
        self._control: ControlServer | None = None
        self._reaper: Reaper | None = None
        self._iftrack: InterfaceTracker | None = None  # track_interface (trackers/interface.py)
        self._srctrack: SrcIpTracker | None = None  # track_src_ip (trackers/srcip.py)
        # track_process, track_file, vrrp_track_http sources (trackers/registry.py)
        self._sources: dict[str, TrackerSource] = {}
        # Per tracker name: the last (ok, value) reported and when it changed
        # (wall clock), for status and to brief routers made by a reload.
        self._tracker_seen: dict[str, tuple[bool | None, int | None, float]] = {}
        # Trackers whose block a reload changed, while the old source still
        # runs: what it says of them is from the old definition (reloader.py).
        self._muted_trackers: set[str] = set()
        # static_*, virtual_routes/rules, no_accept firewall (shell/host/statics.py)
        self._extras: HostExtras | None = None
        self._vmacs = VmacManager(config)  # use_vmac interfaces (shell/host/vmac.py)
        self._executor = Executor(self.garp_senders)
        # A MASTER whose adverts reach nobody resigns (shell/executor.py); later,
        # never inside the _feed that sent them.
        self._executor.on_silent = lambda inst, reason: self._soon(self._host_fault, inst, reason)
        # notify_* hooks, notify FIFOs and smtp_alert mails (shell/ops/notify.py).
        self.notifier = Notifier(
            config.global_defs,
            {i.name: i.notify for i in config.instances},
            {g.name: g.notify for g in config.sync_groups},
        )
        self._executor.notifier = self.notifier
        # vrrp_sync_group: members moving together (shell/syncgroups.py).
        self.syncgroups = SyncGroups(config, self.by_name, self._carry_out, self.notifier)
        # Test-only fault injection (pyvrrpd.shell.faults): None in normal runs.
        self._faults: FaultSocket | None = faults_from_environment()
        # What we installed, under /run for `release-vips` (shell/ops/runstate.py);
        # systemd's notify socket and watchdog (shell/ops/sdnotify.py).
        self._runstate: RunState | None = None
        self._watchdog: sdnotify.Watchdog | None = None

    # ------------------------------------------------------------- lifecycle

    async def run(self) -> int:
        """Start, run until SIGTERM/SIGINT, shut down cleanly. Returns an exit code."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._timers = TimerHeap(loop)
        # Orphans of scripts are reparented to us and reaped (shell/reaper.py).
        self._reaper = Reaper(loop)
        self._reaper.start()
        # Every catchable signal: stop, reload, dump or ignore (shell/signals.py),
        # from before setup, so a USR1 while we start cannot end the process.
        signals.install(self, loop)
        # global_defs vrrp_priority, vrrp_rt_priority, vrrp_no_swap, max_auto_priority.
        priority.start(self.config.global_defs, self._timers, loop.time())
        try:
            await self._setup()
        except HostError:
            # The CLI prints the one-line reason; just release what was opened.
            if self._vmacs and self._netlink is not None:
                await self._vmacs.stop(self._netlink)
            await self._close_io()
            if self._runstate is not None:
                self._runstate.remove()
            raise
        log.info(
            "started",
            version=__version__,
            pid=os.getpid(),
            instances=[i.name for i in self.instances],
        )
        sdnotify.ready()
        self._watchdog = sdnotify.Watchdog.start(loop, self._timers)
        now = loop.time()
        self.syncgroups.bind()
        # A SIGTERM during the start: no Started, or a priority-255 instance
        # would take the VIPs only to resign them at once.
        for inst in self.instances if not self._stop.is_set() else ():
            link = inst.iface.link
            if link is None:
                started = Started(None, False, present=False)
            else:
                started = Started(link.primary_ip if inst.iface.sock else None, link.up)
            self._feed(inst, started, now)
        for tracker in self.scripts.values():
            tracker.start(now)
        await self._stop.wait()
        await self._shutdown()
        return 0

    def request_stop(self, why: str = "request") -> None:
        if not self._stop.is_set():
            log.info("stopping", signal=why)
            sdnotify.stopping()
            self._stop.set()

    def _on_sighup(self) -> None:
        self._spawn(self.reload(), name="reload")

    async def reload(self) -> dict[str, Any]:
        """SIGHUP / `pyvrrpd reload`: apply the config file again (shell/ops/reloader.py)."""
        from pyvrrpd.shell.ops import reloader

        if self._stop.is_set():
            return await reloader.reload(self)  # refused at once: the stop holds the lock
        async with self._reload_lock:  # one at a time: a second HUP waits its turn
            if self._stop.is_set():
                # Refused (reloader.reload says why); no RELOADING/READY=1
                # after STOPPING=1: systemd would read the unit as running again.
                return await reloader.reload(self)
            sdnotify.reloading()  # systemd: reloading until the next READY=1
            try:
                return await reloader.reload(self)
            finally:
                if self._runstate is not None:
                    self._record_host()  # instances, vmacs, table as the reload left them
                sdnotify.ready()

    async def _setup(self) -> None:
        self.pid_files.acquire()
        self._netlink = await Netlink.open()
        if self._faults is not None:
            await self._faults.start()
            self._netlink.inject = self._faults.injector.netlink
        # The monitor first: its snapshot is the kernel view status reports.
        self._monitor = await LinkMonitor.open()
        # An instance may omit `interface` when unicast_src_ip is set (shell/host/unicast.py).
        self.config = resolve_interfaces(self.config, self._monitor.has_address)
        dup = duplicate_vrid(self.config)  # resolved interfaces may collide (shell/host/unicast.py)
        if dup is not None:
            raise HostError(dup)
        # use_vmac: the macvlans exist before their interfaces are linked (shell/host/vmac.py).
        self._vmacs = VmacManager(self.config)
        await self._vmacs.start(self._netlink)
        self._extras = HostExtras(self.config, self._netlink)
        await self._extras.start()  # HostError (nft missing) stops the start
        for inst_cfg in self.config.instances:
            iface = self._interface(self._vmacs.sock_interface(inst_cfg))
            router = VirtualRouter(router_config(inst_cfg, self.config))
            inst = Instance(inst_cfg, router, iface, self._vipset(inst_cfg.name))
            inst.vmac_devs = self._vmacs.vip_devs(inst_cfg)
            inst.vipset.addresses = inst.addresses
            self._extras.attach(inst)
            iface.by_vrid[inst_cfg.virtual_router_id] = inst
            self.instances.append(inst)
            self.by_name[inst.name] = inst
            assert self._timers is not None
            self._timers.register(("vr", inst.name), functools.partial(self._timer_due, inst))
            # GARP goes out on each VIP's own device (`dev` may differ from `interface`).
            for vip in inst.addresses:
                self._interface(inst.dev(vip))
        for name in list(self.interfaces):
            await self._relink(name, initial=True)
        self._record_host()
        # A missing interface is logged; its instances wait in FAULT (shell/host/statics.py).
        present = {n: i.link is not None for n, i in self.interfaces.items()}
        await self._extras.check_interfaces(present)
        await self._extras.install()  # static_ipaddress, static_routes, static_rules
        self._setup_scripts()
        # track_interface: every tracked link read once, then followed by netlink events.
        self._iftrack = InterfaceTracker(self.config.instances, self._on_tracker_change)
        await self._iftrack.start(self._netlink)
        self._srctrack = SrcIpTracker(self.config.instances, self._on_tracker_change)
        self._srctrack.start(self._monitor.has_address)
        self._sources = registry.sources(self.config, self._on_tracker_change)
        for source in self._sources.values():
            await source.start()
        self.notifier.start()
        self._spawn(self._watch_links())
        self._spawn(self._extras.watch())  # tracked routes/rules put back (shell/host/statics.py)
        if self.control_path:
            self._control = ControlServer(self.control_path, self.status, reload=self.reload)
            await self._control.start()

    def _record_host(self) -> None:
        """Start the run-state record: host-wide pieces, every instance in INIT."""
        rs = RunState(state_file_for(self.control_path), release_on_stop=self.release_on_stop)
        fw = self._extras.firewall if self._extras is not None else None
        rs.host(nft_table=fw.nft.table if fw is not None else None, vmacs=list(self._vmacs.owned))
        for inst in self.instances:
            rs.instance(inst)
        self._runstate = rs

    def _vipset(self, name: str) -> VipSet:
        assert self._netlink is not None
        # Filled in once the Instance exists (addresses, dev); callbacks find it by name.
        return VipSet(
            name,
            (),
            lambda vip: self._instance(name).dev(vip),
            self._netlink,
            send_garp=lambda repeat: self._executor.send_garp(self._instance(name), repeat),
            on_give_up=lambda reason: self._host_fault(self._instance(name), reason),
        )

    def _instance(self, name: str) -> Instance:
        return self.by_name[name]

    def _interface(self, ifname: str) -> Interface:
        """The Interface record for `ifname`; its sockets are opened by `_relink`."""
        iface = self.interfaces.get(ifname)
        if iface is None:
            iface = self.interfaces[ifname] = Interface(ifname)
        return iface

    def _soon(self, fn: Any, *args: Any) -> None:
        asyncio.get_running_loop().call_soon(fn, *args)

    def _host_fault(self, inst: Instance, reason: str) -> None:
        assert self._loop is not None
        self._feed(inst, HostFault(reason), self._loop.time())

    def _setup_scripts(self) -> None:
        assert self._timers is not None
        gdefs = self.config.global_defs
        used = {ref.name for inst in self.config.instances for ref in inst.track_script}
        if (used or self.notifier.has_scripts) and not gdefs.enable_script_security:
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
        # A reload under way finishes first (bounded: a hung netlink call must
        # not hold the stop), so no instance it adds starts after the
        # instances below were told to stop, keeping VIPs the exit leaves.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._reload_lock.acquire(), RELOAD_WAIT)
        for tracker in self.scripts.values():
            tracker.stop()
        for source in self._sources.values():
            source.stop()
        now = self._loop.time()
        if not self.release_on_stop:
            log.info("leaving_vips", detail="-V/--dont-release-vrrp: VIPs stay, no priority 0")
        for inst in self.instances if self.release_on_stop else ():
            self._feed(inst, ShutdownRequested(), now)
        # Let the VIP removals be carried out (bounded: keepalived exits about
        # a second after SIGTERM; a hung netlink call must not hold us).
        if self.release_on_stop:
            await asyncio.gather(*(i.vipset.wait_settled(1.5) for i in self.instances))
        if self._extras is not None:
            await self._extras.stop()
        for inst in self.instances:
            inst.vipset.cancel()
        # STOP notifies once the VIPs are gone, STOP scripts given 1 s (keepalived.md 2.8).
        await self.notifier.stop({i.name: i.router.effective_priority for i in self.instances})
        if self._vmacs and self._netlink is not None:
            # After the priority-0 adverts went out; -V leaves them, as keepalived.
            await self._vmacs.stop(self._netlink, release=self.release_on_stop)
        await self._close_io()
        if self._runstate is not None:
            self._runstate.remove()
        log.info("stopped")

    async def _close_io(self) -> None:
        if self._watchdog is not None:
            self._watchdog.close()
        self.notifier.close()
        for task in list(self._tasks):
            task.cancel()
        if self._control is not None:
            await self._control.close()
        if self._faults is not None:
            await self._faults.close()
        if self._monitor is not None:
            self._monitor.close()
        for iface in self.interfaces.values():
            close_ah_socket(iface)
            if iface.sock is not None:
                iface.sock.close()
        for garp in self.garp_senders.values():
            garp.close()
        if self._netlink is not None:
            self._netlink.close()
        if self._timers is not None:
            self._timers.close()
        if self._reaper is not None:
            self._reaper.close()
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

    def _on_tracker_change(self, name: str, ok: bool | None, value: int | None = None) -> None:
        assert self._loop is not None
        if name in self._muted_trackers:
            return
        now = self._loop.time()
        seen = self._tracker_seen.get(name)
        if seen is None or seen[:2] != (ok, value):
            self._tracker_seen[name] = (ok, value, time.time())
        for inst in self.instances:
            if name in inst.router.tracker_status:
                self._feed(inst, TrackerChanged(name, ok, value), now)

    def brief_trackers(self, inst: Instance) -> None:
        """Tell a router made after start (a reload) what the event-driven
        trackers last reported: they report changes only, and a weight-0
        tracker never heard from would hold the instance in INIT."""
        assert self._loop is not None
        now = self._loop.time()
        for name, (ok, value, _) in self._tracker_seen.items():
            status = inst.router.tracker_status
            if name in status and status[name] is None and tracker_kind(name) != "script":
                self._feed(inst, TrackerChanged(name, ok, value), now)

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
                if self._iftrack is not None and self._netlink is not None:
                    await self._iftrack.sync(self._netlink)

    async def _link_event(self, ev: LinkEvent) -> None:
        assert self._loop is not None
        if self._srctrack:
            self._srctrack.observe(ev)  # track_src_ip
        if ev.kind == "link" and ev.up is not None and self._iftrack is not None:
            self._iftrack.observe(ev.ifname, ev.up)  # track_interface
        if ev.kind != "link" and ev.address in self._vip_addresses(ev.ifname):
            if ev.kind == "addr_del":
                for inst in self.instances:
                    if any(
                        v.address == ev.address and inst.dev(v) == ev.ifname for v in inst.addresses
                    ):
                        self._feed(inst, VipRemoved(ev.address), self._loop.time())
            return
        if self._vmacs and self._netlink is not None:
            if self._vmacs.removing(ev.ifname):
                return  # we are deleting it at stop
            # A lost vmac is made again; vmacs follow their base's state and address.
            await self._vmacs.follow(self._netlink, ev.ifname)
            for name in self._vmacs.riders(ev.ifname):
                if name in self.interfaces and name != ev.ifname:
                    await self._relink(name)
        if ev.ifname not in self.interfaces:
            return
        await self._relink(ev.ifname)

    def _vip_addresses(self, ifname: str) -> frozenset[IPv4Address]:
        """Every address we may install on `ifname` (never its primary address)."""
        return frozenset(
            v.address for inst in self.instances for v in inst.addresses if inst.dev(v) == ifname
        )

    async def _relink(self, ifname: str, *, initial: bool = False) -> None:
        """Re-read an interface after a change: reopen what the change broke,
        then tell its instances (not at startup: `Started` carries the facts).

        The VRRP sockets follow (ifindex, primary address): RFC 3768 5.2.1
        wants adverts from the primary address, and a re-created interface
        has a new ifindex the old sockets are not bound to. The ARP socket
        follows (ifindex, MAC): a GARP must announce the MAC the VIP answers on.
        Secondary addresses coming and going change neither.
        """
        assert self._netlink is not None and self._loop is not None
        iface = self.interfaces[ifname]
        try:
            link: LinkInfo | None = await self._netlink.link(ifname, self._vip_addresses(ifname))
        except HostError as exc:
            if exc.errno_code != errno.ENODEV:
                # Could not ask (timeout, netlink trouble): keep what we have;
                # the next event or the monitor's resync asks again.
                log.error("interface_query_failed", interface=ifname, error=str(exc))
                return
            link = None
        if link is not None and self._vmacs:
            # Adverts from a vmac carry the base interface's address (shell/host/vmac.py).
            link = await self._vmacs.with_source(self._netlink, ifname, link, self._vip_addresses)
        old = iface.link
        iface.link = link
        if link is None:
            if old is not None or initial:
                log.error("interface_missing", interface=ifname)
            self._close_sockets(iface)
            if not initial:
                self._tell(iface, LinkChanged(False, None, present=False))
            return
        reset = self._reopen_vrrp(iface, link)
        mac_changed = self._reopen_garp(iface, link, old)
        if initial:
            return
        primary = link.primary_ip if iface.sock is not None else None
        self._tell(iface, LinkChanged(link.up, primary, present=True, reset=reset))
        if mac_changed:
            self._tell(iface, MacChanged())
        if link.primary_ip is None and iface.sock is not None:
            iface.sock.close()
            iface.sock = None
            close_ah_socket(iface)

    def _reopen_vrrp(self, iface: Interface, link: LinkInfo) -> bool:
        """Make the VRRP sockets match the link; True if working ones were replaced."""
        assert self._loop is not None
        if not iface.by_vrid:
            return False  # only carries VIPs (`dev`): no adverts here
        want = (link.index, link.primary_ip) if link.primary_ip is not None else None
        sock = iface.sock
        have = (sock.ifindex, sock.primary_ip) if sock is not None else None
        if want == have:
            return False
        if want is None:
            # Keep the old socket until the instances have been told: a
            # MASTER's priority-0 advert goes out through it if the kernel
            # still allows (see _relink, which closes it afterwards).
            log.error("no_ipv4_address", interface=iface.name)
            return False
        if sock is not None:
            sock.close()
            iface.sock = None
        try:
            paths = self._fast_paths(iface)
            targets = {i.cfg.virtual_router_id: send_target(i.cfg) for i in iface.by_vrid.values()}
            new = VrrpSocket.open(iface.name, link.index, want[1], paths, targets)
            iface.fast_key = tuple((p.vrid, p.src) for p in paths)
        except HostError as exc:
            log.error("vrrp_socket_open_failed", interface=iface.name, error=str(exc))
            return False
        iface.sock = new
        new.attach(self._loop, functools.partial(self._on_datagram, iface))
        sync_ah_socket(iface, self._loop, functools.partial(self._on_datagram, iface), paths)
        log.info(
            "vrrp_socket_opened", interface=iface.name, ifindex=link.index, address=str(want[1])
        )
        return have is not None

    @staticmethod
    def _fast_paths(iface: Interface) -> list[FastPath]:
        """What our routers' adverts look like, for the kernel's queue split.

        A BACKUP that follows a master fast-queues only that master's adverts:
        they are what keeps it from becoming a second master, and under a
        flood from anyone else they must not wait behind it.
        """
        paths = []
        for inst in iface.by_vrid.values():
            cfg, router = inst.router.config, inst.router
            follows = router.master_ip if router.state is State.BACKUP else None
            paths.append(
                FastPath(
                    vrid=cfg.vrid,
                    auth_type=cfg.auth_type,
                    advert_int=round(cfg.advert_int),
                    auth_data=cfg.auth_data,  # wire.bpf pads it to 8 bytes
                    src=follows,
                    unicast=bool(cfg.unicast_peers),
                    peers=tuple(p.address for p in cfg.unicast_peers),
                )
            )
        return paths

    def _refilter(self, iface: Interface) -> None:
        """Re-split the receive queues when a BACKUP starts following another master.

        At most once per REFILTER_EVERY: two senders alternating as "master"
        (a flood of forged adverts with the password) must not cost a filter
        rebuild per packet; a filter a moment stale only changes which queue
        an advert waits in.
        """
        assert self._loop is not None
        if iface.sock is None or iface.refilter_pending:
            return
        wait = iface.refiltered_at + REFILTER_EVERY - self._loop.time()
        if wait > 0:
            iface.refilter_pending = True
            self._loop.call_later(wait, self._refilter_now, iface)
            return
        self._refilter_now(iface)

    def _refilter_now(self, iface: Interface) -> None:
        assert self._loop is not None
        iface.refilter_pending = False
        iface.refiltered_at = self._loop.time()
        if iface.sock is None:
            return
        paths = self._fast_paths(iface)
        key = tuple((p.vrid, p.src) for p in paths)
        if key != iface.fast_key:
            refilter_ah_socket(iface, paths)  # the AH queue split follows the same master
            if iface.sock.set_fast_paths(paths):
                iface.fast_key = key

    def _reopen_garp(self, iface: Interface, link: LinkInfo, old: LinkInfo | None) -> bool:
        """Make the ARP sender match the link; True if only the MAC changed."""
        garp = iface.garp
        if garp is not None and old is not None and old.index == link.index:
            if garp.mac == link.mac:
                return False
            log.info("mac_changed", interface=iface.name, mac=link.mac.hex(":"))
            garp.set_mac(link.mac)
            return True
        if garp is not None:
            garp.close()
            iface.garp = None
            self.garp_senders.pop(iface.name, None)
        try:
            iface.garp = GarpSender.open(iface.name, link.mac)
        except HostError as exc:
            log.error("arp_socket_open_failed", interface=iface.name, error=str(exc))
            return False
        self.garp_senders[iface.name] = iface.garp
        return False

    def _close_sockets(self, iface: Interface) -> None:
        close_ah_socket(iface)
        if iface.sock is not None:
            iface.sock.close()
            iface.sock = None
        if iface.garp is not None:
            iface.garp.close()
            iface.garp = None
            self.garp_senders.pop(iface.name, None)

    def _tell(self, iface: Interface, event: Event) -> None:
        assert self._loop is not None
        for inst in list(iface.by_vrid.values()):
            self._feed(inst, event, self._loop.time())

    # ------------------------------------------------------------- execution

    def _feed(self, inst: Instance, event: Event, now: float) -> None:
        """One event into one instance, its actions carried out, its timer re-armed.

        An exception here is a bug (the core never raises for bad input); it
        must not silence the instance while it still claims MASTER, nor touch
        the other instances (issue 5 item 6). The instance is rebuilt from
        what survives, resigns into FAULT for one Master_Down_Interval, and its
        timer keeps running.
        """
        try:
            if self._faults is not None:
                self._faults.injector.handling(inst.name, type(event).__name__)
            actions = inst.router.handle(event, now)
        except Exception as exc:
            self._contain(inst, exc, now)
            return
        self._carry_out(inst, actions)
        self.syncgroups.after(inst, actions, now)

    def _carry_out(self, inst: Instance, actions: Sequence[Action]) -> None:
        assert self._timers is not None
        self._timers.set(("vr", inst.name), inst.router.next_deadline())
        if self._runstate is not None and any(isinstance(a, StateChanged) for a in actions):
            self._runstate.instance(inst)  # before the VIPs go in (shell/ops/runstate.py)
        if actions:
            self._executor.run(inst, actions)
            if any(isinstance(a, (MasterSeen, StateChanged)) for a in actions):
                self._refilter(inst.iface)

    def _contain(self, inst: Instance, exc: Exception, now: float) -> None:
        inst.internal_errors += 1
        if inst.internal_errors == 1:
            log.exception("internal_error", instance=inst.name, error=repr(exc))
        else:
            log.error(
                "internal_error", instance=inst.name, error=repr(exc), count=inst.internal_errors
            )
        old = inst.router
        fresh = VirtualRouter(old.config)
        try:
            fresh.adopt(old)
            actions = fresh.handle(HostFault(f"internal error: {exc!r}"), now)
        except Exception:
            # Even recovery failed: resign by hand and start from INIT.
            fresh = VirtualRouter(old.config)
            fresh.ah_seq = old.ah_seq  # a peer drops AH adverts numbered again from 1
            actions = [SendAdvert(0), SendAdvert(0), RemoveVips()]
            log.exception("internal_error_recovery_failed", instance=inst.name)
        inst.router = fresh
        self._carry_out(inst, actions)
        self.syncgroups.after(inst, actions, now)

    def _spawn(self, coro: Any, name: str | None = None) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("internal_error", error=repr(task.exception()))

    # ----------------------------------------------------------------- status

    def clear_stats(self, baseline: dict[str, dict[str, int]] | None = None) -> None:
        """keepalived's STATS_CLEAR: zero the counters, or subtract `baseline`
        (per instance, what the stats file showed) so later counts survive."""
        for inst in self.instances:
            stats = inst.router.stats
            base = None if baseline is None else baseline.get(inst.name, {})
            for key in stats:
                stats[key] = 0 if base is None else max(stats[key] - base.get(key, 0), 0)

    def status(self) -> dict[str, Any]:
        out = []
        details: dict[str, dict[str, object]] = {}
        for source in self._sources.values():
            details.update(source.describe())
        for inst in self.instances:
            st = inst.router.status()
            d = st.as_dict()
            d["interface"] = inst.cfg.interface
            # Accept mode off: traffic to the VIPs is dropped while MASTER (shell/host/firewall.py).
            d["accept"], d["strict_mode"] = inst.cfg.accept, inst.cfg.strict_mode
            d["vips"] = [str(v) for v in inst.cfg.virtual_ipaddress]
            d["excluded_vips"] = [str(v) for v in inst.cfg.virtual_ipaddress_excluded]
            # What the kernel has (from its address events), not what we asked for.
            present = [
                str(v)
                for v in inst.addresses
                if self._monitor is not None and self._monitor.has_address(inst.dev(v), v.address)
            ]
            d["vips_present"] = present
            d["vips_installed"] = bool(inst.addresses) and len(present) == len(inst.addresses)
            d["vip_errors"] = {
                "retries": inst.vipset.retries,
                "gave_up": inst.vipset.gave_up,
                "last": inst.vipset.last_error,
            }
            d["internal_errors"] = inst.internal_errors
            d["trackers"] = [
                {
                    "name": spec.name,
                    "kind": tracker_kind(spec.name),
                    "weight": spec.weight,
                    "reverse": spec.reverse,
                    "status": _status_word(st.trackers.get(spec.name)),
                    "value": inst.router.tracker_values.get(spec.name),
                    "last_change": self._tracker_seen.get(spec.name, (None, None, None))[2],
                    **details.get(spec.name, {}),
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
            name: {
                "present": i.link is not None,
                "up": i.link is not None and i.link.up,
                "ifindex": i.link.index if i.link is not None else None,
                "primary_ip": str(i.link.primary_ip) if i.link and i.link.primary_ip else None,
                "unknown_vrid_packets": i.unknown_vrid,
                "received": i.sock.received if i.sock is not None else 0,
                "received_slow_queue": i.sock.received_slow if i.sock is not None else 0,
                "kernel_drops": i.sock.kernel_drops() if i.sock is not None else {},
            }
            for name, i in self.interfaces.items()
        }
        return {
            "version": __version__,
            "pid": os.getpid(),
            "instances": out,
            "interfaces": interfaces,
            "sync_groups": self.syncgroups.status(),
            "daemon": {
                "orphans_reaped": self._reaper.reaped if self._reaper is not None else 0,
                "control": dataclasses.asdict(self._control.stats)
                if self._control is not None
                else None,
                "log_lines_suppressed": self._executor.suppressed_lines,
                "netlink_timeouts": self._netlink.timeouts if self._netlink is not None else 0,
                "notify": self.notifier.status(),
            },
        }


def _status_word(ok: bool | None) -> str:
    return {True: "up", False: "down", None: "unknown"}[ok]
