"""A few rtnetlink requests on a bare NETLINK_ROUTE socket, for the first milliseconds of a process.

Owns: encoding RTM_GETADDR (IPv4 dump) and RTM_DELADDR requests, parsing
the replies (struct nlmsghdr, struct ifaddrmsg, IFA_* attributes,
NLMSG_ERROR acks) and the blocking socket that carries them. Every request
asks for an ack (NLM_F_ACK), so a refused deletion is seen, not assumed.

Why not pyroute2 (pyvrrpd.io.netlink): importing it costs ~70 ms. `pyvrrpd
release-vips` runs right after a daemon was killed (systemd's ExecStopPost,
a watchdog SIGKILL included) and must take the VIPs off the dead box before
anything else; while it imports, the backup may already hold the VIP too
(README "After a crash"). This module imports only the standard library's
socket, struct, errno and os, plus pyvrrpd.io.errors.

Must not: grow into a netlink library; the daemon keeps using pyvrrpd.io.netlink.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from typing import NamedTuple

from pyvrrpd.io.errors import HostError, describe_oserror

__all__ = [
    "IfAddr",
    "Rtnl",
    "ack_errno",
    "encode_deladdr",
    "encode_getaddr",
    "parse_ifaddr",
    "split_messages",
]

# <linux/netlink.h>, <linux/rtnetlink.h>, <linux/if_addr.h>
NETLINK_ROUTE = 0
NLMSG_ERROR = 2
NLMSG_DONE = 3
RTM_NEWADDR = 20
RTM_DELADDR = 21
RTM_GETADDR = 22
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_LABEL = 3
IFA_F_SECONDARY = 0x01

_NLMSG = struct.Struct("=IHHII")  # nlmsg_len, nlmsg_type, nlmsg_flags, nlmsg_seq, nlmsg_pid
_IFADDRMSG = struct.Struct("=BBBBi")  # ifa_family, ifa_prefixlen, ifa_flags, ifa_scope, ifa_index
_RTATTR = struct.Struct("=HH")  # rta_len, rta_type
_ERRNO = struct.Struct("=i")  # struct nlmsgerr's error (negative errno, 0 = ack)
_RCVBUF = 1 << 20


class IfAddr(NamedTuple):
    """One IPv4 address of the namespace (an RTM_NEWADDR of the dump)."""

    ifindex: int
    address: str  # dotted quad: IFA_LOCAL, else IFA_ADDRESS
    prefixlen: int
    flags: int  # ifa_flags (IFA_F_SECONDARY, ...)
    label: str = ""  # IFA_LABEL: the interface name, or its alias (eth0:1)


class Message(NamedTuple):
    mtype: int
    flags: int
    seq: int
    payload: bytes


def _align(n: int) -> int:
    return (n + 3) & ~3


def _rtattr(atype: int, value: bytes) -> bytes:
    length = _RTATTR.size + len(value)
    return _RTATTR.pack(length, atype) + value + bytes(_align(length) - length)


def _message(mtype: int, flags: int, seq: int, body: bytes) -> bytes:
    return _NLMSG.pack(_NLMSG.size + len(body), mtype, flags, seq, 0) + body


def encode_getaddr(seq: int) -> bytes:
    """An RTM_GETADDR dump request for every IPv4 address of the namespace."""
    body = _IFADDRMSG.pack(socket.AF_INET, 0, 0, 0, 0)
    return _message(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq, body)


def encode_deladdr(seq: int, index: int, address: str, prefixlen: int) -> bytes:
    """RTM_DELADDR of `address/prefixlen` on interface `index`, acked.

    IFA_LOCAL and IFA_ADDRESS both carry the address, as `ip addr del`
    sends them for an address without a peer: the kernel matches IFA_LOCAL
    and, when given, the prefix length (inet_rtm_deladdr).
    """
    packed = socket.inet_aton(address)
    body = _IFADDRMSG.pack(socket.AF_INET, prefixlen, 0, 0, index)
    body += _rtattr(IFA_LOCAL, packed) + _rtattr(IFA_ADDRESS, packed)
    return _message(RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK, seq, body)


def split_messages(data: bytes) -> list[Message]:
    """The netlink messages of one receive buffer (a truncated tail is dropped)."""
    out: list[Message] = []
    off = 0
    while off + _NLMSG.size <= len(data):
        length, mtype, flags, seq, _pid = _NLMSG.unpack_from(data, off)
        if length < _NLMSG.size or off + length > len(data):
            break
        out.append(Message(mtype, flags, seq, data[off + _NLMSG.size : off + length]))
        off += _align(length)
    return out


def ack_errno(payload: bytes) -> int:
    """The errno of an NLMSG_ERROR payload: 0 for an ack, else positive (EADDRNOTAVAIL, ...)."""
    if len(payload) < _ERRNO.size:
        return errno.EPROTO
    return -int(_ERRNO.unpack_from(payload)[0])


def parse_ifaddr(payload: bytes) -> IfAddr | None:
    """The IPv4 address of an RTM_NEWADDR payload; None for another family or no address."""
    if len(payload) < _IFADDRMSG.size:
        return None
    family, prefixlen, flags, _scope, index = _IFADDRMSG.unpack_from(payload)
    if family != socket.AF_INET:
        return None
    local = address = None
    label = ""
    pos = _IFADDRMSG.size
    while pos + _RTATTR.size <= len(payload):
        alen, atype = _RTATTR.unpack_from(payload, pos)
        if alen < _RTATTR.size or pos + alen > len(payload):
            break
        value = payload[pos + _RTATTR.size : pos + alen]
        if atype == IFA_LABEL:
            label = value.rstrip(b"\0").decode(errors="replace")
        elif len(value) >= 4:
            if atype == IFA_LOCAL:
                local = socket.inet_ntoa(value[:4])
            elif atype == IFA_ADDRESS:
                address = socket.inet_ntoa(value[:4])
        pos += _align(alen)
    # IFA_LOCAL is the address itself; IFA_ADDRESS differs only on a
    # point-to-point link (the peer), as pyvrrpd.io.netlink reads them.
    found = local or address
    return IfAddr(index, found, prefixlen, flags, label) if found else None


class Rtnl:
    """A blocking NETLINK_ROUTE socket for a handful of requests; close() when done.

    A kernel that does not answer within `timeout` seconds raises TimeoutError
    (an OSError) from the request, as io/netlink.py puts a deadline on its own.
    """

    def __init__(self, timeout: float = 5.0) -> None:
        try:
            self._sock = socket.socket(
                socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE
            )
        except OSError as exc:
            raise HostError(f"cannot open netlink socket: {describe_oserror(exc)}") from exc
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
            self._sock.bind((0, 0))
            self._sock.settimeout(timeout)
        except OSError as exc:
            self._sock.close()
            raise HostError(f"cannot open netlink socket: {describe_oserror(exc)}") from exc
        self._seq = 0

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _replies(self, seq: int) -> list[Message]:
        """Every message answering request `seq`, through its NLMSG_DONE or NLMSG_ERROR."""
        out: list[Message] = []
        while True:
            for msg in split_messages(self._sock.recv(65536)):
                if msg.seq != seq:
                    continue  # a late answer to an earlier request
                out.append(msg)
                if msg.mtype in (NLMSG_DONE, NLMSG_ERROR):
                    return out

    def addresses(self) -> list[IfAddr]:
        """Every IPv4 address of the namespace, in the kernel's order (per interface,
        primary before secondary). OSError if the dump fails."""
        seq = self._next_seq()
        self._sock.send(encode_getaddr(seq))
        found: list[IfAddr] = []
        for msg in self._replies(seq):
            if msg.mtype == NLMSG_ERROR:
                code = ack_errno(msg.payload)
                if code:
                    raise OSError(code, os.strerror(code))
            elif msg.mtype == RTM_NEWADDR:
                addr = parse_ifaddr(msg.payload)
                if addr is not None:
                    found.append(addr)
        return found

    def delete_address(self, index: int, address: str, prefixlen: int) -> bool:
        """Remove `address/prefixlen` from interface `index`: True when removed,
        False when it was not there (EADDRNOTAVAIL). OSError for any other refusal."""
        seq = self._next_seq()
        self._sock.send(encode_deladdr(seq, index, address, prefixlen))
        for msg in self._replies(seq):
            if msg.mtype == NLMSG_ERROR:
                code = ack_errno(msg.payload)
                if code == errno.EADDRNOTAVAIL:
                    return False
                if code:
                    raise OSError(code, os.strerror(code))
                return True
        raise OSError(errno.EPROTO, "no netlink ack")  # pragma: no cover - _replies ends on one
