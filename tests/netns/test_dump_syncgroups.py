"""The dumps of a vrrp_sync_group: pyvrrpd's next to keepalived 2.2.7's.

The real keepalived 2.2.7 and then pyvrrpd run the same configuration
(tests/data/keepalived-2.2.7-dumps/syncgroup.conf, its track file moved into
the test's directory) on lb1, alone on the LAN, until both members hold
their VIPs; each gets SIGUSR1 and SIGRTMIN+2 with TMPDIR set to a directory
of its own (tests/netns/test_dump_trackers.py's run_and_dump), and their
dumps are compared: the "VRRP Sync groups" section, the scripts (written as
/bin/true and /usr/bin/awk: both show keepalived's resolved path), the track
files and processes with their instance lists, the members' topology lines
but for the times and keepalived's socket fds, and the JSON but for
last_transition and the counters' values.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from tests.netns._pair import Pair, ip, wait_for
from tests.netns.test_dump_trackers import FIX, need_keepalived, run_and_dump, sections

pytestmark = pytest.mark.netns

# Lines that legitimately differ between two runs (times) or have no
# counterpart in pyvrrpd (keepalived's per-instance socket fds).
VARYING = re.compile(r"   (Last transition|Read timeout|fd_in) ")
VIPS = (" 192.0.2.10/", " 192.0.2.20/")


class _BothVipsFirst:
    """The daemon's Popen, but a SIGUSR1 waits until both members' VIPs are on
    lb1: run_and_dump waits for the first one, and the dumps say per address
    whether it is set."""

    def __init__(self, proc: subprocess.Popen[bytes], pair: Pair) -> None:
        self._proc, self._pair = proc, pair

    def send_signal(self, sig: int) -> None:
        if sig == signal.SIGUSR1:
            assert wait_for(self._both_set, 5), "VI_2's VIP never set"
        self._proc.send_signal(sig)

    def wait(self, timeout: float | None = None) -> int:
        return self._proc.wait(timeout=timeout)

    def _both_set(self) -> bool:
        out = ip("-n", self._pair.ns("lb1"), "-4", "-o", "addr", "show", "dev", "eth0").stdout
        return all(v in out for v in VIPS)


def starter(pair: Pair, start: Callable[..., subprocess.Popen[bytes]]) -> Callable[..., Any]:
    return lambda *a, **kw: _BothVipsFirst(start(*a, **kw), pair)


def test_sync_group_dumps_match_keepalived(pair: Pair) -> None:
    need_keepalived()
    conf = (FIX / "syncgroup.conf").read_text().replace("/tmp/pvdk", str(pair.workdir))
    ka = run_and_dump(pair, "keepalived", starter(pair, pair.start_keepalived), conf, "MASTER")
    py = run_and_dump(pair, "pyvrrpd", starter(pair, pair.start), conf, "MASTER")
    assert pair.procs["lb1"].returncode == 0
    (ka_data, ka_json), (py_data, py_json) = ka, py

    theirs, ours = sections(ka_data), sections(py_data)
    for name in ("VRRP Sync groups", "VRRP Scripts", "VRRP Track files", "VRRP Track processes"):
        assert ours[name] == theirs[name], name
    assert ours["VRRP Sync groups"][0] == " VRRP Sync Group = G1, MASTER"
    assert "   Command = '/usr/bin/true'" in ours["VRRP Scripts"]
    assert (
        "   Generic state transition script = '/usr/bin/true', uid:gid 0:0"
        in (ours["VRRP Sync groups"])
    )

    def steady(lines: list[str]) -> list[str]:
        return [line for line in lines if not VARYING.match(line)]

    assert steady(ours["VRRP Topology"]) == steady(theirs["VRRP Topology"])
    assert ours["VRRP Topology"].count("   Sync group = G1") == 2
    # Sections in keepalived's order (its socket pool has no counterpart).
    assert list(ours) == [n for n in theirs if n in ours]

    for mine, kas in zip(json.loads(py_json), json.loads(ka_json), strict=True):
        assert list(mine["data"]) == list(kas["data"])
        del mine["data"]["last_transition"], kas["data"]["last_transition"]
        assert mine["data"] == kas["data"]
        assert list(mine["stats"]) == list(kas["stats"])
        assert mine["stats"]["become_master"] == 1
