"""Netlink access: interface facts, VIP add/remove, link and address events.

Owns: every rtnetlink conversation of the daemon, through pyroute2's
``AsyncIPRoute``. :class:`Netlink` wraps ONE command socket (queries and
address changes); :class:`LinkMonitor` wraps a separate event socket bound to
the link and IPv4-address multicast groups.

Must not: decide anything about VRRP state, log, or let a pyroute2/OS error
escape: every failure reaching a caller is a :class:`~pyvrrpd.io.errors.HostError`
with a one-line message.

pyroute2 0.9.7 facts this module relies on (measured, see research/peers.md §4):

* a duplicate add fails with EEXIST (17) and deleting an absent address with
  EADDRNOTAVAIL (99); both are "already in the wanted state" here;
* the synchronous ``IPRoute`` calls ``run_until_complete`` and cannot be used
  inside the daemon's running loop, so only ``AsyncIPRoute`` is used;
* on an event socket ``bind()`` must come before any request, otherwise pyroute2
  fails with ``KeyError('no free address available')``; passing ``groups=`` to
  the constructor alone delivered no events;
* ``get()`` with ``msg_seq=0`` returns after one batch of messages, so the event
  reader calls it in a loop;
* if the event socket's receive buffer overflows the kernel reports ENOBUFS and
  the socket is unusable; it must be closed and re-created.

Every command has a deadline (:attr:`Netlink.timeout`): a netlink request that
never returns becomes a HostError (ETIMEDOUT) and the command socket is
replaced, since a cancelled request may leave pyroute2's reader mid-message.
:attr:`Netlink.inject` is the fault-injection seam (None in normal runs; see
``pyvrrpd.shell.faults``): awaited with the operation's name before each command.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any, Literal, TypeVar

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.rtnl import RTMGRP_IPV4_IFADDR, RTMGRP_LINK

from pyvrrpd.config.routemodel import SCOPES
from pyvrrpd.io.errors import HostError, describe_oserror, errno_of

__all__ = ["LinkEvent", "LinkInfo", "LinkMonitor", "Netlink"]

# <linux/if.h> and <linux/if_addr.h>
_IFF_UP = 0x1
_IFF_RUNNING = 0x40
_IFA_F_SECONDARY = 0x01

# Errors that mean "the netlink socket itself is unusable" rather than "this
# request was refused".
_EVENT_SOCKET_DEAD = {errno.ENOBUFS, errno.ECONNRESET, errno.EBADF, errno.ECOMM}

#: Seconds a netlink command may take before it counts as hung. A healthy
#: kernel answers in well under a millisecond; 1 s leaves room for a loaded
#: host while a hung VIP add still gives up (shell/host/vips.py) and lets the peer
#: take over inside Master_Down_Interval + 0.5 s.
COMMAND_TIMEOUT = 1.0

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """What the daemon needs to know about one interface, at query time."""

    name: str
    index: int
    mac: bytes
    #: IFF_UP and IFF_RUNNING: administratively up and the kernel considers it
    #: operational (carrier present, operstate not DOWN/LOWERLAYERDOWN). This
    #: is the same test keepalived uses for "interface up".
    up: bool
    #: First IPv4 address on the link without IFA_F_SECONDARY, in kernel order
    #: (the kernel keeps primaries first, in insertion order).
    primary_ip: IPv4Address | None
    addresses: tuple[IPv4Interface, ...]


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """One change notified by the kernel (or synthesised after a resync)."""

    ifname: str
    kind: Literal["link", "addr_add", "addr_del"]
    #: For ``link`` events: the same test as :attr:`LinkInfo.up`; else None.
    up: bool | None
    #: For address events: the IPv4 address added/removed; else None.
    address: IPv4Address | None


def _is_up(msg: Any) -> bool:
    flags = int(msg["flags"])
    return bool(flags & _IFF_UP) and bool(flags & _IFF_RUNNING)


def _mac_bytes(text: str | None) -> bytes:
    if not text:
        return b""
    return bytes.fromhex(text.replace(":", ""))


def _addr_of(msg: Any) -> IPv4Address | None:
    # IFA_LOCAL is the interface's own address; IFA_ADDRESS differs from it
    # only on point-to-point links (where it is the peer).
    text = msg.get("IFA_LOCAL") or msg.get("IFA_ADDRESS")
    if not text:
        return None
    try:
        return IPv4Address(text)
    except ValueError:
        return None


def _wrap(exc: BaseException, what: str) -> HostError:
    """Turn an OS/netlink error into a one-line HostError about ``what``."""
    code = errno_of(exc)
    if code == errno.EPERM or code == errno.EACCES:
        return HostError(
            f"{what}: permission denied (CAP_NET_ADMIN missing, run as root)", errno_code=code
        )
    return HostError(f"{what}: {describe_oserror(exc)}", errno_code=code)


def _broadcast(address: IPv4Address, prefixlen: int, broadcast: str | None) -> str | None:
    """keepalived/iproute2 ``brd`` syntax: ``+`` computed, ``-`` none, else literal."""
    if broadcast is None or broadcast == "-":
        return None
    if broadcast == "+":
        if prefixlen >= 31:
            # /31 and /32 have no broadcast address (iproute2 does the same).
            return None
        return str(IPv4Network(f"{address}/{prefixlen}", strict=False).broadcast_address)
    try:
        return str(IPv4Address(broadcast))
    except ValueError as exc:
        raise HostError(f"invalid broadcast address {broadcast!r}") from exc


def _scope(scope: str | int) -> int:
    if isinstance(scope, int):
        return scope
    if scope.isdigit():
        return int(scope)
    try:
        return SCOPES[scope]
    except KeyError:
        raise HostError(f"unknown address scope {scope!r}") from None


class Netlink:
    """One rtnetlink command socket. Safe to share between coroutines of one loop.

    Create with ``await Netlink.open()`` inside the running loop; the socket
    lives in the network namespace of the thread that opened it.
    """

    def __init__(self, ipr: Any) -> None:
        self._ipr = ipr
        self._closed = False
        self.timeout = COMMAND_TIMEOUT
        self.inject: Callable[[str], Awaitable[None]] | None = None
        #: Commands that timed out (each replaced the socket).
        self.timeouts = 0

    async def _guarded(self, op: str, what: str, work: Coroutine[Any, Any, _T]) -> _T:
        """Run one command under the deadline (and the injection seam)."""

        async def attempt() -> _T:
            if self.inject is not None:
                await self.inject(op)
            return await work

        try:
            return await asyncio.wait_for(attempt(), self.timeout)
        except TimeoutError:
            self.timeouts += 1
            self._replace_socket()
            raise HostError(
                f"{what}: netlink did not answer within {self.timeout:g} s",
                errno_code=errno.ETIMEDOUT,
            ) from None
        finally:
            work.close()  # never awaited when the injector raised first

    def _replace_socket(self) -> None:
        if self._closed:
            return
        old, self._ipr = self._ipr, AsyncIPRoute()
        # A wedged socket may fail to close; it is dropped either way.
        with contextlib.suppress(Exception):
            old.close()

    @classmethod
    async def open(cls) -> Netlink:
        """Open the command socket and check that it answers."""
        ipr = AsyncIPRoute()
        try:
            # A cheap request (loopback is ifindex 1 in every namespace): it
            # creates the socket now, in the caller's namespace, and surfaces
            # permission problems at startup instead of at failover time.
            await ipr.link("get", index=1)
        except Exception as exc:
            ipr.close()
            raise _wrap(exc, "cannot open netlink socket") from exc
        return cls(ipr)

    async def __aenter__(self) -> Netlink:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the socket. Idempotent."""
        if not self._closed:
            self._closed = True
            self._ipr.close()

    async def _link_msg(self, ifname: str) -> Any:
        try:
            msgs = await self._ipr.link("get", ifname=ifname)
        except Exception as exc:
            if errno_of(exc) == errno.ENODEV:
                raise HostError(f"interface {ifname!r} not found", errno_code=errno.ENODEV) from exc
            raise _wrap(exc, f"cannot query interface {ifname!r}") from exc
        for msg in msgs:
            return msg
        raise HostError(f"interface {ifname!r} not found", errno_code=errno.ENODEV)

    async def _index(self, ifname: str) -> int:
        # Looked up on every call (about 0.1 ms) rather than cached: an
        # interface that is deleted and re-created gets a new index.
        return int((await self._link_msg(ifname))["index"])

    async def _addr_msgs(self, index: int, what: str) -> list[Any]:
        try:
            return [
                msg
                async for msg in await self._ipr.addr(
                    "dump", family=socket.AF_INET, match={"index": index}
                )
            ]
        except Exception as exc:
            raise _wrap(exc, what) from exc

    async def link(self, ifname: str, exclude: frozenset[IPv4Address] = frozenset()) -> LinkInfo:
        """Current facts about ``ifname`` (see :meth:`_link`), under the deadline."""
        return await self._guarded(
            "link", f"cannot query interface {ifname!r}", self._link(ifname, exclude)
        )

    async def _link(self, ifname: str, exclude: frozenset[IPv4Address]) -> LinkInfo:
        """Current facts about ``ifname``; HostError if it does not exist.

        Addresses in ``exclude`` (our own VIPs: a /32 VIP is a primary address
        to the kernel) are never reported as the primary address.
        """
        msg = await self._link_msg(ifname)
        index = int(msg["index"])
        addresses: list[IPv4Interface] = []
        primary: IPv4Address | None = None
        for amsg in await self._addr_msgs(index, f"cannot list addresses of {ifname!r}"):
            addr = _addr_of(amsg)
            if addr is None:
                continue
            addresses.append(IPv4Interface(f"{addr}/{int(amsg['prefixlen'])}"))
            if (
                primary is None
                and not int(amsg["flags"]) & _IFA_F_SECONDARY
                and addr not in exclude
            ):
                primary = addr
        return LinkInfo(
            name=str(msg.get("IFLA_IFNAME") or ifname),
            index=index,
            mac=_mac_bytes(msg.get("IFLA_ADDRESS")),
            up=_is_up(msg),
            primary_ip=primary,
            addresses=tuple(addresses),
        )

    async def add_address(
        self,
        ifname: str,
        address: IPv4Address,
        prefixlen: int,
        *,
        broadcast: str | None = None,
        scope: str = "global",
        label: str | None = None,
    ) -> bool:
        """Add ``address/prefixlen`` to ``ifname`` (see :meth:`_add_address`)."""
        return await self._guarded(
            "add_address",
            f"cannot add {address}/{prefixlen} to {ifname!r}",
            self._add_address(
                ifname, address, prefixlen, broadcast=broadcast, scope=scope, label=label
            ),
        )

    async def _add_address(
        self,
        ifname: str,
        address: IPv4Address,
        prefixlen: int,
        *,
        broadcast: str | None = None,
        scope: str = "global",
        label: str | None = None,
    ) -> bool:
        """Add ``address/prefixlen`` to ``ifname``.

        Returns True if added, False if it was already there (EEXIST is the
        wanted end state, not an error). ``broadcast``: ``"+"`` computed,
        ``"-"`` or None none, else a literal address. ``label`` is only set
        when given (keepalived sets none unless configured).
        """
        what = f"cannot add {address}/{prefixlen} to {ifname!r}"
        kwargs: dict[str, Any] = {
            "address": str(address),
            "prefixlen": prefixlen,
            "scope": _scope(scope),
        }
        brd = _broadcast(address, prefixlen, broadcast)
        if brd is not None:
            kwargs["broadcast"] = brd
        if label is not None:
            kwargs["label"] = label
        index = await self._index(ifname)
        try:
            await self._ipr.addr("add", index=index, **kwargs)
        except Exception as exc:
            if errno_of(exc) == errno.EEXIST:
                return False
            raise _wrap(exc, what) from exc
        return True

    async def remove_address(self, ifname: str, address: IPv4Address, prefixlen: int) -> bool:
        """Remove ``address/prefixlen`` from ``ifname`` (see :meth:`_remove_address`)."""
        return await self._guarded(
            "remove_address",
            f"cannot remove {address}/{prefixlen} from {ifname!r}",
            self._remove_address(ifname, address, prefixlen),
        )

    async def _remove_address(self, ifname: str, address: IPv4Address, prefixlen: int) -> bool:
        """Remove ``address/prefixlen`` from ``ifname``.

        Returns True if removed, False if it was not there (EADDRNOTAVAIL).
        Raises HostError if the interface itself is gone.
        """
        index = await self._index(ifname)
        try:
            await self._ipr.addr("del", index=index, address=str(address), prefixlen=prefixlen)
        except Exception as exc:
            if errno_of(exc) == errno.EADDRNOTAVAIL:
                return False
            raise _wrap(exc, f"cannot remove {address}/{prefixlen} from {ifname!r}") from exc
        return True

    async def has_address(self, ifname: str, address: IPv4Address) -> bool:
        """True if ``address`` (any prefix length) is configured on ``ifname``."""
        return await self._guarded(
            "has_address",
            f"cannot list addresses of {ifname!r}",
            self._has_address(ifname, address),
        )

    async def _has_address(self, ifname: str, address: IPv4Address) -> bool:
        index = await self._index(ifname)
        msgs = await self._addr_msgs(index, f"cannot list addresses of {ifname!r}")
        return any(_addr_of(m) == address for m in msgs)


