"""Shell-side companions of the core's routers: per-instance and per-interface state.

Owns: translating a parsed `vrrp_instance` into the core's RouterConfig, and
the I/O handles and bookkeeping the shell keeps beside each VirtualRouter.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address

import structlog

from pyvrrpd.config.instance import max_advert_vips
from pyvrrpd.config.model import Config, VirtualIP, VrrpInstance
from pyvrrpd.config.tracking import startup_delay
from pyvrrpd.core.router import RouterConfig, VirtualRouter
from pyvrrpd.core.tracking import TrackerSpec
from pyvrrpd.io.ah_socket import AhSocket
from pyvrrpd.io.garp import GarpSender
from pyvrrpd.io.ifmtu import interface_mtu
from pyvrrpd.io.netlink import LinkInfo
from pyvrrpd.io.uptime import boot_uptime
from pyvrrpd.io.vrrp_socket import VrrpSocket
from pyvrrpd.shell.host.vips import VipSet
from pyvrrpd.trackers import registry
from pyvrrpd.trackers.base import ref_specs
from pyvrrpd.trackers.interface import interface_specs
from pyvrrpd.trackers.srcip import srcip_specs
from pyvrrpd.wire.check import Peer
from pyvrrpd.wire.vrrp import AuthType

log = structlog.get_logger("pyvrrpd")


def router_config(inst: VrrpInstance, config: Config, mtu: int | None = None) -> RouterConfig:
    """Translate a parsed `vrrp_instance` into what the core needs.

    `mtu` (None: asked of the interface now, if it exists) caps the VIPs the
    adverts carry; the config already capped them at 255.
    """
    scripts = {s.name: (s.weight, s.weight_reverse) for s in config.scripts}
    auth = {None: AuthType.NONE, "PASS": AuthType.PASS, "AH": AuthType.AH}[inst.auth_type]
    return RouterConfig(
        name=inst.name,
        vrid=inst.virtual_router_id,
        priority=inst.priority,
        advert_int=float(round(inst.advert_int)),
        vips=_advertised(inst, interface_mtu(inst.interface) if mtu is None else mtu),
        preempt=not inst.nopreempt,
        preempt_delay=inst.preempt_delay,
        initial_master=inst.state == "MASTER",
        auth_type=int(auth),
        auth_data=inst.auth_pass,
        trackers=(
            *ref_specs(inst.track_script, scripts),  # bare names: vrrp_script
            *interface_specs(inst),
            *srcip_specs(inst),
            *registry.specs(inst, config),  # process:, file:, http: (trackers/registry.py)
        ),
        garp_master_delay=inst.garp_master_delay,
        garp_master_repeat=inst.garp_master_repeat,
        garp_master_refresh=inst.garp_master_refresh,
        garp_master_refresh_repeat=inst.garp_master_refresh_repeat,
        garp_lower_prio_repeat=inst.garp_lower_prio_repeat,
        garp_lower_prio_delay=inst.garp_lower_prio_delay,
        skip_check_adv_addr=inst.skip_check_adv_addr,
        # config/tracking.py: keepalived's advert/timer keywords, dont_track_primary.
        lower_prio_no_advert=inst.lower_prio_no_advert,
        higher_prio_send_advert=inst.higher_prio_send_advert,
        down_timer_adverts=inst.down_timer_adverts,
        dont_track_primary=inst.dont_track_primary,
        startup_delay=startup_delay(config.global_defs, boot_uptime()),
        # Unicast (config/unicast.py): peers, source check, advert source.
        unicast_peers=tuple(Peer(p.address, p.min_ttl, p.max_ttl) for p in inst.unicast_peer),
        check_unicast_src=inst.check_unicast_src,
        src_ip=inst.src_ip,
        config_fault=inst.unicast_fault,
    )


def _advertised(inst: VrrpInstance, mtu: int | None) -> tuple[IPv4Address, ...]:
    """The VIPs one advert can carry on an interface of `mtu` (keepalived's rule).

    The rest stay in `Instance.addresses`, so they are still installed and
    announced by GARP, like excluded VIPs: a MASTER whose advert could not be
    encoded would send none at all.
    """
    vips = tuple(v.address for v in inst.virtual_ipaddress)
    fits = max_advert_vips(mtu)
    if len(vips) <= fits:
        return vips
    log.warning(
        "vips_exceed_mtu",
        instance=inst.name,
        detail=f"({inst.name}) Number of VIPs ({len(vips)}) exceeds maximum/space available"
        f" in packet (max {fits} addresses) - excess moved to eVIPs",
        mtu=mtu,
    )
    return vips[:fits]


@dataclass
class Interface:
    """Per-interface I/O shared by the instances on it.

    `link` is None while the interface does not exist; `sock` is None while
    there is no primary IPv4 address to send from (or no instance on it: an
    interface that only carries VIPs with `dev` needs just the ARP sender).
    """

    name: str
    link: LinkInfo | None = None
    sock: VrrpSocket | None = None
    garp: GarpSender | None = None
    by_vrid: dict[int, Instance] = field(default_factory=dict)
    unknown_vrid: int = 0
    #: (vrid, followed master) per router, as last given to the kernel filter
    fast_key: tuple[tuple[int, IPv4Address | None], ...] = ()
    refiltered_at: float = float("-inf")
    refilter_pending: bool = False
    #: the protocol-51 socket for `auth_type AH` instances (shell/host/ahsend.py)
    ah_sock: AhSocket | None = None


@dataclass
class Instance:
    """Shell-side companion of one VirtualRouter."""

    cfg: VrrpInstance
    router: VirtualRouter
    iface: Interface
    vipset: VipSet
    adverts: dict[int, bytes] = field(default_factory=dict)
    drops_since_warn: dict[str, int] = field(default_factory=dict)
    #: internal errors caught while this instance handled an event
    internal_errors: int = 0
    #: (address, configured dev) -> the use_vmac interface the VIP goes on (shell/host/vmac.py)
    vmac_devs: dict[tuple[IPv4Address, str | None], str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.cfg.name

    @property
    def addresses(self) -> tuple[VirtualIP, ...]:
        """Everything installed as master: advertised VIPs, then excluded ones."""
        return self.cfg.virtual_ipaddress + self.cfg.virtual_ipaddress_excluded

    def dev(self, vip: VirtualIP) -> str:
        return self.vmac_devs.get((vip.address, vip.dev)) or vip.dev or self.cfg.interface


def without_trackers(cfg: RouterConfig, trackers: tuple[TrackerSpec, ...]) -> RouterConfig:
    """A copy of `cfg` tracking only `trackers` (a disabled script is dropped)."""
    return replace(cfg, trackers=trackers)
