"""The HTTP / stats-socket probe (io/httpprobe.py) and its tracker (trackers/http.py),
against real sockets on 127.0.0.1 and a tmp AF_UNIX path, in-process."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from pyvrrpd.config.model import TrackHttp
from pyvrrpd.io.httpprobe import ProbeResult, probe_http, probe_stats
from pyvrrpd.trackers.http import HttpTracker

T = TypeVar("T")
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], object]


def answer(status: str) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(f"HTTP/1.0 {status}\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    return handle


def mute(seen: list[bytes]) -> Handler:
    """Accepts, reads the request, never answers (a SIGSTOPped HAProxy's listen queue
    is even less, but the client sees the same: no status line)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        await hang(writer)

    return handle


async def hang(writer: asyncio.StreamWriter) -> None:
    """Never answer; when the test's loop ends, close quietly (3.11 logs a
    cancelled handler task as an error)."""
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        writer.close()


@asynccontextmanager
async def http_server(handler: Handler) -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)  # type: ignore[arg-type]
    port = server.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.close()


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.mark.parametrize(
    ("status_line", "want"),
    [("200 OK", (True, 200, "200")), ("503 Service Unavailable", (False, 503, "503"))],
    ids=["200_is_ok", "503_fails"],
)
def test_the_status_code_decides(status_line: str, want: tuple[bool, int, str]) -> None:
    async def go() -> ProbeResult:
        async with http_server(answer(status_line)) as port:
            return await probe_http("127.0.0.1", port, "/healthz", 200, 1.0)

    r = run(go())
    assert isinstance(r, ProbeResult)
    assert (r.ok, r.status, r.detail) == want
    assert r.duration < 1.0


def test_request_is_http10_get_with_connection_close() -> None:
    seen: list[bytes] = []

    async def go() -> ProbeResult:
        async with http_server(mute(seen)) as port:
            return await probe_http("127.0.0.1", port, "/healthz", 200, 0.2)

    run(go())
    assert seen[0].startswith(b"GET /healthz HTTP/1.0\r\n")
    assert b"Connection: close\r\n" in seen[0]


def test_no_listener_fails_fast() -> None:
    r = run(probe_http("127.0.0.1", free_port(), "/", 200, 1.0))
    assert isinstance(r, ProbeResult)
    assert (r.ok, r.status, r.detail) == (False, None, "connection refused")
    assert r.duration < 0.5


def test_silent_server_times_out_within_the_timeout() -> None:
    async def go() -> tuple[ProbeResult, float]:
        async with http_server(mute([])) as port:
            start = time.monotonic()
            r = await probe_http("127.0.0.1", port, "/", 200, 0.3)
            return r, time.monotonic() - start

    r, took = run(go())
    assert (r.ok, r.detail) == (False, "timeout")
    assert 0.29 <= took < 0.6


def test_garbage_reply_and_long_line_fail() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"x" * 100_000)
        await writer.drain()
        writer.close()

    async def go() -> ProbeResult:
        async with http_server(garbage) as port:
            return await probe_http("127.0.0.1", port, "/", 200, 1.0)

    r = run(go())
    assert isinstance(r, ProbeResult)
    assert (r.ok, r.detail) == (False, "bad reply (no status line)")


def test_cancelled_probe_closes_its_socket() -> None:
    async def go() -> int:
        async with http_server(mute([])) as port:
            task = asyncio.create_task(probe_http("127.0.0.1", port, "/", 200, 10.0))
            await asyncio.sleep(0.1)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await asyncio.sleep(0.05)
            return port

    port = run(go())
    conns = Path("/proc/net/tcp").read_text().splitlines()[1:]
    # Nothing of ours still ESTABLISHED (st 01) towards the port.
    assert not [c for c in conns if f":{port:04X} " in c and c.split()[3] == "01"]


# ------------------------------------------------------------------ stats socket


def stats_server(tmp_path: Path, reply: bytes | None) -> Callable[[], object]:
    path = str(tmp_path / "admin.sock")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        assert line == b"show info\n"
        if reply is None:
            await hang(writer)
            return
        writer.write(reply or b"")
        await writer.drain()
        writer.close()

    async def serve() -> asyncio.AbstractServer:
        return await asyncio.start_unix_server(handle, path)

    return serve


