"""The MTU of a network interface, by name, in the current network namespace.

Owns: one `SIOCGIFMTU` ioctl. The shell uses it to cap how many VIPs an advert
carries (keepalived does the same at start, vrrp_complete_instance()). An
ioctl on a socket answers for the namespace the daemon runs in, which
/sys/class/net does not when the daemon entered a namespace itself.
Must not: raise; a missing interface is None (the daemon waits for it).
"""

from __future__ import annotations

import fcntl
import socket
import struct

_SIOCGIFMTU = 0x8921  # linux/sockios.h
_IFNAMSIZ = 16


def interface_mtu(ifname: str) -> int | None:
    """The MTU of `ifname`, or None if there is no such interface (or no way to ask)."""
    name = ifname.encode("utf-8", "surrogateescape")
    if not name or len(name) >= _IFNAMSIZ:
        return None
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            # struct ifreq: the name, then a union whose first int is ifr_mtu.
            req = struct.pack(f"{_IFNAMSIZ}si", name, 0)
            answer = fcntl.ioctl(sock.fileno(), _SIOCGIFMTU, req)
    except OSError:
        return None
    mtu: int = struct.unpack_from(f"{_IFNAMSIZ}si", answer)[1]
    return mtu
