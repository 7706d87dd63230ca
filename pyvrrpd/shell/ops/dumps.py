"""keepalived-format dumps of the daemon's state: what USR1, USR2 and SIGRTMIN+2 write.

Owns: the file names (keepalived's KA_TMP_DIR rules), taking a snapshot from
the daemon, writing the files safely, and logging the outcome. The layouts
themselves are `pyvrrpd.shell.ops.dumpformat`. keepalived 2.2.7 (keepalived.md
4.1-4.2, checked against its output in the netns lab):

- USR1 -> ``keepalived.data`` (global definitions, the VRRP topology, sync
  groups, scripts, track files and processes, interfaces) and
  ``keepalived_parent.data`` (the parent's global definitions). With
  global_defs ``data_use_instance`` and a top-level ``instance NAME`` or a
  namespace (``-s``), both are named
  ``keepalived.NS_NAME.data`` (``open_dump_file()``; ``-i`` plays no part).
- USR2 -> ``keepalived.stats``; SIGRTMAX-1 writes it, then clears the counters.
- SIGRTMIN+2 -> ``keepalived.json``: ``[{"data": {...}, "stats": {...}}]``.

The directory is ``$TMPDIR`` when it is an absolute path, else ``/tmp``;
stats and JSON never carry the instance name (2.2.7 does not add it).

Files are created as a fresh temporary file beside the target
(``O_CREAT|O_EXCL|O_NOFOLLOW``: nothing planted in /tmp is followed or
reused), written, given mode 0600 (what keepalived 2.2.7 writes, its umask
being 0177: the dump holds the ``auth_pass``) and renamed over the target, so
a reader sees the old file or the new one, never half of one. The write runs
on a helper thread, so a slow or hung filesystem never stalls the adverts;
requests for a file still waiting to be written are merged (newest wins). A
failed write is one error line in the log, nothing more.

Scripts are shown as keepalived shows them once its check_script_secure()
has run: argv[0] replaced by the real path of the file run
(`keepalived_argv`; ``/bin/true`` is ``/usr/bin/true`` with a merged /usr),
from the file pyvrrpd's prepare_script() found; pyvrrpd itself still runs
them with argv[0] as written. A sync group's trackers are listed under the
group and in the tracked objects' "Tracking instances", not in its members'
own lists, as in keepalived (pyvrrpd.config.syncgroup merges them into the
members, so they are told apart by name here).

Must not: change protocol state. The counters are cleared by the daemon
(``Daemon.clear_stats``), only once the stats file holding them was written.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import os
import pwd
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from pyvrrpd.shell.ops.dumpformat import (
    NOTIFY_LABELS,
    GlobalView,
    InstanceView,
    InterfaceView,
    NotifyView,
    ProcessView,
    ScriptView,
    Snapshot,
    SyncGroupView,
    TrackedScript,
    TrackFileView,
    VipView,
    render_data,
    render_json,
    render_parent_data,
    render_stats,
)
from pyvrrpd.trackers.base import tracker_kind
from pyvrrpd.trackers.process import count_now

if TYPE_CHECKING:
    from pyvrrpd.config.model import GlobalDefs, NotifyConfig, SyncGroup, VrrpTrackProcess
    from pyvrrpd.shell.daemon import Daemon

log = structlog.get_logger("pyvrrpd")

#: keepalived's configure default (``--with-tmp-dir``); ``$TMPDIR`` overrides it.
KA_TMP_DIR = "/tmp"
DATA_FILE = "keepalived.data"
PARENT_DATA_FILE = "keepalived_parent.data"
STATS_FILE = "keepalived.stats"
JSON_FILE = "keepalived.json"
FILE_MODE = 0o600


# ------------------------------------------------------------------- names


def tmp_dir(environ: Mapping[str, str] | None = None) -> str:
    """keepalived's ``set_tmp_dir()``: ``$TMPDIR`` if absolute, else KA_TMP_DIR."""
    env = os.environ if environ is None else environ
    value = env.get("TMPDIR", "")
    return value if value.startswith("/") else KA_TMP_DIR


