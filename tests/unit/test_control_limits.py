"""Control socket limits (issue 5 item 9): misbehaving clients cannot hurt the daemon.

The server runs in a child process (its own event loop, its own fd table) on
a socket in a tmp dir, so no root is needed and its open fds are counted in
/proc/PID/fd without the test's client sockets. Every test ends with a
well-behaved `status` answered within a bound, the server's fd count back
where it started, and no traceback in its output.
"""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pyvrrpd.shell.ops.control import MAX_REQUEST, query

MAX_CLIENTS = 16
READ_TIMEOUT = 0.5
WRITE_TIMEOUT = 0.5
BIG = 2 << 20
BIG_WRITE_TIMEOUT = 1.5

SERVER = """
import asyncio, dataclasses, sys
from pyvrrpd.shell.ops.control import ControlServer

path, pad = sys.argv[1], int(sys.argv[2])
mc, rt, wt = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])

async def main():
    srv = None
    def status():
        return {"open": srv.connections, "stats": dataclasses.asdict(srv.stats), "pad": "x" * pad}
    srv = ControlServer(path, status, max_clients=mc, read_timeout=rt, write_timeout=wt)
    await srv.start()
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


@dataclass
class Server:
    path: str
    proc: subprocess.Popen[bytes]
    out: Path
    baseline: int = 0

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def status(self, bound: float = 2.0) -> tuple[dict[str, Any], float]:
        t0 = time.monotonic()
        reply = query(self.path, timeout=bound)
        took = time.monotonic() - t0
        assert "error" not in reply, reply
        assert took < bound
        return reply, took

    def settle(self, timeout: float = 5.0) -> None:
        """The server closes everything it held: fd count back to its baseline."""
        deadline = time.monotonic() + timeout
        while self.fds() > self.baseline and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.fds() <= self.baseline, f"{self.fds()} fds open, {self.baseline} at start"

    def output(self) -> str:
        return self.out.read_text(errors="replace")


def _start(tmp_path: Path, pad: int = 0, write_timeout: float = WRITE_TIMEOUT) -> Server:
    path = str(tmp_path / "ctl.sock")
    out = tmp_path / "server.out"
    args = [str(pad), str(MAX_CLIENTS), str(READ_TIMEOUT), str(write_timeout)]
    with open(out, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, path, *args], stdout=log, stderr=subprocess.STDOUT
        )
    server = Server(path, proc, out)
    deadline = time.monotonic() + 10
    while "ready" not in server.output():
        assert proc.poll() is None, server.output()
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    server.baseline = server.fds()
    return server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = _start(tmp_path)
    try:
        yield srv
    finally:
        _stop(srv)


@pytest.fixture
def big_server(tmp_path: Path) -> Iterator[Server]:
    """Replies of 2 MiB (far more than a socket buffer holds), 1.5 s to write them."""
    srv = _start(tmp_path, pad=BIG, write_timeout=BIG_WRITE_TIMEOUT)
    try:
        yield srv
    finally:
        _stop(srv)


def _stop(srv: Server) -> None:
    srv.proc.kill()
    srv.proc.wait()
    assert "Traceback" not in srv.output(), srv.output()


def _connect(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # Blocking connect: with a timeout set, a full listen backlog gives EAGAIN
    # at once on a Unix socket instead of waiting for the server to accept.
    s.connect(path)
    s.settimeout(5)
    return s


def _read_all(s: socket.socket) -> bytes:
    chunks = []
    with contextlib.suppress(ConnectionError):
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture
def many_fds() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"needs 1200 open files, hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_thousand_idle_connections_do_not_lock_out_status(server: Server, many_fds: None) -> None:
    idle = [_connect(server.path) for _ in range(1000)]
    try:
        reply, took = server.status(bound=2.0)
        # The server holds at most its cap, whatever the clients keep open.
        assert server.fds() <= server.baseline + MAX_CLIENTS
        assert reply["open"] <= MAX_CLIENTS
        assert reply["stats"]["evicted"] >= 1000 - MAX_CLIENTS
        print(f"\nstatus answered in {took * 1e3:.1f} ms with 1000 idle connections open")
    finally:
        for s in idle:
            s.close()
    server.settle()


def test_idle_connection_is_dropped_after_read_timeout(server: Server) -> None:
    s = _connect(server.path)
    s.settimeout(READ_TIMEOUT + 3)
    t0 = time.monotonic()
    assert _read_all(s) == b""  # hung up without a word
    assert READ_TIMEOUT * 0.8 < time.monotonic() - t0 < READ_TIMEOUT + 2
    s.close()
    reply, _ = server.status()
    assert reply["stats"]["read_timeouts"] == 1
    server.settle()


def test_never_ending_line_is_refused(server: Server) -> None:
    s = _connect(server.path)
    stop = threading.Event()

    def flood() -> None:
        with contextlib.suppress(OSError):
            while not stop.is_set():
                s.sendall(b"x" * 65536)

    t = threading.Thread(target=flood, daemon=True)
    t.start()
    try:
        reply = _read_all(s)
    finally:
        stop.set()
        t.join(timeout=5)
        s.close()
    assert reply.startswith(b'{"error": "request longer than'), reply[:200]
    status, _ = server.status()
    assert status["stats"]["too_long"] == 1
    server.settle()


def test_request_just_under_the_limit_is_read(server: Server) -> None:
    s = _connect(server.path)
    s.sendall(b"y" * (MAX_REQUEST - 10) + b"\n")
    reply = _read_all(s)
    s.close()
    assert b"unknown command 'yyyy" in reply and len(reply) < 200


def test_client_that_never_reads_a_large_reply(big_server: Server) -> None:
    stuck = []
    for _ in range(MAX_CLIENTS):
        s = _connect(big_server.path)
        s.sendall(b"status\n")
        stuck.append(s)
    try:
        for s in stuck:  # the server has started writing to each of them
            assert s.recv(1, socket.MSG_PEEK) == b"{"
        # Every slot is busy writing: a newcomer is told "busy" and query()
        # retries until the write timeout frees a slot.
        reply, took = big_server.status(bound=BIG_WRITE_TIMEOUT + 3)
        assert len(reply["pad"]) == BIG
        assert reply["stats"]["refused"] >= 1
        print(f"\nstatus answered in {took:.2f} s with {MAX_CLIENTS} clients not reading 2 MiB")
        big_server.settle(timeout=BIG_WRITE_TIMEOUT + 3)
        final, _ = big_server.status(bound=5)
        assert final["stats"]["write_timeouts"] >= MAX_CLIENTS
        # The server's memory does not keep the abandoned replies.
        rss_kib = int(
            next(
                line.split()[1]
                for line in Path(f"/proc/{big_server.proc.pid}/status").read_text().splitlines()
                if line.startswith("VmRSS:")
            )
        )
        assert rss_kib < 200 * 1024, f"server RSS {rss_kib} KiB"
    finally:
        for s in stuck:
            s.close()


@pytest.mark.parametrize(
    "payload",
    [
        b"\xff\xfe\x00\x01garbage\r\n",
        b"\x00" * 100 + b"\n",
        b"status status status\n",
        b'{"json": 1}\n',
        bytes(range(256)).replace(b"\n", b"") + b"\n",
    ],
)
def test_garbage_gets_an_error_reply(server: Server, payload: bytes) -> None:
    s = _connect(server.path)
    s.sendall(payload)
    reply = _read_all(s)
    s.close()
    assert reply.startswith(b'{"error": "unknown command') and reply.endswith(b"\n"), reply
    assert len(reply) < 200
    server.status()
    server.settle()


def test_half_closed_and_vanishing_clients(server: Server) -> None:
    # Write side shut without a word: nothing was asked, the server hangs up.
    s = _connect(server.path)
    s.shutdown(socket.SHUT_WR)
    assert _read_all(s) == b""
    s.close()
    # "status" without a newline, then write side shut: answered.
    s = _connect(server.path)
    s.sendall(b"status")
    s.shutdown(socket.SHUT_WR)
    assert b'"stats"' in _read_all(s)
    s.close()
    # Asks and vanishes before the reply; or connects and vanishes at once.
    for i in range(200):
        s = _connect(server.path)
        if i % 2:
            s.sendall(b"status\n")
            s.shutdown(socket.SHUT_RD)
        s.close()
    server.status()
    server.settle()
