"""Carrying out a reload in the running daemon (SIGHUP, `pyvrrpd reload`).

Owns: reading the config file again (every error logged with file:line:col
and the old config kept running), asking shell/ops/reload.py for the plan and
applying it to the daemon: removed instances resign (priority 0, VIPs
removed) as at shutdown, kept ones take their new settings through
`VirtualRouter.reconfigure` (a MASTER keeps its VIPs and its advert phase;
only added VIPs are installed and announced by GARP, only removed ones
deleted), new ones start as at startup; `vrrp_script` trackers whose
definition did not change keep their state and counters; the process, file
and http sources of a kind that changed are replaced by new ones (the old
one stopped only once the instances have their new trackers, the new one
reporting its first results at once); with
`fifo_write_vrrp_states_on_reload` every instance's state goes to the FIFOs.
Returns the verdict the control socket hands to `pyvrrpd reload`.
Must not decide protocol state (the core does).
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Any

import structlog

from pyvrrpd.config import ConfigError, load_config
from pyvrrpd.config.model import Config, Diagnostic, Severity, VirtualIP
from pyvrrpd.core.events import ShutdownRequested, Started, TrackerChanged
from pyvrrpd.core.router import VirtualRouter
from pyvrrpd.core.state import State
from pyvrrpd.io.errors import HostError
from pyvrrpd.io.ifexist import interface_findings
from pyvrrpd.shell.host.unicast import duplicate_vrid, resolve_interfaces, send_target
from pyvrrpd.shell.instance import Instance, router_config, without_trackers
from pyvrrpd.shell.ops.reload import ReloadPlan, plain, plan
from pyvrrpd.shell.scripttrack import ScriptTracker, prepare_script
from pyvrrpd.trackers import registry
from pyvrrpd.trackers.file import write_init
from pyvrrpd.trackers.interface import tracker_name

if TYPE_CHECKING:
    from pyvrrpd.shell.daemon import Daemon

log = structlog.get_logger("pyvrrpd")

#: how long a removed instance may take to release its VIPs before its
#: replacement (same name, maybe another interface) is set up.
RELEASE_WAIT = 1.5


def read_new_config(d: Daemon) -> tuple[Config | None, list[str]]:
    """The config file parsed again, or None and its errors (file:line:col)."""
    path = d.config.files[0] if d.config.files else None
    if path is None:
        return None, ["the running config was not read from a file"]
    try:
        new = load_config(path, config_id=d.config_id)
    except ConfigError as exc:
        return None, [_line(e) for e in exc.errors]
    errors: list[str] = []
    if not new.instances:
        errors.append(f"{path}: no vrrp_instance configured; nothing to do")
    if d._monitor is not None:
        new = resolve_interfaces(new, d._monitor.has_address)
    # keepalived's host check (-t exits 5). A start waits in FAULT for a
    # missing interface; a reload refuses it instead, so a typo in a reloaded
    # file cannot take a running MASTER down (the old config keeps running).
    errors.extend(_line(f) for f in interface_findings(new) if f.severity is Severity.ERROR)
    # Resolved interfaces may collide (two instances, one VRID, one socket).
    dup = duplicate_vrid(new)
    if dup is not None:
        errors.append(f"{path}: {dup}")
    return (None, errors) if errors else (new, [])


def _line(diag: Diagnostic) -> str:
    return f"{diag.loc}: {diag.severity.value}: {diag.message}"


async def reload(d: Daemon) -> dict[str, Any]:
    """Reload the daemon's config file; the verdict as a JSON-able dict."""
    if d._loop is None or d._srctrack is None:
        # A HUP while we start (signals are caught from the first moment).
        log.warning("reload_ignored", detail="the daemon is still starting")
        return {"ok": False, "errors": ["the daemon is still starting; try again"]}
    if d._stop.is_set():
        # SIGTERM released the VIPs and the daemon waits for the removals: an
        # instance added now (an address owner goes MASTER at once) would
        # take its VIPs and keep them after the daemon exits.
        log.warning("reload_ignored", detail="the daemon is stopping")
        return {"ok": False, "errors": ["the daemon is stopping"]}
    log.info("reloading", file=d.config.files[0] if d.config.files else None)
    new, errors = read_new_config(d)
    if new is None:
        for err in errors:
            log.error("reload_config_error", error=err)
        log.error(
            "reload_rejected",
            errors=len(errors),
            detail="config has errors; the running config is unchanged",
        )
        return {"ok": False, "errors": errors}
    for w in new.warnings:
        log.warning("reload_config_warning", warning=_line(w))
    p = plan(d.config, new)
    for line in p.restart_needed:
        log.warning("reload_restart_needed", detail=line)
    try:
        await apply(d, p)
    finally:
        d._muted_trackers = set()  # whatever happened, every tracker is heard again
    summary = {
        "changed": [c.name for c in p.changed],
        "unchanged": list(p.unchanged),
        "removed": [n for n in p.removed if n not in p.replaced],
        "added": [n for n in p.added if n not in p.replaced],
        "replaced": list(p.replaced),
        "scripts_kept": list(p.scripts_kept),
        "trackers_rebuilt": list(p.sources_rebuilt),
        "restart_needed": list(p.restart_needed),
    }
    log.info("reloaded", **summary)
    return {"ok": True, "errors": [], **summary}


