"""One health probe of a local HAProxy: an HTTP GET or a stats-socket `show info`.

Owns: the two probes `vrrp_track_http` runs (pyvrrpd.trackers.http), each a
single asyncio exchange bounded by a timeout that covers everything (name
lookup, connect, send, read), and their outcome as a `ProbeResult` whose
`detail` is what `pyvrrpd status` shows ("200", "503", "timeout",
"connection refused" ...).

- HTTP: our own tiny HTTP/1.0 client (`GET PATH`, `Connection: close`): only
  the status line is read, at most STATUS_LINE_MAX bytes, so a peer sending
  an endless line cannot make us buffer it. HAProxy's `monitor-uri` answers
  200 while it serves and 503 when a `monitor fail` condition holds.
- Stats socket (AF_UNIX): `show info` answered with a line "Name: HAProxy"
  or "Pid: N" means the master/worker loop is running; at most
  STATS_REPLY_MAX bytes are read.

Never blocks the loop, is safe to cancel at any await (the caller's task may
be cancelled at shutdown) and closes its socket on every path.
Must not: decide anything (rise/fall, priorities) or retry.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import time
from dataclasses import dataclass

STATUS_LINE_MAX = 1024  # bytes of the reply read before giving up on a status line
STATS_REPLY_MAX = 64 * 1024
USER_AGENT = "pyvrrpd-track-http"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """The outcome of one probe."""

    ok: bool
    status: int | None  # the HTTP status code, if a status line was read
    detail: str  # "200", "503", "timeout", "connection refused", ...
    duration: float  # seconds the probe took


async def probe_http(host: str, port: int, path: str, expect: int, timeout: float) -> ProbeResult:
    """GET http://host:port/path; OK when the status code is `expect`."""
    start = time.monotonic()
    status: int | None = None
    try:
        async with asyncio.timeout(timeout):
            status = await _http_status(host, port, path)
    except TimeoutError:
        return ProbeResult(False, None, "timeout", time.monotonic() - start)
    except OSError as exc:
        return ProbeResult(False, None, _os_detail(exc), time.monotonic() - start)
    except _BadReply as exc:
        return ProbeResult(False, None, str(exc), time.monotonic() - start)
    return ProbeResult(status == expect, status, str(status), time.monotonic() - start)


async def probe_stats(path: str, timeout: float) -> ProbeResult:
    """`show info` on HAProxy's stats socket; OK when it names itself."""
    start = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            ok = await _stats_info(path)
    except TimeoutError:
        return ProbeResult(False, None, "timeout", time.monotonic() - start)
    except OSError as exc:
        return ProbeResult(False, None, _os_detail(exc), time.monotonic() - start)
    detail = "ok" if ok else "bad reply (no 'Name: HAProxy' or 'Pid:')"
    return ProbeResult(ok, None, detail, time.monotonic() - start)


class _BadReply(Exception):
    """The peer answered something that is not an HTTP status line."""


async def _http_status(host: str, port: int, path: str) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        authority = f"[{host}]" if ":" in host else host
        request = (
            f"GET {path} HTTP/1.0\r\nHost: {authority}:{port}\r\n"
            f"User-Agent: {USER_AGENT}\r\nConnection: close\r\n\r\n"
        )
        writer.write(request.encode("ascii", "replace"))
        await writer.drain()
        line = await _read_line(reader)
    finally:
        # abort(): nothing left to send, and close() would first wait for
        # the peer to take the request, which a hung HAProxy never does.
        writer.transport.abort()
    return _parse_status(line)


async def _read_line(reader: asyncio.StreamReader) -> bytes:
    buf = b""
    while b"\n" not in buf:
        if len(buf) >= STATUS_LINE_MAX:
            raise _BadReply("bad reply (no status line)")
        chunk = await reader.read(STATUS_LINE_MAX - len(buf))
        if not chunk:
            if not buf:
                raise _BadReply("closed without a reply")
            break
        buf += chunk
    return buf.split(b"\n", 1)[0]


def _parse_status(line: bytes) -> int:
    """The code of `HTTP/1.x NNN reason`."""
    words = line.split()
    if len(words) >= 2 and words[0].startswith(b"HTTP/") and words[1].isdigit():
        code = int(words[1])
        if 100 <= code <= 999:
            return code
    raise _BadReply("bad reply (no status line)")


async def _stats_info(path: str) -> bool:
    reader, writer = await asyncio.open_unix_connection(path)
    try:
        writer.write(b"show info\n")
        await writer.drain()
        buf = b""
        while len(buf) < STATS_REPLY_MAX:
            chunk = await reader.read(STATS_REPLY_MAX - len(buf))
            if not chunk:
                break
            buf += chunk
            if _names_haproxy(buf):
                return True
        return _names_haproxy(buf)
    finally:
        writer.transport.abort()


def _names_haproxy(buf: bytes) -> bool:
    return any(line.startswith((b"Name: HAProxy", b"Pid:")) for line in buf.split(b"\n"))


def _os_detail(exc: OSError) -> str:
    """A short lower-case reason: "connection refused", "no such file" ..."""
    if isinstance(exc, socket.gaierror):
        return f"name lookup failed ({exc.strerror})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if exc.errno == errno.ENOENT:
        return "no such socket"
    if exc.errno is not None:
        return os.strerror(exc.errno).lower()
    return str(exc).lower() or type(exc).__name__


__all__ = ["ProbeResult", "probe_http", "probe_stats"]
