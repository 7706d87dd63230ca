"""Raw IP protocol-51 sockets for `auth_type AH` adverts on one interface.

Owns: opening, reading and writing the two raw sockets that carry
keepalived-style AH-protected VRRP adverts (``pyvrrpd.wire.ah``) on one
interface. They sit beside the protocol-112 sockets of
``pyvrrpd.io.vrrp_socket`` and are opened only where an instance uses AH
(keepalived likewise keeps one socket per interface and protocol).

Why IP_HDRINCL for sending: the AH ICV covers the IP header (total length,
identification, protocol, addresses, TTL), so the daemon builds the header
itself and the kernel must not choose any of it. The kernel still fills in
the header checksum.

No kernel queue split here (``pyvrrpd.wire.bpf``): AH traffic is rare and
every datagram is read with the same per-wake-up budget as the plain socket,
so a flood of protocol-51 junk costs at most that budget per loop turn.

Must not: parse, build or validate packets.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address

from pyvrrpd.io.errors import HostError, describe_oserror, errno_of
from pyvrrpd.io.rawsock import (
    RECV_BUDGET,
    attach_drop_all_filter,
    mreqn,
    no_cap_net_raw,
    open_rx,
    read_budget,
)
from pyvrrpd.wire.ah import AH_PROTO
from pyvrrpd.wire.vrrp import VRRP_GROUP

__all__ = ["AH_PROTO", "AhSocket"]

_RCVBUF = 1 << 20


class AhSocket:
    """The AH receive and send raw sockets of one interface."""

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
        self._ident = 0
        self.sent = 0
        self.received = 0
        self.send_errors = 0

    @classmethod
    def open(
        cls,
        ifname: str,
        ifindex: int,
        primary_ip: IPv4Address,
        groups: Sequence[IPv4Address] = (VRRP_GROUP,),
    ) -> AhSocket:
        """Open both sockets; HostError (one line) on any failure.

        `groups`: the multicast groups to join (none when every AH instance on
        the interface is unicast: a raw socket sees unicast datagrams anyway).
        """
        dev = ifname.encode()
        rx: socket.socket | None = None
        tx: socket.socket | None = None
        step = "receive socket"
        try:
            rx = open_rx(AH_PROTO, ifname, ifindex, _RCVBUF, groups)
            step = "send socket"
            tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, AH_PROTO)
            attach_drop_all_filter(tx)
            tx.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
            tx.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev)
            tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn(None, ifindex))
            # Our own adverts must not come back to our receive socket.
            tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
            tx.setblocking(False)
        except OSError as exc:
            for s in (rx, tx):
                if s is not None:
                    s.close()
            code = errno_of(exc)
            if no_cap_net_raw(exc):
                raise HostError(
                    "cannot open raw AH socket: CAP_NET_RAW missing (run as root)", errno_code=code
                ) from exc
            raise HostError(
                f"AH socket on {ifname!r}: {step}: {describe_oserror(exc)}", errno_code=code
            ) from exc
        return cls(ifname, ifindex, primary_ip, rx, tx)

    def next_ident(self) -> int:
        """An IP identification for the next datagram: 1..65535, never 0.

        keepalived counts up from 1 and skips 0, which the kernel would
        replace after the ICV was computed.
        """
        self._ident = self._ident % 0xFFFF + 1
        return self._ident

    def send(self, datagram: bytes) -> None:
        """Send one whole IPv4 datagram (header included) to its destination address."""
        dst = str(IPv4Address(datagram[16:20]))
        try:
            self._tx.sendto(datagram, (dst, 0))
        except OSError as exc:
            self.send_errors += 1
            raise HostError(
                f"cannot send AH advert on {self.ifname!r}: {describe_oserror(exc)}",
                errno_code=errno_of(exc),
            ) from exc
        self.sent += 1

    def attach(self, loop: asyncio.AbstractEventLoop, on_datagram: Callable[[bytes], None]) -> None:
        """Call ``on_datagram(whole_ipv4_datagram)`` for each received AH datagram."""
        self.detach()
        rx = self._rx

        def _deliver(data: bytes) -> None:
            self.received += 1
            on_datagram(data)

        # The budget of the plain socket (rawsock.RECV_BUDGET): timers run between wake-ups.
        def _readable() -> None:
            read_budget(rx, RECV_BUDGET, _deliver)

        loop.add_reader(rx.fileno(), _readable)
        self._loop = loop

    def detach(self) -> None:
        """Stop delivering datagrams. Idempotent."""
        if self._loop is not None:
            if not self._loop.is_closed() and self._rx.fileno() >= 0:
                self._loop.remove_reader(self._rx.fileno())
            self._loop = None

    def close(self) -> None:
        """Detach and close both sockets. Idempotent."""
        self.detach()
        self._rx.close()
        self._tx.close()
