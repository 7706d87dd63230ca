"""Every signal number delivered to the daemon's handlers, in a child process.

The child runs the real `pyvrrpd.shell.signals` on an asyncio loop around a
stand-in daemon that records what it was asked to do, sends itself each
signal in turn, and reports. This covers every signal number quickly; the
netns test (tests/netns/test_daemon_signals.py) checks the VIP side with the
real daemon. No root, no network.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pyvrrpd.shell import signals as sigs

CHILD = r"""
import asyncio, json, os, signal, sys, types
import structlog
structlog.configure(
    processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
    logger_factory=structlog.PrintLoggerFactory(sys.stdout),
)
from pyvrrpd.config.model import Config
from pyvrrpd.shell import signals

def out(**kw):
    print(json.dumps(kw), flush=True)

class FakeDaemon:
    config = Config()
    instances, scripts, disabled_scripts, interfaces = [], {}, {}, {}
    def request_stop(self, why="request"):
        out(event="fake_stop", why=why)
    def _on_sighup(self):
        out(event="fake_reload")
    def status(self):
        return {"instances": []}
    def clear_stats(self, baseline=None):
        out(event="fake_clear")

async def main(nums):
    signals.block_fault_signals()
    signals.install(FakeDaemon(), asyncio.get_running_loop())
    for n in nums:
        out(event="send", signum=n)
        os.kill(os.getpid(), n)
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)  # dump writes finish on their thread
    out(event="done")

