"""Raw IP protocol-112 sockets that carry VRRP adverts on one interface.

Owns: opening, configuring, reading and writing the two raw sockets of one
interface; the kernel builds the IP header (TTL 255, TOS 0xC0, protocol 112,
destination 224.0.0.18, source = the interface's primary address).

Must not: parse or build VRRP payloads (that is ``pyvrrpd.wire``), validate
received packets, or block the event loop (both sockets are non-blocking).

Why two sockets: the receive socket must not be bound to an address (a raw
socket bound to a unicast address only sees packets addressed to it, which
filters the multicast adverts out), while the send socket is bound to the
primary address so the kernel never picks a VIP as the source (RFC 3768 §5.2.4
wants the primary address; with several addresses on the interface the kernel
would otherwise choose by its own rules).
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import socket
import struct
from collections.abc import Callable
from ipaddress import IPv4Address

from pyvrrpd.io.errors import HostError, describe_oserror, errno_of

__all__ = ["VRRP_GROUP", "VRRP_PROTO", "VrrpSocket"]

VRRP_PROTO = 112
VRRP_GROUP = IPv4Address("224.0.0.18")
_TTL = 255
_TOS = 0xC0  # DSCP CS6 (network control), as keepalived sends it.
_RCVBUF = 1 << 20
_MAX_DATAGRAM = 65535
#: Datagrams read per wake-up. The loop runs due timers between wake-ups, so
#: under a flood adverts still go out on time (issue 5: a drain-until-empty
#: reader starved the timers for 6.4 s). 64 packets take ~1-2 ms to classify.
RECV_BUDGET = 64

# <linux/in.h>; not exported by every Python build's socket module.
_IP_MULTICAST_ALL = getattr(socket, "IP_MULTICAST_ALL", 49)
_SO_ATTACH_FILTER = 26  # <asm-generic/socket.h>


def _mreqn(group: IPv4Address | None, ifindex: int) -> bytes:
    """struct ip_mreqn { in_addr imr_multiaddr, imr_address; int imr_ifindex }."""
    g = group.packed if group is not None else b"\0\0\0\0"
    return struct.pack("=4s4si", g, b"\0\0\0\0", ifindex)


def _attach_drop_all_filter(sock: socket.socket) -> None:
    """Attach the classic BPF program ``ret #0`` (accept nothing)."""
    insn = ctypes.create_string_buffer(struct.pack("=HBBI", 0x06, 0, 0, 0))  # BPF_RET|BPF_K
    prog = struct.pack("@HP", 1, ctypes.addressof(insn))  # struct sock_fprog
    sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, prog)


def _host_error(exc: OSError, ifname: str, doing: str) -> HostError:
    code = errno_of(exc)
    if isinstance(exc, PermissionError) or code in (errno.EPERM, errno.EACCES):
        return HostError(
            "cannot open raw VRRP socket: CAP_NET_RAW missing (run as root)", errno_code=code
        )
    if code == errno.ENODEV:
        return HostError(f"interface {ifname!r} not found", errno_code=code)
    return HostError(
        f"VRRP socket on {ifname!r}: {doing}: {describe_oserror(exc)}", errno_code=code
    )


