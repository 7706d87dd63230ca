"""Raw IP protocol-112 sockets that carry VRRP adverts on one interface.

Owns: opening, configuring, reading and writing the two raw sockets of one
interface; the kernel builds the IP header (TTL 255, TOS 0xC0, protocol 112,
destination 224.0.0.18, source = the interface's primary address), unless a
router's :class:`SendTarget` says otherwise: its own multicast group
(`mcast_dst_ip`), its unicast peers instead of a group (`unicast_peer`, one
datagram each, TTL `unicast_ttl`), or its own source address
(`unicast_src_ip`/`mcast_src_ip`, set per datagram with IP_PKTINFO so the
instances sharing the interface share the socket). The receive sockets join
only the groups the routers send to: none when all of them are unicast.

Must not: parse or build VRRP payloads (that is ``pyvrrpd.wire``), validate
received packets, or block the event loop (both sockets are non-blocking).

Why two receive sockets: with ``fast_paths`` given, a kernel filter
(``pyvrrpd.wire.bpf``) queues what looks like our own routers' adverts on one
socket and everything else on a second, smaller one that is read at a bounded
rate. A flood of junk then fills only the slow queue and the real adverts are
never dropped behind it (issue 5: a backup missing adverts under a flood became
a second master). Both queues are fully checked in userspace.

Why a separate send socket: the receive socket must not be bound to an address (a raw
socket bound to a unicast address only sees packets addressed to it, which
filters the multicast adverts out), while the send socket is bound to the
primary address so the kernel never picks a VIP as the source (RFC 3768 §5.2.4
wants the primary address; with several addresses on the interface the kernel
would otherwise choose by its own rules).
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address

from pyvrrpd.io import txsock
from pyvrrpd.io.errors import HostError, describe_oserror, errno_of
from pyvrrpd.io.queuepair import QueuePair
from pyvrrpd.io.rawsock import (
    attach_drop_all_filter,
    attach_filter,
    open_rx,
)
from pyvrrpd.wire.bpf import FastPath, assemble, split_filter
from pyvrrpd.wire.vrrp import VRRP_GROUP, VRRP_PROTO

__all__ = ["VRRP_GROUP", "VRRP_PROTO", "AdvertNotSent", "SendTarget", "VrrpSocket"]

_TTL = 255
_RCVBUF = 1 << 20
# The two receive queues are read by pyvrrpd.io.queuepair (RECV_BUDGET per
# wake-up for the fast one, SLOW_BUDGET per SLOW_PAUSE for the slow one).
_SLOW_RCVBUF = 256 * 1024
_SO_MEMINFO = 55  # <asm-generic/socket.h>
_SK_MEMINFO_DROPS = 8  # <linux/sock_diag.h>


@dataclass(frozen=True, slots=True)
class SendTarget:
    """Where one virtual router's adverts go (keepalived's vrrp_send_adv()).

    `dests`: the multicast group, or every unicast peer (never the group).
    `src`: the configured source address (None: the interface's primary).
    `ttl`: the IP TTL of unicast adverts (`unicast_ttl`); multicast ones are
    always sent with 255 (RFC 3768 5.2.3). The kernel refuses a TTL of 0 on a
    datagram (keepalived writes its own IP header and can send 0); 0 is sent
    as 1, which a directly connected peer receives just the same.
    """

    dests: tuple[IPv4Address, ...] = (VRRP_GROUP,)
    src: IPv4Address | None = None
    ttl: int = _TTL

    @property
    def groups(self) -> tuple[IPv4Address, ...]:
        return tuple(d for d in self.dests if d.is_multicast)


_DEFAULT_TARGET = SendTarget()


class AdvertNotSent(HostError):
    """No destination of an advert round took it (no socket, or every send refused).

    A MASTER in that state holds the VIPs while its peers hear nothing and
    take them too; the shell resigns it after two such rounds (shell/executor.py).
    """


def _cmsgs(
    target: SendTarget, dest: IPv4Address, ifindex: int, bound: IPv4Address
) -> list[tuple[int, int, bytes]]:
    """Ancillary data for one datagram: the source address and the unicast TTL."""
    src = target.src.packed if target.src is not None else None
    return txsock.send_cmsgs(ifindex, bound.packed, src, dest.is_multicast, target.ttl)


def kernel_drops(sock: socket.socket) -> int:
    """Datagrams the kernel dropped on `sock` (receive buffer full); -1 if unknown."""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, _SO_MEMINFO, 4 * 16)
    except OSError:
        return -1
    if len(raw) < 4 * (_SK_MEMINFO_DROPS + 1):
        return -1
    return int(struct.unpack_from("=I", raw, 4 * _SK_MEMINFO_DROPS)[0])


class VrrpSocket:
    """The receive and send raw sockets of one interface."""

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
        #: Per VRID: where that router's adverts go (default: 224.0.0.18).
        self.targets: dict[int, SendTarget] = {}
        #: Counters for the stats/debug output.
        self.sent = 0
        self.send_errors = 0

    @classmethod
    def open(
        cls,
        ifname: str,
        ifindex: int,
        primary_ip: IPv4Address,
        fast_paths: Sequence[FastPath] | None = None,
        targets: Mapping[int, SendTarget] | None = None,
    ) -> VrrpSocket:
        """Open the sockets; HostError (one line) on any failure.

        With `fast_paths` (our routers on this interface) received traffic is
        split into a fast and a throttled slow queue (module docstring).
        `targets` (per VRID; default: 224.0.0.18 from the primary address)
        also decide the groups joined: those of the multicast routers.
        """
        groups: tuple[IPv4Address, ...] = (VRRP_GROUP,)
        if targets is not None:
            groups = tuple(dict.fromkeys(g for t in targets.values() for g in t.groups))
        rx: socket.socket | None = None
        rx_slow: socket.socket | None = None
        tx: socket.socket | None = None
        codes: tuple[bytes, bytes] | None = None
        if fast_paths:
            try:
                fast, slow = split_filter(fast_paths)
                codes = (assemble(fast), assemble(slow))
            except ValueError:
                codes = None  # too many routers for one program: one queue
        step = "receive socket"
        try:
            code = codes[0] if codes else None
            rx = open_rx(VRRP_PROTO, ifname, ifindex, _RCVBUF, groups, code)
            if codes is not None:
                step = "slow receive socket"
                rx_slow = open_rx(VRRP_PROTO, ifname, ifindex, _SLOW_RCVBUF, groups, codes[1])

            step = "send socket"
            # Options and errors as release-vips' one-off advert (io/txsock.py).
            tx = txsock.open_vrrp(ifname, ifindex, str(primary_ip))
            step = "SO_ATTACH_FILTER"
            attach_drop_all_filter(tx)  # a send socket: nothing may queue on it
            tx.setblocking(False)
        except (OSError, HostError) as exc:
            for s in (rx, rx_slow, tx):
                if s is not None:
                    s.close()
            if isinstance(exc, HostError):
                raise
            raise txsock.vrrp_error(exc, ifname, step) from exc
        sock = cls(ifname, ifindex, primary_ip, rx, tx, rx_slow)
        if targets is not None:
            sock.targets.update(targets)
        return sock

    def send(self, payload: bytes) -> None:
        """Send one VRRP payload (no IP header) where its router's target says.

        The router is the payload's VRID (RFC 3768 5.3.3, byte 1). A unicast
        router's advert goes to every peer, even when one send fails
        (keepalived logs each failure and carries on). Never blocks; a full
        send queue or a down interface raises HostError after the other peers
        were tried (the caller logs it and carries on: the next advert is one
        interval away).
        """
        target = self.targets.get(payload[1], _DEFAULT_TARGET) if len(payload) > 1 else None
        target = target or _DEFAULT_TARGET
        failure: HostError | None = None
        errors = 0
        for dest in target.dests:
            try:
                cmsgs = _cmsgs(target, dest, self.ifindex, self.primary_ip)
                if cmsgs:
                    self._tx.sendmsg([payload], cmsgs, 0, (str(dest), 0))
                else:
                    self._tx.sendto(payload, (str(dest), 0))
            except OSError as exc:
                self.send_errors += 1
                errors += 1
                failure = failure or HostError(
                    f"cannot send VRRP advert on {self.ifname!r} to {dest}:"
                    f" {describe_oserror(exc)}",
                    errno_code=errno_of(exc),
                )
        if failure is not None:
            if len(target.dests) == errors:
                raise AdvertNotSent(str(failure), errno_code=failure.errno_code) from failure
            raise failure
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

        The kernel swaps each filter atomically; between the two swaps a packet
        may be queued on both sockets or on neither, which the protocol
        tolerates (a duplicate advert changes nothing; a lost one is one of
        three per Master_Down_Interval). False if there is no split.
        """
        if self._rx_slow is None:
            return False
        try:
            fast, slow = split_filter(fast_paths)
            attach_filter(self._rx, assemble(fast))
            attach_filter(self._rx_slow, assemble(slow))
        except (ValueError, OSError):
            return False
        return True

    def kernel_drops(self) -> dict[str, int]:
        """Datagrams the kernel dropped on the fast and slow receive queues."""
        out = {"fast": kernel_drops(self._rx)}
        if self._rx_slow is not None:
            out["slow"] = kernel_drops(self._rx_slow)
        return out

    def close(self) -> None:
        """Detach and close both sockets. Idempotent."""
        if self._rx.fileno() >= 0:
            self.detach()
        self._rx.close()
        if self._rx_slow is not None:
            self._rx_slow.close()
        self._tx.close()

    def fileno(self) -> int:
        """The receive socket's descriptor (for tests and diagnostics)."""
        return self._rx.fileno()
