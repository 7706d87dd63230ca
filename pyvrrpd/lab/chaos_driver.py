"""The chaos test's driver: applies each planned fault, and its recovery after the hold time.

Faults (kinds in :mod:`pyvrrpd.lab.chaos_plan`) act only inside the lab's
namespaces and on processes the lab started, by PID: signals to the daemon's
process tree, HAProxy's PID from its pid file, ``ip -n <lab namespace>`` for
links, interfaces and addresses, and :mod:`pyvrrpd.lab.flood` from the client.
Each one tells the judge first what it takes away (so the rules never see a
fault before they know of it) and what it gives back only once it is back.

A box carries one lasting fault at a time (a second one waits or goes to
the other box); signals need a daemon past its start-up and not stopped.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import random
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pyvrrpd.lab.chaos_plan import FLOOD_MIXES, LASTING, SIGNALS, Fault
from pyvrrpd.lab.chaos_rules import CONT_GRACE
from pyvrrpd.lab.chaos_runtime import Ctx, Supervisor
from pyvrrpd.lab.netns import LBS, LabError, wait_for

READY_WAIT = 5.0  # how long a fault waits for a box that can take it


@dataclass(order=True, slots=True)
class _Due:
    t: float
    seq: int
    host: str | None = field(compare=False)
    what: str = field(compare=False)
    run: Callable[[], None] = field(compare=False)


class Driver:
    """Applies faults and their recoveries on the lab."""

    def __init__(self, ctx: Ctx, sup: Supervisor, seed: int) -> None:
        self.ctx = ctx
        self.sup = sup
        self.rng = random.Random(seed ^ 0x5EED)
        self.pending: list[_Due] = []
        self._seq = itertools.count()
        self.busy: set[str] = set()  # hosts (and "lan") with a lasting fault
        self.applied: list[str] = []
        self.flood_results: list[str] = []

    # ------------------------------------------------------------ time
    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, running recoveries as they fall due."""
        end = self.ctx.now() + seconds
        while True:
            now = self.ctx.now()
            while self.pending and self.pending[0].t <= now:
                self._recover(heapq.heappop(self.pending))
                now = self.ctx.now()
            if now >= end:
                return
            nxt = self.pending[0].t if self.pending else end
            time.sleep(max(0.0, min(end, nxt) - now))

    def _later(self, hold: float, host: str | None, what: str, run: Callable[[], None]) -> None:
        heapq.heappush(self.pending, _Due(self.ctx.now() + hold, next(self._seq), host, what, run))

    def _recover(self, due: _Due) -> None:
        try:
            due.run()
        except (LabError, OSError, subprocess.SubprocessError) as exc:
            self.ctx.note(f"recovery {due.what} on {due.host} failed: {exc}")
        finally:
            self.busy.discard(due.host or "lan")

    def finish(self) -> None:
        """Let every pending recovery happen at its planned time."""
        while self.pending:
            self.sleep(max(0.0, self.pending[0].t - self.ctx.now()))

    def recover_all(self) -> None:
        """Run every pending recovery now, in order (on the way out after an error)."""
        while self.pending:
            self._recover(heapq.heappop(self.pending))

    def wait_free(self, key: str, timeout: float = 10.0) -> bool:
        end = self.ctx.now() + timeout
        while key in self.busy and self.ctx.now() < end:
            self.sleep(0.05)
        return key not in self.busy

    # ------------------------------------------------------------ choosing
    def _roles(self) -> tuple[str, str]:
        with self.ctx.lock:
            holders = sorted(self.ctx.holders)
        master = holders[0] if len(holders) == 1 else self.rng.choice(LBS)
        return master, ("lb2" if master == "lb1" else "lb1")

    def _can(self, kind: str, lb: str) -> bool:
        if kind in SIGNALS and (not self.sup.ready[lb] or self.sup.stopped[lb]):
            return False
        return not (kind in LASTING and lb in self.busy)

    def _host_for(self, f: Fault) -> str | None:
        """The box this fault goes to (its role first, else the other), waiting a little."""
        end = self.ctx.now() + READY_WAIT
        while True:
            master, backup = self._roles()
            order = (master, backup) if f.target == "master" else (backup, master)
            for lb in order:
                if self._can(f.kind, lb):
                    return lb
            if self.ctx.now() >= end:
                return None
            self.sleep(0.05)

    # ------------------------------------------------------------ faults
    def run(self, plan: Iterator[Fault], count: int) -> None:
        """Apply faults from ``plan`` until ``count`` have been applied."""
        gap = 0.0
        while len(self.applied) < count:
            f = next(plan)
            self.sleep(gap)
            gap = f.gap
            if self.apply(f):
                self.applied.append(f"{self.ctx.now():8.2f}s {f.describe()}")

    def apply(self, f: Fault) -> bool:
        ctx = self.ctx
        if f.kind == "flood":
            if not self.wait_free("lan"):
                return False
            return self._flood(f)
        lb = self._host_for(f)
        if lb is None:
            ctx.log(None, "skipped", f"{f.describe()}: no box can take it now")
            return False
        desc = f.describe().replace(f" on {f.target}", f" on {lb} ({f.target})")
        if f.kind in ("kill", "term", "usr1", "usr2", "hup"):
            sig = {
                "kill": signal.SIGKILL,
                "term": signal.SIGTERM,
                "usr1": signal.SIGUSR1,
                "usr2": signal.SIGUSR2,
                "hup": signal.SIGHUP,
            }[f.kind]
            with ctx.lock:
                if sig == signal.SIGKILL:  # rule 1 is lifted from the signal on
                    ctx.judge.exempt(ctx.now(), lb, "SIGKILL")
                if sig in (signal.SIGKILL, signal.SIGTERM):
                    ctx.judge.impair(ctx.now(), lb, "daemon")
            ctx.log(lb, sig.name, desc, fault=True)
            self.sup.signalled(lb, sig.name)
            try:
                ctx.svc.signal_daemon(lb, sig)
            except LabError as exc:
                ctx.note(f"{desc}: {exc}")
            return True
        self.busy.add(lb)
        getattr(self, f"_{f.kind}")(f, lb, desc)
        return True

    def _stop(self, f: Fault, lb: str, desc: str) -> None:
        ctx = self.ctx
        wrapper = ctx.svc.daemons[lb].pid  # nsenter stops itself when its child stops
        pids = ctx.svc.daemon_pids(lb)
        with ctx.lock:
            ctx.judge.exempt(ctx.now(), lb, "SIGSTOP")
            ctx.judge.impair(ctx.now(), lb, "stopped")
        self.sup.stopped[lb] = True
        ctx.log(lb, "SIGSTOP", desc, fault=True)
        self.sup.signalled(lb, "SIGSTOP")
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

        def cont() -> None:
            for pid in [*pids, wrapper]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
            now = ctx.now()
            self.sup.stopped[lb] = False
            with ctx.lock:
                ctx.judge.restore(now, lb, "stopped")
                ctx.judge.unexempt(now, lb, CONT_GRACE)
            ctx.log(lb, "SIGCONT")

        self._later(f.hold, lb, "SIGCONT", cont)

    def _haproxy(self, f: Fault, lb: str, desc: str) -> None:
        ctx = self.ctx
        pid = ctx.svc.haproxy_pid(lb)
        with ctx.lock:
            ctx.judge.impair(ctx.now(), lb, "haproxy")
        ctx.log(lb, "haproxy_kill", desc, fault=True)
        if pid is not None:
            ctx.lab.run(lb, ["kill", f"-{f.variant}", str(pid)], check=False)

        def restart() -> None:
            if pid is not None:
                wait_for(lambda: not ctx.lab.host_path(lb, f"/proc/{pid}").exists(), 5.0)
            ctx.svc.start_haproxy(lb)
            now = ctx.now()
            ctx.haproxy_back_at[lb] = now
            with ctx.lock:
                ctx.judge.restore(now, lb, "haproxy")
            ctx.log(lb, "haproxy_start")

        self._later(f.hold, lb, "haproxy start", restart)

    def _ip(self, *args: str) -> None:
        proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10.0)
        if proc.returncode != 0:
            raise LabError(f"ip {' '.join(args)}: {proc.stderr.strip()}")

    def _link(self, f: Fault, lb: str, desc: str) -> None:
        ctx = self.ctx
        if f.variant == "port":  # the switch side: the box sees its carrier go
            args = ["-n", ctx.lab.switch_ns, "link", "set", f"{lb}-e"]
        else:
            args = ["-n", ctx.lab.hosts[lb].netns, "link", "set", "eth0"]
        with ctx.lock:
            ctx.judge.impair(ctx.now(), lb, "link")
        ctx.log(lb, "link_down", desc, fault=True)
        self._ip(*args, "down")

        def up() -> None:
            self._ip(*args, "up")
            with ctx.lock:
                ctx.judge.restore(ctx.now(), lb, "link")
            ctx.log(lb, "link_up", f.variant)

        self._later(f.hold, lb, "link up", up)

    def _mac(self, lb: str) -> str:
        out = subprocess.run(
            ["ip", "-n", self.ctx.lab.hosts[lb].netns, "-o", "link", "show", "eth0"],
            capture_output=True, text=True, timeout=5.0, check=False,
        ).stdout  # fmt: skip
        m = re.search(r"link/ether ([0-9a-f:]+)", out)
        return m.group(1) if m else "?"

    def _recreate(self, f: Fault, lb: str, desc: str) -> None:
        ctx = self.ctx
        ns = ctx.lab.hosts[lb].netns
        addr = ctx.lab.hosts[lb].spec.ext
        old = self._mac(lb)
        with ctx.lock:
            ctx.judge.impair(ctx.now(), lb, "iface")
        ctx.log(lb, "iface_delete", f"{desc}, old MAC {old}", fault=True)
        self._ip("-n", ns, "link", "del", "eth0")

        def create() -> None:
            sw, port = ctx.lab.switch_ns, f"{lb}-e"
            self._ip("-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth0",
                     "netns", ns)  # fmt: skip
            self._ip("-n", sw, "link", "set", port, "master", "ext", "up")
            self._ip("-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            self._ip("-n", ns, "link", "set", "eth0", "up")
            with ctx.lock:
                ctx.judge.restore(ctx.now(), lb, "iface")
            ctx.log(lb, "iface_create", f"new MAC {self._mac(lb)}")

        self._later(f.hold, lb, "interface re-create", create)

    def _addr(self, f: Fault, lb: str, desc: str) -> None:
        ctx = self.ctx
        ns = ctx.lab.hosts[lb].netns
        addr = f"{ctx.lab.hosts[lb].spec.ext}/24"
        with ctx.lock:
            ctx.judge.impair(ctx.now(), lb, "addr")
        ctx.log(lb, "addr_del", desc, fault=True)
        self._ip("-n", ns, "addr", "del", addr, "dev", "eth0")

        def add() -> None:
            self._ip("-n", ns, "addr", "add", addr, "dev", "eth0")
            with ctx.lock:
                ctx.judge.restore(ctx.now(), lb, "addr")
            ctx.log(lb, "addr_add", addr)

        self._later(f.hold, lb, "address re-add", add)

    def _raw_drops(self, lb: str) -> list[int]:
        """Drop counters of the raw protocol-112 sockets on ``lb`` (its /proc/PID/net/raw)."""
        path = f"/proc/{self.ctx.lab.hosts[lb].holder_pid}/net/raw"
        try:
            rows = [r.split() for r in Path(path).read_text().splitlines()[1:]]
        except OSError:
            return []
        # sl local_address(hex ip:proto) ... drops is the last column
        return [int(r[-1]) for r in rows if r[1].endswith(":0070")]

    def _flood(self, f: Fault) -> bool:
        ctx = self.ctx
        try:
            from pyvrrpd.lab.flood import Flood
        except ImportError:
            ctx.log(None, "skipped", f"{f.describe()}: pyvrrpd.lab.flood not available")
            return False
        client = ctx.lab.hosts["client"]
        mix = FLOOD_MIXES[f.variant]
        valid = "lower_prio" in mix or mix == "all"
        cpu = 1 if 1 in os.sched_getaffinity(0) else None
        flood = Flood(client.netns, client.spec.ext or "", mix=mix, duration=f.hold, cpu=cpu)
        self.busy.add("lan")
        with ctx.lock:
            if valid:
                ctx.judge.hold_absence(ctx.now())
        ctx.log(None, "flood", f.describe(), fault=True)
        before = {lb: self._raw_drops(lb) for lb in LBS}
        try:
            flood.start()
        except Exception as exc:
            ctx.note(f"flood did not start: {exc}")
            flood.kill()

        def end() -> None:
            try:
                res = flood.wait(timeout=f.hold + 15.0)
                detail = f"{res.sent} packets, {res.pps:,.0f}/s"
            except Exception as exc:
                flood.kill()
                detail = f"failed: {exc}"
            for lb in LBS:  # per VRRP socket: where the kernel dropped the flood
                after = self._raw_drops(lb)
                grew = [b - a for a, b in zip(before[lb], after, strict=False)]
                detail += f"; {lb} socket drops +{'/+'.join(map(str, grew)) or '?'}"
            with ctx.lock:
                if valid:
                    ctx.judge.release_absence(ctx.now())
            self.flood_results.append(detail)
            ctx.log(None, "flood_end", detail)

        self._later(f.hold, None, "flood end", end)
        return True
