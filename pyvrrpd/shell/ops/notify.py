"""Notify hooks, notify FIFOs and alert mails, with keepalived 2.2.7's semantics.

Owns: what keepalived's vrrp_notify.c does on a state change (keepalived.md
3.1-3.4): the specific hook (`notify_master|backup|fault|stop|deleted`, its
configured argv only) launched first, then the generic `notify` (argv plus
`INSTANCE|GROUP NAME STATE PRIORITY`), then one FIFO line
`INSTANCE "NAME" STATE PRIORITY` to `notify_fifo` and to `vrrp_notify_fifo`,
then a mail when smtp_alert is on (subject `[router_id] VRRP Instance NAME -
Entering MASTER state`, one per new state, FAULT skipped with
no_email_faults). Also `notify_master_rx_lower_pri` (script + FIFO line
MASTER_RX_LOWER_PRI), MASTER_PRIORITY / BACKUP_PRIORITY FIFO lines with
notify_priority_changes, the `*_fifo_script` readers (FIFO path appended,
started before the FIFO is opened, SIGTERMed at stop) and STOP at shutdown
for every instance then every group, STOP scripts given 1 s.

Scripts never block the event loop: each runs as a task through
`pyvrrpd.io.scripts.run_script` (own process group, scrubbed environment,
user drop) after `prepare_script` (PATH, executable, script security,
script_user): a hook keepalived would disable is disabled here, logged once.
keepalived forks notify scripts and forgets them; here they are reaped,
their exit status and stderr logged (rate-limited per hook), and one that
runs longer than NOTIFY_TIMEOUT has its process group killed.

API (the daemon and shell/syncgroups.py call these; all synchronous, none
waits for a script, a FIFO reader or the mail relay):

    notifier = Notifier(gdefs, {inst_name: NotifyConfig}, {group_name: NotifyConfig})
    notifier.start()                  # in the loop, before the first notify
    # state: "MASTER" | "BACKUP" | "FAULT" | "STOP" | "DELETED"; effective priority
    notifier.instance_state(inst_name, state, priority)
    notifier.group_state(group_name, state)               # GROUP notifies, priority 0
    notifier.priority_changed(inst_name, state, priority) # FIFO line (notify_priority_changes)
    notifier.master_rx_lower_pri(inst_name, priority)
    # keepalived's notifies_sent rule: the state of the instance's group, or None
    notifier.sync_state = lambda inst_name: ...
    await notifier.stop({inst_name: effective_priority})  # STOP for all, then close
    notifier.status()                                     # counters for `pyvrrpd status`

Must not: decide states (the core does), or raise into the caller for any
script, FIFO or mail failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from pyvrrpd.config.model import GlobalDefs, NotifyConfig, NotifyFifo, NotifyScript, VrrpScript
from pyvrrpd.io.fifo import NotifyFifoWriter
from pyvrrpd.io.scripts import ScriptCommand, ScriptResult, StderrCapture, run_script
from pyvrrpd.io.smtp import Mail, SmtpError, send_mail
from pyvrrpd.shell.ratelimit import RateLimiter
from pyvrrpd.shell.scripttrack import ScriptIdentity, prepare_script

log = structlog.get_logger("pyvrrpd.notify")

#: keepalived never times notify scripts out; a hung one must not live forever.
NOTIFY_TIMEOUT = 60.0
#: keepalived runs STOP scripts with a 1 s child timer, then SIGKILLs their group.
STOP_WAIT = 1.0
#: how long a SIGTERMed fifo script may take to exit before the STOP lines.
FIFO_SCRIPT_GRACE = 0.5
#: a fifo script runs until stop (keepalived: TIMER_NEVER).
FIFO_SCRIPT_TIMEOUT = 10.0 * 365 * 86400
LOG_EVERY = 60.0  # seconds between log lines of one kind per hook
STDERR_MAX = 4096  # bytes kept of the start and of the end of a script's stderr
#: keepalived's default smtp_connect_timeout (global_data.h).
SMTP_DEFAULT_TIMEOUT = 30.0
STATES = ("MASTER", "BACKUP", "FAULT", "STOP", "DELETED")

SMTP_TEXT = {
    # vrrp_notify.c vrrp_smtp_notifier(): (subject suffix, instance body, group body)
    "MASTER": (
        "Entering MASTER state",
        "=> VRRP Instance is now owning VRRP VIPs <=",
        "=> All VRRP group instances are now in MASTER state <=",
    ),
    "BACKUP": (
        "Entering BACKUP state",
        "=> VRRP Instance is no longer owning VRRP VIPs <=",
        "=> All VRRP group instances are now in BACKUP state <=",
    ),
    "FAULT": (
        "Entering FAULT state",
        "=> VRRP Instance is no longer owning VRRP VIPs <=",
        "=> All VRRP group instances are now in FAULT state <=",
    ),
    "STOP": (
        "Stopping",
        "=> VRRP Instance stopping <=",
        "=> All VRRP group instances are now stopping <=",
    ),
    "DELETED": ("Deleted", "=> VRRP Deleted at reload <=", ""),
}


@dataclass(slots=True)
class _Hook:
    """A prepared notify script."""

    label: str  # e.g. "VI_1 notify_master"
    command: ScriptCommand
    identity: ScriptIdentity


@dataclass(slots=True)
class _Target:
    """An instance or a sync group, as far as notifying goes."""

    kind: str  # "INSTANCE" or "GROUP"
    name: str
    cfg: NotifyConfig
    hooks: dict[str, _Hook] = field(default_factory=dict)  # NotifyConfig field -> hook
    smtp: bool = False
    priority_changes: bool = False
    last_email_state: str | None = None
    notifies_sent: bool = False
    lower_pri_task: asyncio.Task[ScriptResult] | None = None


@dataclass(slots=True)
class NotifyCounters:
    scripts_started: int = 0
    scripts_failed: int = 0  # non-zero exit, signal, could not start
    scripts_timed_out: int = 0
    scripts_skipped: int = 0  # rx_lower_pri while the previous run still goes
    fifo_lines: int = 0
    fifo_dropped: int = 0
    mails_sent: int = 0
    mails_failed: int = 0


class Notifier:
    """Runs the notify hooks of every instance and sync group."""

    def __init__(
        self,
        gdefs: GlobalDefs,
        instances: Mapping[str, NotifyConfig],
        groups: Mapping[str, NotifyConfig] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.gdefs = gdefs
        self.targets: dict[tuple[str, str], _Target] = {}
        for name, cfg in instances.items():
            self.targets[("INSTANCE", name)] = _Target("INSTANCE", name, cfg)
        for name, cfg in (groups or {}).items():
            self.targets[("GROUP", name)] = _Target("GROUP", name, cfg)
        #: set by sync groups: the state of the instance's group, or None.
        self.sync_state: Callable[[str], str | None] | None = None
        self.counters = NotifyCounters()
        self.disabled: dict[str, str] = {}  # hook label -> reason
        self.fifos: list[NotifyFifoWriter] = []
        self._fifo_scripts: list[asyncio.Task[ScriptResult]] = []
        self._fifo_pgids: list[int] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stop_tasks: set[asyncio.Task[Any]] = set()
        self._limit = RateLimiter(LOG_EVERY, clock)
        self._started = False

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Check every hook may run, open the FIFOs (starting their readers first)."""
        if self._started:
            return
        self._started = True
        g = self.gdefs
        for target in self.targets.values():
            cfg = target.cfg
            for fname in ("master", "backup", "fault", "stop", "deleted", "generic"):
                self._prepare(target, fname, getattr(cfg, fname))
            self._prepare(target, "master_rx_lower_pri", cfg.master_rx_lower_pri)
            # vrrp.c vrrp_complete_instance(): own value, else smtp_alert_vrrp, else smtp_alert.
            if cfg.smtp_alert is not None:
                target.smtp = cfg.smtp_alert
            elif g.smtp_alert_vrrp is not None:
                target.smtp = g.smtp_alert_vrrp
            else:
                target.smtp = g.smtp_alert
            target.priority_changes = (
                g.vrrp_notify_priority_changes
                if cfg.priority_changes is None
                else cfg.priority_changes
            )
        # keepalived opens the global FIFO, then the vrrp one; each fifo
        # script is started before its FIFO is opened (lib/notify.c fifo_open()).
        for key, fifo in (("notify_fifo", g.notify_fifo), ("vrrp_notify_fifo", g.vrrp_notify_fifo)):
            self._open_fifo(key, fifo)

    def _prepare(self, target: _Target, fname: str, script: NotifyScript | None) -> None:
        if script is None:
            return
        keyword = "notify" if fname == "generic" else f"notify_{fname}"
        label = f"{target.name} {keyword}"
        prepared = self._check(label, script)
        if prepared is not None:
            target.hooks[fname] = prepared

    def _check(self, label: str, script: NotifyScript) -> _Hook | None:
        vs = VrrpScript(label, script.argv, user=script.user, group=script.group)
        prepared = prepare_script(vs, self.gdefs)
        if isinstance(prepared, str):
            # keepalived's check_notify_script_secure() frees such a script.
            self.disabled[label] = prepared
            log.error("notify_script_disabled", hook=label, reason=prepared)
            return None
        command, identity = prepared
        return _Hook(label, command, identity)

    def _open_fifo(self, key: str, fifo: NotifyFifo) -> None:
        if fifo.path is None:
            return
        if any(f.path == fifo.path for f in self.fifos):
            # keepalived warns that the same FIFO twice duplicates every line;
            # one writer is enough.
            log.warning("notify_fifo_duplicate", fifo=fifo.path, keyword=key)
            return
        if fifo.script is not None:
            hook = self._check(f"{key}_script", fifo.script)
            if hook is not None:
                hook.command = ScriptCommand(
                    (*hook.command.argv, fifo.path), hook.command.executable
                )
                task = self._spawn_script(
                    hook, (), FIFO_SCRIPT_TIMEOUT, "fifo_script", self._fifo_pgids.append
                )
                self._fifo_scripts.append(task)
        writer = NotifyFifoWriter(fifo.path, fifo.user, fifo.group)
        why = writer.open()
        if why is not None:
            log.error("notify_fifo_failed", keyword=key, error=why)
            return
        log.info("notify_fifo_opened", keyword=key, fifo=fifo.path)
        self.fifos.append(writer)

    async def stop(self, priorities: Mapping[str, int]) -> None:
        """keepalived's shutdown: fifo readers SIGTERMed, STOP for every instance
        then every group, STOP scripts and pending mails given STOP_WAIT, the
        rest killed, the FIFOs closed (and unlinked if we created them)."""
        for pgid in self._fifo_pgids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGTERM)
        running = [t for t in self._fifo_scripts if not t.done()]
        if running:
            # Let them go before the STOP lines, so a reader that stops on
            # SIGTERM does not also see them (keepalived: script_killall()
            # comes first; the STOP lines then wait for any other reader).
            await asyncio.wait(running, timeout=FIFO_SCRIPT_GRACE)
        self._stop_tasks.clear()
        for (kind, name), _target in list(self.targets.items()):
            if kind == "INSTANCE":
                self.instance_state(name, "STOP", priorities.get(name, 0))
        for (kind, name), _target in list(self.targets.items()):
            if kind == "GROUP":
                self.group_state(name, "STOP")
        waiting = set(self._stop_tasks) | {t for t in self._tasks if t.get_name() == "mail"}
        if waiting:
            await asyncio.wait(waiting, timeout=STOP_WAIT)
        pending = [t for t in (*self._tasks, *self._fifo_scripts) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)
        for writer in self.fifos:
            writer.close()

    def close(self) -> None:
        """Kill what still runs and close the FIFOs (idempotent; start-up failures)."""
        for task in (*self._tasks, *self._fifo_scripts):
            task.cancel()
        for writer in self.fifos:
            writer.close()

    @property
    def has_scripts(self) -> bool:
        """Any notify script configured (keepalived's script-security warning counts them)."""
        g = self.gdefs
        return any(
            getattr(t.cfg, f) is not None
            for t in self.targets.values()
            for f in (
                "master",
                "backup",
                "fault",
                "stop",
                "deleted",
                "generic",
                "master_rx_lower_pri",
            )
        ) or any(
            f.script is not None and f.path is not None for f in (g.notify_fifo, g.vrrp_notify_fifo)
        )

    # -------------------------------------------------------------- notifies

    def instance_state(self, name: str, state: str, priority: int) -> None:
        """An instance entered `state`; `priority` is its effective priority."""
        target = self.targets.get(("INSTANCE", name))
        if target is None:
            return
        # vrrp_notify.c: an instance whose sync group is already in this
        # state stays quiet (the group has notified).
        sync = self.sync_state
        if target.notifies_sent and sync is not None and sync(name) == state:
            return
        if state == "DELETED" and not target.cfg.notify_deleted:
            state = "FAULT"  # keepalived's backward-compatible default
        target.notifies_sent = True
        self._send(target, state, priority)

    def group_state(self, name: str, state: str) -> None:
        """A sync group entered `state` (GROUP notifies carry priority 0)."""
        target = self.targets.get(("GROUP", name))
        if target is None:
            target = self.targets[("GROUP", name)] = _Target("GROUP", name, NotifyConfig())
            if self._started:
                self._resolve_smtp(target)
        self._send(target, state, 0)

    def _resolve_smtp(self, target: _Target) -> None:
        g = self.gdefs
        target.smtp = g.smtp_alert if g.smtp_alert_vrrp is None else g.smtp_alert_vrrp

    def priority_changed(self, name: str, state: str, priority: int) -> None:
        """notify_priority_changes: MASTER_PRIORITY or BACKUP_PRIORITY on the FIFOs."""
        target = self.targets.get(("INSTANCE", name))
        if target is None or not target.priority_changes:
            return
        event = "MASTER_PRIORITY" if state == "MASTER" else "BACKUP_PRIORITY"
        self._fifo_line("INSTANCE", name, event, priority)

    def master_rx_lower_pri(self, name: str, priority: int) -> None:
        """A MASTER heard a lower-priority advert (keepalived send_event_notify())."""
        target = self.targets.get(("INSTANCE", name))
        if target is None:
            return
        hook = target.hooks.get("master_rx_lower_pri")
        if hook is not None:
            # keepalived runs it for every such advert; a flood must not
            # become a flood of processes: one at a time per instance.
            running = target.lower_pri_task
            if running is not None and not running.done():
                self.counters.scripts_skipped += 1
            else:
                target.lower_pri_task = self._spawn_script(hook, (), NOTIFY_TIMEOUT, "notify")
        self._fifo_line("INSTANCE", name, "MASTER_RX_LOWER_PRI", priority)

    def _send(self, target: _Target, state: str, priority: int) -> None:
        # vrrp_notify.c send_instance_notifies(): specific, generic, FIFO, mail.
        fname = state.lower() if state in STATES else ""
        hook = target.hooks.get(fname)
        stopping = state == "STOP"
        timeout = STOP_WAIT + 5.0 if stopping else NOTIFY_TIMEOUT
        if hook is not None:
            task = self._spawn_script(hook, (), timeout, "notify")
            if stopping:
                self._stop_tasks.add(task)
        generic = target.hooks.get("generic")
        if generic is not None:
            word = state if state in STATES else "{UNKNOWN}"
            extra = (target.kind, target.name, word, str(priority))
            task = self._spawn_script(generic, extra, timeout, "notify")
            if stopping:
                self._stop_tasks.add(task)
        self._fifo_line(target.kind, target.name, state, priority)
        self._mail(target, state)

    # ----------------------------------------------------------------- FIFO

    def _fifo_line(self, kind: str, name: str, state: str, priority: int) -> None:
        if not self.fifos:
            return
        line = f'{kind} "{name}" {state} {priority}\n'
        for writer in self.fifos:
            if writer.write(line):
                self.counters.fifo_lines += 1
            else:
                self.counters.fifo_dropped += 1
                self._limited(
                    "warning",
                    ("fifo", writer.path),
                    "notify_fifo_line_dropped",
                    fifo=writer.path,
                    error=writer.last_error or "FIFO full (no reader?)",
                )

    # -------------------------------------------------------------- scripts

    def _spawn_script(
        self,
        hook: _Hook,
        extra: tuple[str, ...],
        timeout: float,
        kind: str,
        on_spawn: Callable[[int], None] | None = None,
    ) -> asyncio.Task[ScriptResult]:
        self.counters.scripts_started += 1
        coro = self._run(hook, extra, timeout, kind, on_spawn)
        task = asyncio.get_running_loop().create_task(coro, name=kind)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _run(
        self,
        hook: _Hook,
        extra: tuple[str, ...],
        timeout: float,
        kind: str,
        on_spawn: Callable[[int], None] | None,
    ) -> ScriptResult:
        argv = (*hook.command.argv, *extra)
        # A pipe keeping the first and last STDERR_MAX bytes: a hook (or a
        # fifo script, alive for the daemon's life) writing stderr in a loop
        # costs CPU, never memory.
        cap = StderrCapture(STDERR_MAX)

        def spawned(pid: int) -> None:
            cap.spawned()
            if on_spawn is not None:
                on_spawn(pid)

        try:
            result = await run_script(
                argv,
                timeout,
                user=hook.identity.user,
                group=hook.identity.group,
                executable=hook.command.executable,
                stderr_fd=cap.write_fd,
                on_spawn=spawned,
            )
        finally:
            cap.close()
        stderr = cap.text()
        log.debug("notify_script_done", hook=hook.label, argv=list(argv), ok=result.ok)
        if kind == "fifo_script":
            # keepalived: "vrrp notify fifo script terminated" (expected at stop).
            log.info(
                "notify_fifo_script_exited",
                hook=hook.label,
                status=result.exit_status,
                signal=result.signal,
                stderr=stderr or None,
            )
            return result
        if result.timed_out:
            self.counters.scripts_timed_out += 1
        if not result.ok:
            self.counters.scripts_failed += 1
            self._limited(
                "warning",
                ("script", hook.label),
                "notify_script_failed",
                hook=hook.label,
                status=result.exit_status,
                signal=result.signal,
                timed_out=result.timed_out or None,
                error=result.error,
                stderr=stderr or None,
            )
        elif stderr:
            self._limited(
                "info",
                ("stderr", hook.label),
                "notify_script_stderr",
                hook=hook.label,
                stderr=stderr,
            )
        return result

    # ----------------------------------------------------------------- mail

    def _mail(self, target: _Target, state: str) -> None:
        g = self.gdefs
        if not target.smtp or (g.no_email_faults and state == "FAULT"):
            return
        if target.last_email_state == state or state not in SMTP_TEXT:
            return
        target.last_email_state = state
        if not g.notification_email or not g.smtp_server:
            return  # keepalived: no recipients or no server, no mail
        subject_tail, inst_body, group_body = SMTP_TEXT[state]
        what = "VRRP Instance" if target.kind == "INSTANCE" else "VRRP Group"
        router_id = g.router_id or socket.gethostname()
        mail = Mail(
            sender=g.notification_email_from or _default_from(),
            recipients=g.notification_email,
            subject=f"[{router_id}] {what} {target.name} - {subject_tail}",
            body=inst_body if target.kind == "INSTANCE" else group_body,
        )
        task = asyncio.get_running_loop().create_task(self._deliver(mail), name="mail")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, mail: Mail) -> None:
        g = self.gdefs
        assert g.smtp_server is not None
        timeout = float(g.smtp_connect_timeout or SMTP_DEFAULT_TIMEOUT)
        helo = g.smtp_helo_name or socket.gethostname() or "localhost"
        try:
            await send_mail(g.smtp_server, g.smtp_port, helo, mail, timeout)
        except (SmtpError, OSError) as exc:
            self.counters.mails_failed += 1
            self._limited(
                "warning",
                ("smtp",),
                "smtp_alert_failed",
                server=f"{g.smtp_server}:{g.smtp_port}",
                subject=mail.subject,
                error=str(exc) or type(exc).__name__,
            )
            return
        self.counters.mails_sent += 1
        log.info("smtp_alert_sent", subject=mail.subject)

    # --------------------------------------------------------------- status

    def _limited(self, level: str, key: tuple[str, ...], event: str, **kw: object) -> None:
        folded = self._limit.allow(key)
        if folded is None:
            return
        if folded:
            kw["suppressed"] = folded
        getattr(log, level)(event, **{k: v for k, v in kw.items() if v is not None})

    def status(self) -> dict[str, Any]:
        c = self.counters
        return {
            "scripts_started": c.scripts_started,
            "scripts_failed": c.scripts_failed,
            "scripts_timed_out": c.scripts_timed_out,
            "scripts_skipped": c.scripts_skipped,
            "scripts_running": sum(1 for t in self._tasks if t.get_name() == "notify"),
            "disabled": dict(self.disabled),
            "fifo_lines": c.fifo_lines,
            "fifo_dropped": c.fifo_dropped,
            "fifos": [w.path for w in self.fifos],
            "mails_sent": c.mails_sent,
            "mails_failed": c.mails_failed,
        }


def _default_from() -> str:
    """keepalived's default notification_email_from: USER@HOSTNAME."""
    try:
        import pwd

        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = "root"
    return f"{user}@{socket.gethostname()}"
