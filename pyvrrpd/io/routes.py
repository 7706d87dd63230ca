"""Routes and policy rules in the kernel, through the daemon's netlink socket.

Owns: turning a `routemodel.Route` / `Rule` into one rtnetlink add or delete
(pyroute2's AsyncIPRoute `route()` / `rule()`), each under the deadline of
the shared :class:`~pyvrrpd.io.netlink.Netlink` command socket. Adds and
deletes are idempotent: EEXIST on add and ESRCH/ENOENT on delete mean the
kernel is already as wanted (measured with pyroute2 0.9.7 on Linux 6.x).
:class:`RouteMonitor` reports deletions of routes and rules with protocol
`keepalived` (18), the ones keepalived (and pyvrrpd) install and track.
Must not: decide when (pyvrrpd.shell.host.statics does), log, or let anything but
HostError escape.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.rtnl import RTMGRP_IPV4_ROUTE, RTMGRP_IPV4_RULE

from pyvrrpd.config.routemodel import RTPROT_KEEPALIVED, Route, Rule
from pyvrrpd.io.errors import HostError, errno_of
from pyvrrpd.io.netlink import Netlink, _wrap

__all__ = ["Gone", "RouteMonitor", "Routes", "route_key", "rule_key"]

_RTNH_F_ONLINK = 0x4  # <linux/rtnetlink.h>
_GONE = {errno.ESRCH, errno.ENOENT, errno.EADDRNOTAVAIL}


class Routes:
    """Adds and deletes routes and rules on a Netlink command socket."""

    def __init__(self, netlink: Netlink) -> None:
        self._nl = netlink

    async def _index(self, ifname: str) -> int:
        info = await self._nl.link(ifname)
        return info.index

    async def _route_args(self, r: Route) -> dict[str, Any]:
        args: dict[str, Any] = {
            "dst": str(r.dst.network_address),
            "dst_len": r.dst.prefixlen,
            "table": r.table,
            "proto": r.protocol,
        }
        if r.type != "unicast":
            args["type"] = r.type
        if r.via is not None:
            args["gateway"] = str(r.via)
        if r.dev is not None:
            args["oif"] = await self._index(r.dev)
        if r.src is not None:
            args["prefsrc"] = str(r.src)
        if r.metric is not None:
            args["priority"] = r.metric
        if r.scope is not None:
            args["scope"] = r.scope
        if r.onlink:
            args["flags"] = _RTNH_F_ONLINK
        return args

    @staticmethod
    def _rule_args(r: Rule) -> dict[str, Any]:
        args: dict[str, Any] = {"table": r.table, "protocol": r.protocol}
        if r.src is not None:
            args["src"], args["src_len"] = str(r.src.network_address), r.src.prefixlen
        if r.dst is not None:
            args["dst"], args["dst_len"] = str(r.dst.network_address), r.dst.prefixlen
        if r.priority is not None:
            args["priority"] = r.priority
        if r.iif is not None:
            args["iifname"] = r.iif
        if r.oif is not None:
            args["oifname"] = r.oif
        if r.fwmark is not None:
            args["fwmark"] = r.fwmark
            if r.fwmask is not None:
                args["fwmask"] = r.fwmask
        return args

    async def route(self, add: bool, r: Route) -> bool:
        """Add or delete one route; True if the kernel changed. HostError on failure."""
        what = f"cannot {'add' if add else 'delete'} route '{r}'"
        return await self._nl._guarded("route", what, self._route(add, r, what))

    async def _route(self, add: bool, r: Route, what: str) -> bool:
        try:
            args = await self._route_args(r)
        except HostError as exc:
            if not add and exc.errno_code == errno.ENODEV:
                return False  # the interface is gone, and its routes with it
            raise HostError(f"{what}: {exc}", errno_code=exc.errno_code) from exc
        return await self._send(self._nl._ipr.route, add, args, what)

    async def rule(self, add: bool, r: Rule) -> bool:
        """Add or delete one policy rule; True if the kernel changed."""
        what = f"cannot {'add' if add else 'delete'} rule '{r}'"
        send = self._send(self._nl._ipr.rule, add, self._rule_args(r), what)
        return await self._nl._guarded("rule", what, send)

    @staticmethod
    async def _send(call: Any, add: bool, args: dict[str, Any], what: str) -> bool:
        try:
            await call("add" if add else "del", **args)
        except Exception as exc:
            code = errno_of(exc)
            if (add and code == errno.EEXIST) or (not add and code in _GONE):
                return False
            raise _wrap(exc, what) from exc
        return True


#: What identifies a route to the kernel (table, destination, metric) and a
#: rule (table, priority, source, destination), as keepalived matches them
#: (keepalived_netlink.c route_is_ours / rule_is_ours).
Key = tuple[object, ...]


def route_key(r: Route) -> Key:
    return ("route", r.table, r.dst, r.metric or 0)


def rule_key(r: Rule) -> Key:
    return ("rule", r.table, r.priority, r.src, r.dst)


@dataclass(frozen=True, slots=True)
class Gone:
    """A route or rule of protocol keepalived was deleted (`key` as above);
    `overflow`: events were lost, everything should be checked again."""

    key: Key | None
    overflow: bool = False


def _net(addr: Any, length: int) -> IPv4Network | None:
    if length == 0:
        return None
    return IPv4Network(f"{IPv4Address(addr or '0.0.0.0')}/{length}", strict=False)


def _gone(msg: Any) -> Gone | None:
    event = msg.get("event")
    if msg.get("family") != 2:  # AF_INET
        return None
    if event == "RTM_DELROUTE" and msg.get("proto") == RTPROT_KEEPALIVED:
        length = int(msg.get("dst_len") or 0)
        dst = IPv4Network(f"{IPv4Address(msg.get('RTA_DST') or '0.0.0.0')}/{length}")
        table = msg.get("RTA_TABLE") or msg.get("table")
        return Gone(("route", int(table), dst, int(msg.get("RTA_PRIORITY") or 0)))
    if event == "RTM_DELRULE" and msg.get("FRA_PROTOCOL") == RTPROT_KEEPALIVED:
        table = msg.get("FRA_TABLE") or msg.get("table")
        prio = msg.get("FRA_PRIORITY")
        return Gone(
            (
                "rule",
                int(table),
                None if prio is None else int(prio),
                _net(msg.get("FRA_SRC"), int(msg.get("src_len") or 0)),
                _net(msg.get("FRA_DST"), int(msg.get("dst_len") or 0)),
            )
        )
    return None


class RouteMonitor:
    """Deletions of protocol-keepalived IPv4 routes and rules, as an async iterator."""

    def __init__(self) -> None:
        self._ev: Any = None
        self._closed = False

    @classmethod
    async def open(cls) -> RouteMonitor:
        mon = cls()
        await mon._connect()
        return mon

    async def _connect(self) -> None:
        ev = AsyncIPRoute(rcvbuf=1024 * 1024)
        try:
            # bind() before any request on this socket (see pyvrrpd.io.netlink).
            await ev.bind(groups=RTMGRP_IPV4_ROUTE | RTMGRP_IPV4_RULE)
        except Exception as exc:
            ev.close()
            raise _wrap(exc, "cannot open netlink route event socket") from exc
        self._ev = ev

    def __aiter__(self) -> AsyncIterator[Gone]:
        return self._events()

    async def _events(self) -> AsyncIterator[Gone]:
        while not self._closed:
            batch: list[Gone] = []
            try:
                # get() ends after one batch of messages: loop around it.
                async for msg in self._ev.get():
                    gone = _gone(msg)
                    if gone is not None:
                        batch.append(gone)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._closed:
                    return
                if not isinstance(exc, OSError) and errno_of(exc) is None:
                    raise _wrap(exc, "netlink route event socket failed") from exc
                # ENOBUFS & co: events were lost; reopen and say so.
                self._ev.close()
                await self._connect()
                batch.append(Gone(None, overflow=True))
            if self._closed:
                return
            for gone in batch:
                yield gone

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._ev is not None:
                self._ev.close()