class LinkMonitor:
    """Link and IPv4 address change events, as an async iterator.

    Usage::

        mon = await LinkMonitor.open()
        async for ev in mon:   # LinkEvent
            ...
        mon.close()

    Events from every interface of the namespace are yielded; filtering is the
    caller's job. ``RTM_DELLINK`` is reported as a ``link`` event with
    ``up=False``.

    ENOBUFS (the kernel dropped events because the receive buffer was full):
    the event socket is closed and re-created (bound before any request), then
    the current state is re-read with a separate short-lived socket and the
    difference with what this monitor had seen is yielded as synthetic events:
    one ``link`` event per interface with its current state, ``addr_add`` for
    addresses that appeared and ``addr_del`` for addresses that disappeared
    while events were lost. Callers therefore never need to know an overflow
    happened, but may see a repeated ``link`` event with an unchanged state.
    ``resyncs`` counts these recoveries.
    """

    def __init__(self, rcvbuf: int) -> None:
        self._rcvbuf = rcvbuf
        self._ev: Any = None
        self._names: dict[int, str] = {}
        # (ifindex, address) pairs currently configured, as far as we know.
        self._addrs: set[tuple[int, IPv4Address]] = set()
        self._pending: list[LinkEvent] = []
        self._closed = False
        self.resyncs = 0

    @classmethod
    async def open(cls, *, rcvbuf: int = 4 * 1024 * 1024) -> LinkMonitor:
        """Bind the event socket, then snapshot the current state."""
        mon = cls(rcvbuf)
        await mon._connect()
        await mon._snapshot()
        return mon

    async def _connect(self) -> None:
        ev = AsyncIPRoute(rcvbuf=self._rcvbuf)
        try:
            # bind() BEFORE any request on this socket (pyroute2 gotcha).
            await ev.bind(groups=RTMGRP_LINK | RTMGRP_IPV4_IFADDR)
        except Exception as exc:
            ev.close()
            raise _wrap(exc, "cannot open netlink event socket") from exc
        self._ev = ev

    async def _snapshot(self) -> list[LinkEvent]:
        """Re-read links and addresses; return the events that reconcile our view."""
        events: list[LinkEvent] = []
        names: dict[int, str] = {}
        addrs: set[tuple[int, IPv4Address]] = set()
        try:
            async with AsyncIPRoute() as ipr:
                async for msg in await ipr.link("dump"):
                    idx = int(msg["index"])
                    names[idx] = str(msg.get("IFLA_IFNAME"))
                    events.append(LinkEvent(names[idx], "link", _is_up(msg), None))
                async for msg in await ipr.addr("dump", family=socket.AF_INET):
                    addr = _addr_of(msg)
                    if addr is not None:
                        addrs.add((int(msg["index"]), addr))
        except Exception as exc:
            raise _wrap(exc, "cannot read interface state") from exc
        all_names = {**self._names, **names}
        for idx, addr in sorted(self._addrs - addrs):
            events.append(LinkEvent(all_names.get(idx, f"if{idx}"), "addr_del", None, addr))
        for idx, addr in sorted(addrs - self._addrs):
            events.append(LinkEvent(names.get(idx, f"if{idx}"), "addr_add", None, addr))
        self._names = all_names
        self._addrs = addrs
        return events

    async def _recover(self) -> None:
        self.resyncs += 1
        old = self._ev
        self._ev = None
        if old is not None:
            old.close()
        await self._connect()
        self._pending.extend(await self._snapshot())

    def _translate(self, msg: Any) -> LinkEvent | None:
        event = msg.get("event")
        idx = int(msg.get("index") or 0)
        if event in ("RTM_NEWLINK", "RTM_DELLINK"):
            name = msg.get("IFLA_IFNAME")
            if name:
                self._names[idx] = str(name)
            ifname = self._names.get(idx, f"if{idx}")
            if event == "RTM_DELLINK":
                self._addrs = {a for a in self._addrs if a[0] != idx}
                return LinkEvent(ifname, "link", False, None)
            return LinkEvent(ifname, "link", _is_up(msg), None)
        if event in ("RTM_NEWADDR", "RTM_DELADDR"):
            if msg.get("family") != socket.AF_INET:
                return None
            addr = _addr_of(msg)
            if addr is None:
                return None
            # IFA_LABEL is not the ifname when a label ("eth0:vip") was set,
            # so names come from the link table.
            ifname = self._names.get(idx) or str(msg.get("IFA_LABEL") or f"if{idx}")
            if event == "RTM_NEWADDR":
                self._addrs.add((idx, addr))
                return LinkEvent(ifname, "addr_add", None, addr)
            self._addrs.discard((idx, addr))
            return LinkEvent(ifname, "addr_del", None, addr)
        return None

    def has_address(self, ifname: str, address: IPv4Address) -> bool:
        """Whether the kernel last reported ``address`` on ``ifname`` (from events,
        so it is what the kernel has, not what we asked for)."""
        return any(
            (idx, address) in self._addrs for idx, name in self._names.items() if name == ifname
        )

    def __aiter__(self) -> AsyncIterator[LinkEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[LinkEvent]:
        while not self._closed:
            while self._pending:
                yield self._pending.pop(0)
            batch: list[LinkEvent] = []
            try:
                # get() ends after one batch when msg_seq is 0: loop around it.
                async for msg in self._ev.get():
                    ev = self._translate(msg)
                    if ev is not None:
                        batch.append(ev)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._closed:
                    return
                code = errno_of(exc)
                if code in _EVENT_SOCKET_DEAD or isinstance(exc, OSError):
                    # Deliver what was parsed before the overflow, then resync.
                    for ev in batch:
                        yield ev
                    await self._recover()
                    continue
                raise _wrap(exc, "netlink event socket failed") from exc
            if self._closed:
                return
            for ev in batch:
                yield ev

    def close(self) -> None:
        """Close the event socket; a pending iteration ends. Idempotent."""
        if not self._closed:
            self._closed = True
            if self._ev is not None:
                self._ev.close()