async def apply(d: Daemon, p: ReloadPlan) -> None:
    assert d._loop is not None and d._timers is not None
    old_scripts = {s.name: s for s in d.config.scripts}
    d._muted_trackers = _forget_changed_blocks(d, d.config, p)
    d.config = p.config
    # 1. Removed (and the old half of replaced): resign as at shutdown.
    gone = [d.by_name[n] for n in p.removed]
    now = d._loop.time()
    for inst in gone:
        d._feed(inst, ShutdownRequested(), now)
        d._timers.unregister(("vr", inst.name))
        if inst.iface.by_vrid.get(inst.cfg.virtual_router_id) is inst:
            del inst.iface.by_vrid[inst.cfg.virtual_router_id]
        d.instances.remove(inst)
    if gone:
        await asyncio.gather(*(i.vipset.wait_settled(RELEASE_WAIT) for i in gone))
    for inst in gone:
        inst.vipset.cancel()
        if d.by_name.get(inst.name) is inst:
            del d.by_name[inst.name]
        if inst.name not in p.replaced:
            # keepalived: a removed instance notifies DELETED (FAULT without notify_deleted).
            d.notifier.instance_state(inst.name, "DELETED", inst.router.effective_priority)

    # 2. Scripts: unchanged ones keep running; changed, new and unused ones stop/start.
    used = {r.name for i in p.config.instances for r in i.track_script}
    fresh: set[str] = set()
    for name in list(d.scripts):
        if name not in p.scripts_kept or name not in used:
            d.scripts.pop(name).stop()
    for name in list(d.disabled_scripts):
        if name not in p.scripts_kept or name not in used:
            del d.disabled_scripts[name]
    for name in sorted(used - set(d.scripts) - set(d.disabled_scripts)):
        script = p.config.script(name)
        if script is None:
            continue
        fresh.add(name)
        prepared = prepare_script(script, p.config.global_defs)
        if isinstance(prepared, str):
            d.disabled_scripts[name] = prepared
            log.error("script_disabled", script=name, reason=prepared)
            continue
        argv, identity = prepared
        d.scripts[name] = ScriptTracker(script, argv, identity, d._timers, d._on_tracker_change)
    del old_scripts

    # 3. Kept instances: new settings in place.
    now = d._loop.time()
    changes = {c.name: c for c in p.changed}
    for inst in list(d.instances):
        cfg = next(i for i in p.config.instances if i.name == inst.name)
        ch = changes.get(inst.name)
        inst.cfg = cfg
        rc = router_config(cfg, p.config)
        rc = without_trackers(rc, tuple(t for t in rc.trackers if t.name not in d.disabled_scripts))
        for name in fresh:
            if name in inst.router.tracker_status:
                inst.router.tracker_status[name] = None  # a changed script starts afresh
        actions = inst.router.reconfigure(rc, now)
        inst.adverts.clear()  # priority, VIPs or auth may be in the cached adverts
        inst.vipset.addresses = inst.addresses
        if d._runstate is not None:
            # release-vips undoes what the record says: the new VIPs before they go in.
            d._runstate.instance(inst)
        if ch is not None and inst.router.state is State.MASTER:
            for vip in ch.added_vips:
                if inst.dev(vip) not in d.interfaces:
                    d._interface(inst.dev(vip))
                    await d._relink(inst.dev(vip), initial=True)
            _change_vips(d, inst, ch.added_vips, ch.removed_vips)
        if ch is not None:
            log.info("instance_reconfigured", instance=inst.name, changed=list(ch.changed))
        d._carry_out(inst, actions)
        d.syncgroups.after(inst, actions, now)
        d.brief_trackers(inst)  # a tracker it now references that already runs
        if inst.iface.sock is not None:
            inst.iface.sock.targets[cfg.virtual_router_id] = send_target(cfg)
        inst.iface.fast_key = ()  # advert_int or auth may have changed: rebuild the filter
        d._refilter(inst.iface)

    # 4. Added (and the new half of replaced): as at startup.
    added = [await _add(d, name) for name in p.added]
    now = d._loop.time()
    for inst in added:
        link = inst.iface.link
        if link is None:
            started = Started(None, False, present=False)
        else:
            started = Started(link.primary_ip if inst.iface.sock else None, link.up)
        if d._runstate is not None:
            d._runstate.instance(inst)
        d._feed(inst, started, now)
        _known_trackers(d, inst, now)
    for name in sorted(fresh):
        tracker = d.scripts.get(name)
        if tracker is not None:
            tracker.start(now)
    await _swap_sources(d, p)
    if p.config.global_defs.fifo_write_vrrp_states_on_reload:
        # keepalived.md 3.2: every instance's current state, as a state line.
        for inst in d.instances:
            state, prio = inst.router.state.name, inst.router.effective_priority
            d.notifier._fifo_line("INSTANCE", inst.name, state, prio)


