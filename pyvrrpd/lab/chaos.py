"""Chaos passes in the guide lab (issue 5 item 12): seeded faults while a checker judges.

One pass (:func:`run_pass`): stop whatever runs, start HAProxy and the daemon
on lb1 then lb2 (the guide's order) and wait for the VIP on lb1; then the
driver (:mod:`pyvrrpd.lab.chaos_driver`) applies the seed's faults
(:mod:`pyvrrpd.lab.chaos_plan`) while the supervisor restarts daemons that
exit and the checker samples the VIP holders every 20 ms
(:mod:`pyvrrpd.lab.chaos_runtime`) for the judge (:mod:`pyvrrpd.lab.chaos_rules`).
After the last recovery both daemons must be up and exactly one box hold the
VIP. Each violation comes with the faults before it and the daemons' log
lines around it. Used by ``tests/netns/test_chaos.py`` and ``bench/chaos.py``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pyvrrpd.lab.chaos_driver import Driver
from pyvrrpd.lab.chaos_plan import faults
from pyvrrpd.lab.chaos_rules import Judge, Stats, Violation
from pyvrrpd.lab.chaos_runtime import RESTART_SEC, ChaosServices, Checker, Ctx, Out, Supervisor
from pyvrrpd.lab.netns import LBS, VIP, Lab, LabError, wait_for
from pyvrrpd.lab.services import DaemonKind

SETTLE_TIMEOUT = 20.0
SETTLE_STABLE = 2.0
# Log events not worth showing in an excerpt (per packet, or noise).
_QUIET = {"packet_dropped", "garp_sent", "script_succeeded", "script_exit_changed"}


@dataclass(slots=True)
class PassResult:
    """What one seeded pass found."""

    seed: int
    applied: list[str]
    violations: list[Violation]
    notes: list[str]
    stats: Stats
    seconds: float
    floods: list[str]
    excerpts: list[str]
    errors: list[str]  # the daemons' error log lines, counted by event

    @property
    def ok(self) -> bool:
        return not self.violations

    def describe(self) -> str:
        s = self.stats
        lines = [
            f"== seed {self.seed}: {len(self.applied)} faults, {len(self.violations)} violations, "
            f"{self.seconds:.1f} s",
            f"   checker: {s.samples} samples, longest gap {s.max_gap * 1000:.0f} ms; "
            f"longest absence {s.longest_absence:.2f} s (judged {s.longest_judged_absence:.2f} s); "
            f"excused double holding {s.exempt_double:.2f} s",
        ]
        lines += [f"   fault {a.strip()}" for a in self.applied]
        lines += [f"   flood {x}" for x in self.floods]
        lines += [f"   NOTE {n.strip()}" for n in self.notes]
        lines += [f"   daemon error {e}" for e in self.errors]
        for v, ex in zip(self.violations, self.excerpts, strict=True):
            lines.append(v.describe())
            lines.append(ex)
        return "\n".join(lines)


def _prepare(svc: ChaosServices, out: Out) -> None:
    """Daemons stopped, no VIP anywhere, HAProxy up; then lb1 and lb2 start, VIP on lb1."""
    lab = svc.lab
    for lb in LBS:
        svc.stop_daemon(lb)
        if lab.has_vip(lb):
            out(f"   (set-up: removing a VIP left on {lb})")
            lab.run(lb, ["ip", "addr", "del", f"{VIP}/32", "dev", "eth0"], check=False)
        if not svc.haproxy_running(lb):
            svc.start_haproxy(lb)
    for lb in LBS:  # the guide's order: lb1 up and BACKUP before lb2 starts
        svc.start_daemon(lb)
        if not svc.wait_daemon_ready(lb, 15.0):
            raise LabError(f"{lb}: daemon not ready 15 s after start ({svc.log_names[lb][-1]})")
    ok, _ = wait_for(lambda: lab.vip_holders() == ["lb1"], 15.0, 0.05)
    if not ok:
        raise LabError(f"set-up: VIP not on lb1 alone: {lab.vip_holders()}")


def _settle(ctx: Ctx, sup: Supervisor) -> None:
    """After the last recovery: wait for both daemons and one stable holder."""
    end = ctx.now() + SETTLE_TIMEOUT
    stable_since: float | None = None
    while ctx.now() < end:
        with ctx.lock:
            holders = dict(ctx.holders)
        if all(sup.ready.values()) and len(holders) == 1:
            stable_since = stable_since if stable_since is not None else ctx.now()
            if ctx.now() - stable_since >= SETTLE_STABLE:
                break
        else:
            stable_since = None
        time.sleep(0.05)
    with ctx.lock:
        holders = dict(ctx.holders)
        ready = dict(sup.ready)
        ctx.judge.end_state(
            ctx.now(),
            holders,
            f"{SETTLE_TIMEOUT:.0f} s after the last recovery, daemons ready {ready}",
        )


def run_pass(
    lab: Lab,
    seed: int,
    count: int = 15,
    kind: DaemonKind = "pyvrrpd",
    argv: Sequence[str] | None = None,
    out: Out = print,
    restart_sec: float = RESTART_SEC,
    without: Sequence[str] = (),
) -> PassResult:
    """One seeded pass on a built lab (backends are started if needed)."""
    svc = ChaosServices(lab, kind, argv, tag=f"-s{seed}")
    if not any("backend.py" in c for c in lab.host_cmdlines("ecs1").values()):
        svc.start_backends()
    _prepare(svc, out)
    ctx = Ctx(lab, svc, Judge(LBS), out)
    ctx.out(f"== seed {seed}: chaos with {count} faults ({kind}); VIP on lb1")
    sup = Supervisor(ctx, restart_sec)
    checker = Checker(ctx)
    driver = Driver(ctx, sup, seed)
    try:
        sup.start()
        checker.start()
        driver.run(faults(seed, without), count)
        driver.finish()
        ctx.log(None, "all_recovered")
        _settle(ctx, sup)
    finally:
        driver.recover_all()
        checker.stop()
        sup.stop()
        with ctx.lock:
            ctx.judge.finish(ctx.now())
        for lb in LBS:
            svc.stop_daemon(lb)
    excerpts = [_excerpt(ctx, v) for v in ctx.judge.violations]
    return PassResult(
        seed, driver.applied, list(ctx.judge.violations), list(ctx.notes), ctx.judge.stats,
        ctx.now(), driver.flood_results, excerpts, _errors(ctx),
    )  # fmt: skip


# ---------------------------------------------------------------- log excerpts


def _records(path: str) -> Iterator[tuple[float, dict[str, Any]]]:
    try:
        with open(path, "rb") as f:
            for raw in f:
                # JSON lines, or the compat command's "ctime: keepalived text {json}".
                start = raw.find(b"{")
                if start < 0:
                    continue
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    rec = json.loads(raw[start:])
                    yield datetime.fromisoformat(rec["timestamp"]).timestamp(), rec
    except OSError:
        return


def _errors(ctx: Ctx) -> list[str]:
    """Error-level lines of every daemon run in the pass: count per event, first and last."""
    seen: dict[str, list[tuple[float, str]]] = {}
    for lb in LBS:
        for name in ctx.svc.log_names[lb]:
            for ts, rec in _records(str(ctx.lab.log_path(name))):
                if rec.get("level") in ("error", "critical"):
                    rest = {k: x for k, x in rec.items() if k not in ("timestamp", "level")}
                    text = f"{ts - ctx.w0:.2f}s {name}: " + " ".join(
                        f"{k}={x}" for k, x in rest.items() if k != "event"
                    )
                    seen.setdefault(str(rec.get("event")), []).append((ts, text[:200]))
            with contextlib.suppress(OSError):
                raw = ctx.lab.log_path(name).read_bytes()
                if b"Traceback (most recent call last)" in raw:
                    last = raw.rstrip().rsplit(b"\n", 1)[-1].decode(errors="replace")
                    seen.setdefault("traceback", []).append((0.0, f"{name}: {last[:160]}"))
    out = []
    for event, rows in sorted(seen.items()):
        rows.sort()
        last = f"; last {rows[-1][1]}" if len(rows) > 1 else ""
        out.append(f"{event} x{len(rows)}: first {rows[0][1]}{last}")
    return out


def _excerpt(ctx: Ctx, v: Violation, before: float = 4.0, after: float = 0.5) -> str:
    """The daemons' log lines around a violation (pyvrrpd's JSON logs), per-packet noise folded."""
    lo = ctx.w0 + v.start - before
    hi = ctx.w0 + (v.end if v.end is not None else v.detected or v.start) + after
    rows: list[tuple[float, str, str]] = []
    for lb in LBS:
        for name in ctx.svc.log_names[lb]:
            for ts, rec in _records(str(ctx.lab.log_path(name))):
                if lo <= ts <= hi and rec.get("event") not in _QUIET:
                    rest = {
                        k: x for k, x in rec.items() if k not in ("event", "timestamp", "level")
                    }
                    body = " ".join(f"{k}={x}" for k, x in rest.items())
                    rows.append((ts, f"{lb}#{name.rsplit('-', 1)[1]}", f"{rec['event']} {body}"))
    rows.sort()
    lines: list[str] = []
    last = ""
    repeat = 0
    for ts, who, text in rows:
        key = f"{who} {text.split(' ', 1)[0]}"
        if key == last:
            repeat += 1
            continue
        if repeat:
            lines.append(f"      ... (+{repeat} more {last})")
        last, repeat = key, 0
        lines.append(f"    {ts - ctx.w0:8.2f}s {who} {text[:160]}")
    if repeat:
        lines.append(f"      ... (+{repeat} more {last})")
    if len(lines) > 40:
        lines = [*lines[:20], f"      ... ({len(lines) - 40} lines)", *lines[-20:]]
    return "  daemon logs around it:\n" + ("\n".join(lines) if lines else "    (none)")
