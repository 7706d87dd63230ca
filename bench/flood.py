"""Flood benchmark: pyvrrpd against the real keepalived under the same protocol-112 flood.

Run as root from the repository (after scripts/setup.sh --test):

    .venv/bin/python -m bench.flood [--duration S] [--rounds N] [--ramp-step S]

Each round and daemon gets a fresh three-host LAN (tests/netns/_pair.py):
lb1 MASTER (priority 100), lb2 BACKUP (90), and an injector that floods for
``--duration`` seconds from one pinned core (pyvrrpd.lab.flood: wrong-password
adverts, unknown VRIDs, malformed packets, valid lower-priority adverts). The
injector acts as a box of its own: nice -20 on its core, never waiting for the
lab's queues; the switch port facing it hands its receive work to the other
core. Printed per daemon (median [min-max] over rounds):

- packets/s the injector offered (put on its wire) and the lab took in (a
  veth refuses what the next hop's full input queue cannot take),
- packets/s that reached lb1's IP layer, the kernel's drops at the daemon's
  raw sockets (/proc/net/raw), packets/s the daemon read (arrived minus drops)
  and counted (its own counters; keepalived counts only adverts with a known
  VRID, not checksum/version errors: its USR2 stats file, in a private /tmp),
- the longest gap between lb1's adverts (captured on lb1's eth0, kernel
  timestamps) and the adverts lb1 sent during the flood,
- lb1 daemon RSS before / peak / after, VIP samples not on lb1 alone, lb2's state,
- ``--global-defs "vrrp_rt_priority 50; vrrp_no_swap"``: a global_defs block
  (statements split at ';') for both daemons, to compare scheduling settings;
  lb1's scheduling policy and whether it survived are printed per round,
- after the flood, a ramp of rate-limited floods (``--ramp-step`` s each,
  x1.5 per step): the highest rate that reached the daemon with under 1%
  kernel drops, i.e. what it classifies before the kernel starts dropping.

Under the full flood both daemons are short of CPU (the lab's softirq work and
the injector fill both cores), so what they count there is far below the
ramp's figure. pyvrrpd reads junk (anything that does not look like one of its
routers' adverts) from a second, throttled queue at most ~13k packets/s by
design (pyvrrpd/io/vrrp_socket.py), so its ramp figure is that cap; its own
routers' adverts never wait behind junk. Timing figures are noisy when
anything else runs on the cores.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pyvrrpd.io.errors import HostError
from pyvrrpd.lab.flood import Flood, FloodError, parse_mix
from pyvrrpd.lab.floodmeasure import (
    FloodFigures,
    RampStep,
    capacity_ramp,
    measure_flood,
    steer_rx,
    with_children,
)
from pyvrrpd.shell.ops.control import query
from tests.netns._pair import PLAIN_CONF, VIP, Pair, pair_lan, wait_for

KEEPALIVED = "/usr/sbin/keepalived"
DAEMONS = ("pyvrrpd", "keepalived")
_NOT_RECEIVED = {"advert_sent", "become_master", "release_master", "pri_zero_sent"}
_INSIDE_ADVERT_RCVD = {"addr_list_err", "pri_zero_rcvd"}


# ------------------------------------------------------------------ pyvrrpd


def pyvrrpd_counted(pair: Pair, host: str) -> int | None:
    """Accepted adverts + every drop reason + unknown-VRID packets (control socket)."""
    try:
        # The full reply: `pyvrrpd status --json` prints only the instances.
        st = query(pair.sock(host), timeout=15.0)
    except HostError:
        return None
    total = 0
    for inst in st["instances"]:
        skip = _NOT_RECEIVED | _INSIDE_ADVERT_RCVD
        total += sum(v for k, v in inst["stats"].items() if k not in skip)
    for iface in st["interfaces"].values():
        total += int(iface["unknown_vrid_packets"])
    return total


# ------------------------------------------------------------------ keepalived


def conf_text(prio: int, global_defs: str) -> str:
    """The lab's instance, after a global_defs block of `global_defs` (';'-separated)."""
    body = PLAIN_CONF.format(prio=prio, extra="", vip=VIP)
    stmts = [s.strip() for s in global_defs.split(";") if s.strip()]
    if not stmts:
        return body
    return "global_defs {\n" + "".join(f"  {s}\n" for s in stmts) + "}\n" + body


