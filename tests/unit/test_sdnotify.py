"""shell/ops/sdnotify.py: datagrams to a real NOTIFY_SOCKET; the watchdog skips late rounds."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest

from pyvrrpd.shell.ops import sdnotify


@pytest.fixture
def listener(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> socket.socket:
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    monkeypatch.setattr(sdnotify, "_SOCKET", path)
    monkeypatch.setattr(sdnotify, "_WATCHDOG_USEC", "200000")  # pings every 50 ms
    monkeypatch.setattr(sdnotify, "_WATCHDOG_PID", None)
    return sock


def received(sock: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except BlockingIOError:
            return out


def test_no_socket_no_datagram(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sdnotify, "_SOCKET", None)
    assert sdnotify.ready() is False
    assert sdnotify.watchdog_usec() is None


def test_messages(listener: socket.socket) -> None:
    assert sdnotify.ready() and sdnotify.reloading() and sdnotify.stopping()
    ready, reloading, stopping = received(listener)
    assert ready.startswith("READY=1\nMAINPID=")
    assert reloading.startswith("RELOADING=1\nMONOTONIC_USEC=")
    assert stopping.startswith("STOPPING=1")


def test_watchdog_for_another_pid_is_not_ours(
    listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sdnotify, "_WATCHDOG_PID", "1")
    assert sdnotify.watchdog_usec() is None


class Heap:
    def __init__(self) -> None:
        self.late = 0.0

    def take_lateness(self) -> float:
        late, self.late = self.late, 0.0
        return late


def test_watchdog_pings_only_while_on_time(listener: socket.socket) -> None:
    async def scenario() -> tuple[int, int, int, int]:
        loop = asyncio.get_running_loop()
        heap = Heap()
        dog = sdnotify.Watchdog.start(loop, heap)
        assert dog is not None and dog.period == pytest.approx(0.05)
        await asyncio.sleep(0.22)
        on_time = dog.pings
        heap.late = 0.5  # a VRRP timer fired half a second late
        await asyncio.sleep(0.06)
        skipped_late_timer = dog.skipped
        time.sleep(0.4)  # the event loop itself stuck
        await asyncio.sleep(0.01)
        skipped_stuck = dog.skipped
        await asyncio.sleep(0.12)
        dog.close()
        return on_time, skipped_late_timer, skipped_stuck, dog.pings

    on_time, skipped_late_timer, skipped_stuck, pings = asyncio.run(scenario())
    assert on_time >= 4
    assert skipped_late_timer >= 1
    assert skipped_stuck > skipped_late_timer  # the tick after the stall
    assert pings > on_time  # back on time: pinging again
    assert received(listener).count("WATCHDOG=1") == pings
