"""The send sockets of VRRP (protocol 112) and AH (51), and one-off sends, without asyncio.

Owns: opening a send socket on one interface (bound to the device and the
source address, multicast out of that interface, TTL 255, TOS 0xC0, no
loopback; AH with IP_HDRINCL), the per-datagram ancillary data (source
address, unicast TTL), the one-line HostError wording of a failed socket
step, and sending one payload to each destination.

pyvrrpd.io.vrrp_socket and pyvrrpd.io.ah_socket open their send sockets
here and word their receive sockets' errors with `vrrp_error` /
`ah_error`, so the options live in one place. This module imports neither
asyncio, the BPF assembler nor the wire package (~40 ms of imports):
`pyvrrpd release-vips` sends one priority-0 advert right after the daemon
died (RFC 3768 6.4.3) with it, and every millisecond counts there (README
"After a crash").

Must not: build or parse packets (the caller hands over finished bytes).
"""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Sequence

from pyvrrpd.io.errors import HostError, describe_oserror, errno_of

__all__ = [
    "ah_error",
    "is_multicast",
    "no_cap_net_raw",
    "open_ah",
    "open_vrrp",
    "send_ah",
    "send_cmsgs",
    "send_vrrp",
    "vrrp_error",
]

VRRP_PROTO = 112
AH_PROTO = 51
_TTL = 255
_TOS = 0xC0  # DSCP CS6 (network control), as keepalived sends it
_IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # <linux/in.h>


def is_multicast(address: str) -> bool:
    """224.0.0.0/4."""
    return 224 <= socket.inet_aton(address)[0] <= 239


def _mreqn(ifindex: int) -> bytes:
    """struct ip_mreqn { in_addr imr_multiaddr, imr_address; int imr_ifindex }."""
    return struct.pack("=4s4si", bytes(4), bytes(4), ifindex)


def no_cap_net_raw(exc: OSError) -> bool:
    """Whether opening a raw socket failed for want of CAP_NET_RAW."""
    return isinstance(exc, PermissionError) or errno_of(exc) in (errno.EPERM, errno.EACCES)


def vrrp_error(exc: OSError, ifname: str, doing: str) -> HostError:
    """The one-line error for a protocol-112 socket step that failed (here and
    in pyvrrpd.io.vrrp_socket, whose receive sockets fail the same ways)."""
    code = errno_of(exc)
    if no_cap_net_raw(exc):
        return HostError(
            "cannot open raw VRRP socket: CAP_NET_RAW missing (run as root)", errno_code=code
        )
    if code == errno.ENODEV:
        return HostError(f"interface {ifname!r} not found", errno_code=code)
    return HostError(
        f"VRRP socket on {ifname!r}: {doing}: {describe_oserror(exc)}", errno_code=code
    )


def ah_error(exc: OSError, ifname: str, doing: str) -> HostError:
    """The one-line error for a protocol-51 socket step that failed."""
    code = errno_of(exc)
    if no_cap_net_raw(exc):
        return HostError(
            "cannot open raw AH socket: CAP_NET_RAW missing (run as root)", errno_code=code
        )
    return HostError(f"AH socket on {ifname!r}: {doing}: {describe_oserror(exc)}", errno_code=code)


def send_cmsgs(
    ifindex: int, bound: bytes, src: bytes | None, multicast: bool, ttl: int
) -> list[tuple[int, int, bytes]]:
    """Ancillary data for one advert: the source address when it is not the
    bound one, and the TTL of a unicast datagram (0 sent as 1). Addresses packed."""
    out: list[tuple[int, int, bytes]] = []
    if src is not None and src != bound:
        # struct in_pktinfo { int ipi_ifindex; in_addr ipi_spec_dst, ipi_addr }:
        # ipi_spec_dst becomes the source address of a raw datagram.
        out.append((socket.IPPROTO_IP, _IP_PKTINFO, struct.pack("=i4s4s", ifindex, src, bytes(4))))
    if not multicast and ttl != _TTL:
        out.append((socket.IPPROTO_IP, socket.IP_TTL, struct.pack("=i", max(1, ttl))))
    return out


def open_vrrp(ifname: str, ifindex: int, source: str) -> socket.socket:
    """A blocking protocol-112 send socket bound to `ifname` and `source`; HostError on failure."""
    step = "socket()"
    tx: socket.socket | None = None
    try:
        tx = socket.socket(socket.AF_INET, socket.SOCK_RAW | socket.SOCK_CLOEXEC, VRRP_PROTO)
        step = "SO_BINDTODEVICE"
        tx.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
        step = f"bind({source})"
        # Bound to the primary address: the kernel never picks a VIP as the
        # source (RFC 3768 5.2.4).
        tx.bind((source, 0))
        step = "IP_MULTICAST_IF"
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, _mreqn(ifindex))
        step = "IP_MULTICAST_TTL"
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, _TTL)
        step = "IP_MULTICAST_LOOP"
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        step = "IP_TOS"
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, _TOS)
    except OSError as exc:
        if tx is not None:
            tx.close()
        if step.startswith("bind") and errno_of(exc) == errno.EADDRNOTAVAIL:
            raise HostError(
                f"VRRP socket on {ifname!r}: {source} is not a local address",
                errno_code=errno.EADDRNOTAVAIL,
            ) from exc
        raise vrrp_error(exc, ifname, step) from exc
    return tx


def send_vrrp(
    tx: socket.socket,
    ifname: str,
    ifindex: int,
    bound: str,
    payload: bytes,
    dests: Sequence[str],
    src: str | None,
    ttl: int,
) -> None:
    """Send `payload` (no IP header) to every destination, as VrrpSocket.send does for
    its router's SendTarget: `src` set per datagram (IP_PKTINFO) when it is not the
    bound address, unicast datagrams with TTL `ttl` (0 sent as 1). Every destination
    is tried; the first failure is raised as HostError afterwards."""
    failure: HostError | None = None
    for dest in dests:
        packed_src = socket.inet_aton(src) if src is not None else None
        cmsgs = send_cmsgs(ifindex, socket.inet_aton(bound), packed_src, is_multicast(dest), ttl)
        try:
            if cmsgs:
                tx.sendmsg([payload], cmsgs, 0, (dest, 0))
            else:
                tx.sendto(payload, (dest, 0))
        except OSError as exc:
            failure = failure or HostError(
                f"cannot send VRRP advert on {ifname!r} to {dest}: {describe_oserror(exc)}",
                errno_code=errno_of(exc),
            )
    if failure is not None:
        raise failure


def open_ah(ifname: str, ifindex: int) -> socket.socket:
    """A blocking protocol-51 IP_HDRINCL send socket on `ifname`; HostError on failure."""
    tx: socket.socket | None = None
    try:
        tx = socket.socket(socket.AF_INET, socket.SOCK_RAW | socket.SOCK_CLOEXEC, AH_PROTO)
        # The AH ICV covers the IP header: we build it, the kernel must not.
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
        tx.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, _mreqn(ifindex))
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    except OSError as exc:
        if tx is not None:
            tx.close()
        raise ah_error(exc, ifname, "send socket") from exc
    return tx


def send_ah(tx: socket.socket, ifname: str, datagram: bytes) -> None:
    """Send one whole IPv4 datagram (header included) to its destination address."""
    try:
        tx.sendto(datagram, (socket.inet_ntoa(datagram[16:20]), 0))
    except OSError as exc:
        raise HostError(
            f"cannot send AH advert on {ifname!r}: {describe_oserror(exc)}",
            errno_code=errno_of(exc),
        ) from exc
