"""Unicast and multicast addressing of adverts (keepalived.md 1.3, 1.8).

Owns: reading the instance keywords `unicast_src_ip`, `mcast_src_ip`,
`unicast_peer { IP [min_ttl N] [max_ttl N] ... }`, `unicast_ttl`,
`check_unicast_src`, `unicast_fault_no_peer`, `mcast_dst_ip` and the global
ones `vrrp_mcast_group4`, `vrrp_check_unicast_src`, then resolving them into
the instance's model fields with keepalived 2.2.7's rules
(vrrp_parser.c, vrrp_data.c `alloc_vrrp_unicast_peer()`, vrrp.c
`vrrp_complete_instance()`):

- `unicast_src_ip`, `check_unicast_src` and `unicast_fault_no_peer` mark the
  instance "unicast configured"; it is unicast only when it has a peer. With
  none it stays multicast with a deprecation warning, or, with
  `unicast_fault_no_peer`, is held in FAULT.
- `unicast_src_ip` and `mcast_src_ip` set the same thing: the source address
  of our adverts (the equal-priority tie-break compares against it).
- A `min_ttl`/`max_ttl` on a peer turns the source check on.
- `unicast_ttl` without peers, and `mcast_dst_ip` with peers, are ignored
  with a warning; the multicast group defaults to `vrrp_mcast_group4`.
- `interface` may be omitted when `unicast_src_ip` is set (the daemon finds
  the interface that carries the address).

Must not: touch the network (the daemon resolves the interface at start).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import AddressValueError, IPv4Address
from typing import TYPE_CHECKING, Any

from .lexer import Stmt, Token
from .model import GlobalDefs, UnicastPeer
from .values import Cursor, Reporter, extra_args, flag, int_value, line_block, need_arg, parse_int

if TYPE_CHECKING:
    from .instance import InstanceDraft

__all__ = [
    "GLOBAL_KEYWORDS",
    "INSTANCE_HANDLERS",
    "UnicastDraft",
    "interface_optional",
    "read_global",
    "resolve",
]


DEFAULT_TTL = 255  # keepalived's VRRP_IP_TTL, also the default unicast_ttl
TTL_MAX = 255


@dataclass(slots=True)
class UnicastDraft:
    """The unicast/multicast keywords of one vrrp_instance, unresolved."""

    configured: bool = False  # any keyword that makes keepalived think "unicast"
    src_ip: IPv4Address | None = None
    src_tok: Token | None = None
    src_is_unicast: bool = False  # written as unicast_src_ip (not mcast_src_ip)
    peers: list[UnicastPeer] = field(default_factory=list)
    peer_block_tok: Token | None = None
    ttl: int | None = None
    ttl_tok: Token | None = None
    check_src: bool = False
    fault_no_peer: bool = False
    mcast_dst: IPv4Address | None = None
    mcast_dst_tok: Token | None = None


def _address(rep: Reporter, tok: Token, what: str) -> IPv4Address | None:
    try:
        return IPv4Address(tok.text)
    except AddressValueError:
        rep.error(tok, f"{what} must be an IPv4 address, got '{tok.text}'")
        return None


def _src(rep: Reporter, d: InstanceDraft, stmt: Stmt, _body: Cursor) -> None:
    unicast = stmt.keyword.text == "unicast_src_ip"
    u = d.unicast
    if unicast:
        u.configured = True
    tok = need_arg(rep, stmt, 1, "an IPv4 address")
    if tok is None:
        return
    extra_args(rep, stmt, 1)
    addr = _address(rep, tok, stmt.keyword.text)
    if addr is None:
        return
    if addr.is_multicast or addr.is_unspecified:
        rep.error(tok, f"{stmt.keyword.text} must be a unicast address, got '{tok.text}'")
        return
    u.src_ip, u.src_tok, u.src_is_unicast = addr, tok, u.src_is_unicast or unicast


def _peers(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: Cursor) -> None:
    u = d.unicast
    u.configured = True
    u.peer_block_tok = stmt.keyword
    seen = {p.address for p in u.peers}
    for s in line_block(rep, stmt, body):
        peer = _peer(rep, d, s)
        if peer is None:
            continue
        if peer.address in seen:
            rep.warn(s.keyword, f"unicast_peer {peer.address} is listed twice; ignored")
            continue
        seen.add(peer.address)
        u.peers.append(peer)


def _peer(rep: Reporter, d: InstanceDraft, s: Stmt) -> UnicastPeer | None:
    """`IP [min_ttl N] [max_ttl N]` (vrrp_data.c alloc_vrrp_unicast_peer())."""
    addr = _address(rep, s.keyword, "unicast_peer")
    if addr is None:
        return None
    if addr.is_multicast or addr.is_unspecified:
        rep.error(s.keyword, f"unicast_peer must be a unicast address, got '{s.keyword.text}'")
        return None
    ttls = {"min_ttl": 0, "max_ttl": TTL_MAX}
    words = s.tokens
    for i in range(1, len(words), 2):
        opt = words[i]
        if opt.text not in ttls:
            # keepalived stops reading the line here and keeps the peer.
            rep.warn(opt, f"unknown unicast_peer option '{opt.text}'; rest of the line ignored")
            break
        if i + 1 >= len(words):
            rep.error(opt, f"{opt.text} needs a value: an integer 0..{TTL_MAX}")
            return None
        val = words[i + 1]
        num = parse_int(val.text)
        if num is None or not 0 <= num <= TTL_MAX:
            rep.error(val, f"{opt.text} must be an integer 0..{TTL_MAX}, got '{val.text}'")
            return None
        ttls[opt.text] = num
        # keepalived: a TTL bound on any peer turns the source check on.
        d.unicast.check_src = True
    if ttls["min_ttl"] > ttls["max_ttl"]:
        rep.warn(
            s.keyword,
            f"min_ttl {ttls['min_ttl']} > max_ttl {ttls['max_ttl']}:"
            " every advert from this peer will be discarded",
        )
    return UnicastPeer(addr, ttls["min_ttl"], ttls["max_ttl"])


def _ttl(rep: Reporter, d: InstanceDraft, stmt: Stmt, _body: Cursor) -> None:
    value = int_value(rep, stmt, 0, TTL_MAX)
    if value is not None:
        d.unicast.ttl, d.unicast.ttl_tok = value, stmt.keyword


def _check_src(rep: Reporter, d: InstanceDraft, stmt: Stmt, _body: Cursor) -> None:
    flag(rep, stmt)
    d.unicast.configured = True
    d.unicast.check_src = True


def _fault_no_peer(rep: Reporter, d: InstanceDraft, stmt: Stmt, _body: Cursor) -> None:
    flag(rep, stmt)
    d.unicast.configured = True
    d.unicast.fault_no_peer = True


def _mcast_dst(rep: Reporter, d: InstanceDraft, stmt: Stmt, _body: Cursor) -> None:
    tok = need_arg(rep, stmt, 1, "an IPv4 multicast address")
    if tok is None:
        return
    extra_args(rep, stmt, 1)
    addr = _address(rep, tok, "mcast_dst_ip")
    if addr is None:
        return
    if not addr.is_multicast:
        rep.error(tok, f"mcast_dst_ip {addr} is not a multicast address")
        return
    d.unicast.mcast_dst, d.unicast.mcast_dst_tok = addr, tok


INSTANCE_HANDLERS: dict[str, Any] = {
    "unicast_src_ip": _src,
    "mcast_src_ip": _src,
    "unicast_peer": _peers,
    "unicast_ttl": _ttl,
    "check_unicast_src": _check_src,
    "unicast_fault_no_peer": _fault_no_peer,
    "mcast_dst_ip": _mcast_dst,
}

GLOBAL_KEYWORDS = frozenset({"vrrp_mcast_group4", "vrrp_check_unicast_src"})


def read_global(rep: Reporter, stmt: Stmt, g: dict[str, object]) -> None:
    """`vrrp_mcast_group4 IP` or `vrrp_check_unicast_src` into the GlobalDefs fields."""
    word = stmt.keyword.text
    if word == "vrrp_check_unicast_src":
        flag(rep, stmt)
        g["vrrp_check_unicast_src"] = True
        return
    tok = need_arg(rep, stmt, 1, "an IPv4 multicast address")
    if tok is None:
        return
    extra_args(rep, stmt, 1)
    addr = _address(rep, tok, word)
    if addr is None:
        return
    if not addr.is_multicast:
        rep.error(tok, f"{word} {addr} is not a multicast address")
        return
    g["vrrp_mcast_group4"] = addr


def interface_optional(d: InstanceDraft) -> bool:
    """keepalived: an instance may omit `interface` when unicast_src_ip is set."""
    return d.unicast.src_ip is not None and d.unicast.src_is_unicast


def resolve(rep: Reporter, d: InstanceDraft, gd: GlobalDefs) -> dict[str, object]:
    """The VrrpInstance fields for this draft (keepalived's vrrp_complete_instance())."""
    u = d.unicast
    name = d.name.text
    peers = tuple(u.peers)
    fault: str | None = None
    if u.configured and not peers:
        if u.fault_no_peer:
            fault = "unicast configured without any unicast_peer (unicast_fault_no_peer)"
        else:
            at = u.peer_block_tok or u.src_tok or d.name
            rep.warn(
                at,
                f"({name}) A unicast keyword has been specified without any unicast peers."
                " Defaulting to multicast. This usage is deprecated - please update your"
                " configuration.",
            )
    ttl = DEFAULT_TTL
    if u.ttl is not None and u.ttl_tok is not None:
        if peers:
            ttl = u.ttl
        else:
            rep.warn(u.ttl_tok, f"({name}) Cannot use unicast_ttl without unicast peers; ignored")
    group = gd.vrrp_mcast_group4
    if u.mcast_dst is not None and u.mcast_dst_tok is not None:
        if peers:
            rep.warn(
                u.mcast_dst_tok, f"({name}) multicast destination specified with unicast; ignored"
            )
        else:
            group = u.mcast_dst
    return {
        "src_ip": u.src_ip,
        "unicast_peer": peers,
        "unicast_ttl": ttl,
        # keepalived checks the source only in unicast mode (vrrp.c check_packet).
        "check_unicast_src": bool(peers) and (u.check_src or gd.vrrp_check_unicast_src),
        "mcast_dst_ip": group,
        "unicast_fault": fault,
    }
