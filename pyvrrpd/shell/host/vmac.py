"""Which virtual-MAC interfaces the daemon runs, and their life from start to stop.

Owns: turning the instances' ``use_vmac`` / ``use_vmac_addr`` / per-address
``use_vmac`` into interfaces (one per base interface and MAC), choosing their
names against what the host already has, creating or adopting them at start,
re-creating one that disappears while we run, and deleting them (and putting
the sysctls back) at stop. Also answers the daemon's questions: which
interface an instance's adverts use, which device each VIP goes on, and which
base interface's primary address an advert from a vmac carries.

Must not: touch a socket, or delete an interface that is not a private-mode
macvlan (an operator's interface that happens to have the name we wanted is
left alone; we pick another name, as keepalived does).

keepalived 2.2.7 behaviour followed (vrrp.c ``vrrp_complete_instance``,
``create_vmac_name``, ``shutdown_vrrp_instances``; vrrp_vmac.c):

* at start, a private macvlan already on the right base with the right MAC is
  adopted whatever its name ("Found matching interface"): this is how a vmac
  left behind by a crash is taken over instead of duplicated, and it is
  deleted at our stop like one we made;
* a configured name already used by a private macvlan that does not match is
  deleted and made again; used by anything else, the name is ignored with an
  error and a free default name is used;
* default names are ``vrrp.VRID``, then ``vrrp1.VRID``, ``vrrp2.VRID``... skipping
  names that exist or that another instance uses;
* adverts go out of the instance's vmac (source MAC = the virtual MAC, source
  address = the base interface's primary address) and are read there, unless
  ``vmac_xmit_base``: then both use the base interface and only the VIPs (and
  their gratuitous ARPs) are on the vmac;
* the vmac stays up in every state; a vmac deleted under us is made again while
  its base exists.
"""

from __future__ import annotations

import dataclasses
import errno
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address

import structlog

from pyvrrpd.config.model import Config, VirtualIP, VrrpInstance
from pyvrrpd.config.vmac import vip_wants_vmac
from pyvrrpd.io import vmac as io
from pyvrrpd.io.errors import HostError
from pyvrrpd.io.netlink import LinkInfo, Netlink

log = structlog.get_logger("pyvrrpd")

DEFAULT_PREFIX = "vrrp"


@dataclass(frozen=True, slots=True)
class Want:
    """One virtual-MAC interface the configuration asks for."""

    base: str
    mac: bytes
    vrid: int
    instance: str
    name: str | None = None  # configured with `use_vmac NAME`
    per_address: bool = False  # for VIPs (`use_vmac` on an address, `use_vmac_addr`)
    prefix: str = DEFAULT_PREFIX  # default names PREFIX.VRID (global vmac_prefix & co)

    @property
    def key(self) -> tuple[str, bytes]:
        return (self.base, self.mac)


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do at start for one Want: its final name and how to get it."""

    name: str
    action: str  # "adopt", "create" or "replace" (delete the named macvlan, then create)
    notes: tuple[str, ...] = ()


def instance_mac(inst: VrrpInstance) -> bytes:
    return inst.vmac.mac or io.vrrp_mac(inst.virtual_router_id)


def wants(config: Config) -> list[Want]:
    """Every vmac the instances need, in keepalived's order (instance, then its VIPs)."""
    out: list[Want] = []
    gd = config.global_defs
    prefix = gd.vmac_prefix or DEFAULT_PREFIX
    addr_prefix = gd.vmac_addr_prefix or prefix
    for inst in config.instances:
        if not inst.interface:
            continue  # unicast without an interface: config/vmac.py cleared use_vmac
        mac = instance_mac(inst)
        vrid = inst.virtual_router_id
        if inst.vmac.enabled:
            out.append(Want(inst.interface, mac, vrid, inst.name, inst.vmac.name, prefix=prefix))
        for vip in inst.virtual_ipaddress + inst.virtual_ipaddress_excluded:
            if vip_wants_vmac(inst.vmac, inst.interface, vip):
                dev = vip.dev or inst.interface
                out.append(Want(dev, mac, vrid, inst.name, per_address=True, prefix=addr_prefix))
    return out


def _default_name(vrid: int, n: int, prefix: str = DEFAULT_PREFIX) -> str:
    """keepalived's create_vmac_name(): ``vrrp.51``, ``vrrp1.51``, ... cut to IFNAMSIZ-1."""
    suffix = f"{n if n else ''}.{vrid}"
    return prefix[: max(1, 15 - len(suffix))] + suffix


