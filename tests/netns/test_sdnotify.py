"""systemd's notify protocol, spoken to a real listener: READY, WATCHDOG, RELOADING, STOPPING.

A datagram socket bound in the abstract namespace (NOTIFY_SOCKET=@name; such
names belong to a network namespace, so it is bound inside the daemon's)
receives what `pyvrrpd run` sends, with WATCHDOG_USEC set as systemd sets it
for WatchdogSec=2s.
"""

from __future__ import annotations

import itertools
import secrets
import signal
import socket
import time

import pytest

from tests.netns._nshelp import in_netns
from tests.netns._pair import Pair, wait_for

pytestmark = pytest.mark.netns


class Listener:
    """What systemd's end of NOTIFY_SOCKET sees: (arrival time, fields) per datagram."""

    def __init__(self, netns: str) -> None:
        self.name = f"@pyvrrpd-test-{secrets.token_hex(4)}"
        with in_netns(netns):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.sock.bind("\0" + self.name[1:])
        self.sock.setblocking(False)
        self.got: list[tuple[float, dict[str, str]]] = []

    def drain(self) -> list[tuple[float, dict[str, str]]]:
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return self.got
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if line)
            self.got.append((time.monotonic(), fields))

    def seen(self, key: str) -> list[float]:
        return [t for t, f in self.drain() if key in f]


def test_ready_watchdog_reloading_stopping(pair: Pair) -> None:
    lst = Listener(pair.ns("lb1"))
    try:
        env = {"NOTIFY_SOCKET": lst.name, "WATCHDOG_USEC": "2000000"}
        proc = pair.start("lb1", 100, env=env)
        assert wait_for(lambda: bool(lst.seen("READY")), 8.0), pair.log("lb1")
        ready = next(f for _, f in lst.got if "READY" in f)
        assert ready["READY"] == "1" and ready["MAINPID"] == str(proc.pid)
        # Pinged every WatchdogSec/4 = 0.5 s while the timers run on time.
        t0 = time.monotonic()
        assert wait_for(lambda: len([t for t in lst.seen("WATCHDOG") if t > t0]) >= 3, 3.0)
        pings = [t for t in lst.seen("WATCHDOG") if t > t0]
        gaps = [b - a for a, b in itertools.pairwise(pings)]
        print(f"\nwatchdog ping gaps: {', '.join(f'{g:.3f}' for g in gaps)} s")
        assert all(0.3 < g < 1.0 for g in gaps)

        n_ready = len(lst.seen("READY"))
        pair.signal("lb1", signal.SIGHUP)
        assert wait_for(lambda: bool(lst.seen("RELOADING")), 5.0), pair.log("lb1")
        reloading = next(f for _, f in lst.got if "RELOADING" in f)
        assert int(reloading["MONOTONIC_USEC"]) > 0
        # The reload's verdict is a READY=1 again.
        assert wait_for(lambda: len(lst.seen("READY")) > n_ready, 5.0)

        pair.signal("lb1", signal.SIGTERM)
        assert wait_for(lambda: bool(lst.seen("STOPPING")), 5.0)
        proc.wait(timeout=10)
        assert proc.returncode == 0
    finally:
        lst.sock.close()
