"""Routes and policy rules in the kernel, through the daemon's netlink socket.

Owns: turning a `routemodel.Route` / `Rule` into one rtnetlink add or delete
(pyroute2's AsyncIPRoute `route()` / `rule()`), each under the deadline of
the shared :class:`~pyvrrpd.io.netlink.Netlink` command socket. Adds and
deletes are idempotent: EEXIST on add and ESRCH/ENOENT on delete mean the
kernel is already as wanted (measured with pyroute2 0.9.7 on Linux 6.x).
Must not: decide when (pyvrrpd.shell.statics does), log, or let anything but
HostError escape.
"""

from __future__ import annotations

import errno
from typing import Any

from pyvrrpd.config.routemodel import Route, Rule
from pyvrrpd.io.errors import HostError, errno_of
from pyvrrpd.io.netlink import Netlink, _wrap

__all__ = ["Routes"]

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