def sched_of(pids: list[int]) -> str:
    """Scheduling policy and priority (or nice) of each pid, as chrt/ps would show."""
    names = {os.SCHED_OTHER: "OTHER", os.SCHED_RR: "RR", os.SCHED_FIFO: "FIFO"}
    out = []
    for pid in pids:
        try:
            policy = os.sched_getscheduler(pid) & ~os.SCHED_RESET_ON_FORK
            prio = os.sched_getparam(pid).sched_priority
            nice = os.getpriority(os.PRIO_PROCESS, pid)
        except OSError:
            continue
        out.append(f"{pid}:{names.get(policy, policy)} {prio} nice {nice}")
    return ", ".join(out)


def start_keepalived(
    pair: Pair, host: str, prio: int, global_defs: str = ""
) -> subprocess.Popen[bytes]:
    """keepalived with a private /tmp (tmpfs in its own mount namespace) for its stats file.

    `ip netns exec`, `unshare` and `sh` all exec: the Popen pid is keepalived's parent.
    """
    conf = pair.workdir / f"{host}.conf"
    conf.write_text(conf_text(prio, global_defs))
    wd = pair.workdir
    # -G: no syslog; with no syslog daemon glibc would copy every line to the
    # (serial) console, which costs far more than the flood itself.
    ka = f"{KEEPALIVED} -n -l -D -G -P -f {conf} -p {wd}/{host}-ka.pid -r {wd}/{host}-ka-vrrp.pid"
    script = f"mount -t tmpfs -o size=4m,mode=1777 pvd-flood-tmp /tmp && exec {ka}"
    cmd = ["ip", "netns", "exec", pair.ns(host), "unshare", "--mount", "--propagation", "private"]
    cmd += ["sh", "-c", script]
    log = open(wd / f"{host}.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    pair.procs[host] = proc
    return proc


_STATS_FIELDS = re.compile(r"^\s*(Received|Length|TTL|Invalid Type|Advertisement Interval|"
                           r"Type Mismatch|Failure):\s*(\d+)", re.M)  # fmt: skip


def keepalived_counted(pid: int) -> int | None:
    """Adverts received + packet and authentication errors from keepalived's USR2 stats.

    keepalived.md 4.2: "Received" (first match) counts accepted adverts; its
    error counters exclude unknown VRIDs, checksum and version errors, which
    keepalived only logs. The priority-zero "Received" is inside the first.
    """
    path = Path(f"/proc/{pid}/root/tmp/keepalived.stats")  # its private /tmp
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    os.kill(pid, signal.SIGUSR2)
    if wait_for(lambda: path.exists() and path.stat().st_size > 0, timeout=10.0) is None:
        return None
    time.sleep(0.1)  # written in one go, but let the writer finish
    text = path.read_text()
    total, seen_received = 0, False
    for m in _STATS_FIELDS.finditer(text):
        if m.group(1) == "Received":
            if seen_received:  # "Priority Zero: Received" is inside advert_rcvd
                continue
            seen_received = True
        total += int(m.group(2))
    return total


def keepalived_state(pair: Pair, host: str) -> str | None:
    states = re.findall(r"Entering (\w+) STATE", pair.log(host))
    return states[-1] if states else None


# ------------------------------------------------------------------ one run


@dataclass
class Run:
    """One daemon, one round: the flood's figures and the capacity ramp after it."""

    fig: FloodFigures
    ramp: list[RampStep]

    def _within(self) -> RampStep | None:
        ok = [s for s in self.ramp if s.drop_ratio <= RAMP_MAX_DROP]
        return ok[-1] if ok else None

    @property
    def capacity_pps(self) -> float | None:
        """Packets/s that reached the daemon with under 1% kernel drops (the last such step)."""
        step = self._within()
        return step.arrived_pps if step else None

    @property
    def capacity_counted_pps(self) -> float | None:
        step = self._within()
        return step.counted_pps if step else None


RAMP_MAX_DROP = 0.01


def one_run(kind: str, args: argparse.Namespace, workroot: Path) -> tuple[Run | None, str]:
    workdir = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=workroot))
    with pair_lan(workdir) as pair:
        state: Callable[[str], str | None]
        gdefs = args.global_defs
        if kind == "pyvrrpd":
            pair.start("lb1", 100, conf_text=conf_text(100, gdefs))
            state = pair.state
        else:
            start_keepalived(pair, "lb1", 100, gdefs)
            state = lambda h: keepalived_state(pair, h)  # noqa: E731
        if wait_for(lambda: state("lb1") == "MASTER", timeout=15.0) is None:
            return None, f"lb1 did not become MASTER:\n{pair.log('lb1')[-1500:]}"
        if kind == "pyvrrpd":
            pair.start("lb2", 90, conf_text=conf_text(90, gdefs))
        else:
            start_keepalived(pair, "lb2", 90, gdefs)
        if wait_for(lambda: state("lb2") == "BACKUP", timeout=15.0) is None:
            return None, f"lb2 did not become BACKUP:\n{pair.log('lb2')[-1500:]}"
        time.sleep(1.0)  # a couple of adverts before the flood
        if not args.no_steer:
            steer_rx(pair.ns("sw"), "p2", {c for c in os.sched_getaffinity(0) if c != args.cpu})
        pid = pair.procs["lb1"].pid
        pids: Callable[[], list[int]]
        counted: Callable[[], int | None]
        if kind == "pyvrrpd":
            pids = lambda: [pid]  # noqa: E731
            counted = lambda: pyvrrpd_counted(pair, "lb1")  # noqa: E731
        else:
            pids = lambda: with_children(pid)  # noqa: E731
            counted = lambda: keepalived_counted(pid)  # noqa: E731
        flood = Flood(
            pair.ns("inj"),
            "192.0.2.66",
            mix=args.mix,
            rate=args.rate,
            duration=args.duration,
            cpu=args.cpu,
            nice=args.nice,
            wait_for_lab=args.wait_for_lab,
        )
        try:
            fig = measure_flood(
                kind,
                flood,
                pair.ns("lb1"),
                "192.0.2.11",
                pids=pids,
                counted=counted,
                holders=pair.holders,
                backup_state=lambda: state("lb2"),
            )
        except (FileNotFoundError, ProcessLookupError):
            # lb1's daemon died mid-flood (its /proc entries went away).
            if pair.procs["lb1"].poll() is None:
                raise
            _keep_logs(args, workdir)
            code = pair.procs["lb1"].returncode
            return None, f"lb1's daemon exited during the flood ({code}):\n{pair.log('lb1')[-800:]}"
        alive = pair.procs["lb1"].poll() is None
        print(f"  lb1 scheduling: {sched_of(pids()) or '-'}; "
              f"{'alive' if alive else 'EXITED'} after the flood", file=sys.stderr)  # fmt: skip
        ramp: list[RampStep] = []
        if args.ramp_step > 0:

            def make(rate: float) -> Flood:
                return Flood(pair.ns("inj"), "192.0.2.66", mix=args.mix, rate=rate,
                             duration=args.ramp_step, cpu=args.cpu, wait_for_lab=True)  # fmt: skip

            ramp = capacity_ramp(make, pids(), counted, max_drop=RAMP_MAX_DROP)
        _keep_logs(args, workdir)
        return Run(fig, ramp), ""


