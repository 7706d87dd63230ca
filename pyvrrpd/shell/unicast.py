"""Shell side of unicast instances: their interface, and where adverts go.

Owns: finding the interface of an instance that omits `interface` (the one
carrying its `unicast_src_ip`, as the kernel reports it at start), and the
per-VRID send targets an interface's VRRP socket is opened with. Must not
decide protocol questions (pyvrrpd.core) or parse anything (pyvrrpd.config).

keepalived runs such an instance with no interface at all (its socket is
bound to the address); pyvrrpd needs one for the VIPs, the GARPs and the
link state, and the interface carrying the address is the one keepalived's
adverts leave from on a LAN. If no interface carries the address at start,
the instance stays in FAULT with that reason until pyvrrpd is restarted.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import replace
from ipaddress import IPv4Address

import structlog

from pyvrrpd.config.model import Config, VrrpInstance
from pyvrrpd.io.vrrp_socket import SendTarget

log = structlog.get_logger("pyvrrpd")

__all__ = ["resolve_interfaces", "send_target"]


def send_target(inst: VrrpInstance) -> SendTarget:
    """Where `inst`'s adverts go: each unicast peer, else its multicast group."""
    if inst.unicast_peer:
        dests = tuple(p.address for p in inst.unicast_peer)
        return SendTarget(dests, inst.src_ip, inst.unicast_ttl)
    return SendTarget((inst.mcast_dst_ip,), inst.src_ip)


def resolve_interfaces(config: Config, has_address: Callable[[str, IPv4Address], bool]) -> Config:
    """`config` with every omitted `interface` filled in from its unicast_src_ip.

    `has_address(ifname, address)` answers from the kernel's view (the link
    monitor's snapshot). An address on no interface leaves `interface` empty
    and sets the instance's `unicast_fault`, so it starts and stays in FAULT
    with a reason `pyvrrpd status` shows.
    """
    if all(inst.interface for inst in config.instances):
        return config
    names = [name for _, name in socket.if_nameindex()]
    out: list[VrrpInstance] = []
    for inst in config.instances:
        if inst.interface or inst.src_ip is None:
            out.append(inst)
            continue
        found = next((n for n in names if has_address(n, inst.src_ip)), None)
        if found is None:
            reason = f"no interface has unicast_src_ip {inst.src_ip} (restart once it is added)"
            log.error("unicast_src_ip_missing", instance=inst.name, detail=reason)
            out.append(replace(inst, unicast_fault=inst.unicast_fault or reason))
            continue
        log.info("interface_from_unicast_src_ip", instance=inst.name, interface=found)
        out.append(replace(inst, interface=found))
    return replace(config, instances=tuple(out))
