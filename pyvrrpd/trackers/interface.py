"""`track_interface` and `dont_track_primary`: link state into tracker events.

Owns: which interfaces the instances track, the last up/down state seen for
each, the tracker names the core sees (``interface:IF``), the TrackerSpecs an
instance's RouterConfig carries, and what a tracked interface missing at
start means. "Up" is keepalived's FLAGS_UP test: IFF_UP and IFF_RUNNING both
set (administratively up and carrier present), as `LinkInfo.up` reports it.
A deleted interface is down; re-created, it is up again.

Driven by the daemon's netlink link monitor (``LinkEvent``), never by polling;
`sync` reads each tracked link once at start and after a monitor resync.
Must not: decide states or priorities (pyvrrpd.core.tracking has keepalived's
weight table, the same for interfaces as for scripts: keepalived.md 2.2).
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterable

import structlog

from pyvrrpd.config.model import VrrpInstance
from pyvrrpd.core.tracking import TrackerSpec
from pyvrrpd.io.errors import HostError
from pyvrrpd.io.netlink import Netlink

log = structlog.get_logger("pyvrrpd.track")

PREFIX = "interface:"


def tracker_name(ifname: str) -> str:
    """The tracker name an interface has in the core and in `pyvrrpd status`."""
    return PREFIX + ifname


def interface_specs(inst: VrrpInstance) -> tuple[TrackerSpec, ...]:
    """The instance's `track_interface` entries as core trackers."""
    return tuple(
        TrackerSpec(tracker_name(t.name), t.weight, t.reverse) for t in inst.track_interface
    )


class InterfaceTracker:
    """Up/down of every tracked interface; calls `on_change(name, up)` on changes."""

    def __init__(
        self,
        instances: Iterable[VrrpInstance],
        on_change: Callable[[str, bool | None], None],
    ) -> None:
        self._instances = tuple(instances)
        names = {t.name for inst in self._instances for t in inst.track_interface}
        self.state: dict[str, bool | None] = dict.fromkeys(sorted(names))
        self._on_change = on_change

    def __contains__(self, ifname: str) -> bool:
        return ifname in self.state

    def observe(self, ifname: str, up: bool) -> None:
        """A link event (or a query) says `ifname` is `up`; tell the core if new."""
        if ifname not in self.state or self.state[ifname] == up:
            return
        self.state[ifname] = up
        log.info("tracked_interface", interface=ifname, state="up" if up else "down")
        self._on_change(tracker_name(ifname), up)

    async def start(self, netlink: Netlink) -> None:
        """Read every tracked link once, before the instances start.

        A tracked interface that does not exist is tracked as down until it
        appears, logged as an error. keepalived 2.2.7 does this only with
        `dynamic_interfaces` and otherwise refuses to start; pyvrrpd always
        starts (README, deliberate differences). Raises HostError only when a
        link could not be asked about at all.
        """
        # Strict: an instance waiting for a weight-0 tracker's first report
        # would otherwise sit in INIT until the link happens to change.
        links = await self._query(netlink, strict=True)
        missing = sorted(name for name, up in links.items() if up is None)
        if missing:
            users = sorted(
                i.name for i in self._instances if any(t.name in missing for t in i.track_interface)
            )
            log.error(
                "tracked_interface_missing",
                interfaces=missing,
                detail=f"tracked interface {', '.join(missing)} doesn't exist"
                f" (track_interface of {', '.join(users)}): tracked as down until it appears",
            )
        for name, up in links.items():
            self.observe(name, bool(up))

    async def sync(self, netlink: Netlink) -> None:
        """Re-read every tracked link (after the link monitor was reopened);
        one that vanished meanwhile is down."""
        for name, up in (await self._query(netlink)).items():
            self.observe(name, bool(up))

    async def _query(self, netlink: Netlink, strict: bool = False) -> dict[str, bool | None]:
        """Up/down of each tracked link; None: it does not exist. A link that
        could not be asked about raises with `strict`, else is left out (the
        next link event tells)."""
        out: dict[str, bool | None] = {}
        for name in list(self.state):
            try:
                out[name] = (await netlink.link(name)).up
            except HostError as exc:
                if exc.errno_code == errno.ENODEV:
                    out[name] = None
                elif strict:
                    raise
                else:
                    log.error("tracked_interface_query_failed", interface=name, error=str(exc))
        return out
