"""Which lab hosts hold an address right now, read with one netlink dump per host.

The chaos checker samples the VIP holders every 20 ms; spawning ``ip`` 100
times a second would cost more CPU than the daemons under test. Instead one
``NETLINK_ROUTE`` socket is opened *inside* each host's network namespace (a
socket keeps the namespace it was created in) and each sample sends an
``RTM_GETADDR`` dump request for IPv4 and parses the ``RTM_NEWADDR`` replies.

Owns: opening those sockets (pyvrrpd.lab.nssocket: ``setns(2)`` in a
short-lived thread) and parsing the dump. It only reads.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Mapping

from pyvrrpd.lab.nssocket import socket_in_netns

_NETLINK_ROUTE = 0
_RTM_NEWADDR = 20
_RTM_GETADDR = 22
_NLM_F_REQUEST = 0x1
_NLM_F_DUMP = 0x300
_NLMSG_ERROR = 2
_NLMSG_DONE = 3
_IFA_ADDRESS = 1
_IFA_LOCAL = 2
_IFA_LABEL = 3
_NLMSG = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_IFADDRMSG = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
_RTATTR = struct.Struct("=HH")  # len, type


def _open_in_netns(path: str) -> socket.socket:
    """A NETLINK_ROUTE socket created inside the namespace at ``path``."""

    def make() -> socket.socket:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_ROUTE)
        sock.bind((0, 0))
        return sock

    return socket_in_netns(path, make, "open netlink")


def parse_addrs(data: bytes) -> tuple[dict[str, str], bool]:
    """``({address: label}, done)`` from one receive buffer of an RTM_GETADDR dump."""
    out: dict[str, str] = {}
    off = 0
    while off + _NLMSG.size <= len(data):
        length, mtype, _flags, _seq, _pid = _NLMSG.unpack_from(data, off)
        if length < _NLMSG.size:
            break
        if mtype == _NLMSG_DONE:
            return out, True
        if mtype == _NLMSG_ERROR:
            (code,) = struct.unpack_from("=i", data, off + _NLMSG.size)
            raise OSError(-code, f"netlink dump failed: {os.strerror(-code)}")
        if mtype == _RTM_NEWADDR:
            body = off + _NLMSG.size
            family = data[body]
            apos = body + _IFADDRMSG.size
            addr = label = ""
            while family == socket.AF_INET and apos + _RTATTR.size <= off + length:
                alen, atype = _RTATTR.unpack_from(data, apos)
                if alen < _RTATTR.size:
                    break
                val = data[apos + _RTATTR.size : apos + alen]
                if atype == _IFA_LOCAL or (atype == _IFA_ADDRESS and not addr):
                    addr = socket.inet_ntoa(val[:4])
                elif atype == _IFA_LABEL:
                    label = val.rstrip(b"\0").decode(errors="replace")
                apos += (alen + 3) & ~3
            if addr:
                out[addr] = label
        off += (length + 3) & ~3
    return out, False


class AddrWatch:
    """IPv4 addresses of several namespaces, one dump per namespace per call."""

    def __init__(self, netns: Mapping[str, str]) -> None:
        """``netns``: ``{host: namespace name}`` (as made by ``ip netns add``)."""
        self._socks: dict[str, socket.socket] = {}
        self._seq = 0
        try:
            for host, name in netns.items():
                self._socks[host] = _open_in_netns(f"/run/netns/{name}")
        except OSError:
            self.close()
            raise

    def addresses(self, host: str) -> dict[str, str]:
        """``{address: interface label}`` of ``host`` right now."""
        sock = self._socks[host]
        self._seq += 1
        req = _NLMSG.pack(
            _NLMSG.size + _IFADDRMSG.size,
            _RTM_GETADDR,
            _NLM_F_REQUEST | _NLM_F_DUMP,
            self._seq,
            0,
        ) + _IFADDRMSG.pack(socket.AF_INET, 0, 0, 0, 0)
        sock.send(req)
        found: dict[str, str] = {}
        while True:
            part, done = parse_addrs(sock.recv(65536))
            found.update(part)
            if done:
                return found

    def holders(self, address: str) -> dict[str, str]:
        """``{host: interface}`` for every host that has ``address`` now."""
        out: dict[str, str] = {}
        for host in self._socks:
            label = self.addresses(host).get(address)
            if label is not None:
                out[host] = label
        return out

    def close(self) -> None:
        """Close every socket (idempotent)."""
        for sock in self._socks.values():
            sock.close()
        self._socks.clear()