def decide(
    found: Iterable[Want], links: Iterable[io.LinkEntry]
) -> dict[tuple[str, bytes], Decision]:
    """Pure: a name and an action per distinct (base, MAC), given the host's interfaces."""
    by_name = {link.name: link for link in links}
    by_index = {link.index: link for link in by_name.values()}
    claimed: dict[str, str] = {}  # interface name -> instance using it
    out: dict[tuple[str, bytes], Decision] = {}
    for want in found:
        if want.key in out:
            continue  # shared (e.g. two VIPs with `use_vmac` on one device)
        notes: list[str] = []
        base = by_name.get(want.base)
        match = None
        if base is not None:
            match = next(
                (
                    link
                    for link in by_name.values()
                    if link.private_macvlan
                    and link.lower == base.index
                    and link.mac == want.mac
                    and link.name not in claimed
                ),
                None,
            )
        name = want.name
        if match is not None:
            if name is not None and name != match.name:
                notes.append(
                    f"({want.instance}) vmac name mismatch {name} <=> {match.name}."
                    f" changing to {match.name}."
                )
            notes.append(f"({want.instance}) Found matching interface {match.name}")
            claimed[match.name] = want.instance
            out[want.key] = Decision(match.name, "adopt", tuple(notes))
            continue
        action = "create"
        if name is not None and name in claimed:
            notes.append(
                f"({want.instance}) VRRP instance {claimed[name]} is already using {name}"
                " - ignoring name"
            )
            name = None
        if name is not None and name in by_name:
            existing = by_name[name]
            if existing.private_macvlan:
                lower = by_index.get(existing.lower or 0)
                on = lower.name if lower is not None else "?"
                notes.append(
                    f"({want.instance}) VMAC {name} already exists but is incompatible"
                    f" (on {on}, MAC {existing.mac.hex(':')}). It will be deleted/updated"
                )
                action = "replace"
            else:
                notes.append(
                    f"({want.instance}) VMAC interface name {name} already exists as a non"
                    " VMAC interface. ignoring configured name"
                )
                name = None
        if name is None:
            n = 0
            candidate = _default_name(want.vrid, n, want.prefix)
            while candidate in by_name or candidate in claimed:
                n += 1
                candidate = _default_name(want.vrid, n, want.prefix)
            name = candidate
        claimed[name] = want.instance
        out[want.key] = Decision(name, action, tuple(notes))
    return out


@dataclass
class _Saved:
    """Sysctl values we changed and must put back at stop."""

    base: dict[str, dict[str, int]] = field(default_factory=dict)  # base -> key -> old
    all_rp_filter: int | None = None
    default_rp_filter: int | None = None
    iface_rp_filter: dict[str, int] = field(default_factory=dict)