def test_stats_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "admin.sock")

    async def go(reply: bytes | None, timeout: float = 1.0) -> ProbeResult:
        server = await stats_server(tmp_path, reply)()  # type: ignore[misc]
        try:
            return await probe_stats(path, timeout)
        finally:
            server.close()

    ok = run(go(b"Name: HAProxy\nVersion: 2.6.12\nPid: 42\n\n"))
    bad = run(go(b"Unknown command.\n"))
    hung = run(go(None, 0.2))
    assert isinstance(ok, ProbeResult) and isinstance(bad, ProbeResult)
    assert isinstance(hung, ProbeResult)
    assert (ok.ok, ok.detail) == (True, "ok")
    assert (bad.ok, bad.detail[:9]) == (False, "bad reply")
    assert (hung.ok, hung.detail) == (False, "timeout")
    missing = run(probe_stats(str(tmp_path / "none.sock"), 1.0))
    assert isinstance(missing, ProbeResult)
    assert (missing.ok, missing.detail) == (False, "no such socket")


# ----------------------------------------------------------------------- tracker


def block(**kw: object) -> TrackHttp:
    fields: dict[str, object] = {
        "name": "hap",
        "url": "http://127.0.0.1/",
        "host": "127.0.0.1",
        "interval": 0.05,
        "timeout": 0.05,
        "rise": 2,
        "fall": 3,
    }
    fields.update(kw)
    return TrackHttp(**fields)  # type: ignore[arg-type]


def scripted(results: list[bool]) -> Callable[[TrackHttp], object]:
    """A probe that returns the scripted results, then keeps the last."""

    async def probe(_b: TrackHttp) -> ProbeResult:
        ok = results.pop(0) if len(results) > 1 else results[0]
        return ProbeResult(ok, 200 if ok else 503, "200" if ok else "503", 0.001)

    return probe


def test_tracker_rise_fall_and_reports() -> None:
    seen: list[tuple[str, bool | None, int | None]] = []
    results = [True, False, False, True, False, False, False, True, True]

    async def go() -> dict[str, dict[str, object]]:
        t = HttpTracker([block()], lambda *a: seen.append(a), scripted(results))  # type: ignore[arg-type]
        await t.start()
        assert seen == [("http:hap", True, 200)]  # the first result decides, before start returns
        await asyncio.sleep(0.05 * 12)
        d = t.describe()
        t.stop()
        return d

    d = run(go())
    oks = [ok for _, ok, _ in seen]
    # keepalived's counter: 2 failures (< fall 3) keep it up, 3 bring it down,
    # then 2 successes (rise) bring it back.
    assert [k for i, k in enumerate(oks) if i == 0 or oks[i - 1] != k] == [True, False, True]
    assert isinstance(d, dict)
    hap = d["http:hap"]
    assert hap["last_result"] == "200"
    assert hap["consecutive_failed"] == 0
    assert isinstance(hap["consecutive_ok"], int) and hap["consecutive_ok"] >= 2
    assert hap["target"] == "http://127.0.0.1/"


def test_tracker_against_a_server_going_silent() -> None:
    """200, then the server stops answering: down after `fall` timed-out probes."""
    seen: list[tuple[str, bool | None, int | None]] = []
    mode = {"answer": True}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        if not mode["answer"]:
            await hang(writer)
            return
        writer.write(b"HTTP/1.0 200 OK\r\n\r\n")
        await writer.drain()
        writer.close()

    async def go() -> float:
        async with http_server(handle) as port:
            b = block(port=port, interval=0.1, timeout=0.1, fall=2)
            t = HttpTracker([b], lambda *a: seen.append(a))
            await t.start()
            assert seen == [("http:hap", True, 200)]
            mode["answer"] = False
            start = time.monotonic()
            while not any(ok is False for _, ok, _ in seen):
                assert time.monotonic() - start < 2.0
                await asyncio.sleep(0.01)
            took = time.monotonic() - start
            assert t.describe()["http:hap"]["last_result"] == "timeout"
            t.stop()
            return took

    took = run(go())
    assert isinstance(took, float)
    # fall x interval + timeout, with scheduling slack
    assert took < 2 * 0.1 + 0.1 + 0.15


def test_tracker_first_report_on_no_listener() -> None:
    seen: list[tuple[str, bool | None, int | None]] = []

    async def go() -> dict[str, dict[str, object]]:
        t = HttpTracker([block(port=free_port())], lambda *a: seen.append(a))
        await t.start()
        d = t.describe()
        t.stop()
        return d

    d = run(go())
    assert seen == [("http:hap", False, None)]
    assert isinstance(d, dict)
    assert d["http:hap"]["last_result"] == "connection refused"
    assert d["http:hap"]["consecutive_failed"] == 1
