"""Signals sent to the `keepalived` compat daemon never leave two VIP holders (issue 5).

Reproduces the issue's first bullet: `kill -USR1` (then USR2, SIGRTMIN+2,
SIGRTMAX-1) to a MASTER used to kill it with the default action, VIP left
behind, and the backup took over too. Now each writes keepalived's dump and
the master carries on. Then every other catchable signal whose default
action would end the process: the "ignored" ones go to one running master in
one pass (it must stay the only holder throughout), and each "stop" one is
sent to the current master in turn, which must hand over like SIGTERM does
(priority 0: the backup takes the VIP within Skew_Time, not
Master_Down_Interval) before it is restarted as the new backup. Every signal
number is also checked without the network in tests/unit/test_shell_signals.py.

The daemon runs as `keepalived -n -l -f ... -p ... -r ...` with TMPDIR set
to the test's directory, so no dump lands in the host's /tmp.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pyvrrpd.shell import signals as sigs
from tests.netns._pair import Pair, wait_for
from tests.unit import _exporter as exporter

pytestmark = pytest.mark.netns

COMPAT = "import sys; from pyvrrpd.cli import keepalived_main; sys.exit(keepalived_main())"
# RFC 3768 6.1: Skew_Time of the backups here (priorities 100 and 150).
SKEW = {100: (256 - 100) / 256, 150: (256 - 150) / 256}
SLACK = 0.6  # scheduling on a busy 2-core box; still far below Master_Down_Interval (3.4 s+)


def tmpdir(pair: Pair, host: str) -> Path:
    d = pair.workdir / f"{host}-tmp"
    d.mkdir(exist_ok=True)
    return d


def start_compat(pair: Pair, host: str, prio: int, extra: str = "") -> subprocess.Popen[bytes]:
    """`keepalived -n -l` (pyvrrpd's compat command) on `host`, dumps into its own TMPDIR."""
    conf = pair.conf(host, prio, extra)
    log = open(pair.workdir / f"{host}.log", "ab")  # noqa: SIM115
    cmd = ["ip", "netns", "exec", pair.ns(host), sys.executable, "-c", COMPAT]
    cmd += ["-n", "-l", "-f", str(conf), "--control-socket", pair.sock(host)]
    cmd += ["-p", str(pair.workdir / f"{host}.pid"), "-r", str(pair.workdir / f"{host}-vrrp.pid")]
    env = {**os.environ, "TMPDIR": str(tmpdir(pair, host))}
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    pair.procs[host] = proc
    return proc


def log_events(pair: Pair, host: str) -> list[dict[str, object]]:
    out = []
    for line in pair.log(host).splitlines():
        # The compat command's lines: "ctime: keepalived text {json}" (shell/ops/logsetup.py).
        if "{" in line:
            try:
                out.append(json.loads(line[line.index("{") :]))
            except ValueError:
                continue
    return out


def stats(pair: Pair, host: str) -> dict[str, int]:
    st = pair.status(host)["stats"]
    assert isinstance(st, dict)
    return st


def watch_holders(pair: Pair, seconds: float) -> list[list[str]]:
    """Sample the VIP holders every 20 ms for `seconds`."""
    seen = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        seen.append(pair.holders())
        time.sleep(0.02)
    return seen


def elect(pair: Pair, extra: str = "") -> None:
    start_compat(pair, "lb1", 150, extra)
    assert wait_for(lambda: pair.holders() == ["lb1"], 10), pair.log("lb1")[-2000:]
    start_compat(pair, "lb2", 100, extra)
    # BACKUP, and it has heard the master's adverts.
    assert wait_for(lambda: pair.state("lb2") == "BACKUP", 10), pair.log("lb2")[-2000:]
    assert wait_for(lambda: pair.status("lb2")["master"] is not None, 5)


def send_and_wait_for(pair: Pair, host: str, sig: int, path: Path) -> str:
    path.unlink(missing_ok=True)
    pair.signal(host, sig)
    assert wait_for(path.exists, 5), f"{path.name} not written after {sigs.signal_name(sig)}"
    return path.read_text()


def test_dump_signals_keep_the_master(pair: Pair) -> None:
    elect(pair)
    d1, d2 = tmpdir(pair, "lb1"), tmpdir(pair, "lb2")

    data = send_and_wait_for(pair, "lb1", signal.SIGUSR1, d1 / "keepalived.data")
    stats_text = send_and_wait_for(pair, "lb1", signal.SIGUSR2, d1 / "keepalived.stats")
    js = send_and_wait_for(pair, "lb1", sigs.SIG_JSON, d1 / "keepalived.json")
    cleared = send_and_wait_for(pair, "lb1", sigs.SIG_STATS_CLEAR, d1 / "keepalived.stats")
    time.sleep(0.2)  # the counters are cleared once the file is in place
    after_clear = send_and_wait_for(pair, "lb1", signal.SIGUSR2, d1 / "keepalived.stats")
    backup = send_and_wait_for(pair, "lb2", signal.SIGUSR1, d2 / "keepalived.data")

    # The bullet: still alive, still MASTER, VIP on exactly one box.
    assert pair.procs["lb1"].poll() is None and pair.procs["lb2"].poll() is None
    assert pair.state("lb1") == "MASTER" and pair.state("lb2") == "BACKUP"
    assert pair.holders() == ["lb1"]

    # What operators grep and keepalived-exporter parses.
    assert " VRRP Instance = VI_1\n   VRRP Version = 2\n   State = MASTER\n" in data
    [(vi, st)] = exporter.scrape_text(data, stats_text)
    assert (vi.state, vi.wantstate, vi.intf, vi.vrid) == (2, 2, "eth0", 51)
    assert vi.vips == ["192.0.2.10 dev eth0 scope global set"]
    assert st["become_master"] == 1 and st["advert_sent"] >= 1
    assert exporter.parse_json(js)[0]["data"]["state"] == 2
    assert "   State = BACKUP\n   Master router = 192.0.2.11\n   Master priority = 150\n" in backup
    assert exporter.parse_vrrp_data(backup)["VI_1"].vips == ["192.0.2.10 dev eth0 scope global"]
    # STATS_CLEAR wrote the counters, then zeroed them.
    sent_before = exporter.parse_stats(cleared)["VI_1"]["advert_sent"]
    assert exporter.parse_stats(after_clear)["VI_1"]["become_master"] == 0
    assert exporter.parse_stats(after_clear)["VI_1"]["advert_sent"] < sent_before
    for name in ("keepalived.data", "keepalived_parent.data", "keepalived.stats"):
        assert stat.S_IMODE((d1 / name).stat().st_mode) == 0o600
    assert not any(p.name.startswith(".") for p in d1.iterdir())  # no temp files left

    # Every other catchable signal that is not a "stop" one, to the master at
    # once: it stays the only holder and keeps advertising.
    ignored = [*sigs.IGNORED_SIGNALS, *sigs.SILENT_SIGNALS, *sigs.GLIBC_SIGNALS, signal.SIGHUP]
    pri0_before = stats(pair, "lb2")["pri_zero_rcvd"]
    rcvd_before = stats(pair, "lb2")["advert_rcvd"]
    for sig in ignored:
        pair.signal("lb1", sig)
        time.sleep(0.01)
    seen = watch_holders(pair, 2.5)
    assert all(h == ["lb1"] for h in seen), f"holders while signalled: {set(map(tuple, seen))}"
    assert pair.procs["lb1"].poll() is None, pair.log("lb1")[-2000:]
    assert pair.state("lb1") == "MASTER" and pair.state("lb2") == "BACKUP"
    assert stats(pair, "lb2")["pri_zero_rcvd"] == pri0_before
    assert stats(pair, "lb2")["advert_rcvd"] >= rcvd_before + 2  # adverts kept coming
    logged = {e.get("signal") for e in log_events(pair, "lb1") if e["event"] == "signal_ignored"}
    assert logged == {sigs.signal_name(n) for n in sigs.IGNORED_SIGNALS}


def test_stop_signals_hand_over_like_sigterm(pair: Pair) -> None:
    # nopreempt: a restarted daemon stays BACKUP whatever its priority, so the
    # roles simply alternate from one signal to the next.
    extra = "  nopreempt\n"
    elect(pair, extra)
    prio = {"lb1": 150, "lb2": 100}
    master, backup = "lb1", "lb2"
    times = {}
    for sig in (*sigs.STOP_SIGNALS, *sigs.FAULT_SIGNALS):
        name = sigs.signal_name(sig)
        pri0 = stats(pair, backup)["pri_zero_rcvd"]
        t0 = time.monotonic()
        pair.signal(master, sig)
        samples: list[list[str]] = []

        def handed_over(samples: list[list[str]] = samples, new: str = backup) -> bool:
            samples.append(pair.holders())
            return samples[-1] == [new]

        took = wait_for(handed_over, 3.0)
        assert took is not None, f"{name}: holders {pair.holders()}\n{pair.log(master)[-2000:]}"
        times[name] = took
        assert took < SKEW[prio[backup]] + SLACK, f"{name}: hand-over took {took:.2f} s"
        assert all(len(h) <= 1 for h in samples), f"{name}: two holders {samples}"
        assert pair.procs[master].wait(timeout=5) == 0, f"{name}: exit status"
        assert time.monotonic() - t0 < 3.0
        assert stats(pair, backup)["pri_zero_rcvd"] == pri0 + 1, name
        stopping = [e for e in log_events(pair, master) if e["event"] == "stopping"]
        assert stopping and stopping[-1]["signal"] == name
        # Back as the new backup (nopreempt keeps it from taking over).
        start_compat(pair, master, prio[master], extra)
        assert wait_for(lambda h=master: pair.state(h) == "BACKUP", 10), name
        assert pair.holders() == [backup]
        master, backup = backup, master
    print("hand-over after each stop signal (s):", {k: round(v, 3) for k, v in times.items()})
