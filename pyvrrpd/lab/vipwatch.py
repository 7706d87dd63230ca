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
from collections.abc import Mapping

from pyvrrpd.io import rtnl
from pyvrrpd.lab.nssocket import socket_in_netns


def _open_in_netns(path: str) -> socket.socket:
    """A NETLINK_ROUTE socket created inside the namespace at ``path``."""

    def make() -> socket.socket:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, rtnl.NETLINK_ROUTE)
        sock.bind((0, 0))
        return sock

    return socket_in_netns(path, make, "open netlink")


def parse_addrs(data: bytes) -> tuple[dict[str, str], bool]:
    """``({address: label}, done)`` from one receive buffer of an RTM_GETADDR dump
    (the messages decoded by pyvrrpd.io.rtnl)."""
    out: dict[str, str] = {}
    for msg in rtnl.split_messages(data):
        if msg.mtype == rtnl.NLMSG_DONE:
            return out, True
        if msg.mtype == rtnl.NLMSG_ERROR:
            code = rtnl.ack_errno(msg.payload)
            raise OSError(code, f"netlink dump failed: {os.strerror(code)}")
        if msg.mtype == rtnl.RTM_NEWADDR:
            addr = rtnl.parse_ifaddr(msg.payload)
            if addr is not None:
                out[addr.address] = addr.label
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
        sock.send(rtnl.encode_getaddr(self._seq))
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
