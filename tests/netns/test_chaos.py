"""Chaos in the guide lab (issue 5 item 12): never two masters, never none for long (root).

Three seeded passes on one guide lab (lb1 priority 100, lb2 priority 90, the
guide's keepalived.conf and check_haproxy.sh, real HAProxy). Each pass applies
at least 15 faults (daemon SIGKILL / SIGTERM / SIGSTOP-SIGCONT, HAProxy killed
and restarted, link down/up, interface re-created, primary address removed and
re-added, floods, USR1 / USR2 / HUP) while a supervisor restarts exited daemons
1 s later and a checker samples the VIP holders every 20 ms. The rules and
their exemptions are in pyvrrpd/lab/chaos_rules.py; every violation is printed
with its time, the fault before it and the daemons' log lines around it.

Seeds 1, 2, 3 unless ``PYVRRPD_CHAOS_SEEDS`` (e.g. ``7,8,9``) says otherwise;
``python -m bench.chaos`` runs more and longer passes.
"""

from __future__ import annotations

import os
import time

import pytest

from pyvrrpd.lab.chaos import PassResult, run_pass
from pyvrrpd.lab.netns import Lab
from pyvrrpd.lab.services import daemon_missing

pytestmark = pytest.mark.netns

FAULTS = 15
BUDGET_S = 300.0  # the issue: three passes under 5 minutes in all


def _seeds() -> list[int]:
    raw = os.environ.get("PYVRRPD_CHAOS_SEEDS", "1,2,3")
    return [int(s) for s in raw.replace(" ", "").split(",") if s]


def test_chaos_three_seeded_passes(guide_lab: Lab) -> None:
    reason = daemon_missing("pyvrrpd")
    if reason:
        pytest.skip(reason)
    t0 = time.monotonic()
    results: list[PassResult] = []
    for seed in _seeds():
        res = run_pass(guide_lab, seed, FAULTS, "pyvrrpd")
        print(res.describe(), flush=True)
        results.append(res)
    took = time.monotonic() - t0
    print(f"chaos: {len(results)} passes in {took:.0f} s")
    assert all(len(r.applied) >= FAULTS for r in results), [len(r.applied) for r in results]
    failed = [r for r in results if not r.ok]
    assert not failed, "\n\n".join(
        f"seed {r.seed}:\n" + "\n".join(v.describe() for v in r.violations) for r in failed
    )
    assert took < BUDGET_S, f"chaos took {took:.0f} s (budget {BUDGET_S:.0f} s)"
