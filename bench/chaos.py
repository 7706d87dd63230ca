"""Chaos benchmark: the chaos test's seeded passes, as many as asked, with a summary.

Run as root from the repository (after scripts/setup.sh --test):

    .venv/bin/python -m bench.chaos --seeds 10 --faults 30
    .venv/bin/python -m bench.chaos --seeds 1 --first-seed 7      # replay seed 7
    .venv/bin/python -m bench.chaos --daemon keepalived           # the real keepalived
    .venv/bin/python -m bench.chaos --tree /tmp/snapshot          # a daemon from another checkout

Each pass builds a fresh guide lab (real HAProxy, the guide's configs and
check script), applies the seed's faults while a checker samples the VIP
holders every 20 ms (rules: pyvrrpd/lab/chaos_rules.py), and prints every
violation with the faults before it and the daemons' log lines around it.
Exit status 1 if any pass found a violation.
"""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import sys
import tempfile
import time
from pathlib import Path

from pyvrrpd.lab.chaos import PassResult, run_pass
from pyvrrpd.lab.chaos_plan import KINDS
from pyvrrpd.lab.netns import Lab, cleanup_stale
from pyvrrpd.lab.services import CONF, daemon_missing


def tree_argv(tree: Path, workdir: Path) -> list[str]:
    """A ``keepalived`` launcher running the compat command from ``tree`` (a checkout).

    Named ``keepalived`` so the guide's check script (``killall keepalived``) finds it.
    """
    if not (tree / "pyvrrpd" / "cli" / "main.py").exists():
        raise SystemExit(f"bench.chaos: {tree} has no pyvrrpd/cli/main.py")
    exe = workdir / "keepalived"
    exe.write_text(
        f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(tree.resolve())!r})\n"
        "from pyvrrpd.cli.main import keepalived_main\nsys.exit(keepalived_main())\n"
    )
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    workdir.chmod(0o755)
    return [str(exe), "-n", "-l", "-f", CONF]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--seeds", type=int, default=3, help="number of passes (default 3)")
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--faults", type=int, default=15, help="faults per pass (default 15)")
    ap.add_argument("--daemon", choices=("pyvrrpd", "keepalived"), default="pyvrrpd")
    ap.add_argument("--tree", type=Path, help="run the pyvrrpd daemon from this checkout")
    ap.add_argument(
        "--restart-sec",
        type=float,
        default=1.0,
        help="supervisor's delay before restarting an exited daemon (systemd RestartSec)",
    )
    ap.add_argument("--without", default="", help=f"leave out fault kinds, e.g. flood,recreate "
                    f"(kinds: {','.join(KINDS)})")  # fmt: skip
    ap.add_argument("--keep-logs", type=Path, help="copy each pass's lab logs to DIR/seed-N")
    ap.add_argument("--quiet", action="store_true", help="print only the pass summaries")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench.chaos: needs root (network namespaces)", file=sys.stderr)
        return 2
    reason = daemon_missing(args.daemon)
    if reason and not args.tree:
        print(f"bench.chaos: {reason}", file=sys.stderr)
        return 2
    without = [k for k in args.without.split(",") if k]
    unknown = set(without) - set(KINDS)
    if unknown:
        print(f"bench.chaos: unknown fault kinds {sorted(unknown)} (kinds: {', '.join(KINDS)})",
              file=sys.stderr)  # fmt: skip
        return 2
    cleanup_stale()
    results: list[PassResult] = []
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pyvrrpd-chaos-") as tmp:
        daemon = tree_argv(args.tree, Path(tmp)) if args.tree else None
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            with Lab() as lab:
                lab.build()
                try:
                    res = run_pass(lab, seed, args.faults, args.daemon, daemon,
                                   out=(lambda _s: None) if args.quiet else print,
                                   restart_sec=args.restart_sec, without=without)  # fmt: skip
                finally:
                    if args.keep_logs:
                        shutil.copytree(lab.root / "logs", args.keep_logs / f"seed-{seed}",
                                        dirs_exist_ok=True)  # fmt: skip
            print(res.describe(), flush=True)
            results.append(res)
    bad = [r for r in results if not r.ok]
    print(
        f"== {len(results)} passes ({args.daemon}), {sum(len(r.applied) for r in results)} faults, "
        f"{sum(len(r.violations) for r in results)} violations in {len(bad)} passes "
        f"(seeds {', '.join(str(r.seed) for r in bad) or '-'}), {time.monotonic() - t0:.0f} s"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