asyncio.run(main([int(a) for a in sys.argv[1:]]))
"""


def run_child(nums: list[int], tmp: Path) -> list[dict[str, object]]:
    """Run CHILD sending itself `nums`; dumps go to `tmp` (its TMPDIR)."""
    env = {**os.environ, "TMPDIR": str(tmp)}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *map(str, nums)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=Path(__file__).parents[2],
    )
    assert proc.returncode == 0, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def by_signal(records: list[dict[str, object]]) -> dict[int, list[dict[str, object]]]:
    """What happened after each `send`, keyed by signal number."""
    out: dict[int, list[dict[str, object]]] = {}
    current: int | None = None
    for rec in records:
        if rec["event"] == "send":
            current = int(rec["signum"])  # type: ignore[call-overload]
            out[current] = []
        elif current is not None and rec["event"] != "done":
            out[current].append(rec)
    return out


def events(recs: list[dict[str, object]]) -> list[object]:
    return [r["event"] for r in recs]


def test_every_signal_is_stop_dump_reload_or_ignored(tmp_path: Path) -> None:
    dumps = [signal.SIGUSR1, signal.SIGUSR2, sigs.SIG_JSON, sigs.SIG_STATS_CLEAR]
    rest = [
        n
        for n in range(1, signal.SIGRTMAX + 1)
        if n not in (signal.SIGKILL, signal.SIGSTOP, *dumps)
        # Default "ignore" or "stop the process": not this module's (see its table).
        and n not in (signal.SIGCHLD, signal.SIGCONT, signal.SIGURG, signal.SIGWINCH)
        and n not in (signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU)
    ]
    # Dumps first: the writer thread must exist when the fault signals come,
    # since a thread with them unblocked would take the default action.
    seen = by_signal(run_child([*dumps, *rest], tmp_path))
    assert set(seen) == {*dumps, *rest}, "the child died before every signal was sent"

    for n in sigs.STOP_SIGNALS:
        assert {"event": "fake_stop", "why": sigs.signal_name(n)} in seen[n], n
    for n in sigs.FAULT_SIGNALS:
        # Sent by kill: a clean stop, and the log names the sender.
        got = seen[n]
        assert {"event": "fake_stop", "why": sigs.signal_name(n)} in got, n
        [rec] = [r for r in got if r["event"] == "signal_received"]
        assert rec["sender_pid"] != 0 and rec["level"] == "warning"
    assert events(seen[signal.SIGHUP]) == ["fake_reload"]
    for n in sigs.IGNORED_SIGNALS:
        [rec] = seen[n]
        assert (rec["event"], rec["signal"]) == ("signal_ignored", sigs.signal_name(n)), n
    for n in (*sigs.SILENT_SIGNALS, 32, 33):
        assert seen[n] == [], n  # ignored without a word; the daemon lives on
    covered = {
        *sigs.STOP_SIGNALS,
        *sigs.FAULT_SIGNALS,
        *sigs.IGNORED_SIGNALS,
        *sigs.SILENT_SIGNALS,
        signal.SIGHUP,
        32,
        33,
    }
    assert set(rest) <= covered

    assert "dump_written" in events(seen[signal.SIGUSR1])
    assert "dump_written" in events(seen[signal.SIGUSR2])
    assert "dump_written" in events(seen[sigs.SIG_JSON])
    assert events(seen[sigs.SIG_STATS_CLEAR])[:2] == ["fake_clear", "dump_written"]
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "keepalived.data",
        "keepalived.json",
        "keepalived.stats",
        "keepalived_parent.data",
    ]


def test_ignored_signals_are_logged_at_most_once_per_interval(tmp_path: Path) -> None:
    seen = run_child([signal.SIGALRM] * 3, tmp_path)
    assert events(seen).count("signal_ignored") == 1


def test_a_dump_that_cannot_be_written_is_one_error_line(tmp_path: Path) -> None:
    seen = by_signal(run_child([signal.SIGUSR2], tmp_path / "missing"))  # no such TMPDIR
    [rec] = seen[signal.SIGUSR2]
    assert (rec["event"], rec["level"], rec["error"]) == (
        "dump_failed",
        "error",
        "No such file or directory",
    )


def test_a_real_segfault_still_kills_the_daemon(tmp_path: Path) -> None:
    """Only kill-sent SEGV is caught: a real fault must not loop or hang."""
    code = (
        "import asyncio, ctypes, types\n"
        "from pyvrrpd.config.model import Config\n"
        "from pyvrrpd.shell import signals\n"
        "async def main():\n"
        "    d = types.SimpleNamespace(config=Config())\n"
        "    signals.install(d, asyncio.get_running_loop())\n"
        "    ctypes.string_at(0)\n"
        "asyncio.run(main())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONFAULTHANDLER"}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        timeout=30,
        cwd=Path(__file__).parents[2],
        env={**env, "TMPDIR": str(tmp_path)},
    )
    assert proc.returncode == -signal.SIGSEGV


@pytest.mark.parametrize("name", [*sigs.SIGNUM, "TDUMP", "data", "BOGUS"])
def test_signum_matches_keepalived(name: str) -> None:
    """`keepalived --signum=NAME`: the number keepalived 2.2.7 prints (or its error)."""
    ours = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from pyvrrpd.cli import keepalived_main; sys.exit(keepalived_main())",
            f"--signum={name}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=Path(__file__).parents[2],
    )
    expected = {
        "STOP": 15,
        "RELOAD": 1,
        "DATA": 10,
        "STATS": 12,
        "STATS_CLEAR": 63,
        "JSON": 36,
    }
    if name in expected:
        assert (ours.returncode, ours.stdout) == (0, f"{expected[name]}\n")
    else:
        assert (ours.returncode, ours.stdout) == (1, "")
        assert ours.stderr == f"Unknown sigfunc {name}\n"
    real = shutil.which("keepalived") or "/usr/sbin/keepalived"
    if not os.access(real, os.X_OK):
        pytest.skip("keepalived not installed: compared with the recorded 2.2.7 answers only")
    theirs = subprocess.run(
        [real, f"--signum={name}"], capture_output=True, text=True, timeout=10, check=False
    )
    assert (ours.returncode, ours.stdout, ours.stderr) == (
        theirs.returncode,
        theirs.stdout,
        theirs.stderr,
    )
