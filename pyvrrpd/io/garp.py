"""Gratuitous ARP sender: one persistent AF_PACKET socket per interface.

Owns: the packet socket and the burst loop (``repeat`` rounds, one frame per
VIP per round, interleaved like keepalived). Frames come from
:func:`pyvrrpd.wire.arp.build_garp` and are built once per address.

Must not: decide when to send (the daemon schedules bursts and the
``garp_master_delay`` repeat), sleep, or block the loop: the socket is
non-blocking and a send is a few microseconds (scapy's ``sendp`` opens a socket
per call and costs about 25 ms, which is why it is not used).
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Sequence
from ipaddress import IPv4Address

from pyvrrpd.io.errors import HostError, describe_oserror, errno_of
from pyvrrpd.wire.arp import ETH_P_ARP, build_garp

__all__ = ["GarpSender"]


class GarpSender:
    """Sends gratuitous ARP requests on one interface with one MAC."""

    def __init__(self, ifname: str, mac: bytes, sock: socket.socket) -> None:
        self.ifname = ifname
        self.mac = mac
        self._sock = sock
        self._frames: dict[IPv4Address, bytes] = {}
        self.sent = 0

    @classmethod
    def open(cls, ifname: str, mac: bytes) -> GarpSender:
        """Open the AF_PACKET socket bound to ``(ifname, ETH_P_ARP)``."""
        if len(mac) != 6:
            raise HostError(f"GARP on {ifname!r}: MAC must be 6 bytes, got {len(mac)}")
        sock: socket.socket | None = None
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
            # Nothing is ever read from this socket; a tiny receive buffer
            # keeps the kernel from queueing every ARP frame of the LAN on it.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
            sock.bind((ifname, ETH_P_ARP))
            sock.setblocking(False)
        except OSError as exc:
            if sock is not None:
                sock.close()
            code = errno_of(exc)
            if isinstance(exc, PermissionError) or code in (errno.EPERM, errno.EACCES):
                raise HostError(
                    "cannot open ARP packet socket: CAP_NET_RAW missing (run as root)",
                    errno_code=code,
                ) from exc
            if code == errno.ENODEV:
                raise HostError(f"interface {ifname!r} not found", errno_code=code) from exc
            raise HostError(
                f"cannot open ARP packet socket on {ifname!r}: {describe_oserror(exc)}",
                errno_code=code,
            ) from exc
        return cls(ifname, bytes(mac), sock)

    def set_mac(self, mac: bytes) -> None:
        """The interface's MAC changed (bond failover, hot-plug): announce the new one."""
        if len(mac) != 6:
            raise HostError(f"GARP on {self.ifname!r}: MAC must be 6 bytes, got {len(mac)}")
        self.mac = bytes(mac)
        self._frames.clear()

    def _frame(self, ip: IPv4Address) -> bytes:
        frame = self._frames.get(ip)
        if frame is None:
            frame = self._frames[ip] = build_garp(self.mac, ip)
        return frame

    def send(self, ips: Sequence[IPv4Address], repeat: int) -> int:
        """Send ``repeat`` rounds of one frame per address; return frames sent.

        Order is round-major (ip1, ip2, ip1, ip2, ...), as keepalived does.
        On a socket error the burst stops and HostError is raised; its message
        says how many frames went out before the failure.
        """
        frames = [self._frame(ip) for ip in ips]
        # The kernel leaves a pending ENETDOWN on a packet socket whose device
        # went down (or was down when bound), and the next send returns it
        # even though the device is up again: read it off first, or the first
        # burst after a link flap is lost.
        with contextlib.suppress(OSError):
            self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        count = 0
        for _ in range(max(repeat, 0)):
            for frame in frames:
                try:
                    self._sock.send(frame)
                except OSError as exc:
                    self.sent += count
                    raise HostError(
                        f"cannot send gratuitous ARP on {self.ifname!r} after {count} frames: "
                        f"{describe_oserror(exc)}",
                        errno_code=errno_of(exc),
                    ) from exc
                count += 1
        self.sent += count
        return count

    def close(self) -> None:
        """Close the socket. Idempotent."""
        self._sock.close()
