"""Raw IPv4 socket plumbing shared by the VRRP (112) and AH (51) sockets.

Owns: the socket options both ``pyvrrpd.io.vrrp_socket`` and
``pyvrrpd.io.ah_socket`` set the same way (multicast membership on one
interface, classic BPF filters, the receive socket's setup), the budgeted
read of one wake-up, and the CAP_NET_RAW test of an open failure.

Must not: know a protocol's packets or keep per-interface state.
"""

from __future__ import annotations

import ctypes
import socket
import struct
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address

MAX_DATAGRAM = 65535
#: Datagrams read per wake-up. The loop runs due timers between wake-ups, so
#: under a flood adverts still go out on time (issue 5: a drain-until-empty
#: reader starved the timers for 6.4 s). 64 packets take ~1-2 ms to classify.
RECV_BUDGET = 64

# <linux/in.h>; not exported by every Python build's socket module.
_IP_MULTICAST_ALL = getattr(socket, "IP_MULTICAST_ALL", 49)
_SO_ATTACH_FILTER = 26  # <asm-generic/socket.h>


def mreqn(group: IPv4Address | None, ifindex: int) -> bytes:
    """struct ip_mreqn { in_addr imr_multiaddr, imr_address; int imr_ifindex }."""
    g = group.packed if group is not None else b"\0\0\0\0"
    return struct.pack("=4s4si", g, b"\0\0\0\0", ifindex)


def attach_filter(sock: socket.socket, code: bytes) -> None:
    """Attach a classic BPF program (an array of `struct sock_filter`)."""
    insns = ctypes.create_string_buffer(code, len(code))
    prog = struct.pack("@HP", len(code) // 8, ctypes.addressof(insns))  # struct sock_fprog
    sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, prog)


def attach_drop_all_filter(sock: socket.socket) -> None:
    """Attach the classic BPF program ``ret #0`` (accept nothing).

    A raw socket receives every datagram of its protocol in the namespace; a
    send socket never reads, so this keeps the kernel from queueing copies.
    """
    attach_filter(sock, struct.pack("=HBBI", 0x06, 0, 0, 0))  # BPF_RET|BPF_K


def open_rx(
    proto: int,
    ifname: str,
    ifindex: int,
    rcvbuf: int,
    groups: Sequence[IPv4Address],
    code: bytes | None = None,
) -> socket.socket:
    """A non-blocking raw receive socket for `proto` on one interface.

    Raises OSError (the socket closed) if any option fails.
    """
    rx = socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)
    try:
        # The filter first: nothing may be queued before it is in place.
        if code is not None:
            attach_filter(rx, code)
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
        # Unicast datagrams arrive without any membership (a raw socket sees
        # every datagram of its protocol delivered locally on its device).
        for group in groups:
            rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn(group, ifindex))
        # Only deliver groups joined on THIS socket (Linux default is all
        # groups joined by any socket in the namespace).
        rx.setsockopt(socket.IPPROTO_IP, _IP_MULTICAST_ALL, 0)
        # A burst of adverts must not be dropped while the loop is busy.
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        rx.setblocking(False)
    except OSError:
        rx.close()
        raise
    return rx


def read_budget(sock: socket.socket, budget: int, deliver: Callable[[bytes], None]) -> bool:
    """Hand at most `budget` queued datagrams to `deliver`; True if the budget
    ran out (more may be waiting).

    An empty queue or any error ends the turn: transient errors (ENETDOWN
    while the link flaps) must not kill the reader. Exceptions from `deliver`
    propagate to the loop's exception handler, as for any reader callback.
    """
    for _ in range(budget):
        try:
            data = sock.recv(MAX_DATAGRAM)
        except OSError:
            return False
        deliver(data)
    return True
