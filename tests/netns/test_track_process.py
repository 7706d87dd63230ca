"""vrrp_track_process in per-host PID namespaces, with a stand-in process (issue 8 item 1).

Two pyvrrpd boxes (priorities 100/90, advert_int 1) on the pair LAN, each in
its own PID and mount namespace (tests/netns/_pidns.py), each running a
stand-in `haproxy`: /bin/sleep reached through a symlink named `haproxy`, so
its /proc/PID/comm is `haproxy` (comm comes from the executed file's name).
Both track `process haproxy` with weight 0. Here the proc connector is out
of reach (not the initial network namespace: errno 111), so the tracker
runs on pidfds and its /proc scan, which is what the test shows:

- at start the master's tracker is up with one PID, and status says why the
  connector is unavailable;
- SIGKILL of the master's stand-in puts the VIP on the backup within the
  backup's Skew_Time (0.648 s at priority 90) + 100 ms, and the old
  master's status shows the tracker down (count 0) and the instance FAULT;
- a new stand-in on the old master is found by the scan: its tracker is up
  again and the instance leaves FAULT.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.netns._pair import VIP, first_time, wait_for
from tests.netns._pidns import StandinLab, standin_lab

pytestmark = pytest.mark.netns

SKEW_90 = (256 - 90) / 256  # RFC 3768 6.1: Skew_Time of the priority-90 backup, advert_int 1


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[StandinLab]:
    with standin_lab(tmp_path) as lab:
        yield lab


def test_standin_death_moves_the_vip_within_skew_time(lab: StandinLab) -> None:
    pair = lab.pair
    standin = {h: lab.standin(h) for h in lab.holders}
    lab.start_daemons()

    t = pair.tracker("lb1", "process")
    assert (t["name"], t["weight"], t["status"], t["value"]) == ("process:chk_haproxy", 0, "up", 1)
    assert (t["count"], t["quorum"], t["quorum_max"]) == (1, 1, None)
    assert len(t["pids"]) == 1  # the stand-in's PID inside lb1's PID namespace
    assert t["connector"].startswith("unavailable: errno 111")

    t0 = time.monotonic()
    os.kill(standin["lb1"], signal.SIGKILL)
    moved = first_time(lambda: set(lab.watch.holders(VIP)) == {"lb2"}, t0, 3.0, 0.005)
    assert moved is not None, f"VIP never moved:\n{pair.log('lb2')[-2000:]}"
    print(f"kill -> VIP on lb2: {moved * 1000:.0f} ms (bound {(SKEW_90 + 0.1) * 1000:.0f} ms)")
    assert moved <= SKEW_90 + 0.1

    t = pair.tracker("lb1", "process")
    assert (t["status"], t["value"], t["count"], t["pids"]) == ("down", 0, 0, [])
    assert pair.fast_state("lb1") == "FAULT"
    assert pair.fast_state("lb2") == "MASTER"

    # A new stand-in: no connector here, so the scan finds it (1 s interval).
    lab.standin("lb1", "haproxy2")
    back = wait_for(lambda: pair.tracker("lb1", "process")["status"] == "up", 3.0, 0.05)
    assert back is not None and back < 2.5
    assert wait_for(lambda: pair.fast_state("lb1") in ("BACKUP", "MASTER"), 3.0, 0.05) is not None
