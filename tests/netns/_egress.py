"""A tiny allow-listed HTTP proxy listening inside a test's network namespace.

The debootstrap test runs a fresh Debian root in a network namespace of its own
(only loopback), so nothing it starts can reach the host's LAN. apt and pip in
there still need the package registries: this proxy's listening socket is made
inside that namespace (a thread enters it with setns(2), and a socket keeps the
namespace it was created in), while its outgoing connections are made from the
host's namespace, to the allowed host names and ports only. It speaks plain
absolute-URI GET (apt over http) and CONNECT (pip over https); anything else
gets a 403.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import socket
import threading
from collections.abc import Iterator

CLONE_NEWNET = 0x40000000


def _socket_in_netns(netns: str) -> socket.socket:
    """A listening TCP socket on 127.0.0.1 (ephemeral port) inside /run/netns/NETNS."""
    box: dict[str, socket.socket | BaseException] = {}

    def make() -> None:
        # setns(2) on a thread moves only that thread; it ends right after.
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, os.strerror(err))
            finally:
                os.close(fd)
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 0))
            s.listen(64)
            box["s"] = s
        except BaseException as e:
            box["e"] = e

    t = threading.Thread(target=make)
    t.start()
    t.join()
    if "e" in box:
        raise box["e"]  # type: ignore[misc]
    made = box["s"]
    assert isinstance(made, socket.socket)
    return made


def _pump(a: socket.socket, b: socket.socket) -> None:
    socks = [a, b]
    try:
        while True:
            r, _, _ = select.select(socks, [], [], 120)
            if not r:
                return
            for s in r:
                data = s.recv(65536)
                if not data:
                    return
                (b if s is a else a).sendall(data)
    except OSError:
        return
    finally:
        a.close()
        b.close()


class EgressProxy:
    """Accepts in the namespace, connects out from the host, allow-listed."""

    def __init__(self, netns: str, allow: dict[str, set[int]]) -> None:
        self.allow = allow
        self.sock = _socket_in_netns(netns)
        self.port: int = self.sock.getsockname()[1]
        self.denied: list[str] = []
        self._closing = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._closing = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

    def _serve(self) -> None:
        while not self._closing:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = conn.recv(65536)
                if not chunk:
                    conn.close()
                    return
                head += chunk
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            method, target, _ = [*line.split(" "), "", ""][:3]
            if method == "CONNECT":
                host, _, port_s = target.rpartition(":")
                port, rest = int(port_s or "443"), b""
            elif target.startswith("http://"):
                hostport, _, path = target[len("http://") :].partition("/")
                host, _, port_s = hostport.partition(":")
                port = int(port_s or "80")
                # The first request goes on in origin form; later ones on the
                # same connection keep the absolute form, which HTTP/1.1 servers
                # must accept (RFC 9112 section 3.2.2).
                rest = head.replace(target.encode(), b"/" + path.encode(), 1)
            else:
                host, port, rest = "", 0, b""
            if port not in self.allow.get(host, set()):
                self.denied.append(line)
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                conn.close()
                return
            up = socket.create_connection((host, port), timeout=30)
            up.settimeout(None)
            if method == "CONNECT":
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                up.sendall(rest)
            _pump(conn, up)
        except (OSError, ValueError):
            with contextlib.suppress(OSError):
                conn.close()


@contextlib.contextmanager
def egress_proxy(netns: str, allow: dict[str, set[int]]) -> Iterator[EgressProxy]:
    proxy = EgressProxy(netns, allow)
    try:
        yield proxy
    finally:
        proxy.close()
