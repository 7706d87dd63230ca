"""The dumps with track_process and track_file: pyvrrpd's next to keepalived 2.2.7's.

The real keepalived 2.2.7 and then pyvrrpd run the same configuration
(tests/data/keepalived-2.2.7-dumps/trackers.conf, its files moved into the
test's directory) on lb1, alone on the LAN, each until it holds the VIP;
each gets SIGUSR1 and SIGRTMIN+2 with TMPDIR set to a directory of its own,
and their dumps are compared: the instance's "Tracked files"/"Tracked
processes" lines, the "VRRP Track files" and "VRRP Track processes"
sections, the effective priority, and the JSON (all but last_transition and
the counters, which legitimately differ). A second configuration puts
the instance in FAULT (a weight-0 process without quorum) and compares the
same, with the fault count and a file holding " 0x10 junk". The script is
written as /bin/true: both show its resolved path (/usr/bin/true here, see
dumps.keepalived_argv). Only
processes that run nowhere are tracked: keepalived counts none in a network
namespace (it cannot subscribe to process events there), pyvrrpd would
count real ones.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from pyvrrpd.shell import signals as sigs
from tests.netns._pair import Pair, wait_for

pytestmark = pytest.mark.netns

FIX = Path(__file__).parents[1] / "data" / "keepalived-2.2.7-dumps"
KEEPALIVED = "/usr/sbin/keepalived"


def sections(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        m = re.fullmatch(r"------< (.+) >------", line)
        current = m.group(1) if m else current
        out.setdefault(current, []).extend([] if m else [line])
    return out


def tracked_lines(data: str) -> list[str]:
    """The instance's tracker lists: from "Tracked scripts" to the smtp line."""
    topo = sections(data)["VRRP Topology"]
    start = next(i for i, line in enumerate(topo) if line.startswith("   Tracked "))
    end = next(i for i, line in enumerate(topo) if line.startswith("   Using smtp"))
    return topo[start:end]


def written(path: Path) -> str:
    """The file once it exists and stopped growing (keepalived writes in place)."""
    sizes: list[int] = []

    def settled() -> bool:
        sizes.append(path.stat().st_size if path.exists() else -1)
        return len(sizes) > 5 and sizes[-1] > 0 and sizes[-1] == sizes[-6]

    assert wait_for(settled, 5, step=0.02), f"{path.name} not written"
    return path.read_text()


# Log lines: the daemon's start, and its being in each state (MASTER: with
# the VIPs set, as both dumps say whether they are).
ENTERED = {
    "keepalived": {
        "start": "Starting Keepalived",
        "MASTER": "Sending gratuitous ARP on eth0",
        "FAULT": "entering FAULT state",
    },
    "pyvrrpd": {
        "start": '"event": "started"',
        "MASTER": '"event": "vips_set"',
        "FAULT": '"new": "FAULT"',
    },
}


def run_and_dump(
    pair: Pair, who: str, start: Callable[..., subprocess.Popen[bytes]], conf: str, state: str
) -> tuple[str, str]:
    """Start `who` on lb1 with `conf`; its data and JSON dumps once in `state`.

    Signalled only once its log says it got there: a USR1 before keepalived
    set its handlers would end it.
    """
    tmp = pair.workdir / f"{who}-{state}"
    tmp.mkdir()
    (pair.workdir / "level").unlink(missing_ok=True)  # init_file writes it again
    proc = start("lb1", 150, conf_text=conf, env={"TMPDIR": str(tmp)})
    marks = ENTERED[who]
    try:
        seen = wait_for(lambda: marks[state] in pair.log("lb1").rsplit(marks["start"], 1)[-1], 10)
        assert seen is not None, pair.log("lb1")[-2000:]
        assert state != "MASTER" or wait_for(lambda: pair.holders() == ["lb1"], 5)
        proc.send_signal(signal.SIGUSR1)
        data = written(tmp / "keepalived.data")
        assert f"\n   State = {state}\n" in data
        proc.send_signal(sigs.SIG_JSON)
        js = written(tmp / "keepalived.json")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    assert wait_for(lambda: pair.holders() == [], 5)
    return data.replace(str(pair.workdir), "DIR"), js


def same_json(ka_json: str, py_json: str) -> None:
    """Equal but for last_transition and the counters' values."""
    [ka], [py] = json.loads(ka_json), json.loads(py_json)
    assert list(py["data"]) == list(ka["data"])  # same keys in the same order
    for doc in (ka, py):
        del doc["data"]["last_transition"]
    assert py["data"] == ka["data"]
    assert list(py["stats"]) == list(ka["stats"])


def need_keepalived() -> None:
    if not os.access(KEEPALIVED, os.X_OK):
        pytest.skip(f"{KEEPALIVED} not installed")


def test_tracker_dumps_match_keepalived(pair: Pair) -> None:
    need_keepalived()
    conf = (FIX / "trackers.conf").read_text().replace("/tmp/pvdk", str(pair.workdir))
    ka_data, ka_json = run_and_dump(pair, "keepalived", pair.start_keepalived, conf, "MASTER")
    py_data, py_json = run_and_dump(pair, "pyvrrpd", pair.start, conf, "MASTER")
    assert pair.procs["lb1"].returncode == 0

    assert tracked_lines(py_data) == tracked_lines(ka_data)
    assert "     proc_args, weight 5 reverse" in tracked_lines(py_data)
    theirs, ours = sections(ka_data), sections(py_data)
    for name in ("VRRP Track files", "VRRP Track processes"):
        assert ours[name] == theirs[name], name
    assert "   File = DIR/level" in ours["VRRP Track files"]
    assert "   Effective priority = 125" in ours["VRRP Topology"]
    assert "   Effective priority = 125" in theirs["VRRP Topology"]

    same_json(ka_json, py_json)
    assert json.loads(py_json)[0]["stats"]["become_master"] == 1


FAULT_CONF = """\
vrrp_track_process p_args {
  process /usr/sbin/pvdkabsent --x
  param_match initial
}
track_file tf_missing {
  file "DIR/missing"
}
vrrp_track_file tf_hex {
  file "DIR/hex"
  weight 4
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority 100
  advert_int 1
  track_process {
    p_args
  }
  track_file {
    tf_missing weight 0
    tf_hex weight 6 reverse
  }
  virtual_ipaddress {
    192.0.2.10
  }
}
"""


def test_fault_by_a_weight_0_process_dumps_as_keepalived(pair: Pair) -> None:
    """A weight-0 process without quorum: FAULT, one fault counted; a missing
    file reads 0 (no fault at weight 0); " 0x10 junk" reads 16 (x 6, reverse: -96)."""
    need_keepalived()
    (pair.workdir / "hex").write_text(" 0x10 junk\n")
    conf = FAULT_CONF.replace("DIR", str(pair.workdir))
    ka_data, ka_json = run_and_dump(pair, "keepalived", pair.start_keepalived, conf, "FAULT")
    py_data, py_json = run_and_dump(pair, "pyvrrpd", pair.start, conf, "FAULT")

    theirs, ours = sections(ka_data), sections(py_data)
    for line in (
        "   Wantstate = FAULT",
        "   Number of interface and track script faults = 1",
        "   Effective priority = 4",
    ):
        assert line in theirs["VRRP Topology"] and line in ours["VRRP Topology"], line
    assert tracked_lines(py_data) == tracked_lines(ka_data)
    for name in ("VRRP Track files", "VRRP Track processes"):
        assert ours[name] == theirs[name], name
    assert "   Status = 16" in ours["VRRP Track files"]
    same_json(ka_json, py_json)
