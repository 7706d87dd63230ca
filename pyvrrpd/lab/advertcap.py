"""VRRP adverts seen on one lab link, with the kernel's receive timestamps.

The failover benchmark needs the moment a priority-0 advert crosses the wire.
An ``AF_PACKET`` socket is opened *inside* a lab namespace (the switch's
bridge port of a load balancer, say) the same way :mod:`pyvrrpd.lab.vipwatch`
opens its netlink sockets (pyvrrpd.lab.nssocket: ``setns(2)`` in a
short-lived thread, the caller's own namespace never changes).
``SO_TIMESTAMPNS`` gives each frame the kernel's arrival time, so a busy
Python thread does not delay the figure.

Owns: that socket, a reader thread, and parsing the IPv4 + VRRP headers
(RFC 3768 section 5.1: version/type, VRID, priority). It only reads; it
sends nothing.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from dataclasses import dataclass

from pyvrrpd.lab.nssocket import socket_in_netns

_ETH_P_ALL = 0x0003
_ETH_P_IP = 0x0800
_SO_TIMESTAMPNS = 35  # asm-generic/socket.h; also the SCM_ type of the cmsg
_VRRP_PROTO = 112
_TIMESPEC = struct.Struct("@qq")


@dataclass(frozen=True, slots=True)
class Advert:
    """One VRRP advert: kernel receive time (monotonic s), source, VRID, priority."""

    t: float
    src: str
    vrid: int
    priority: int


def parse_vrrp(packet: bytes) -> tuple[str, int, int] | None:
    """``(source, vrid, priority)`` of an IPv4 VRRP advert, else ``None``."""
    if len(packet) < 20 or packet[0] >> 4 != 4 or packet[9] != _VRRP_PROTO:
        return None
    ihl = (packet[0] & 0x0F) * 4
    if len(packet) < ihl + 8 or packet[ihl] & 0x0F != 1:  # type 1 = ADVERTISEMENT
        return None
    return socket.inet_ntoa(packet[12:16]), packet[ihl + 1], packet[ihl + 2]


def _open_in_netns(path: str, ifname: str) -> socket.socket:
    def make() -> socket.socket:
        # SOCK_DGRAM: the kernel strips the link header, we get the IP packet.
        # ETH_P_ALL: on a bridge port only the all-protocols taps see a frame
        # before the bridge takes it (per-protocol ones come after).
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(_ETH_P_ALL))
        sock.bind((ifname, _ETH_P_ALL))
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        return sock

    return socket_in_netns(path, make, f"capture on {ifname}")


class AdvertCapture:
    """Records every VRRP advert seen on ``ifname`` of namespace ``netns`` until closed."""

    def __init__(self, netns: str, ifname: str) -> None:
        self._sock = _open_in_netns(f"/run/netns/{netns}", ifname)
        self._sock.settimeout(0.1)  # so close() is noticed promptly
        # kernel stamps are CLOCK_REALTIME; everything else in the lab is monotonic
        self._offset = time.time() - time.monotonic()
        self._lock = threading.Lock()
        self._adverts: list[Advert] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="advertcap", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        space = socket.CMSG_SPACE(_TIMESPEC.size)
        while not self._stop.is_set():
            try:
                data, anc, _flags, addr = self._sock.recvmsg(2048, space)
            except TimeoutError:
                continue
            except OSError:
                return
            got = parse_vrrp(data) if addr[1] == _ETH_P_IP else None
            if got is None:
                continue
            t = time.monotonic()
            for level, kind, raw in anc:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
                    sec, nsec = _TIMESPEC.unpack(raw[: _TIMESPEC.size])
                    t = sec + nsec / 1e9 - self._offset
            with self._lock:
                self._adverts.append(Advert(t, *got))

    def adverts(self) -> list[Advert]:
        """Adverts so far, oldest first."""
        with self._lock:
            return list(self._adverts)

    def first(self, src: str, priority: int, after: float) -> Advert | None:
        """The first advert from ``src`` with ``priority`` received after ``after``."""
        return next(
            (a for a in self.adverts() if a.src == src and a.priority == priority and a.t > after),
            None,
        )

    def close(self) -> None:
        """Stop the reader and close the socket (idempotent)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)
        with contextlib.suppress(OSError):
            self._sock.close()