def _change_vips(
    d: Daemon, inst: Instance, added: tuple[VirtualIP, ...], removed: tuple[VirtualIP, ...]
) -> None:
    """A MASTER's VIP list changed: install the added ones (then GARP for
    them only), delete the removed ones; the others are not touched."""
    if added:
        inst.vipset.add()  # a pass over every address; present ones are no-ops
        d._spawn(_garp_added(d, inst, added))
    if removed:
        d._spawn(_remove(d, inst, removed))


async def _garp_added(d: Daemon, inst: Instance, added: tuple[VirtualIP, ...]) -> None:
    await inst.vipset.wait_settled(RELEASE_WAIT)
    repeat = inst.cfg.garp_master_repeat
    by_dev: dict[str, list[Any]] = {}
    for vip in added:
        by_dev.setdefault(inst.dev(vip), []).append(vip.address)
    for dev, ips in by_dev.items():
        sender = d.garp_senders.get(dev)
        if sender is None or repeat <= 0:
            continue
        try:
            sender.send(ips, repeat)
        except HostError as exc:
            log.error("garp_failed", instance=inst.name, interface=dev, error=str(exc))


async def _remove(d: Daemon, inst: Instance, removed: tuple[VirtualIP, ...]) -> None:
    assert d._netlink is not None
    for vip in removed:
        try:
            await d._netlink.remove_address(inst.dev(vip), vip.address, vip.prefixlen)
        except HostError as exc:
            log.error("vip_remove_failed", instance=inst.name, vip=str(vip), error=str(exc))
    log.info("vips_removed", instance=inst.name, vips=[str(v) for v in removed])


