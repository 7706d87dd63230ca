"""Shell side of unicast instances: their interface, and where adverts go.

Owns: finding the interface of an instance that omits `interface` (the one
carrying its `unicast_src_ip`, as the kernel reports it at start), and the
per-VRID send targets an interface's VRRP socket is opened with. Must not
decide protocol questions (pyvrrpd.core) or parse anything (pyvrrpd.config).

keepalived runs such an instance with no interface at all (its socket is
bound to the address); pyvrrpd needs one for the VIPs, the GARPs and the
link state, and the interface carrying the address is the one keepalived's
adverts leave from on a LAN. If no interface carries the address at start,
the instance stays in FAULT with that reason until pyvrrpd is restarted; so
does one whose address is on a loopback interface (keepalived 2.2.7: "cannot
use a loopback interface (lo) for vrrp").

Also owns the check that no two instances share a VRID on one interface once
every interface is known (config/parser.py can only check written ones).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import replace
from ipaddress import IPv4Address
from pathlib import Path

import structlog

from pyvrrpd.config.model import Config, VrrpInstance
from pyvrrpd.io.vrrp_socket import SendTarget

log = structlog.get_logger("pyvrrpd")

__all__ = ["duplicate_vrid", "resolve_interfaces", "send_target"]

_IFF_LOOPBACK = 0x8


def _is_loopback(ifname: str) -> bool:
    try:
        flags = Path(f"/sys/class/net/{ifname}/flags").read_text()
        return bool(int(flags, 16) & _IFF_LOOPBACK)
    except (OSError, ValueError):
        return ifname == "lo"


def send_target(inst: VrrpInstance) -> SendTarget:
    """Where `inst`'s adverts go: each unicast peer, else its multicast group."""
    if inst.unicast_peer:
        dests = tuple(p.address for p in inst.unicast_peer)
        return SendTarget(dests, inst.src_ip, inst.unicast_ttl)
    return SendTarget((inst.mcast_dst_ip,), inst.src_ip)


def resolve_interfaces(
    config: Config,
    has_address: Callable[[str, IPv4Address], bool],
    is_loopback: Callable[[str], bool] = _is_loopback,
) -> Config:
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
        if is_loopback(found):
            reason = (
                f"cannot use a loopback interface ({found}) for vrrp: unicast_src_ip"
                f" {inst.src_ip} is on it (set `interface`)"
            )
            log.error("unicast_src_ip_on_loopback", instance=inst.name, detail=reason)
            out.append(replace(inst, unicast_fault=inst.unicast_fault or reason))
            continue
        log.info("interface_from_unicast_src_ip", instance=inst.name, interface=found)
        out.append(replace(inst, interface=found))
    return replace(config, instances=tuple(out))


def duplicate_vrid(config: Config) -> str | None:
    """A one-line error if two instances share a VRID on one interface, else None.

    Run once every `interface` is resolved: one interface's socket hands each
    advert to the instance of its VRID, so the second instance would never
    hear its peer and become a second MASTER. keepalived 2.2.7 refuses it too
    ("(VI_A) duplicate VRID conflict with VI_B VRID 51"), except for unicast
    instances with different peers, which pyvrrpd refuses as well (README).
    """
    seen: dict[tuple[str, int], str] = {}
    for inst in config.instances:
        if not inst.interface:
            continue  # no interface: FAULT, never on a socket
        key = (inst.interface, inst.virtual_router_id)
        other = seen.setdefault(key, inst.name)
        if other != inst.name:
            return (
                f"virtual_router_id {key[1]} on {key[0]} is used by both vrrp_instance"
                f" {other} and {inst.name} (keepalived: duplicate VRID conflict)"
            )
    return None