def _keep_logs(args: argparse.Namespace, workdir: Path) -> None:
    if args.keep_logs:
        keep = Path(args.keep_logs) / workdir.name
        keep.mkdir(parents=True, exist_ok=True)
        for log in workdir.glob("*.log"):
            shutil.copy(log, keep / log.name)


# ------------------------------------------------------------------ table

MIB = 2**20
ROWS: tuple[tuple[str, Callable[[Run], float | None], str], ...] = (
    ("flood offered (packets/s)", lambda r: r.fig.flood.offered_pps, "{:,.0f}"),
    ("flood taken in by the lab (packets/s)", lambda r: r.fig.flood.pps, "{:,.0f}"),
    ("reached lb1's IP layer (packets/s)", lambda r: r.fig.arrived_pps, "{:,.0f}"),
    ("kernel drops at daemon sockets (/s)",
     lambda r: r.fig.kernel_drops / r.fig.flood.seconds, "{:,.0f}"),
    ("counted by the daemon (packets/s)", lambda r: r.fig.counted_pps, "{:,.0f}"),
    ("longest advert gap (s)", lambda r: r.fig.longest_gap_s, "{:.3f}"),
    ("adverts sent during the flood", lambda r: r.fig.adverts_in_flood, "{:.0f}"),
    ("RSS before (MiB)", lambda r: r.fig.rss_before / MIB, "{:.1f}"),
    ("RSS peak (MiB)", lambda r: r.fig.rss_peak / MIB, "{:.1f}"),
    ("RSS after (MiB)", lambda r: r.fig.rss_after / MIB, "{:.1f}"),
    ("VIP samples not on lb1 alone", lambda r: len(r.fig.bad_holder_samples), "{:.0f}"),
    ("classified before kernel drops (pkt/s)", lambda r: r.capacity_pps, "{:,.0f}"),
    ("  of which counted (packets/s)", lambda r: r.capacity_counted_pps, "{:,.0f}"),
)  # fmt: skip