class VmacManager:
    """The daemon's virtual-MAC interfaces (module docstring)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.wants = wants(config)
        self.names: dict[tuple[str, bytes], str] = {}
        self.owned: dict[str, Want] = {}  # vmac name -> what it is for
        self._saved = _Saved()
        self._stopping = False
        self._made: set[str] = set()  # brought up at least once
        #: vmacs made again after they disappeared while we ran
        self.recreated = 0

    def __bool__(self) -> bool:
        return bool(self.wants)

    # ------------------------------------------------------------- questions

    def _name(self, base: str, mac: bytes) -> str | None:
        return self.names.get((base, mac))

    def sock_interface(self, inst: VrrpInstance) -> str:
        """The interface the instance's adverts go out of and are read on."""
        if inst.vmac.enabled and not inst.vmac.xmit_base:
            return self._name(inst.interface, instance_mac(inst)) or inst.interface
        return inst.interface

    def vip_devs(self, inst: VrrpInstance) -> dict[tuple[IPv4Address, str | None], str]:
        """(address, configured dev) -> the vmac it goes on, for the VIPs that use one."""
        mac = instance_mac(inst)
        out: dict[tuple[IPv4Address, str | None], str] = {}
        for vip in inst.virtual_ipaddress + inst.virtual_ipaddress_excluded:
            name = self._vip_dev(inst, vip, mac)
            if name is not None:
                out[(vip.address, vip.dev)] = name
        return out

    def _vip_dev(self, inst: VrrpInstance, vip: VirtualIP, mac: bytes) -> str | None:
        own = vip.dev is None or vip.dev == inst.interface
        if own and inst.vmac.enabled:
            return self._name(inst.interface, mac)
        if vip_wants_vmac(inst.vmac, inst.interface, vip):
            return self._name(vip.dev or inst.interface, mac)
        return None

    def source_base(self, ifname: str) -> str | None:
        """The base interface whose primary address adverts sent from vmac `ifname` carry."""
        want = self.owned.get(ifname)
        return want.base if want is not None and not want.per_address else None

    def removing(self, ifname: str) -> bool:
        """True for our own vmacs once stop() began (their deletion is no news)."""
        return self._stopping and ifname in self.owned

    def riders(self, base: str) -> list[str]:
        """The vmacs on `base` (their state and source address follow it); none at stop."""
        if self._stopping:
            return []
        return [name for name, want in self.owned.items() if want.base == base]

    async def with_source(
        self,
        nl: Netlink,
        ifname: str,
        link: LinkInfo,
        exclude: Callable[[str], frozenset[IPv4Address]] = lambda _: frozenset(),
    ) -> LinkInfo:
        """`link` of a vmac with the base's primary address as the one to send from.

        keepalived sends from the base interface's address (VRRP_PKT_SADDR of
        the configured interface): the vmac itself holds only VIPs, and only
        while MASTER. None (no socket) while the base has no IPv4 address.
        """
        base = self.source_base(ifname)
        if base is None:
            return link
        try:
            base_link = await nl.link(base, exclude(base))  # never a VIP of the base
        except HostError:
            return dataclasses.replace(link, primary_ip=None)
        return dataclasses.replace(link, primary_ip=base_link.primary_ip)

    # -------------------------------------------------------------- lifetime

    async def start(self, nl: Netlink) -> None:
        """Decide names, then adopt or create every vmac; failures are logged.

        A vmac that cannot be made leaves its instances without their
        interface, which they report as FAULT (and it is tried again on the
        base interface's next link event).
        """
        if not self.wants:
            return
        try:
            links = await io.list_links(nl)
        except HostError as exc:
            log.error("vmac_setup_failed", error=str(exc))
            links = []
        decisions = decide(self.wants, links)
        for want in self.wants:
            dec = decisions[want.key]
            self.names[want.key] = dec.name
            if dec.name in self.owned:
                # Shared: an instance's own vmac (it carries adverts) wins over
                # an address's use of the same one.
                if self.owned[dec.name].per_address and not want.per_address:
                    self.owned[dec.name] = want
                continue
            self.owned[dec.name] = want
            for note in dec.notes:
                log.warning("vmac", instance=want.instance, detail=note)
            await self._bring_up(nl, dec.name, want, dec.action, links)
        # Before any socket joins 224.0.0.18 on a vmac (the daemon opens them next).
        await self._igmp_rules({link.name for link in links})

    async def _igmp_rules(self, present: set[str]) -> None:
        """(Re)load the IGMP rules for the vmacs whose base exists: nft resolves the
        `dup` device to an ifindex when loading, so a missing or re-created base
        needs a reload (done when its vmac is made)."""
        pairs = [(name, w.base) for name, w in self.owned.items() if w.base in present]
        await self._igmp(io.igmp_ruleset(pairs))

    async def _igmp(self, script: str) -> None:
        """Apply our IGMP table (io/vmac.py igmp_ruleset); a failure is one error line."""
        try:
            await io.run_nft(script)
        except HostError as exc:
            log.error(
                "vmac_igmp_rules_failed",
                error=str(exc),
                detail="IGMP reports leave the vmacs with the virtual MAC: on a backup,"
                " switches may briefly send the VIP's traffic to this box",
            )

    async def _bring_up(
        self, nl: Netlink, name: str, want: Want, action: str, links: list[io.LinkEntry]
    ) -> bool:
        by_name = {link.name: link for link in links}
        base = by_name.get(want.base)
        if base is None:
            log.error("vmac_base_missing", instance=want.instance, vmac=name, interface=want.base)
            return False
        try:
            existing = by_name.get(name)
            if action == "replace" and existing is not None:
                await io.delete_link(nl, existing.index, name)
                existing = None
            if existing is None:
                await io.create_vmac(nl, name, base.index, want.mac)
                log.info(
                    "vmac_created",
                    instance=want.instance,
                    vmac=name,
                    interface=want.base,
                    mac=want.mac.hex(":"),
                )
            index = (await nl.link(name)).index
            self._sysctls(name, want.base)
            await io.set_link_up(nl, index, name)
        except HostError as exc:
            log.error("vmac_create_failed", instance=want.instance, vmac=name, error=str(exc))
            return False
        self._made.add(name)
        return True

    def _sysctls(self, name: str, base: str) -> None:
        """keepalived's set_interface_parameters() (io/vmac.py docstring); best effort."""
        try:
            self._clear_rp_filter()
            for key, value in io.VMAC_SYSCTLS:
                io.write_sysctl(name, key, value)
            # Checked every time (a re-created base starts from the defaults); the
            # value put back at stop is the one found first.
            saved = self._saved.base.setdefault(base, {})
            for key, value in io.BASE_SYSCTLS:
                old = io.read_sysctl(base, key)
                if old is not None and old != value:
                    saved.setdefault(key, old)
                    io.write_sysctl(base, key, value)
        except HostError as exc:
            log.error("vmac_sysctl_failed", vmac=name, error=str(exc))
        # An IPv4 instance wants no IPv6 (and no link-local address) on the vmac;
        # a kernel without IPv6 has nothing to switch off.
        if io.read_sysctl(name, "disable_ipv6", "ipv6") is not None:
            try:
                io.write_sysctl(name, "disable_ipv6", 1, "ipv6")
            except HostError as exc:
                log.warning("vmac_sysctl_failed", vmac=name, error=str(exc))

    def _clear_rp_filter(self) -> None:
        """Once: all.rp_filter to 0 after raising default and every interface to its value.

        The kernel applies max(all, interface); the vmac's rp_filter=0 only
        counts with all at 0, and nothing else may end up looser than before.
        """
        saved = self._saved
        if saved.all_rp_filter is not None:
            return
        all_rp = io.read_sysctl("all", "rp_filter")
        if not all_rp:
            return
        saved.all_rp_filter = all_rp
        default = io.read_sysctl("default", "rp_filter")
        if default is not None and default < all_rp:
            log.info("sysctl", detail=f"setting net.ipv4.conf.default.rp_filter to {all_rp}")
            io.write_sysctl("default", "rp_filter", all_rp)
            saved.default_rp_filter = default
        for ifname in io.interface_names():
            old = io.read_sysctl(ifname, "rp_filter")
            if old is not None and old < all_rp:
                io.write_sysctl(ifname, "rp_filter", all_rp)
                saved.iface_rp_filter[ifname] = old
        log.info("sysctl", detail=f"setting net.ipv4.conf.all.rp_filter from {all_rp} to 0")
        io.write_sysctl("all", "rp_filter", 0)

    async def follow(self, nl: Netlink, ifname: str) -> list[str]:
        """After a link event on `ifname`: re-make a lost vmac whose base exists.

        Returns the vmacs made again (the daemon re-reads them).
        """
        if self._stopping or not self.owned:
            return []
        if ifname not in self.owned and not any(w.base == ifname for w in self.owned.values()):
            return []
        try:
            links = await io.list_links(nl)
        except HostError as exc:
            log.error("vmac_check_failed", error=str(exc))
            return []
        present = {link.name for link in links}
        made = []
        for name, want in self.owned.items():
            if name in present or want.base not in present:
                continue
            if name in self._made:
                log.warning("vmac_lost", instance=want.instance, vmac=name, detail="re-creating it")
            if await self._bring_up(nl, name, want, "create", links):
                self.recreated += name in self._made
                made.append(name)
        if made:
            await self._igmp_rules(present)
        return made

    async def stop(self, nl: Netlink, *, release: bool = True) -> None:
        """Delete our vmacs and put the sysctls back (keepalived's shutdown order).

        With ``release`` False (keepalived's -V, --dont-release-vrrp) the vmacs,
        their VIPs and the sysctls stay, as keepalived leaves them; only the
        IGMP table goes (keepalived's firewall_fini() runs either way).
        """
        self._stopping = True
        if not release:
            if self.owned:
                await self._igmp(io.igmp_teardown())
            return
        self._restore_rp_filter()
        for name in list(self.owned):
            try:
                index = (await nl.link(name)).index
                if await io.delete_link(nl, index, name):
                    log.info("vmac_removed", vmac=name)
            except HostError as exc:
                if exc.errno_code != errno.ENODEV:  # already gone
                    log.error("vmac_remove_failed", vmac=name, error=str(exc))
        if self.owned:
            await self._igmp(io.igmp_teardown())
        for base, saved in self._saved.base.items():
            for key, old in saved.items():
                try:
                    io.write_sysctl(base, key, old)
                except HostError as exc:
                    log.warning("vmac_sysctl_restore_failed", interface=base, error=str(exc))
        self._saved.base.clear()

    def _restore_rp_filter(self) -> None:
        """keepalived's restore_rp_filter(): only values still as we left them."""
        saved = self._saved
        all_rp = saved.all_rp_filter
        if all_rp is None:
            return
        try:
            if io.read_sysctl("all", "rp_filter") == 0:
                io.write_sysctl("all", "rp_filter", all_rp)
            if (
                saved.default_rp_filter is not None
                and io.read_sysctl("default", "rp_filter") == all_rp
            ):
                io.write_sysctl("default", "rp_filter", saved.default_rp_filter)
            for ifname, old in saved.iface_rp_filter.items():
                if io.read_sysctl(ifname, "rp_filter") == all_rp:
                    io.write_sysctl(ifname, "rp_filter", old)
        except HostError as exc:
            log.warning("vmac_sysctl_restore_failed", error=str(exc))
        saved.all_rp_filter = None
