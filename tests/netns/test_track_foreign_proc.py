"""vrrp_track_process in a PID namespace without its own /proc (issue 8 review).

`unshare --pid --fork` without --mount-proc (a hand-made container, some
runtimes' sidecars): the daemon and its HAProxy share a PID namespace, but
/proc is the parent's, so it lists their PIDs as the parent namespace
numbers them, and both boxes' stand-ins under the same name. Before the
fix the tracker opened pidfds on those numbers in its own namespace, never
counted the local HAProxy and held the instance in FAULT: no VIP anywhere.

Here each box (priorities 100/90, weight 0) runs a stand-in `haproxy` (a
/bin/sleep symlink) in its own PID namespace on the host's /proc:
- lb1 becomes MASTER with its own stand-in counted once (lb2's, listed in
  the same /proc, is not in lb1's namespace and is not counted);
- SIGKILL of lb1's stand-in puts the VIP on lb2 within Skew_Time + 100 ms
  (the death comes through the pidfd, not the 1 s scan).

And, with each box's own /proc: both HAProxies dead leaves both boxes in
FAULT and the VIP nowhere (keepalived does the same); the first to come
back takes the VIP, and it is never on two boxes.
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

SKEW_90 = (256 - 90) / 256  # RFC 3768 6.1, advert_int 1


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[StandinLab]:
    """Each box in a PID namespace that keeps the host's /proc (no --mount-proc)."""
    if not os.path.exists("/proc/self/ns/pid"):
        pytest.skip("no PID namespaces")
    with standin_lab(tmp_path, own_proc=False) as lab:
        yield lab


def test_pid_namespace_on_the_host_proc_counts_its_own_haproxy_and_fails_over(
    lab: StandinLab,
) -> None:
    pair = lab.pair
    standin = {h: lab.standin(h) for h in lab.holders}
    lab.start_daemons()
    t = pair.tracker("lb1", "process")
    # Its own stand-in only, under the number the host's /proc gives it.
    assert (t["status"], t["count"], t["pids"]) == ("up", 1, [standin["lb1"]])
    assert "track_process_proc_mismatch" in pair.log("lb1")

    t0 = time.monotonic()
    os.kill(standin["lb1"], signal.SIGKILL)
    moved = first_time(lambda: set(lab.watch.holders(VIP)) == {"lb2"}, t0, 3.0, 0.005)
    assert moved is not None, f"VIP never moved:\n{pair.log('lb1')[-2000:]}"
    print(f"kill -> VIP on lb2: {moved * 1000:.0f} ms (bound {(SKEW_90 + 0.1) * 1000:.0f} ms)")
    assert moved <= SKEW_90 + 0.1
    assert pair.fast_state("lb1") == "FAULT"


def test_both_haproxies_dead_then_one_back_puts_the_vip_on_exactly_that_box(
    tmp_path: Path,
) -> None:
    """Both boxes' HAProxy die (weight 0): both FAULT and no VIP, as keepalived
    (nothing can serve). When lb2's comes back, the VIP goes to lb2 and only
    there (sampled every 20 ms, never on two boxes), lb1 stays FAULT."""
    with standin_lab(tmp_path) as lab:
        pair, watch = lab.pair, lab.watch
        standin = {h: lab.standin(h) for h in lab.holders}
        lab.start_daemons()
        for h in ("lb1", "lb2"):
            os.kill(standin[h], signal.SIGKILL)
        assert (
            wait_for(lambda: pair.fast_state("lb1") == pair.fast_state("lb2") == "FAULT", 3.0, 0.02)
            is not None
        )
        assert wait_for(lambda: not watch.holders(VIP), 1.0, 0.02) is not None
        lab.standin("lb2", "haproxy2")
        seen: set[tuple[str, ...]] = set()
        t0 = time.monotonic()
        moved = None
        while time.monotonic() - t0 < 8.0:
            now = tuple(sorted(watch.holders(VIP)))
            seen.add(now)
            if now == ("lb2",) and moved is None:
                moved = time.monotonic() - t0
            if moved is not None and time.monotonic() - t0 > moved + 1.5:
                break
            time.sleep(0.02)
        assert moved is not None, f"VIP never came back:\n{pair.log('lb2')[-2000:]}"
        # scan (<= 1 s) + Master_Down_Interval at priority 90 (3.65 s)
        print(f"lb2's HAProxy back -> VIP on lb2: {moved:.2f} s")
        assert seen <= {(), ("lb2",)}, seen
        assert pair.fast_state("lb1") == "FAULT"
