"""Host state beside the VIPs: static_*, virtual_routes/rules and the firewall.

Owns:
- `static_ipaddress`, `static_routes`, `static_rules` (top level): installed
  once at start, before any instance runs, and removed at stop, as keepalived
  does (vrrp_daemon.c start_vrrp / stop_vrrp). A failure is logged as an
  error and the daemon carries on, like keepalived.
- Each instance's `virtual_routes` / `virtual_rules`: a VipSet companion
  (shell/host/vips.py) that adds them after the VIPs when the instance becomes
  MASTER and removes them (rules first, then routes) before the VIPs when it
  leaves, in keepalived's order (vrrp.c `vrrp_state_become_master()`,
  `vrrp_restore_interface()`). keepalived logs a route it cannot add and
  keeps the instance MASTER; so does this.
- The accept-mode firewall (shell/host/firewall.py): started here, attached to
  the instances that need it, its table deleted at stop.

Tracking (keepalived_netlink.c netlink_route_filter / netlink_rule_filter):
a protocol-keepalived route or rule deleted behind our back is put back. For
static_* that is keepalived's behaviour. For a tracked (no `no_track`)
virtual route or rule of a MASTER keepalived instead bounces the instance
(BACKUP with a Skew_Time master-down timer, so it normally retakes the VIPs
at once); pyvrrpd re-adds the route and stays MASTER, with a warning: the
same end state without the bounce. Must not decide protocol state.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping

import structlog

from pyvrrpd.config.model import Config, VirtualIP
from pyvrrpd.config.routemodel import Route, Rule
from pyvrrpd.config.strict import needs_firewall
from pyvrrpd.io.errors import HostError
from pyvrrpd.io.netlink import Netlink
from pyvrrpd.io.routes import Gone, RouteMonitor, Routes, route_key, rule_key
from pyvrrpd.shell.host.firewall import Firewall
from pyvrrpd.shell.host.vips import set_address
from pyvrrpd.shell.instance import Instance

log = structlog.get_logger("pyvrrpd")


def _matches(item: Route | Rule, gone: Gone) -> bool:
    """Whether a deletion event is about `item` (a rule written without a
    priority gets one from the kernel: any priority matches it)."""
    if gone.key is None:
        return False
    if isinstance(item, Route):
        return route_key(item) == gone.key
    want = rule_key(item)
    return (
        want[:2] == gone.key[:2]
        and (want[2] is None or want[2] == gone.key[2])
        and want[3:] == gone.key[3:]
    )


class VirtualRoutes:
    """One instance's virtual_routes and virtual_rules, run by its VipSet."""

    #: In after the VIPs (a route via a gateway on the VIP's subnet needs it), out before.
    first = False

    def __init__(
        self, name: str, routes: tuple[Route, ...], rules: tuple[Rule, ...], kernel: Routes
    ) -> None:
        self.name = name
        self.routes = routes
        self.rules = rules
        self.kernel = kernel
        self.errors = 0
        #: The last pass installed them (set after an add pass, cleared by a removal).
        self.installed = False

    async def apply(self, want: bool) -> str | None:
        """Add (want) or remove everything; failures are logged, never fail the VIPs."""
        changed: list[str] = []
        # Before the kernel changes: our own deletions are not "behind our back".
        self.installed = want
        # keepalived: routes then rules going in, rules then routes coming out.
        order: list[Route | Rule] = [*self.routes, *self.rules]
        for item in order if want else reversed(order):
            try:
                if isinstance(item, Route):
                    done = await self.kernel.route(want, item)
                else:
                    done = await self.kernel.rule(want, item)
            except HostError as exc:
                self.errors += 1
                log.error("virtual_route_failed", instance=self.name, error=str(exc))
                continue
            if done:
                changed.append(str(item))
        if changed:
            log.info(
                "virtual_routes_set" if want else "virtual_routes_removed",
                instance=self.name,
                changed=changed,
            )
        return None


def _referenced(config: Config) -> dict[str, list[str]]:
    """Every interface the configuration names, with who names it (keepalived
    looks each up with IF_CREATE_IF_DYNAMIC: instance, VIP dev, routes, rules)."""
    out: dict[str, list[str]] = {}

    def add(name: str | None, who: str) -> None:
        if name and who not in out.setdefault(name, []):
            out[name].append(who)

    for inst in config.instances:
        who = f"vrrp_instance {inst.name}"
        add(inst.interface, who)
        for vip in (*inst.virtual_ipaddress, *inst.virtual_ipaddress_excluded):
            add(vip.dev, who)
        for r in inst.virtual_routes:
            add(r.dev, who)
        for rule in inst.virtual_rules:
            add(rule.iif, who)
            add(rule.oif, who)
    for vip in config.static_ipaddress:
        add(vip.dev, "static_ipaddress")
    for r in config.static_routes:
        add(r.dev, "static_routes")
    for rule in config.static_rules:
        add(rule.iif, "static_rules")
        add(rule.oif, "static_rules")
    return out


