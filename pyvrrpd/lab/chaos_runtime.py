"""The chaos test's runtime: the shared context, a systemd-like supervisor, the 20 ms checker.

- :class:`Supervisor` restarts a load balancer's daemon 1 s after it exits, as
  systemd's ``Restart=always`` / ``RestartSec=1`` would, by the PID we started
  only, and notices when the new one has handled its start-up (its first state
  change in its log);
- :class:`Checker` dumps each load balancer's addresses over netlink every
  20 ms and hands the VIP holders to the judge (:mod:`pyvrrpd.lab.chaos_rules`);
- :class:`Ctx` is what they and the driver (:mod:`pyvrrpd.lab.chaos_driver`)
  share; the judge is only touched under its lock.

Everything here acts inside the lab's namespaces only.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pyvrrpd.lab.chaos_rules import RESTART_GRACE, Judge
from pyvrrpd.lab.netns import LBS, VIP, Lab, LabError
from pyvrrpd.lab.services import DaemonKind, Services, daemon_argv
from pyvrrpd.lab.vipwatch import AddrWatch

RESTART_SEC = 1.0  # systemd RestartSec=
SAMPLE_EVERY = 0.02
SUPERVISE_EVERY = 0.05
EXIT_WAIT = 5.0  # a daemon still alive this long after SIGTERM/SIGKILL is noted
# The daemon has handled its start-up once it logs its first state change.
READY_RE: dict[str, re.Pattern[bytes]] = {
    "pyvrrpd": re.compile(rb'"event": "state_change"'),
    "keepalived": re.compile(rb"Entering (BACKUP|MASTER|FAULT) STATE"),
}

Out = Callable[[str], None]


class ChaosServices(Services):
    """:class:`Services` that can run another daemon command and remembers each log's name."""

    def __init__(
        self, lab: Lab, kind: DaemonKind, argv: Sequence[str] | None = None, tag: str = ""
    ) -> None:
        super().__init__(lab, kind)
        self.argv = list(argv) if argv else daemon_argv(kind)
        self.tag = tag  # passes sharing a lab must not share log files
        self.log_names: dict[str, list[str]] = {lb: [] for lb in LBS}

    def start_daemon(self, host: str) -> subprocess.Popen[bytes]:
        if self.daemon_running(host):
            raise LabError(f"{host}: daemon already running")
        n = self._starts[host] = self._starts.get(host, 0) + 1
        name = f"{host}-{self.kind}{self.tag}-{n}"
        proc = self.lab.spawn(host, self.argv, name)
        self.daemons[host] = proc
        self.log_names[host].append(name)
        return proc

    def daemon_log(self, host: str) -> str:
        names = self.log_names.get(host)
        path = self.lab.log_path(names[-1]) if names else None
        return path.read_text(errors="replace") if path and path.exists() else ""


@dataclass(slots=True)
class Ctx:
    """What the three threads share; the judge and ``holders`` only under ``lock``."""

    lab: Lab
    svc: ChaosServices
    judge: Judge
    out: Out
    t0: float = field(default_factory=time.monotonic)
    w0: float = field(default_factory=time.time)
    lock: threading.RLock = field(default_factory=threading.RLock)
    holders: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    haproxy_back_at: dict[str, float] = field(default_factory=dict)

    def now(self) -> float:
        return time.monotonic() - self.t0

    def log(self, host: str | None, kind: str, detail: str = "", fault: bool = False) -> None:
        with self.lock:
            ev = self.judge.event(self.now(), host, kind, detail, fault)
        self.out(ev.describe())

    def note(self, text: str) -> None:
        with self.lock:
            self.notes.append(f"{self.now():8.2f}s {text}")
        self.out(f"{self.now():8.2f}s NOTE {text}")


# ---------------------------------------------------------------- supervisor