class VrrpSocket:
    """The receive and send raw sockets of one interface."""

    def __init__(
        self,
        ifname: str,
        ifindex: int,
        primary_ip: IPv4Address,
        rx: socket.socket,
        tx: socket.socket,
    ) -> None:
        self.ifname = ifname
        self.ifindex = ifindex
        self.primary_ip = primary_ip
        self._rx = rx
        self._tx = tx
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dest = (str(VRRP_GROUP), 0)
        #: Counters for the stats/debug output.
        self.sent = 0
        self.received = 0
        self.send_errors = 0

    @classmethod
    def open(cls, ifname: str, ifindex: int, primary_ip: IPv4Address) -> VrrpSocket:
        """Open both sockets; HostError (one line) on any failure."""
        dev = ifname.encode()
        rx: socket.socket | None = None
        tx: socket.socket | None = None
        step = "socket()"
        try:
            rx = socket.socket(socket.AF_INET, socket.SOCK_RAW, VRRP_PROTO)
            step = "SO_BINDTODEVICE"
            rx.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev)
            step = "IP_ADD_MEMBERSHIP"
            rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, _mreqn(VRRP_GROUP, ifindex))
            # Only deliver groups joined on THIS socket (Linux default is all
            # groups joined by any socket in the namespace).
            step = "IP_MULTICAST_ALL"
            rx.setsockopt(socket.IPPROTO_IP, _IP_MULTICAST_ALL, 0)
            step = "SO_RCVBUF"
            # A burst of adverts must not be dropped while the loop is busy.
            rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
            rx.setblocking(False)

            step = "socket()"
            tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, VRRP_PROTO)
            step = "SO_BINDTODEVICE"
            tx.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev)
            step = f"bind({primary_ip})"
            tx.bind((str(primary_ip), 0))
            step = "IP_MULTICAST_IF"
            tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, _mreqn(None, ifindex))
            step = "IP_MULTICAST_TTL"
            tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, _TTL)
            step = "IP_MULTICAST_LOOP"
            # Our own adverts must not come back to our receive socket.
            tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
            step = "IP_TOS"
            tx.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, _TOS)
            step = "SO_ATTACH_FILTER"
            # A raw socket receives every protocol-112 packet of the namespace;
            # the send socket never reads, so a drop-all filter keeps the
            # kernel from queueing copies on it.
            _attach_drop_all_filter(tx)
            tx.setblocking(False)
        except OSError as exc:
            for s in (rx, tx):
                if s is not None:
                    s.close()
            if step.startswith("bind") and errno_of(exc) == errno.EADDRNOTAVAIL:
                raise HostError(
                    f"VRRP socket on {ifname!r}: {primary_ip} is not a local address",
                    errno_code=errno.EADDRNOTAVAIL,
                ) from exc
            raise _host_error(exc, ifname, step) from exc
        return cls(ifname, ifindex, primary_ip, rx, tx)

    def send(self, payload: bytes) -> None:
        """Send one VRRP payload (no IP header) to 224.0.0.18.

        Never blocks; a full send queue or a down interface raises HostError
        (the caller logs it and carries on: the next advert is one interval
        away).
        """
        try:
            self._tx.sendto(payload, self._dest)
        except OSError as exc:
            self.send_errors += 1
            raise HostError(
                f"cannot send VRRP advert on {self.ifname!r}: {describe_oserror(exc)}",
                errno_code=errno_of(exc),
            ) from exc
        self.sent += 1

    def attach(self, loop: asyncio.AbstractEventLoop, on_datagram: Callable[[bytes], None]) -> None:
        """Call ``on_datagram(whole_ipv4_datagram)`` for each received packet.

        At most :data:`RECV_BUDGET` datagrams are read per wake-up; the rest
        wait in the socket buffer for the next loop iteration, after the timers
        that are due (the kernel drops what overflows the buffer, counted in
        /proc/net/raw). Exceptions from ``on_datagram`` propagate to the loop's
        exception handler, as for any reader callback.
        """
        self.detach()
        rx = self._rx

        def _readable() -> None:
            for _ in range(RECV_BUDGET):
                try:
                    data = rx.recv(_MAX_DATAGRAM)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:
                    # Transient errors (e.g. ENETDOWN while the link flaps)
                    # must not kill the reader; nothing to hand over.
                    return
                self.received += 1
                on_datagram(data)

        loop.add_reader(rx.fileno(), _readable)
        self._loop = loop

    def detach(self) -> None:
        """Stop delivering datagrams. Idempotent."""
        if self._loop is not None:
            if not self._loop.is_closed():
                self._loop.remove_reader(self._rx.fileno())
            self._loop = None

    def close(self) -> None:
        """Detach and close both sockets. Idempotent."""
        if self._rx.fileno() >= 0:
            self.detach()
        self._rx.close()
        self._tx.close()

    def fileno(self) -> int:
        """The receive socket's descriptor (for tests and diagnostics)."""
        return self._rx.fileno()
