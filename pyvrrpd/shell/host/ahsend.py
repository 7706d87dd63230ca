"""`auth_type AH` in the daemon: the interface's protocol-51 socket and AH adverts.

Owns: opening and closing an interface's :class:`~pyvrrpd.io.ah_socket.AhSocket`
alongside its protocol-112 socket (only where an instance uses AH), and
sending one AH-protected advert (``pyvrrpd.wire.ah``) for an instance.

The core keeps the anti-replay counter (``VirtualRouter.ah_seq``) because
received adverts move it too; each advert round takes the next number from it,
as keepalived's vrrp_send_adv() does (one number and one IP ID per round, the
same for every unicast peer).

The AH receive queue is split like the protocol-112 one (fast: our AH
routers' adverts, and a followed master's only; slow: the rest): the daemon
hands the same ``FastPath`` list to both sockets; the AH socket keeps the AH
routers' entries (``ah_fast_paths``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address

import structlog

from pyvrrpd.io.ah_socket import AhSocket
from pyvrrpd.io.errors import HostError
from pyvrrpd.shell.host.unicast import send_target
from pyvrrpd.shell.instance import Instance, Interface
from pyvrrpd.wire.ah import build_ah_datagram
from pyvrrpd.wire.bpf import FastPath
from pyvrrpd.wire.vrrp import AuthType, encode_advert

__all__ = [
    "ah_fast_paths",
    "close_ah_socket",
    "refilter_ah_socket",
    "send_ah_advert",
    "sync_ah_socket",
    "uses_ah",
]

log = structlog.get_logger("pyvrrpd")


def _ah_instances(iface: Interface) -> list[Instance]:
    return [i for i in iface.by_vrid.values() if i.router.config.auth_type == AuthType.AH]


def uses_ah(iface: Interface) -> bool:
    """True if an instance advertising on `iface` uses `auth_type AH`."""
    return bool(_ah_instances(iface))


def _groups(iface: Interface) -> tuple[IPv4Address, ...]:
    """The multicast groups the AH instances send to (none for unicast ones)."""
    found = (g for i in _ah_instances(iface) for g in send_target(i.cfg).groups)
    return tuple(dict.fromkeys(found))


def ah_fast_paths(paths: Sequence[FastPath]) -> list[FastPath]:
    """The entries of the AH routers: the only adverts the AH socket expects."""
    return [p for p in paths if p.auth_type == AuthType.AH]


def refilter_ah_socket(iface: Interface, paths: Sequence[FastPath]) -> bool:
    """Re-split the AH receive queues (the master a BACKUP follows changed)."""
    if iface.ah_sock is None:
        return False
    return iface.ah_sock.set_fast_paths(ah_fast_paths(paths))


def close_ah_socket(iface: Interface) -> None:
    if iface.ah_sock is not None:
        iface.ah_sock.close()
        iface.ah_sock = None


def sync_ah_socket(
    iface: Interface,
    loop: asyncio.AbstractEventLoop,
    on_datagram: Callable[[bytes], None],
    paths: Sequence[FastPath] = (),
) -> None:
    """Make `iface.ah_sock` follow `iface.sock` (same ifindex and primary address).

    Call after every change of `iface.sock`. AH datagrams go to the same
    `on_datagram` as the plain ones: ``wire.check`` tells them apart.
    `paths`: the interface's fast paths (``Daemon._fast_paths``); its AH
    entries split the AH receive queue.
    """
    sock = iface.sock
    want = (sock.ifindex, sock.primary_ip) if sock is not None and uses_ah(iface) else None
    ah = iface.ah_sock
    have = (ah.ifindex, ah.primary_ip) if ah is not None else None
    if want == have:
        if ah is not None and paths:
            ah.set_fast_paths(ah_fast_paths(paths))
        return
    close_ah_socket(iface)
    if sock is None or want is None:
        return
    try:
        new = AhSocket.open(
            sock.ifname, sock.ifindex, sock.primary_ip, _groups(iface), ah_fast_paths(paths)
        )
    except HostError as exc:
        log.error("ah_socket_open_failed", interface=iface.name, error=str(exc))
        return
    new.attach(loop, on_datagram)
    iface.ah_sock = new
    log.info("ah_socket_opened", interface=iface.name, ifindex=sock.ifindex)


def send_ah_advert(inst: Instance, priority: int) -> None:
    """Send one AH advert round: one datagram per destination, one sequence number.

    The destinations (multicast group or unicast peers), source address and
    unicast TTL are the instance's send target (shell/host/unicast.py). Raises
    HostError when there is no socket or the kernel refuses the datagram.
    """
    target = send_target(inst.cfg)
    sock = inst.iface.ah_sock
    router = inst.router
    if sock is None or router.ah_seq is None:
        raise HostError(f"no AH socket on {inst.cfg.interface!r} (interface missing)")
    cfg = router.config
    # keepalived leaves the VRRP header's 8 auth bytes zero under AH.
    payload = encode_advert(cfg.vrid, priority, cfg.vips, int(cfg.advert_int), AuthType.AH, b"")
    seq = router.ah_seq.next_send()
    ident = sock.next_ident()
    source = target.src if target.src is not None else sock.primary_ip
    for dst in target.dests:
        # keepalived: the TTL is left out of the ICV for unicast peers.
        unicast = not dst.is_multicast
        datagram = build_ah_datagram(
            source,
            dst,
            payload,
            seq=seq,
            ident=ident,
            auth_pass=cfg.auth_data,
            unicast=unicast,
            ttl=target.ttl if unicast else 255,
        )
        sock.send(datagram)
