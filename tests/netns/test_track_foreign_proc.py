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
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyvrrpd.io.errors import HostError
from pyvrrpd.lab.vipwatch import AddrWatch
from pyvrrpd.shell.ops.control import query
from tests.netns._pair import VIP, Pair, logged_pair_lan, wait_for
from tests.netns._pidns import children_of, start_daemon, start_in

pytestmark = pytest.mark.netns

SKEW_90 = (256 - 90) / 256  # RFC 3768 6.1, advert_int 1

CONF = """\
vrrp_track_process chk_haproxy {{
  process haproxy
  weight 0
}}
vrrp_instance VI_1 {{
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority {prio}
  advert_int 1
  virtual_ipaddress {{
    {vip}
  }}
  track_process {{
    chk_haproxy
  }}
}}
"""


def _holder_on_host_proc(pair: Pair, host: str) -> int:
    """A PID namespace for `host` that keeps the host's /proc (no --mount-proc)."""
    cmd = ["ip", "netns", "exec", pair.ns(host)]
    cmd += ["unshare", "--pid", "--fork", "--kill-child", "sleep", "3600"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    pair.procs[f"{host}-holder"] = proc
    assert wait_for(lambda: bool(children_of(proc.pid)), timeout=5.0) is not None
    return children_of(proc.pid)[0]


def _inst(pair: Pair, host: str) -> dict[str, Any]:
    inst: dict[str, Any] = query(pair.sock(host))["instances"][0]
    return inst


def _state(pair: Pair, host: str) -> str | None:
    try:
        return str(_inst(pair, host)["state"])
    except (OSError, HostError, KeyError, IndexError):
        return None


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[Pair, dict[str, int], Path, AddrWatch]]:
    if not os.path.exists("/proc/self/ns/pid"):
        pytest.skip("no PID namespaces")
    with logged_pair_lan(tmp_path) as pair:
        bindir = tmp_path / "bin"
        bindir.mkdir()
        (bindir / "haproxy").symlink_to("/bin/sleep")
        holders = {h: _holder_on_host_proc(pair, h) for h in ("lb1", "lb2")}
        watch = AddrWatch({h: pair.ns(h) for h in ("lb1", "lb2")})
        try:
            yield pair, holders, bindir / "haproxy", watch
        finally:
            watch.close()


def test_pid_namespace_on_the_host_proc_counts_its_own_haproxy_and_fails_over(
    lab: tuple[Pair, dict[str, int], Path, AddrWatch],
) -> None:
    pair, holders, exe, watch = lab
    standin = {h: start_in(pair, f"{h}-haproxy", holders[h], [str(exe), "3600"]) for h in holders}
    for host, prio in (("lb1", 100), ("lb2", 90)):
        conf = pair.workdir / f"{host}.conf"
        conf.write_text(CONF.format(prio=prio, vip=VIP))
        start_daemon(pair, host, holders[host], conf)
        want = "MASTER" if host == "lb1" else "BACKUP"
        ok = wait_for(lambda h=host, w=want: _state(pair, h) == w, 10.0, 0.05)  # type: ignore[misc]
        assert ok is not None, f"{host} never {want}:\n{pair.log(host)[-3000:]}"
    assert set(watch.holders(VIP)) == {"lb1"}
    t = next(t for t in _inst(pair, "lb1")["trackers"] if t["kind"] == "process")
    # Its own stand-in only, under the number the host's /proc gives it.
    assert (t["status"], t["count"], t["pids"]) == ("up", 1, [standin["lb1"]])
    assert "track_process_proc_mismatch" in pair.log("lb1")

    t0 = time.monotonic()
    os.kill(standin["lb1"], signal.SIGKILL)
    moved = None
    while time.monotonic() - t0 < 3.0:
        if set(watch.holders(VIP)) == {"lb2"}:
            moved = time.monotonic() - t0
            break
        time.sleep(0.005)
    assert moved is not None, f"VIP never moved:\n{pair.log('lb1')[-2000:]}"
    print(f"kill -> VIP on lb2: {moved * 1000:.0f} ms (bound {(SKEW_90 + 0.1) * 1000:.0f} ms)")
    assert moved <= SKEW_90 + 0.1
    assert _state(pair, "lb1") == "FAULT"


def test_both_haproxies_dead_then_one_back_puts_the_vip_on_exactly_that_box(
    tmp_path: Path,
) -> None:
    """Both boxes' HAProxy die (weight 0): both FAULT and no VIP, as keepalived
    (nothing can serve). When lb2's comes back, the VIP goes to lb2 and only
    there (sampled every 20 ms, never on two boxes), lb1 stays FAULT."""
    from tests.netns._pidns import start_holder

    with logged_pair_lan(tmp_path) as pair:
        bindir = tmp_path / "bin"
        bindir.mkdir()
        exe = bindir / "haproxy"
        exe.symlink_to("/bin/sleep")
        holders = {h: start_holder(pair, h) for h in ("lb1", "lb2")}
        watch = AddrWatch({h: pair.ns(h) for h in ("lb1", "lb2")})
        try:
            standin = {
                h: start_in(pair, f"{h}-haproxy", holders[h], [str(exe), "3600"]) for h in holders
            }
            for host, prio in (("lb1", 100), ("lb2", 90)):
                conf = pair.workdir / f"{host}.conf"
                conf.write_text(CONF.format(prio=prio, vip=VIP))
                start_daemon(pair, host, holders[host], conf)
            assert wait_for(lambda: set(watch.holders(VIP)) == {"lb1"}, 10.0, 0.05) is not None
            assert wait_for(lambda: _state(pair, "lb2") == "BACKUP", 5.0, 0.05) is not None
            for h in ("lb1", "lb2"):
                os.kill(standin[h], signal.SIGKILL)
            assert (
                wait_for(lambda: _state(pair, "lb1") == _state(pair, "lb2") == "FAULT", 3.0, 0.02)
                is not None
            )
            assert wait_for(lambda: not watch.holders(VIP), 1.0, 0.02) is not None
            start_in(pair, "lb2-haproxy2", holders["lb2"], [str(exe), "3600"])
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
            assert _state(pair, "lb1") == "FAULT"
        finally:
            watch.close()
