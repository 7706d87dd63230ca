"""``pyvrrpd demo`` (or ``python -m pyvrrpd.lab``): the guide's lab, walked through.

Builds the guide's lab in namespaces and walks through its section 6.

Checks root and tools (one-line error, exit 2), builds the lab (client, lb1, lb2,
ecs1..3, a switch namespace with two bridges), runs the four steps of the guide
with the chosen VRRP daemon, prints one line per step and a summary, and tears
everything down at the end, on any exception and on Ctrl-C/SIGTERM. ``--keep``
leaves the lab up (until Enter or Ctrl-C) and prints how to get a shell on each host.

When a step differs or the lab fails, the tail of every log the lab wrote
(daemons, HAProxy, backends) is printed and the log directory is copied out
of the lab (path printed) before teardown deletes the lab directory.

Exit status: 0 all steps as the guide shows, 1 a step differed, 2 cannot run here,
130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from types import FrameType

from pyvrrpd.lab.netns import VIP, Lab, LabError, cleanup_stale, missing_tools
from pyvrrpd.lab.services import DAEMONS, DaemonKind, Services, daemon_argv, daemon_missing
from pyvrrpd.lab.walkthrough import StepResult, format_step, run_walkthrough


class _Terminated(Exception):
    """Raised from the SIGTERM/SIGINT handler so ``finally`` tears the lab down."""


def _on_term(signum: int, frame: FrameType | None) -> None:
    raise _Terminated(signal.Signals(signum).name)


def preflight(daemon: DaemonKind) -> str | None:
    """A one-line reason the demo cannot run here, or ``None``."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    missing = missing_tools()
    if missing:
        return f"missing tools: {', '.join(missing)} (apt-get install -y haproxy psmisc procps)"
    return daemon_missing(daemon)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The demo's options (shared by ``pyvrrpd demo`` and ``python -m pyvrrpd.lab``)."""
    ap.add_argument(
        "--daemon",
        choices=DAEMONS,
        default="pyvrrpd",
        help="VRRP daemon to run on lb1/lb2 (default: %(default)s)",
    )
    ap.add_argument(
        "--keep",
        action="store_true",
        help="leave the lab up for inspection (until Enter or Ctrl-C)",
    )


def main(argv: list[str] | None = None) -> int:
    """Run the demo; see the module docstring."""
    ap = argparse.ArgumentParser(
        prog="pyvrrpd demo",
        description="The HAProxy + keepalived guide, in network namespaces.",
    )
    add_arguments(ap)
    return run(ap.parse_args(argv))


def report_failure(lab: Lab) -> None:
    """Show what the lab's processes logged, before teardown deletes it.

    The last lines of each log go to stderr; the whole log directory is
    copied out of the lab (teardown removes the lab directory) and its
    path printed.
    """
    for name, tail in lab.log_tails():
        print(f"--- {name} (last lines)", file=sys.stderr)
        print(tail, file=sys.stderr)
    kept = lab.keep_logs()
    if kept is not None:
        print(f"pyvrrpd lab: logs kept in {kept}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Run the demo with parsed options (``--daemon``, ``--keep``)."""
    kind: DaemonKind = args.daemon

    reason = preflight(kind)
    if reason:
        print(f"pyvrrpd lab: {reason}", file=sys.stderr)
        return 2

    old_term = signal.signal(signal.SIGTERM, _on_term)
    # Ctrl-C tears down too, even if our parent started us with SIGINT ignored
    old_int = signal.signal(signal.SIGINT, _on_term)
    lab = Lab()
    results: list[StepResult] = []
    try:
        stale = cleanup_stale()
        if stale:
            print(f"cleaned up stale lab(s): {', '.join(stale)}")
        t0 = time.monotonic()
        lab.build()
        svc = Services(lab, kind)
        print(f"pyvrrpd lab {lab.prefix.rstrip('-')}: client 192.0.2.100 -> VIP {VIP} -> "
              f"lb1/lb2 HAProxy -> ecs1..3 (198.51.100.21-23)")  # fmt: skip
        print(f"VRRP daemon: {' '.join(daemon_argv(kind))}")
        print(f"lab built in {time.monotonic() - t0:.2f} s; walking through the guide, section 6")
        print()
        results = run_walkthrough(svc, on_step=lambda r: print(format_step(r), flush=True))
        print()
        good = sum(r.ok for r in results)
        print(f"summary: {good}/{len(results)} steps as the guide shows, "
              f"total {time.monotonic() - t0:.1f} s")  # fmt: skip
        for r in results:
            if not r.ok:
                print(f"  step {r.number}: VIP on {list(r.holders)}, expected {r.expected}; "
                      f"states {r.states}")  # fmt: skip
        if not (results and all(r.ok for r in results)):
            report_failure(lab)
        if args.keep:
            print()
            print(lab.describe())
            print("lab left up; press Enter (or Ctrl-C) to tear it down")
            with contextlib.suppress(KeyboardInterrupt):
                sys.stdin.readline()
        return 0 if results and all(r.ok for r in results) else 1
    except LabError as e:
        print(f"pyvrrpd lab: {e}", file=sys.stderr)
        report_failure(lab)
        return 2
    except (KeyboardInterrupt, _Terminated):
        print("\ninterrupted; tearing down", file=sys.stderr)
        return 130
    finally:
        # a second signal during teardown must not leave namespaces behind
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            lab.close()
        finally:
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)
