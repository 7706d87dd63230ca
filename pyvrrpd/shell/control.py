"""The control endpoint: a Unix socket answering `pyvrrpd status`.

Owns: the socket's life (mode 0600, refusing to steal a live daemon's
socket, removing it on exit) and the tiny line protocol: the client sends one
line (`status`), the server answers one JSON document and closes. Must not
know how status is computed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import stat
from collections.abc import Callable
from typing import Any

from pyvrrpd.io.errors import HostError

DEFAULT_SOCKET = "/run/pyvrrpd/pyvrrpd.sock"


class ControlServer:
    def __init__(self, path: str, status: Callable[[], dict[str, Any]]) -> None:
        self.path = path
        self._status = status
        self._server: asyncio.AbstractServer | None = None

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
            self._server = await asyncio.start_unix_server(self._client, path=self.path)
        except OSError as exc:
            raise HostError(f"cannot create control socket {self.path}: {exc.strerror}") from exc
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is None:
            return  # never started: the path may be another daemon's socket
        self._server.close()
        with contextlib.suppress(Exception):
            await self._server.wait_closed()
        self._server = None
        with contextlib.suppress(OSError):
            os.unlink(self.path)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=5)
            command = line.decode("utf-8", "replace").strip() or "status"
            if command == "status":
                try:
                    reply: dict[str, Any] = self._status()
                except Exception as exc:  # a bug must not look like a dead daemon
                    reply = {"error": f"status failed: {exc!r}"}
            else:
                reply = {"error": f"unknown command {command!r}"}
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def _alive(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect(path)
        except OSError:
            return False
        return True


def query(path: str, command: str = "status", timeout: float = 5.0) -> dict[str, Any]:
    """Client side: send one command, return the decoded JSON reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(path)
        except FileNotFoundError as exc:
            raise HostError(f"no daemon: control socket {path} does not exist") from exc
        except PermissionError as exc:
            raise HostError(f"permission denied on {path} (run as root)") from exc
        except OSError as exc:
            raise HostError(f"cannot reach daemon on {path}: {exc.strerror}") from exc
        s.sendall(command.encode() + b"\n")
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    data = b"".join(chunks)
    try:
        reply: dict[str, Any] = json.loads(data)
    except ValueError as exc:
        raise HostError(f"garbled reply from daemon on {path}") from exc
    return reply