def data_file_name(
    name: str, *, use_instance: bool, instance: str | None, namespace: str | None
) -> str:
    """``open_dump_file()``: ``keepalived.data`` -> ``keepalived.NS_INSTANCE.data``.

    Only with ``data_use_instance`` and at least one of the instance name
    (top-level ``instance``) and the namespace (``-s``/``net_namespace``).
    """
    if not use_instance or not (instance or namespace):
        return name
    stem, dot, ext = name.rpartition(".")
    middle = (namespace or "") + ("_" if instance and namespace else "") + (instance or "")
    return f"{stem}.{middle}{dot}{ext}"


@dataclass(frozen=True, slots=True)
class DumpPaths:
    """Where each dump goes."""

    data: str
    parent_data: str
    stats: str
    json: str

    @classmethod
    def for_daemon(
        cls,
        *,
        use_instance: bool = False,
        instance: str | None = None,
        namespace: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> DumpPaths:
        base = tmp_dir(environ)

        def named(n: str) -> str:
            return os.path.join(
                base,
                data_file_name(
                    n, use_instance=use_instance, instance=instance, namespace=namespace
                ),
            )

        return cls(
            data=named(DATA_FILE),
            parent_data=named(PARENT_DATA_FILE),
            stats=os.path.join(base, STATS_FILE),
            json=os.path.join(base, JSON_FILE),
        )


# ------------------------------------------------- taking it from the daemon


def _vip_views(
    vips: Iterable[Any], default_dev: str, present: Callable[[Any], bool]
) -> tuple[VipView, ...]:
    out = []
    for v in vips:
        brd = v.broadcast if v.broadcast not in (None, "-", "+") else None
        out.append(
            VipView(
                address=str(v.address) if v.prefixlen == 32 else f"{v.address}/{v.prefixlen}",
                dev=v.dev or default_dev,
                scope=v.scope,
                label=v.label,
                broadcast=brd,
                installed=present(v),
            )
        )
    return tuple(out)


def snapshot_of(daemon: Daemon, *, started_at: float, namespace: str | None = None) -> Snapshot:
    """Take the dump's data from a running daemon (call on its event loop).

    `started_at` (epoch) stands in for "last transition" before the first one,
    as keepalived uses the time the instance was created.
    """
    loop = asyncio.get_running_loop()
    mono_now, wall_now = loop.time(), time.time()

    def epoch(mono: float) -> float:
        return wall_now - (mono_now - mono)

    status = {d["name"]: d for d in daemon.status().get("instances", [])}
    gd = daemon.config.global_defs
    uid, gid = _script_ids(gd.script_user, gd.script_group)
    g = GlobalView(
        router_id=gd.router_id or os.uname().nodename,
        namespace=namespace,
        garp_delay=gd.vrrp_garp_master_delay,
        garp_repeat=gd.vrrp_garp_master_repeat,
        garp_refresh=gd.vrrp_garp_master_refresh,
        garp_refresh_repeat=gd.vrrp_garp_master_refresh_repeat,
        garp_lower_prio_delay=_or(gd.vrrp_garp_lower_prio_delay, gd.vrrp_garp_master_delay),
        garp_lower_prio_repeat=int(_or(gd.vrrp_garp_lower_prio_repeat, gd.vrrp_garp_master_repeat)),
        garp_interval=gd.vrrp_garp_interval,
        gna_interval=gd.vrrp_gna_interval,
        skip_check_adv_addr=gd.vrrp_skip_check_adv_addr,
        script_security=gd.enable_script_security,
        script_uid=uid,
        script_gid=gid,
        smtp_alert=gd.smtp_alert or None,
    )
    instances = []
    tracking: dict[str, list[TrackedScript]] = {}
    # Per tracker name ("file:NAME", "process:NAME"): the instances using it
    # (with their entry's weight) and its status() entry.
    users: dict[str, list[TrackedScript]] = {}
    infos: dict[str, Mapping[str, Any]] = {}
    groups: tuple[SyncGroup, ...] = tuple(getattr(daemon.config, "sync_groups", ()))
    group_of = {m: g for g in groups for m in g.members}
    notifier = getattr(daemon, "notifier", None)
    for inst in daemon.instances:
        st = status.get(inst.name, {})
        router = inst.router
        rc = router.config
        state = str(st.get("state", router.state.name))
        present = _present_test(st)

        master_ip, master_prio = _master_of(st)
        deadline = router.next_deadline()
        link = inst.iface.link
        last = st.get("last_transition")
        group = group_of.get(inst.name)
        brought, brought_ifs = _group_keys(group)
        own = [t for t in rc.trackers if t.name not in brought]
        # Scripts only: track_interface entries are not "Tracked scripts".
        tracked = tuple(
            TrackedScript(t.name, t.weight, t.reverse)
            for t in own
            if tracker_kind(t.name) == "script"
        )
        # keepalived adds an instance's own entries to the tracked objects
        # first, its group's afterwards (sync_group_tracking_init()).
        for t in tracked:
            tracking.setdefault(t.name, []).append(TrackedScript(inst.name, t.weight, t.reverse))
        for spec in own:
            users.setdefault(spec.name, []).append(
                TrackedScript(inst.name, spec.weight, spec.reverse)
            )
        target = _notify_target(notifier, "INSTANCE", inst.name)
        group_fault = getattr(router, "group_fault", None)
        # The daemon's status() lists them (the core's own status maps name -> ok).
        infos.update((e["name"], e) for e in st.get("trackers", ()) if isinstance(e, Mapping))
        cfg = inst.cfg
        instances.append(
            InstanceView(
                name=inst.name,
                state=state,
                wantstate=_wantstate(state, cfg.priority),
                vrid=rc.vrid,
                interface=cfg.interface,
                priority=rc.priority,
                effective_priority=int(st.get("effective_priority", rc.priority)),
                advert_int=rc.advert_int,
                stats=dict(st.get("stats", router.stats)),
                master_ip=master_ip,
                master_priority=master_prio,
                # Its own faults: not the hold of its group's FAULT.
                faults=len([r for r in st.get("fault_reasons", ()) if r != group_fault]),
                last_transition=float(last) if last is not None else started_at,
                read_timeout=epoch(deadline) if deadline is not None else None,
                master_down_usecs=int(router.master_down_interval * 1_000_000),
                src_ip=str(link.primary_ip) if link is not None and link.primary_ip else None,
                garp_delay=rc.garp_master_delay,
                garp_repeat=rc.garp_master_repeat,
                garp_refresh=rc.garp_master_refresh,
                garp_refresh_repeat=rc.garp_master_refresh_repeat,
                garp_lower_prio_delay=rc.garp_lower_prio_delay,
                garp_lower_prio_repeat=rc.garp_lower_prio_repeat,
                lower_prio_no_advert=rc.lower_prio_no_advert,
                preempt=rc.preempt,
                preempt_delay=rc.preempt_delay,
                skip_check_adv_addr=rc.skip_check_adv_addr,
                auth_type=cfg.auth_type,
                auth_pass=cfg.auth_pass,
                vips=_vip_views(cfg.virtual_ipaddress, cfg.interface, present),
                excluded_vips=_vip_views(cfg.virtual_ipaddress_excluded, cfg.interface, present),
                tracked_scripts=tracked,
                tracked_interfaces=tuple(
                    TrackedScript(t.name, t.weight, t.reverse)
                    for t in cfg.track_interface
                    if t.name not in brought_ifs
                ),
                dont_track_primary=rc.dont_track_primary,
                higher_prio_send_advert=rc.higher_prio_send_advert,
                down_timer_adverts=rc.down_timer_adverts,
                smtp_alert=_smtp(target, cfg.notify, gd),
                tracked_files=_entries(own, "file"),
                tracked_processes=_entries(own, "process"),
                sync_group=group.name if group is not None else None,
                notify=_notify_views(target, cfg.notify, gd),
                notify_deleted=cfg.notify.notify_deleted,
                priority_changes=(
                    bool(target.priority_changes)
                    if target is not None
                    else _or_flag(cfg.notify.priority_changes, gd.vrrp_notify_priority_changes)
                ),
            )
        )
    by_inst = {i.name: i for i in daemon.instances}
    sync_groups = tuple(
        _sync_group_view(daemon, g, by_inst, notifier, tracking, users) for g in groups
    )
    scripts = []
    for script in daemon.config.scripts:
        if script.name not in tracking and script.name not in daemon.disabled_scripts:
            continue  # keepalived drops scripts no instance tracks
        tracker = daemon.scripts.get(script.name)
        s_uid, s_gid = _script_ids(script.user or gd.script_user, script.group or gd.script_group)
        counter = tracker.counter if tracker is not None else None
        ok = counter.ok if counter is not None else False
        # RiseFall keeps keepalived's own counter; the dump shows it as keepalived does.
        result = int(getattr(counter, "_result", 0)) if counter is not None else 0
        task = getattr(tracker, "_task", None)
        scripts.append(
            ScriptView(
                name=script.name,
                argv=(
                    keepalived_argv(tracker.argv, tracker.executable)
                    if tracker is not None
                    else script.argv
                ),
                interval=script.interval,
                timeout=script.timeout or 0.0,
                weight=script.weight,
                reverse=script.weight_reverse,
                rise=script.rise,
                fall=script.fall,
                result=result,
                good=ok is True,
                insecure=script.name in daemon.disabled_scripts,
                init_state="INIT" if ok is None else "unknown",
                uid=s_uid,
                gid=s_gid,
                running=task is not None and not task.done(),
                tracking=tuple(tracking.get(script.name, ())),
            )
        )
    interfaces = []
    for name, iface in daemon.interfaces.items():
        link = iface.link
        interfaces.append(
            InterfaceView(
                name=name,
                index=link.index if link is not None else None,
                ipv4=str(link.primary_ip) if link is not None and link.primary_ip else None,
                mac=":".join(f"{b:02x}" for b in link.mac) if link is not None else None,
                up=link is not None and link.up,
                instances=tuple(i.name for i in daemon.instances if i.cfg.interface == name),
            )
        )
    # keepalived lists the track_file blocks in use and every vrrp_track_process.
    track_files = tuple(
        TrackFileView(
            name=f.name,
            path=str(infos.get(f"file:{f.name}", {}).get("path", f.path)),
            status=int(infos.get(f"file:{f.name}", {}).get("value") or 0),
            weight=f.weight,
            reverse=f.reverse,
            tracking=tuple(users[f"file:{f.name}"]),
        )
        for f in daemon.config.track_files
        if f"file:{f.name}" in users
    )
    processes = tuple(
        _process_view(p, infos.get(f"process:{p.name}"), users.get(f"process:{p.name}", ()))
        for p in daemon.config.track_processes
    )
    return Snapshot(
        g, tuple(instances), tuple(scripts), tuple(interfaces), track_files, processes, sync_groups
    )


def keepalived_argv(argv: Sequence[str], executable: str) -> tuple[str, ...]:
    """argv as keepalived 2.2.7 shows it after ``check_script_secure()``.

    argv[0] becomes the real path of `executable` (the file prepare_script()
    found: PATH searched, symlinks left in), its directories and links
    resolved; when that changes the file name (``awk`` -> ``mawk``), the
    configured name in the real directory is used instead if it is the same
    file there. A first word starting with ``<`` is a file test keepalived
    leaves alone.
    """
    if not argv or not executable or argv[0].startswith("<"):
        return tuple(argv)
    real = os.path.realpath(executable)
    shown = real
    name = os.path.basename(argv[0])
    if os.path.basename(real) != name:
        candidate = os.path.join(os.path.dirname(real), name)
        try:
            same = os.path.samefile(candidate, real)
        except OSError:
            same = False
        if same:
            shown = candidate
    return (shown, *argv[1:])


def _group_keys(group: SyncGroup | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The core tracker names (in the group's order) and the interfaces a
    member got from its group."""
    if group is None:
        return (), ()
    names = [t.name for t in group.track_script]
    names += [f"file:{t.name}" for t in group.track_file]
    names += [f"process:{t.name}" for t in group.track_process]
    names += [f"http:{t.name}" for t in group.track_http]
    return tuple(names), tuple(t.name for t in group.track_interface)


def _sync_group_view(
    daemon: Daemon,
    group: SyncGroup,
    by_inst: Mapping[str, Any],
    notifier: Any,
    tracking: dict[str, list[TrackedScript]],
    users: dict[str, list[TrackedScript]],
) -> SyncGroupView:
    """The group as ``dump_sync_group()`` shows it; its members are added to
    the tracked objects' instance lists, in keepalived's order (per tracker,
    each member)."""
    members = [m for m in group.members if m in by_inst]
    brought, _ = _group_keys(group)

    def entries(kind: str) -> tuple[TrackedScript, ...]:
        """The group's entries of `kind`, weights as resolved in its members."""
        out = []
        for key in (k for k in brought if tracker_kind(k) == kind):
            specs = [
                (m, spec)
                for m in members
                for spec in by_inst[m].router.config.trackers
                if spec.name == key
            ]
            for m, spec in specs:
                entry = TrackedScript(m, spec.weight, spec.reverse)
                users.setdefault(key, []).append(entry)
                if kind == "script":
                    tracking.setdefault(key, []).append(entry)
            if specs:
                spec = specs[0][1]
                name = key if kind == "script" else key.partition(":")[2]
                out.append(TrackedScript(name, spec.weight, spec.reverse))
        return tuple(out)

    core = getattr(getattr(daemon, "syncgroups", None), "groups", {}).get(group.name)
    state = "INIT" if core is None else core.state.name
    faults = 0 if core is None else sum(1 for m in members if core.own_faults(by_inst[m].router))
    target = _notify_target(notifier, "GROUP", group.name)
    gd = daemon.config.global_defs
    return SyncGroupView(
        name=group.name,
        state=state,
        members=tuple(members),
        member_faults=faults,
        tracking_weight=group.tracking_weight,
        smtp_alert=_smtp(target, group.notify, gd),
        priority_changes=group.notify.priority_changes,
        tracked_interfaces=tuple(
            TrackedScript(t.name, t.weight, t.reverse) for t in group.track_interface
        ),
        tracked_scripts=entries("script"),
        tracked_files=entries("file"),
        tracked_processes=entries("process"),
        notify=_notify_views(target, group.notify, gd),
    )


def _notify_target(notifier: Any, kind: str, name: str) -> Any:
    """The notifier's record of an instance or group (its prepared hooks), if any."""
    targets = getattr(notifier, "targets", None)
    return None if targets is None else targets.get((kind, name))


def _notify_views(target: Any, cfg: NotifyConfig, gd: GlobalDefs) -> tuple[NotifyView, ...]:
    """The notify scripts keepalived keeps, as it shows them.

    From the notifier's prepared hooks: a script it disabled (not found,
    unsafe) is left out, as keepalived frees it. Without a notifier (a
    snapshot of a bare config), as written.
    """
    out = []
    for hook in NOTIFY_LABELS:
        script = getattr(cfg, hook)
        if script is None:
            continue
        if target is None:
            uid, gid = _script_ids(script.user or gd.script_user, script.group or gd.script_group)
            out.append(NotifyView(hook, tuple(script.argv), uid, gid))
            continue
        prepared = target.hooks.get(hook)
        if prepared is not None:
            uid, gid = prepared.identity.ids()
            argv = keepalived_argv(prepared.command.argv, prepared.command.executable)
            out.append(NotifyView(hook, argv, uid, gid))
    return tuple(out)


def _smtp(target: Any, cfg: NotifyConfig, gd: GlobalDefs) -> bool:
    """smtp_alert as resolved: its own, else smtp_alert_vrrp, else smtp_alert (vrrp.c)."""
    if target is not None:
        return bool(target.smtp)
    if cfg.smtp_alert is not None:
        return cfg.smtp_alert
    return bool(_or_flag(gd.smtp_alert_vrrp, gd.smtp_alert))


def _or_flag(value: bool | None, default: bool) -> bool:
    return default if value is None else value


def _entries(trackers: Iterable[Any], kind: str) -> tuple[TrackedScript, ...]:
    """An instance's tracker entries of `kind`, named as in the config."""
    return tuple(
        TrackedScript(t.name.partition(":")[2], t.weight, t.reverse)
        for t in trackers
        if tracker_kind(t.name) == kind
    )


def _process_view(
    block: VrrpTrackProcess, info: Mapping[str, Any] | None, tracking: Iterable[TrackedScript]
) -> ProcessView:
    """A block as keepalived's dump shows it: from the tracker's status entry,
    or, for a block no instance uses (no tracker watches it), counted now."""
    qmax = block.quorum_max
    if info is not None:
        current = int(info.get("count") or 0)
        have = info.get("status") == "up"
    else:
        current = count_now(block) or 0
        have = block.quorum <= current and (qmax is None or current <= qmax)
    pending = info.get("delay_pending") if info is not None else None
    return ProcessView(
        name=block.name,
        process=block.process,
        params=block.params,
        param_match=block.param_match,
        quorum=block.quorum,
        quorum_max=qmax,
        current=current,
        have_quorum=have,
        weight=block.weight,
        reverse=block.weight_reverse,
        terminate_delay=block.terminate_delay,
        fork_delay=block.fork_delay,
        fork_timer=pending == "fork",
        terminate_timer=pending == "terminate",
        full_command=block.full_command,
        tracking=tuple(tracking),
    )


def _master_of(st: Mapping[str, Any]) -> tuple[str | None, int]:
    """The master seen, from status(): {"address", "priority"} or the core's flat keys."""
    master = st.get("master")
    if isinstance(master, Mapping):
        return master.get("address"), int(master.get("priority") or 0)
    return (str(master) if master else None), int(st.get("master_priority") or 0)


def _or(value: float | None, default: float) -> float:
    """A global left unset follows its `master` sibling, as keepalived's does."""
    return default if value is None else value


def _present_test(st: Mapping[str, Any]) -> Callable[[Any], bool]:
    """Whether a VIP is in the kernel, from status(): per address when it says."""
    listed = st.get("vips_present")
    if listed is not None:
        names = {str(x) for x in listed}
        return lambda v: str(v) in names
    installed = bool(st.get("vips_installed"))
    return lambda v: installed


def _wantstate(state: str, priority: int) -> str:
    """keepalived: FAULT wants FAULT; INIT wants MASTER only as address owner."""
    if state == "INIT":
        return "MASTER" if priority == 255 else "BACKUP"
    return state


def _script_ids(user: str | None, group: str | None) -> tuple[int, int]:
    """uid:gid scripts run as (the daemon's own when no user is set)."""
    uid, gid = os.geteuid(), os.getegid()
    if user:
        with contextlib.suppress(KeyError):
            pw = pwd.getpwnam(user)
            uid, gid = pw.pw_uid, pw.pw_gid
    if group:
        with contextlib.suppress(KeyError, ValueError):
            gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    return uid, gid


# ------------------------------------------------------------------ writing


def write_atomic(path: str, data: bytes, mode: int = FILE_MODE) -> None:
    """Replace `path` with `data` so a reader sees the old or the new file, never half.

    The temporary file is created fresh beside the target (O_EXCL|O_NOFOLLOW:
    a symlink or file planted under that name makes the open fail, and the
    random name makes planting pointless); rename() then replaces whatever is
    at `path`, a symlink included, without following it. Raises OSError.
    """
    directory, base = os.path.split(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(8):
        tmp = os.path.join(directory, f".{base}.{secrets.token_hex(6)}")
        try:
            fd = os.open(tmp, flags, mode)
        except FileExistsError:
            continue
        break
    else:
        raise FileExistsError(f"no free temporary name beside {path}")
    try:
        try:
            os.fchmod(fd, mode)  # not the umask's choice: the dump holds auth_pass
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


Done = Callable[[str, OSError | None], None]


class DumpWriter:
    """Writes files on one helper thread; results come back on the event loop.

    A request for a file that is still waiting replaces its content (the
    newest snapshot wins) and every waiter is told the outcome. The thread
    is a daemon thread: a write stuck on a hung filesystem never holds up
    the daemon's exit.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._cond = threading.Condition()
        self._pending: dict[str, tuple[bytes, list[Done]]] = {}
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, path: str, data: bytes, done: Done) -> None:
        with self._cond:
            waiters = self._pending.pop(path, (b"", []))[1]
            self._pending[path] = (data, [*waiters, done])
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pyvrrpd-dumps", daemon=True)
                self._thread.start()
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                path = next(iter(self._pending))
                data, waiters = self._pending.pop(path)
            error: OSError | None = None
            try:
                write_atomic(path, data)
            except OSError as exc:
                error = exc
            for done in waiters:
                try:
                    self._loop.call_soon_threadsafe(done, path, error)
                except RuntimeError:  # the loop is closed: the daemon is gone
                    return


def describe(error: OSError) -> str:
    """One line for the log: ``Permission denied`` rather than a repr."""
    return error.strerror or str(error)


class Dumper:
    """The daemon's three dumps: snapshot on the loop, render, hand to the writer, log."""

    def __init__(self, daemon: Daemon, paths: DumpPaths, *, namespace: str | None = None) -> None:
        self._daemon = daemon
        self.paths = paths
        self._namespace = namespace
        self._writer = DumpWriter(asyncio.get_running_loop())
        # keepalived shows the instance's creation time until its first transition.
        self._started_at = time.time()

    @classmethod
    def for_daemon(cls, daemon: Daemon) -> Dumper:
        """Paths from the daemon's config (`data_use_instance`, `instance`) and `-s`."""
        gd = daemon.config.global_defs
        namespace = getattr(daemon, "namespace", None)
        paths = DumpPaths.for_daemon(
            use_instance=bool(getattr(gd, "data_use_instance", False)),
            instance=getattr(gd, "instance_name", None),
            namespace=namespace,
        )
        return cls(daemon, paths, namespace=namespace)

    def close(self) -> None:
        self._writer.close()

    def write_data(self, why: str) -> None:
        """USR1: ``keepalived.data`` and ``keepalived_parent.data``."""
        snap = self._snapshot("data", why)
        if snap is not None:
            self._submit("data", why, self.paths.data, render_data(snap))
            self._submit("parent_data", why, self.paths.parent_data, render_parent_data(snap))

    def write_stats(self, why: str, *, clear: bool = False) -> None:
        """USR2 (and SIGRTMAX-1 with `clear`): ``keepalived.stats``."""
        snap = self._snapshot("stats", why)
        if snap is None:
            return
        after: Callable[[], None] | None = None
        if clear:
            baseline = snap.counters()

            def after() -> None:
                # Subtract what the file shows rather than zeroing: adverts
                # counted while it was being written are not lost.
                self._daemon.clear_stats(baseline)

        self._submit("stats", why, self.paths.stats, render_stats(snap), after)

    def write_json(self, why: str) -> None:
        """SIGRTMIN+2: ``keepalived.json``."""
        snap = self._snapshot("json", why)
        if snap is not None:
            self._submit("json", why, self.paths.json, render_json(snap))

    def _snapshot(self, kind: str, why: str) -> Snapshot | None:
        try:
            return snapshot_of(self._daemon, started_at=self._started_at, namespace=self._namespace)
        except Exception as exc:  # a dump must never take the daemon down
            log.error("dump_failed", dump=kind, signal=why, error=repr(exc))
            return None

    def _submit(
        self,
        kind: str,
        why: str,
        path: str,
        text: str,
        after: Callable[[], None] | None = None,
    ) -> None:
        def done(written: str, error: OSError | None) -> None:
            if error is not None:
                log.error("dump_failed", dump=kind, file=written, signal=why, error=describe(error))
                return
            if after is not None:
                after()
            log.info(
                "dump_written",
                dump=kind,
                file=written,
                signal=why,
                **({"cleared": True} if after is not None else {}),
            )

        self._writer.submit(path, text.encode(), done)
