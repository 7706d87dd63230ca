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

Why two receive sockets, as on protocol 112 (``pyvrrpd.io.vrrp_socket``):
protocol-51 junk needs no key to send, and with one queue a flood of it
(~70k packets/s from one LAN host) pushed the real adverts out of the buffer
and made the backup a second master. With ``fast_paths`` a kernel filter
(``pyvrrpd.wire.bpf`` with ``offset=AH_HEADER_LEN``) queues only datagrams
that carry VRRP (AH next header 112) shaped like our AH routers' adverts, and
while a BACKUP follows a master only that master's, on the fast socket;
everything else waits on a small slow socket read at most ``SLOW_BUDGET``
datagrams per ``SLOW_PAUSE``. Both queues are fully checked in userspace.

Must not: parse, build or validate packets.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address

from pyvrrpd.io import txsock
from pyvrrpd.io.errors import HostError, describe_oserror, errno_of
from pyvrrpd.io.queuepair import QueuePair
from pyvrrpd.io.rawsock import (
    attach_drop_all_filter,
    attach_filter,
    open_rx,
)
from pyvrrpd.io.vrrp_socket import kernel_drops
from pyvrrpd.wire.ah import AH_PROTO
from pyvrrpd.wire.bpf import AH_HEADER_LEN, FastPath, assemble, split_filter
from pyvrrpd.wire.vrrp import VRRP_GROUP

__all__ = ["AH_PROTO", "AhSocket"]

_RCVBUF = 1 << 20
_SLOW_RCVBUF = 256 * 1024


class AhSocket:
    """The AH receive and send raw sockets of one interface."""

    def __init__(
        self,
        ifname: str,
        ifindex: int,
        primary_ip: IPv4Address,
        rx: socket.socket,
        tx: socket.socket,
        rx_slow: socket.socket | None = None,
    ) -> None:
        self.ifname = ifname
        self.ifindex = ifindex
        self.primary_ip = primary_ip
        self._rx = rx
        self._rx_slow = rx_slow
        self._tx = tx
        self._queues = QueuePair(rx, rx_slow)
        self._ident = 0
        self.sent = 0
        self.send_errors = 0

    @classmethod
    def open(
        cls,
        ifname: str,
        ifindex: int,
        primary_ip: IPv4Address,
        groups: Sequence[IPv4Address] = (VRRP_GROUP,),
        fast_paths: Sequence[FastPath] | None = None,
    ) -> AhSocket:
        """Open the sockets; HostError (one line) on any failure.

        `groups`: the multicast groups to join (none when every AH instance on
        the interface is unicast: a raw socket sees unicast datagrams anyway).
        `fast_paths` (the AH routers on this interface): split received
        traffic into a fast and a throttled slow queue (module docstring).
        """
        rx: socket.socket | None = None
        rx_slow: socket.socket | None = None
        tx: socket.socket | None = None
        codes = _codes(fast_paths) if fast_paths else None
        step = "receive socket"
        try:
            rx = open_rx(AH_PROTO, ifname, ifindex, _RCVBUF, groups, codes[0] if codes else None)
            if codes is not None:
                step = "slow receive socket"
                rx_slow = open_rx(AH_PROTO, ifname, ifindex, _SLOW_RCVBUF, groups, codes[1])
            step = "send socket"
            # Options and errors as release-vips' one-off advert (io/txsock.py).
            tx = txsock.open_ah(ifname, ifindex)
            attach_drop_all_filter(tx)  # a send socket: nothing may queue on it
            tx.setblocking(False)
        except (OSError, HostError) as exc:
            for s in (rx, rx_slow, tx):
                if s is not None:
                    s.close()
            if isinstance(exc, HostError):
                raise
            raise txsock.ah_error(exc, ifname, step) from exc
        return cls(ifname, ifindex, primary_ip, rx, tx, rx_slow)

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

    @property
    def received(self) -> int:
        return self._queues.received

    @property
    def received_slow(self) -> int:
        return self._queues.received_slow

    def attach(self, loop: asyncio.AbstractEventLoop, on_datagram: Callable[[bytes], None]) -> None:
        """Call ``on_datagram(whole_ipv4_datagram)`` for each received datagram
        (the fast queue per wake-up, the slow one rate-bounded: io/queuepair.py)."""
        self._queues.attach(loop, on_datagram)

    def detach(self) -> None:
        """Stop delivering datagrams. Idempotent."""
        self._queues.detach()

    def set_fast_paths(self, fast_paths: Sequence[FastPath]) -> bool:
        """Replace the queue split (the master a BACKUP follows changed).

        Each filter is swapped atomically by the kernel; see
        ``VrrpSocket.set_fast_paths`` for why the moment between the two
        swaps is harmless. False if there is no split.
        """
        if self._rx_slow is None or not fast_paths:
            return False
        codes = _codes(fast_paths)
        if codes is None:
            return False
        try:
            attach_filter(self._rx, codes[0])
            attach_filter(self._rx_slow, codes[1])
        except OSError:
            return False
        return True

    def kernel_drops(self) -> dict[str, int]:
        """Datagrams the kernel dropped on the fast and slow receive queues."""
        out = {"fast": kernel_drops(self._rx)}
        if self._rx_slow is not None:
            out["slow"] = kernel_drops(self._rx_slow)
        return out

    def close(self) -> None:
        """Detach and close the sockets. Idempotent."""
        self.detach()
        self._rx.close()
        if self._rx_slow is not None:
            self._rx_slow.close()
        self._tx.close()


def _codes(fast_paths: Sequence[FastPath]) -> tuple[bytes, bytes] | None:
    """The assembled (fast, slow) filters; None if one program cannot hold them."""
    try:
        fast, slow = split_filter(fast_paths, offset=AH_HEADER_LEN)
    except ValueError:
        return None  # too many routers for one program: one queue
    return assemble(fast), assemble(slow)
