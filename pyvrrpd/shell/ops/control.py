"""The control endpoint: a Unix socket answering `pyvrrpd status`.

Owns: the socket's life (mode 0600, refusing to steal a live daemon's
socket, removing it on exit), the tiny line protocol (the client sends one
line, `status` or `reload`; the server answers one JSON document and closes) and the
limits that keep a misbehaving client from hurting the daemon:

- at most :data:`MAX_CLIENTS` connections at once. When full, the oldest
  connection still waiting for its request line is dropped to make room (so
  a pile of idle connections cannot lock out `pyvrrpd status`); if every
  slot is busy replying, the newcomer gets a one-line "busy" error. Both are
  counted and logged as one rate-limited summary line.
- a request line of at most :data:`MAX_REQUEST` bytes (longer: error reply),
  which also bounds what is buffered per connection;
- :data:`READ_TIMEOUT` to receive the line and :data:`WRITE_TIMEOUT` to hand
  over the reply; a client that never reads is cut off and its buffered
  reply discarded.

No client input, however broken, raises out of here or logs a traceback.
Must not know how status is computed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import socket
import stat
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from pyvrrpd.io.errors import HostError
from pyvrrpd.shell.ops.runrecord import DEFAULT_SOCKET as DEFAULT_SOCKET

#: connections served at once; a status query lives for milliseconds.
MAX_CLIENTS = 16
#: bytes in a request line, newline included.
MAX_REQUEST = 4096
#: seconds to receive the request line.
READ_TIMEOUT = 2.0
#: seconds for the client to take the whole reply.
WRITE_TIMEOUT = 5.0
#: seconds between two summary lines about misbehaving clients.
WARN_INTERVAL = 10.0

log = structlog.get_logger("pyvrrpd.control")


@dataclass(slots=True)
class ControlStats:
    """What the limits did, since start."""

    accepted: int = 0
    #: turned away because every slot was busy replying
    refused: int = 0
    #: idle connections dropped to make room for a newcomer
    evicted: int = 0
    too_long: int = 0
    read_timeouts: int = 0
    write_timeouts: int = 0
    #: connections that failed otherwise (reset, broken pipe, bad bytes)
    errors: int = 0


class _Conn:
    __slots__ = ("reading", "writer")

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        #: still waiting for its request line (may be evicted)
        self.reading = True


class ControlServer:
    def __init__(
        self,
        path: str,
        status: Callable[[], dict[str, Any]],
        *,
        reload: Callable[[], Awaitable[dict[str, Any]]] | None = None,
        max_clients: int = MAX_CLIENTS,
        read_timeout: float = READ_TIMEOUT,
        write_timeout: float = WRITE_TIMEOUT,
    ) -> None:
        self.path = path
        self._status = status
        self._reload = reload  # `reload`: answered once the daemon's verdict is in
        self.max_clients = max_clients
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self._server: asyncio.AbstractServer | None = None
        self._conns: dict[asyncio.StreamWriter, _Conn] = {}  # insertion order = age
        self.stats = ControlStats()
        self._warned_at: float | None = None
        self._warned = ControlStats()
        self._flush_handle: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        directory = os.path.dirname(self.path) or "."
        os.makedirs(directory, mode=0o755, exist_ok=True)
        if os.path.exists(self.path):
            if _alive(self.path):
                raise HostError(f"another daemon is answering on {self.path}")
            if not stat.S_ISSOCK(os.lstat(self.path).st_mode):
                raise HostError(f"{self.path} exists and is not a socket")
            os.unlink(self.path)
        old = os.umask(0o177)  # the socket is created 0600: status shows auth data
        try:
            self._server = await asyncio.start_unix_server(
                self._client, path=self.path, limit=MAX_REQUEST
            )
        except OSError as exc:
            raise HostError(f"cannot create control socket {self.path}: {exc.strerror}") from exc
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is None:
            return  # never started: the path may be another daemon's socket
        self._server.close()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        for conn in list(self._conns.values()):
            _abort(conn.writer)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), timeout=1.0)
        self._server = None
        with contextlib.suppress(OSError):
            os.unlink(self.path)

    @property
    def connections(self) -> int:
        """Connections open right now."""
        return len(self._conns)

    # ------------------------------------------------------------ per client

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._admit(writer):
            return
        conn = self._conns[writer]
        try:
            reply = await self._request(reader)
            conn.reading = False
            if reply is not None and self._conns.get(writer) is conn:
                await self._reply(writer, reply)
        except asyncio.CancelledError:
            _abort(writer)
            raise
        except Exception as exc:  # never a traceback for what a client sends
            self.stats.errors += 1
            log.debug("control_client_error", error=repr(exc))
            self._summarise()
        finally:
            self._conns.pop(writer, None)
            if not writer.transport.is_closing():
                writer.close()

    def _admit(self, writer: asyncio.StreamWriter) -> bool:
        self.stats.accepted += 1
        if len(self._conns) >= self.max_clients:
            idle = next((c for c in self._conns.values() if c.reading), None)
            if idle is None:
                self.stats.refused += 1
                # Fits in a fresh socket's buffer: never blocks.
                writer.write(b'{"error": "busy: too many control connections"}\n')
                writer.close()
                self._summarise()
                return False
            self.stats.evicted += 1
            self._conns.pop(idle.writer, None)
            _abort(idle.writer)  # its _client sees the reset and ends
            self._summarise()
        self._conns[writer] = _Conn(writer)
        return True

    async def _request(self, reader: asyncio.StreamReader) -> dict[str, Any] | None:
        """Read one line; the reply to send, or None to just hang up."""
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=self.read_timeout)
        except TimeoutError:
            self.stats.read_timeouts += 1
            self._summarise()
            return None
        except ValueError:  # asyncio.LimitOverrunError, re-raised by readline()
            self.stats.too_long += 1
            self._summarise()
            return {"error": f"request longer than {MAX_REQUEST} bytes"}
        if not line:
            return None  # hung up (or evicted) without asking anything
        command = line.decode("utf-8", "replace").strip() or "status"
        if command == "status":
            try:
                return self._status()
            except Exception as exc:  # a bug must not look like a dead daemon
                return {"error": f"status failed: {exc!r}"}
        if command == "reload" and self._reload is not None:
            try:
                return await self._reload()
            except Exception as exc:  # the daemon keeps running; say what failed
                log.exception("reload_failed")
                return {"ok": False, "errors": [f"reload failed: {exc!r}"]}
        # Echo a short, printable excerpt: the reply must stay one small line.
        shown = "".join(c if c.isprintable() else "?" for c in command[:40])
        return {"error": f"unknown command '{shown}{'...' if len(command) > 40 else ''}'"}

    async def _reply(self, writer: asyncio.StreamWriter, reply: dict[str, Any]) -> None:
        writer.write(json.dumps(reply).encode() + b"\n")
        try:
            await asyncio.wait_for(writer.drain(), timeout=self.write_timeout)
        except TimeoutError:
            # The client does not read: drop the connection and what is queued.
            self.stats.write_timeouts += 1
            _abort(writer)
            self._summarise()
            return
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), timeout=self.write_timeout)
        except TimeoutError:
            # Up to the low-water mark may still be queued for a client that
            # stopped reading: the transport would stay open for it forever.
            self.stats.write_timeouts += 1
            _abort(writer)
            self._summarise()

    def _summarise(self) -> None:
        """At most one WARNING line per WARN_INTERVAL, counting what the limits did.

        The first trouble is logged at once; later trouble within the interval
        is reported, with counts, by one line when the interval ends.
        """
        now = time.monotonic()
        if self._warned_at is None or now - self._warned_at >= WARN_INTERVAL:
            self._flush()
        elif self._flush_handle is None:
            delay = self._warned_at + WARN_INTERVAL - now
            self._flush_handle = asyncio.get_running_loop().call_later(delay, self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        self._warned_at = time.monotonic()
        now_stats, before = dataclasses.asdict(self.stats), dataclasses.asdict(self._warned)
        self._warned = dataclasses.replace(self.stats)
        delta = {k: v - before[k] for k, v in now_stats.items() if k != "accepted"}
        if any(delta.values()):
            log.warning("control_clients_misbehaving", open=len(self._conns), **delta)


def _abort(writer: asyncio.StreamWriter) -> None:
    """Drop a connection and whatever is queued for it, at once.

    Python 3.11's selector transport crashes (AttributeError) on abort() once
    a close() has finished flushing, which a race can bring about here.
    """
    with contextlib.suppress(AttributeError, RuntimeError):
        writer.transport.abort()


def _alive(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect(path)
        except OSError:
            return False
        return True


def query(path: str, command: str = "status", timeout: float = 5.0) -> dict[str, Any]:
    """Client side: send one command, return the decoded JSON reply.

    A daemon flooded with connections may have its listen queue full
    (EAGAIN), answer "busy" when every slot is taken, or reset the connection
    (our request still unread when it closed); all are retried until
    ``timeout``.
    """
    deadline = time.monotonic() + timeout
    while True:
        left = max(0.1, deadline - time.monotonic())
        try:
            reply = _query_once(path, command, left)
        except _Busy as exc:
            if time.monotonic() >= deadline:
                raise HostError(f"daemon on {path} is busy: {exc}") from exc
        else:
            busy = str(reply.get("error", "")).startswith("busy:")
            if not busy or time.monotonic() >= deadline:
                return reply
        time.sleep(0.05)


class _Busy(Exception):
    """The daemon could not take this connection now; worth retrying."""


def _query_once(path: str, command: str, timeout: float) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(path)
        except FileNotFoundError as exc:
            raise HostError(f"no daemon: control socket {path} does not exist") from exc
        except PermissionError as exc:
            raise HostError(f"permission denied on {path} (run as root)") from exc
        except BlockingIOError as exc:
            raise _Busy("listen queue full") from exc
        except OSError as exc:
            raise HostError(f"cannot reach daemon on {path}: {exc.strerror}") from exc
        chunks = []
        try:
            s.sendall(command.encode() + b"\n")
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except TimeoutError as exc:
            raise HostError(f"daemon on {path} did not answer within {timeout:.1f} s") from exc
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise _Busy("connection reset") from exc
        except OSError as exc:
            raise HostError(f"connection to daemon on {path} failed: {exc.strerror}") from exc
    data = b"".join(chunks)
    try:
        reply: dict[str, Any] = json.loads(data)
    except ValueError as exc:
        raise HostError(f"garbled reply from daemon on {path}") from exc
    return reply
