"""Private PID namespaces for the pair LAN's hosts (tests/netns/_pair.py).

A plain ``ip netns exec`` shares the host's PID namespace and /proc, so
``pidof haproxy`` on lb1 would also see lb2's stand-in (or another test's
HAProxy). :func:`start_holder` gives a host its own PID and mount namespace
(``unshare --pid --fork --mount-proc``, as pyvrrpd/lab does) with a sleeping
PID 1; :func:`nsenter` builds the command that runs a program inside it.
Everything started here is registered in ``pair.procs`` so the pair's
teardown kills it; the holder dying takes its whole PID namespace with it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.netns._pair import Pair, wait_for


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (host PIDs)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def start_holder(pair: Pair, host: str) -> int:
    """Give ``host`` its own PID namespace; returns the host PID of its PID 1."""
    cmd = ["ip", "netns", "exec", pair.ns(host)]
    cmd += ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "sleep", "3600"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    pair.procs[f"{host}-holder"] = proc
    assert wait_for(lambda: bool(children_of(proc.pid)), timeout=5.0) is not None
    return children_of(proc.pid)[0]


def nsenter(holder: int) -> list[str]:
    """Command prefix running a program in the holder's net, PID and mount namespaces."""
    return ["nsenter", "-t", str(holder), "-n", "-p", "-m", f"--wd={os.getcwd()}", "--"]


def start_daemon(pair: Pair, host: str, holder: int, conf: Path) -> subprocess.Popen[bytes]:
    """`pyvrrpd run` inside the host's PID namespace, logging to the pair's log file."""
    log = open(pair.workdir / f"{host}.log", "ab")  # noqa: SIM115
    cmd = [*nsenter(holder), sys.executable, "-m", "pyvrrpd", "run", "-f", str(conf)]
    cmd += ["--control-socket", pair.sock(host), "--log-format", "json"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    pair.procs[host] = proc
    return proc


def start_in(pair: Pair, key: str, holder: int, argv: list[str]) -> int:
    """Run ``argv`` in the holder's namespaces; returns its host PID."""
    proc = subprocess.Popen([*nsenter(holder), *argv], stdin=subprocess.DEVNULL)
    pair.procs[key] = proc
    assert wait_for(lambda: bool(children_of(proc.pid)), timeout=5.0) is not None
    return children_of(proc.pid)[0]


def kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
