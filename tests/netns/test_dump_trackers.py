"""The dumps with track_process and track_file: pyvrrpd's next to keepalived 2.2.7's.

The real keepalived 2.2.7 and then pyvrrpd run the same configuration
(tests/data/keepalived-2.2.7-dumps/trackers.conf, its files moved into the
test's directory) on lb1, alone on the LAN, each until it holds the VIP;
each gets SIGUSR1 and SIGRTMIN+2 with TMPDIR set to a directory of its own,
and their dumps are compared: the instance's "Tracked files"/"Tracked
processes" lines, the "VRRP Track files" and "VRRP Track processes"
sections, the effective priority, and the JSON (all but last_transition and
the counters, which legitimately differ). The script is written as
/usr/bin/true: keepalived shows a script's resolved path (/bin/true is
/usr/bin/true here), pyvrrpd the path as written. Only processes that run nowhere
are tracked: keepalived counts none in a network namespace (it cannot
subscribe to process events there), pyvrrpd would count real ones.
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


def run_and_dump(
    pair: Pair, who: str, start: Callable[..., subprocess.Popen[bytes]], conf: str
) -> tuple[str, str]:
    tmp = pair.workdir / f"{who}-tmp"
    tmp.mkdir()
    (pair.workdir / "level").unlink(missing_ok=True)  # init_file writes it again
    proc = start("lb1", 150, conf_text=conf, env={"TMPDIR": str(tmp)})
    try:
        assert wait_for(lambda: pair.holders() == ["lb1"], 10), pair.log("lb1")[-2000:]
        proc.send_signal(signal.SIGUSR1)
        data = written(tmp / "keepalived.data")
        proc.send_signal(sigs.SIG_JSON)
        js = written(tmp / "keepalived.json")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    assert wait_for(lambda: pair.holders() == [], 5)
    return data.replace(str(pair.workdir), "DIR"), js


def test_tracker_dumps_match_keepalived(pair: Pair) -> None:
    if not os.access(KEEPALIVED, os.X_OK):
        pytest.skip(f"{KEEPALIVED} not installed")
    conf = (FIX / "trackers.conf").read_text().replace("/tmp/pvdk", str(pair.workdir))
    conf = conf.replace('"/bin/true"', '"/usr/bin/true"')
    ka_data, ka_json = run_and_dump(pair, "keepalived", pair.start_keepalived, conf)
    py_data, py_json = run_and_dump(pair, "pyvrrpd", pair.start, conf)

    assert tracked_lines(py_data) == tracked_lines(ka_data)
    assert "     proc_args, weight 5 reverse" in tracked_lines(py_data)
    theirs, ours = sections(ka_data), sections(py_data)
    for name in ("VRRP Track files", "VRRP Track processes"):
        assert ours[name] == theirs[name], name
    assert "   File = DIR/level" in ours["VRRP Track files"]
    assert "   Effective priority = 125" in ours["VRRP Topology"]
    assert "   Effective priority = 125" in theirs["VRRP Topology"]

    [ka], [py] = json.loads(ka_json), json.loads(py_json)
    assert list(py["data"]) == list(ka["data"])  # same keys in the same order
    for doc in (ka, py):
        del doc["data"]["last_transition"]
    assert py["data"] == ka["data"]
    assert list(py["stats"]) == list(ka["stats"])
    assert py["stats"]["become_master"] == ka["stats"]["become_master"] == 1