class HostExtras:
    """What the daemon installs on the host besides the VIPs."""

    def __init__(self, config: Config, netlink: Netlink) -> None:
        self.config = config
        self.kernel = Routes(netlink)
        self._netlink = netlink
        self.firewall = Firewall(config) if Firewall.needed(config) else None
        self.errors = 0
        self.reinstated = 0
        self.virtual: list[VirtualRoutes] = []
        self._stopping = False

    async def start(self) -> None:
        """Check and clean the firewall (HostError: nft missing)."""
        if self.firewall is not None:
            await self.firewall.start()

    async def install(self) -> None:
        """Install static_ipaddress, static_routes and static_rules (once, at start)."""
        await self._statics(True)

    async def check_interfaces(self, known: Mapping[str, bool]) -> None:
        """Log each configured interface that does not exist at start.

        keepalived 2.2.7 refuses to start on one unless `dynamic_interfaces` is
        set ("Non-existent interface specified in configuration"). pyvrrpd
        always starts and holds the instances that need it in FAULT until the
        interface appears (README, deliberate differences): a daemon that
        exits on a boot race is not there to take over once the bond or VLAN
        comes up. `known`: presence of the interfaces the daemon already
        linked; the others are asked of the kernel.
        """
        for name, users in _referenced(self.config).items():
            present = known.get(name)
            if present is None:
                try:
                    await self._netlink.link(name)
                    present = True
                except HostError as exc:
                    present = exc.errno_code != errno.ENODEV
            if not present:
                log.error(
                    "interface_missing_at_start",
                    interface=name,
                    users=list(users),
                    detail=f"interface {name} does not exist: {', '.join(users)} wait in FAULT"
                    " until it appears (keepalived 2.2.7 would refuse to start without"
                    " dynamic_interfaces)",
                )

    def attach(self, inst: Instance) -> None:
        """Give `inst`'s VipSet its drop rules and virtual routes/rules."""
        cfg = inst.cfg
        if self.firewall is not None and needs_firewall(cfg):
            # keepalived.md 6: "VIP not reachable" under vrrp_strict is this; say it.
            log.info(
                "accept_mode_off",
                instance=inst.name,
                table=self.firewall.nft.table,
                why="strict mode" if cfg.strict_mode else "no_accept",
                detail="traffic to the VIPs is dropped while MASTER"
                + (" (strict mode: only priority 255 accepts)" if cfg.strict_mode else ""),
            )
            addresses = tuple(v.address for v in inst.addresses)
            inst.vipset.companions.append(self.firewall.companion(inst.name, addresses))
        if cfg.virtual_routes or cfg.virtual_rules:
            vr = VirtualRoutes(inst.name, cfg.virtual_routes, cfg.virtual_rules, self.kernel)
            inst.vipset.companions.append(vr)
            self.virtual.append(vr)

    async def watch(self) -> None:
        """Put back tracked routes and rules deleted behind our back (a task)."""
        tracked: list[Route | Rule] = [*self.config.static_routes, *self.config.static_rules]
        for vr in self.virtual:
            tracked += [*vr.routes, *vr.rules]
        if not any(not i.no_track for i in tracked):
            return
        try:
            mon = await RouteMonitor.open()
        except HostError as exc:
            log.error("route_monitor_failed", error=str(exc), detail="routes are not tracked")
            return
        try:
            async for gone in mon:
                if not self._stopping:
                    await self._reinstate(gone)
        except HostError as exc:
            log.error("route_monitor_failed", error=str(exc), detail="routes are not tracked")
        finally:
            mon.close()

    async def _reinstate(self, gone: Gone) -> None:
        cfg = self.config
        statics: tuple[Route | Rule, ...] = (*cfg.static_routes, *cfg.static_rules)
        owners: list[tuple[str | None, Route | Rule]] = [(None, i) for i in statics]
        for vr in self.virtual:
            if vr.installed:
                items: tuple[Route | Rule, ...] = (*vr.routes, *vr.rules)
                owners += [(vr.name, i) for i in items]
        for name, item in owners:
            if item.no_track or not (gone.overflow or _matches(item, gone)):
                continue
            try:
                if isinstance(item, Route):
                    added = await self.kernel.route(True, item)
                else:
                    added = await self.kernel.rule(True, item)
            except HostError as exc:
                log.error("route_reinstate_failed", instance=name, error=str(exc))
                continue
            if not added:
                continue
            self.reinstated += 1
            if name is None:
                log.info("static_route_reinstated", route=str(item))
            else:
                log.warning(
                    "virtual_route_reinstated",
                    instance=name,
                    route=str(item),
                    detail="deleted behind our back; keepalived would bounce the instance"
                    " to BACKUP and back, pyvrrpd puts it back and stays MASTER",
                )

    async def stop(self) -> None:
        """Remove static_* and delete the firewall table (after the VIPs are gone)."""
        self._stopping = True
        await self._statics(False)
        if self.firewall is not None:
            await self.firewall.stop()

    async def _statics(self, add: bool) -> None:
        cfg = self.config
        done: list[str] = []
        try:
            # Addresses first in, last out: static routes may go via them.
            if add:
                for vip in cfg.static_ipaddress:
                    await self._address(add, vip.dev or "", vip)
            order: list[Route | Rule] = [*cfg.static_routes, *cfg.static_rules]
            for item in order if add else reversed(order):
                try:
                    if isinstance(item, Route):
                        changed = await self.kernel.route(add, item)
                    else:
                        changed = await self.kernel.rule(add, item)
                except HostError as exc:
                    self.errors += 1
                    log.error("static_route_failed", error=str(exc))
                    continue
                if changed:
                    done.append(str(item))
            if not add:
                for vip in cfg.static_ipaddress:
                    await self._address(add, vip.dev or "", vip)
        finally:
            if done:
                log.info("static_routes_set" if add else "static_routes_removed", changed=done)

    async def _address(self, add: bool, dev: str, vip: VirtualIP) -> None:
        try:
            changed = await set_address(self._netlink, add, dev, vip)
        except HostError as exc:
            self.errors += 1
            log.error("static_address_failed", address=str(vip), error=str(exc))
            return
        if changed:
            log.info("static_address_set" if add else "static_address_removed", address=str(vip))