class Supervisor:
    """Restarts each load balancer's daemon after it exits; tracks start-up."""

    def __init__(self, ctx: Ctx, restart_sec: float = RESTART_SEC) -> None:
        self.ctx = ctx
        self.restart_sec = restart_sec
        self.ready = dict.fromkeys(LBS, False)
        self.stopped = dict.fromkeys(LBS, False)  # SIGSTOPped (set by the driver)
        self._seen_exit: dict[str, object] = {}
        self._ready_proc: dict[str, object] = {}
        self._restart_at: dict[str, float | None] = dict.fromkeys(LBS)
        self._scan: dict[str, tuple[str, int]] = {}
        self._signalled: dict[str, tuple[float, str]] = {}
        self._exit_by: dict[str, float | None] = dict.fromkeys(LBS)
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-supervisor", daemon=True)

    def start(self) -> None:
        for lb in LBS:  # the daemons of the pass's set-up are up and past start-up
            self.ready[lb] = self.ctx.svc.daemon_running(lb)
            self._ready_proc[lb] = self.ctx.svc.daemons.get(lb)
        self._thread.start()

    def stop(self) -> None:
        self._halt.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)

    def signalled(self, lb: str, name: str) -> None:
        """The driver sent ``name`` to ``lb``'s daemon (to classify its exit)."""
        self._signalled[lb] = (self.ctx.now(), name)
        if name in ("SIGTERM", "SIGKILL"):
            self.ready[lb] = False
            self._exit_by[lb] = self.ctx.now() + EXIT_WAIT

    def _run(self) -> None:
        while not self._halt.wait(SUPERVISE_EVERY):
            for lb in LBS:
                try:
                    self._tick(lb)
                except Exception as exc:  # keep supervising; the pass reports it
                    self.ctx.note(f"supervisor error on {lb}: {exc!r}")

    def _tick(self, lb: str) -> None:
        ctx = self.ctx
        proc = ctx.svc.daemons.get(lb)
        now = ctx.now()
        if proc is not None and self._seen_exit.get(lb) is not proc:
            rc = proc.poll()
            if rc is not None:
                self._on_exit(lb, proc, rc)
                return
            fresh = self._ready_proc.get(lb) is not proc  # each process is ready once
            if fresh and not self.stopped[lb] and self._started(lb):
                self._ready_proc[lb] = proc
                self.ready[lb] = True
                with ctx.lock:
                    ctx.judge.restore(now, lb, "daemon")
                    if ctx.judge.boxes[lb].exempt_why == "SIGKILL":
                        ctx.judge.unexempt(now, lb, RESTART_GRACE)
                ctx.log(lb, "daemon_ready", ctx.svc.log_names[lb][-1])
            deadline = self._exit_by[lb]
            if deadline is not None and now > deadline:
                self._exit_by[lb] = None
                ctx.note(f"{lb}: daemon still running {EXIT_WAIT:.0f} s after SIGTERM/SIGKILL")
                self.ready[lb] = True
                with ctx.lock:
                    ctx.judge.restore(now, lb, "daemon")
            return
        due = self._restart_at[lb]
        if due is not None and now >= due and not self._halt.is_set():
            self._restart_at[lb] = None
            ctx.svc.start_daemon(lb)
            name = ctx.svc.log_names[lb][-1]
            self._scan[lb] = (name, 0)
            ctx.log(lb, "daemon_restart", name)

    def _on_exit(self, lb: str, proc: object, rc: int) -> None:
        ctx = self.ctx
        self._seen_exit[lb] = proc
        self.ready[lb] = False
        self._exit_by[lb] = None
        now = ctx.now()
        with ctx.lock:
            ctx.judge.impair(now, lb, "daemon")
            haproxy_down = "haproxy" in ctx.judge.boxes[lb].bad
        why = f"signal {signal.Signals(-rc).name}" if rc < 0 else f"exit {rc}"
        ctx.log(lb, "daemon_exit", why)
        self._restart_at[lb] = now + self.restart_sec
        t_sig, sig = self._signalled.get(lb, (-1e9, ""))
        recent = now - t_sig < EXIT_WAIT
        if recent and sig in ("SIGTERM", "SIGKILL"):
            return
        if haproxy_down or ctx.haproxy_back_at.get(lb, -1e9) > now - 3.0:
            return  # the guide's check script ran `killall keepalived`
        last = f"after {sig} at {t_sig:.2f} s" if recent else "no signal sent to it"
        ctx.note(
            f"{lb}: daemon exited unexpectedly ({why}; {last}); log {ctx.svc.log_names[lb][-1]}"
        )

    def _started(self, lb: str) -> bool:
        """Scan the new part of the daemon's log for its first state change."""
        name, off = self._scan.get(lb, (self.ctx.svc.log_names[lb][-1], 0))
        path = self.ctx.lab.log_path(name)
        try:
            with open(path, "rb") as f:
                f.seek(max(0, off - 200))
                data = f.read(1 << 20)
        except OSError:
            return False
        self._scan[lb] = (name, max(0, off - 200) + len(data))
        return READY_RE[self.ctx.svc.kind].search(data) is not None


# ---------------------------------------------------------------- checker


class Checker:
    """Samples the VIP holders every 20 ms and feeds the judge."""

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self.watch = AddrWatch({lb: ctx.lab.hosts[lb].netns for lb in LBS})
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-checker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._halt.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        self.watch.close()

    def _run(self) -> None:
        ctx = self.ctx
        # A flood keeps both cores busy; a higher priority for this thread alone
        # keeps the 20 ms sampling from being starved (best effort).
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), -10)
        next_t = ctx.now()
        while not self._halt.is_set():
            t = ctx.now()
            try:
                holders = self.watch.holders(VIP)
            except OSError as exc:
                ctx.note(f"checker: netlink dump failed: {exc}")
                holders = None
            if holders is not None:
                with ctx.lock:
                    before = len(ctx.judge.violations)
                    ctx.judge.sample(t, holders)
                    ctx.holders = holders
                    new = ctx.judge.violations[before:]
                for v in new:
                    ctx.out(f"{v.start:8.2f}s !! {v.rule}: {v.detail}")
            next_t += SAMPLE_EVERY
            self._halt.wait(max(0.0, next_t - ctx.now()))
