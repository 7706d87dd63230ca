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
from typing import Any

import pytest

from pyvrrpd.io.errors import HostError
from pyvrrpd.lab.vipwatch import AddrWatch
from pyvrrpd.shell.ops.control import query
from tests.netns._pair import VIP, Pair, logged_pair_lan, wait_for
from tests.netns._pidns import start_daemon, start_holder, start_in

pytestmark = pytest.mark.netns

SKEW_90 = (256 - 90) / 256  # RFC 3768 6.1: Skew_Time of the priority-90 backup, advert_int 1

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


def _inst(pair: Pair, host: str) -> dict[str, Any]:
    inst: dict[str, Any] = query(pair.sock(host))["instances"][0]
    return inst


def _state(pair: Pair, host: str) -> str | None:
    try:
        return str(_inst(pair, host)["state"])
    except (OSError, HostError, KeyError, IndexError):
        return None


def _tracker(pair: Pair, host: str) -> dict[str, Any]:
    t: dict[str, Any] = next(t for t in _inst(pair, host)["trackers"] if t["kind"] == "process")
    return t


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[Pair, dict[str, int], Path, AddrWatch]]:
    with logged_pair_lan(tmp_path) as pair:
        bindir = tmp_path / "bin"
        bindir.mkdir()
        (bindir / "haproxy").symlink_to("/bin/sleep")
        holders = {h: start_holder(pair, h) for h in ("lb1", "lb2")}
        watch = AddrWatch({h: pair.ns(h) for h in ("lb1", "lb2")})
        try:
            yield pair, holders, bindir / "haproxy", watch
        finally:
            watch.close()


def test_standin_death_moves_the_vip_within_skew_time(
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

    t = _tracker(pair, "lb1")
    assert (t["name"], t["weight"], t["status"], t["value"]) == ("process:chk_haproxy", 0, "up", 1)
    assert (t["count"], t["quorum"], t["quorum_max"]) == (1, 1, None)
    assert len(t["pids"]) == 1  # the stand-in's PID inside lb1's PID namespace
    assert t["connector"].startswith("unavailable: errno 111")

    t0 = time.monotonic()
    os.kill(standin["lb1"], signal.SIGKILL)
    moved = None
    while time.monotonic() - t0 < 3.0:
        if set(watch.holders(VIP)) == {"lb2"}:
            moved = time.monotonic() - t0
            break
        time.sleep(0.005)
    assert moved is not None, f"VIP never moved:\n{pair.log('lb2')[-2000:]}"
    print(f"kill -> VIP on lb2: {moved * 1000:.0f} ms (bound {(SKEW_90 + 0.1) * 1000:.0f} ms)")
    assert moved <= SKEW_90 + 0.1

    t = _tracker(pair, "lb1")
    assert (t["status"], t["value"], t["count"], t["pids"]) == ("down", 0, 0, [])
    assert _state(pair, "lb1") == "FAULT"
    assert _state(pair, "lb2") == "MASTER"

    # A new stand-in: no connector here, so the scan finds it (1 s interval).
    start_in(pair, "lb1-haproxy2", holders["lb1"], [str(exe), "3600"])
    back = wait_for(lambda: _tracker(pair, "lb1")["status"] == "up", 3.0, 0.05)
    assert back is not None and back < 2.5
    assert wait_for(lambda: _state(pair, "lb1") in ("BACKUP", "MASTER"), 3.0, 0.05) is not None