def _cell(figs: list[Run], get: Callable[[Run], float | None], fmt: str) -> str:
    vals = [v for v in (get(f) for f in figs) if v is not None]
    if not vals:
        return "-"
    med = fmt.format(statistics.median(vals))
    if len(vals) == 1:
        return med
    return f"{med} [{fmt.format(min(vals))}-{fmt.format(max(vals))}]"


def print_table(results: dict[str, list[Run]], args: argparse.Namespace) -> None:
    kinds = [k for k in args.daemons if results.get(k)]
    print(f"\nflood {args.duration:g} s from CPU {args.cpu}, mix {args.mix}, "
          f"{args.rounds} round(s); median [min-max]")  # fmt: skip
    if args.global_defs:
        print(f"global_defs: {args.global_defs}")
    print(f"{'':38s}" + "".join(f"{k:>26s}" for k in kinds))
    for label, get, fmt in ROWS:
        print(f"{label:38s}" + "".join(f"{_cell(results[k], get, fmt):>26s}" for k in kinds))
    states = {k: ",".join(str(r.fig.backup_state) for r in results[k]) for k in kinds}
    print(f"{'lb2 state after':38s}" + "".join(f"{states[k]:>26s}" for k in kinds))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--duration", type=float, default=10.0, help="flood seconds (default 10)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument(
        "--ramp-step",
        type=float,
        default=2.0,
        help="seconds per step of the capacity ramp after the flood (0: no ramp)",
    )
    ap.add_argument("--daemons", default=",".join(DAEMONS), help="pyvrrpd,keepalived")
    ap.add_argument("--mix", default="all", help="flood mix: all, or kind=weight,...")
    ap.add_argument("--rate", type=float, default=None, help="cap packets/s (default: flat out)")
    ap.add_argument("--cpu", type=int, default=1, help="core the flood is pinned to")
    ap.add_argument("--nice", type=int, default=-20, help="niceness of the flood sender")
    ap.add_argument(
        "--wait-for-lab",
        action="store_true",
        help="sender sleeps while the lab's queues are full (default: never; refused counted)",
    )
    ap.add_argument("--global-defs", default="", metavar="STMTS",
                    help="global_defs statements for both daemons, ';'-separated "
                         "(e.g. 'vrrp_rt_priority 50; vrrp_no_swap')")  # fmt: skip
    ap.add_argument("--keep-logs", metavar="DIR", default=None,
                    help="copy each run's daemon logs into DIR")  # fmt: skip
    ap.add_argument("--no-steer", action="store_true",
                    help="leave the lab's receive work on the sender's core")  # fmt: skip
    args = ap.parse_args(argv)
    args.daemons = [d for d in args.daemons.split(",") if d]
    try:
        parse_mix(args.mix)
    except ValueError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("bench: needs root (network namespaces)", file=sys.stderr)
        return 2
    if args.cpu not in os.sched_getaffinity(0) or len(os.sched_getaffinity(0)) < 2:
        print(f"bench: needs CPU {args.cpu} and at least one other", file=sys.stderr)
        return 2
    if "keepalived" in args.daemons and not os.access(KEEPALIVED, os.X_OK):
        print(f"bench: {KEEPALIVED} missing (apt-get install keepalived)", file=sys.stderr)
        return 2
    # Not under /tmp: keepalived's private tmpfs hides the host's /tmp.
    workroot = Path(tempfile.mkdtemp(prefix="pyvrrpd-flood-", dir="/var/tmp"))
    results: dict[str, list[Run]] = {k: [] for k in args.daemons}
    try:
        for r in range(args.rounds):
            for kind in args.daemons:
                print(f"{kind}: round {r + 1}/{args.rounds}", file=sys.stderr, flush=True)
                try:
                    run, why = one_run(kind, args, workroot)
                except FloodError as e:
                    print(f"bench: {e}", file=sys.stderr)
                    return 1
                if run is None:
                    print(f"bench: {kind}: {why}", file=sys.stderr)
                    continue
                print(f"  {run.fig.flood.describe()}", file=sys.stderr)
                for step in run.ramp:
                    counted = f"{step.counted_pps:,.0f}" if step.counted_pps is not None else "-"
                    print(f"  ramp: offered {step.offered_pps:,.0f}/s, arrived "
                          f"{step.arrived_pps:,.0f}/s, counted {counted}/s, "
                          f"kernel drops {step.drop_ratio:.1%}", file=sys.stderr)  # fmt: skip
                results[kind].append(run)
    finally:
        shutil.rmtree(workroot, ignore_errors=True)
    print_table(results, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