async def _add(d: Daemon, name: str) -> Instance:
    assert d._timers is not None
    cfg = next(i for i in d.config.instances if i.name == name)
    iface = d._interface(d._vmacs.sock_interface(cfg))
    rc = router_config(cfg, d.config)
    rc = without_trackers(rc, tuple(t for t in rc.trackers if t.name not in d.disabled_scripts))
    inst = Instance(cfg, VirtualRouter(rc), iface, d._vipset(name))
    inst.vipset.addresses = inst.addresses
    if d._extras is not None:
        d._extras.attach(inst)
    had_socket = iface.sock is not None
    iface.by_vrid[cfg.virtual_router_id] = inst
    d.instances.append(inst)
    d.by_name[name] = inst
    d._timers.register(("vr", name), functools.partial(d._timer_due, inst))
    for ifname in {iface.name, *(inst.dev(v) for v in inst.addresses)}:
        if ifname not in d.interfaces or d.interfaces[ifname].link is None:
            d._interface(ifname)
            await d._relink(ifname, initial=True)
    if had_socket and iface.sock is not None:
        iface.sock.targets[cfg.virtual_router_id] = send_target(cfg)
    elif iface.sock is None and iface.link is not None:
        await d._relink(iface.name, initial=True)  # first instance on it: open the socket
    log.info("instance_added", instance=name, interface=iface.name)
    return inst


def _known_trackers(d: Daemon, inst: Instance, now: float) -> None:
    """A new instance learns what the running trackers already know."""
    for spec in inst.router.config.trackers:
        ok: bool | None = None
        tracker = d.scripts.get(spec.name)
        if tracker is not None:
            ok = tracker.ok
        elif d._iftrack is not None:
            for ifname, up in d._iftrack.state.items():
                if tracker_name(ifname) == spec.name:
                    ok = up
        if ok is not None:
            d._feed(inst, TrackerChanged(spec.name, ok), now)
    d.brief_trackers(inst)  # process:, file:, http: trackers (trackers/registry.py)


def _forget_changed_blocks(d: Daemon, old: Config, p: ReloadPlan) -> set[str]:
    """Drop what the daemon remembers of trackers whose block changed or went
    (a new source reports them afresh), so no instance is briefed with a
    value measured under the old definition, and of blocks no instance used
    (no source watched them: what is remembered is from before a reload
    dropped their last reference, and a MASTER briefed that old "down"
    would resign until the new source says "up"); the others keep their
    value and the time of their last change. Returns the names forgotten:
    the daemon ignores what the old source still says of them until the new
    one starts (a report made under the old definition while the reload
    waits on netlink would be briefed to an instance it adds)."""
    forgotten: set[str] = set()
    for kind in registry.KINDS:
        if kind.keyword not in p.sources_rebuilt:
            continue
        used = {r.name for i in old.instances for r in getattr(i, kind.refs)}
        before = {b.name: plain(b) for b in getattr(old, kind.blocks)}
        after = {b.name: plain(b) for b in getattr(p.config, kind.blocks)}
        for name, block in before.items():
            if name not in used or after.get(name) != block:
                d._tracker_seen.pop(kind.prefix + name, None)
                forgotten.add(kind.prefix + name)
    return forgotten


async def _swap_sources(d: Daemon, p: ReloadPlan) -> None:
    """Replace the sources of the kinds that changed. Stopping one reports
    nothing, so each instance keeps its trackers' last results until the new
    source reports its first ones (at its start: a process scan, a file read,
    an HTTP probe), and a MASTER is not dropped in between; an http block
    whose definition did not change keeps its rise/fall counters."""
    if "track_file" not in p.sources_rebuilt:
        # keepalived's track_file_end_handler runs for every block each time
        # the config is read: a missing file gets its init value on a reload
        # too (an existing one is left alone); a rebuilt source does it itself.
        for block in p.config.track_files:
            if block.init_file:
                write_init(block, reloading=True)
    if not p.sources_rebuilt:
        return
    for kind in registry.KINDS:
        if kind.keyword not in p.sources_rebuilt:
            continue
        old = d._sources.pop(kind.keyword, None)
        if old is not None:
            old.stop()
        d._muted_trackers = {n for n in d._muted_trackers if not n.startswith(kind.prefix)}
        new = kind.source(p.config, d._on_tracker_change, True)  # reloading
        if new is not None:
            if old is not None:
                registry.carry_over(new, old)  # unchanged http blocks keep their counters
            d._sources[kind.keyword] = new
            try:
                await new.start()
            except Exception as exc:  # a bug must not fail the rest of the reload
                log.error("tracker_source_failed", kind=kind.keyword, error=repr(exc))
                continue
        log.info("tracker_source_rebuilt", kind=kind.keyword, running=new is not None)
