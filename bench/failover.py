"""Failover benchmark: pyvrrpd against the real keepalived in the same guide lab, same run.

Run as root from the repository (after scripts/setup.sh --test):

    .venv/bin/python -m bench.failover [--rounds N] [--only classic|haproxy-death]
        [--variants py-process,py-script,ka-script,ka-process]

Two parts, both by default (``--only`` picks one):

classic: for each daemon and round it builds the guide lab (real HAProxy, the
guide's configs and check script), elects lb1, then measures:

- haproxy-death: HAProxy stopped on the master; the guide's check script
  (interval 2 s) runs `killall keepalived`; time until the backup has the VIP
  and the client's longest outage. Dominated by where in the 2 s check period
  HAProxy dies, so each round waits a different offset (the same offsets for
  both daemons) before stopping it: expect 0.65 s + U(0, 2) s.
- sigterm: SIGTERM to the master's daemon; priority-0 hand-over, theory
  Skew_Time of the backup (0.65 s at priority 90).
- sigkill: SIGKILL to the new master (lb2); the old primary (priority 100)
  waits Master_Down_Interval, theory at most 3.61 s after the last advert.
- idle RSS (MiB) and CPU (% of one core over 10 s) of the master's daemon
  processes.

Prints medians per daemon and the ratio pyvrrpd / keepalived (lower is better).

haproxy-death (bench/haproxy_death.py): SIGKILL of HAProxy's master process on
the master box, HAProxy in master-worker mode; detection, priority-0 advert on
the wire, VIP on the backup and the client's longest gap (10 ms requests), for
pyvrrpd with vrrp_track_process, pyvrrpd and keepalived with the guide's
script, and keepalived's own vrrp_track_process (which cannot work in the lab's
network namespaces: reported as what it does). Medians, ratio pyvrrpd
track_process / keepalived guide script, and the issue's targets.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import sys
import time
from collections.abc import Callable

import psutil

from bench import haproxy_death
from pyvrrpd.lab.netns import Lab, cleanup_stale
from pyvrrpd.lab.services import DaemonKind, Services, daemon_missing
from pyvrrpd.lab.walkthrough import measure_takeover, step_start_both, step_stop_lb1

Metrics = dict[str, list[float]]


def _wait(cond: Callable[[], bool], timeout: float) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return True
        time.sleep(0.02)
    return False


def _resources(svc: Services, host: str, seconds: float = 10.0) -> tuple[float, float]:
    procs = [psutil.Process(p) for p in svc.daemon_pids(host)]
    for p in procs:
        p.cpu_percent(None)
    time.sleep(seconds)
    cpu = sum(p.cpu_percent(None) for p in procs)
    rss = sum(p.memory_info().rss for p in procs) / 2**20
    return rss, cpu


def one_round(kind: DaemonKind, out: Metrics, phase: float) -> None:
    lab = Lab()
    try:
        lab.build()
        svc = Services(lab, kind)
        svc.start_backends()
        first = step_start_both(svc)
        if first.holders != ("lb1",):
            raise RuntimeError(f"{kind}: election failed: {first.holders}")
        rss, cpu = _resources(svc, "lb1")
        out["idle_rss_mib"].append(rss)
        out["idle_cpu_pct"].append(cpu)

        # The guide's check runs every 2 s: detection depends on when HAProxy
        # dies within that period. Both daemons get the same per-round offsets.
        time.sleep(phase)
        death = step_stop_lb1(svc)
        if death.vip_after_s is not None:
            out["haproxy_death_vip_s"].append(death.vip_after_s)
        out["haproxy_death_outage_s"].append(death.outage_s)

        # Back to a known pair: lb2 master, lb1 restarted as backup.
        svc.start_haproxy("lb1")
        svc.start_daemon("lb1")
        _wait(lambda: svc.vrrp_state("lb1") == "BACKUP", 8.0)
        time.sleep(1.5)
        term = measure_takeover(svc, "lb2", signal.SIGTERM)
        if term.seconds is not None:
            out["sigterm_takeover_s"].append(term.seconds)
        out["sigterm_outage_s"].append(term.outage_s)

        svc.wait_daemon_exit("lb2", 5.0)  # keepalived takes about a second to exit
        svc.start_daemon("lb2")
        _wait(lambda: svc.vrrp_state("lb2") == "BACKUP", 8.0)
        time.sleep(1.5)
        kill = measure_takeover(svc, "lb1", signal.SIGKILL)
        if kill.seconds is not None:
            out["sigkill_takeover_s"].append(kill.seconds)
        out["sigkill_outage_s"].append(kill.outage_s)
    finally:
        lab.close()


ROWS = (
    ("haproxy_death_vip_s", "HAProxy dies -> backup has VIP (s)"),
    ("haproxy_death_outage_s", "  client outage (s)"),
    ("sigterm_takeover_s", "SIGTERM master -> backup has VIP (s)"),
    ("sigterm_outage_s", "  client outage (s)"),
    ("sigkill_takeover_s", "SIGKILL master -> backup has VIP (s)"),
    ("sigkill_outage_s", "  client outage (s)"),
    ("idle_rss_mib", "master daemon RSS (MiB)"),
    ("idle_cpu_pct", "master daemon CPU idle (% core)"),
)


def _fmt(values: list[float]) -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    return f"{med:7.3f} [{min(values):.2f}-{max(values):.2f}]"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", choices=("classic", "haproxy-death"), default=None)
    ap.add_argument(
        "--variants",
        default=",".join(v.key for v in haproxy_death.VARIANTS),
        help="haproxy-death variants, comma-separated (default: all)",
    )
    args = ap.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in haproxy_death.BY_KEY]
    if unknown:
        print(f"bench: unknown variant(s) {', '.join(unknown)}", file=sys.stderr)
        return 2
    if args.rounds < 1:
        print("bench: --rounds must be at least 1", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("bench: needs root (network namespaces)", file=sys.stderr)
        return 2
    kinds: list[DaemonKind] = ["pyvrrpd", "keepalived"]
    for kind in kinds:
        why = daemon_missing(kind)
        if why:
            print(f"bench: {why}", file=sys.stderr)
            return 2
    with contextlib.suppress(Exception):
        cleanup_stale()
    load0 = os.getloadavg()
    tables: list[str] = []
    if args.only in (None, "classic"):
        tables.append(classic(kinds, args.rounds))
    if args.only in (None, "haproxy-death"):
        res = haproxy_death.run(variants, args.rounds, _progress)
        tables.append(haproxy_death.table(res, args.rounds))
    load1 = os.getloadavg()
    for text in tables:
        print(f"\n{text}")
    print(
        f"\nload average (1/5/15 min) at start {load0[0]:.2f}/{load0[1]:.2f}/{load0[2]:.2f}, "
        f"at end {load1[0]:.2f}/{load1[1]:.2f}/{load1[2]:.2f} ({os.cpu_count()} CPUs)"
    )
    return 0


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def classic(kinds: list[DaemonKind], rounds: int) -> str:
    """The haproxy-death (SIGTERM, guide script), SIGTERM, SIGKILL and idle rows."""
    # Offsets spread over the 2 s check interval, identical for both daemons.
    phases = haproxy_death.phases(rounds)
    results: dict[str, Metrics] = {}
    for kind in kinds:
        metrics: Metrics = {key: [] for key, _ in ROWS}
        for i in range(rounds):
            _progress(f"{kind}: round {i + 1}/{rounds}")
            one_round(kind, metrics, phases[i])
        results[kind] = metrics
    lines = [
        f"guide lab, {rounds} rounds each; median [min-max]; ratio = pyvrrpd / keepalived",
        f"{'metric':40s} {'pyvrrpd':>22s} {'keepalived':>22s} {'ratio':>7s}",
    ]
    for key, label in ROWS:
        py, ka = results["pyvrrpd"][key], results["keepalived"][key]
        ratio = "-"
        if py and ka and statistics.median(ka) > 0:
            ratio = f"{statistics.median(py) / statistics.median(ka):.2f}"
        lines.append(f"{label:40s} {_fmt(py):>22s} {_fmt(ka):>22s} {ratio:>7s}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
