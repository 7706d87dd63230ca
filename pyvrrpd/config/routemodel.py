"""Typed, frozen routes and rules of a keepalived.conf (keepalived.md 1.2, 1.8).

Owns: the data `virtual_routes`, `virtual_rules`, `static_routes` and
`static_rules` are read into (pyvrrpd.config.routes reads them,
pyvrrpd.io.routes installs them). Kept apart from model.py so that module
only grows by the fields that hold these. Must not parse or do I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

#: keepalived's RTPROT_KEEPALIVED (iproute2's rt_protos "keepalived"): the
#: protocol of every tracked route and rule it installs.
RTPROT_KEEPALIVED = 18
#: /etc/iproute2/rt_scopes: the scope names keepalived accepts (routes and
#: addresses; pyvrrpd.io.netlink resolves an address's scope with it too).
SCOPES: Mapping[str, int] = {
    "global": 0,
    "universe": 0,
    "site": 200,
    "link": 253,
    "host": 254,
    "nowhere": 255,
}


@dataclass(frozen=True, slots=True)
class Route:
    """One `ip route` line: `[TYPE] DST [via GW] [dev IF] [src IP] [metric N] ...`."""

    dst: IPv4Network
    type: str = "unicast"  # unicast|blackhole|unreachable|prohibit
    via: IPv4Address | None = None
    dev: str | None = None
    src: IPv4Address | None = None
    metric: int | None = None
    table: int = 254  # RT_TABLE_MAIN
    scope: int | None = None  # None: the kernel's default for the route
    protocol: int = RTPROT_KEEPALIVED
    onlink: bool = False
    no_track: bool = False
    text: str = ""  # as written, for logs

    def __str__(self) -> str:
        return self.text or str(self.dst)


@dataclass(frozen=True, slots=True)
class Rule:
    """One `ip rule` line: `[from P] [to P] [iif IF] [oif IF] [fwmark M[/K]] table T ...`."""

    table: int
    src: IPv4Network | None = None  # None: all
    dst: IPv4Network | None = None
    priority: int | None = None
    iif: str | None = None
    oif: str | None = None
    fwmark: int | None = None
    fwmask: int | None = None
    protocol: int = RTPROT_KEEPALIVED
    no_track: bool = False
    text: str = ""

    def __str__(self) -> str:
        return self.text or f"lookup {self.table}"
