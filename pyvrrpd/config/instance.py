"""The `vrrp_instance NAME { }` block (keepalived.md 1.8, 2.1, 2.5, 2.9).

Owns: reading the block's keywords into an `InstanceDraft` with the tokens
that later checks point at. Defaults that depend on other blocks (the global
garp values, the track_script names) are resolved by `parser.py` once the
whole file has been read, because keepalived does not care about block order.
Must not: raise, or build the final model itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import keywords
from .hostside import INSTANCE_HANDLERS as HOSTSIDE_HANDLERS
from .keywords import unknown_keyword
from .lexer import Stmt, Token
from .model import NotifyConfig, VirtualIP
from .notify import INSTANCE_KEYWORDS as NOTIFY_KEYWORDS
from .notify import read_instance_keyword as _notify
from .routemodel import Route, Rule
from .routes import INSTANCE_HANDLERS as ROUTE_HANDLERS
from .strict import INSTANCE_HANDLERS as STRICT_HANDLERS
from .trackfile import INSTANCE_HANDLERS as TRACKFILE_HANDLERS
from .trackhttp import INSTANCE_HANDLERS as TRACKHTTP_HANDLERS
from .tracking import INSTANCE_HANDLERS as TRACKING_HANDLERS
from .tracking import TrackingDraft
from .trackprocess import INSTANCE_HANDLERS as TRACKPROCESS_HANDLERS
from .trackref import RefDraft, read_words_block
from .unicast import INSTANCE_HANDLERS as UNICAST_HANDLERS
from .unicast import UnicastDraft
from .values import (
    Cursor,
    Reporter,
    bool_value,
    decimal_value,
    extra_args,
    flag,
    int_value,
    line_block,
    need_arg,
    parse_decimal,
    str_value,
)
from .vip import parse_vip
from .vmac import HANDLERS as VMAC_HANDLERS
from .vmac import VmacDraft

AUTH_PASS_LEN = 8  # RFC 3768 5.3.11 / keepalived VRRP_AUTH_LEN
GARP_SECS_MAX = 4294  # keepalived 2.2.7: "outside range [0, 4294]"
GARP_REPEAT_MAX = 65535
# RFC 3768 5.3.5: "Count IP Addrs" is one octet.
MAX_ADVERT_VIPS = 255
# keepalived's vrrp_complete_instance() counts an Ethernet header (14), the
# IPv4 header (20), the VRRP header (8) and the v2 auth data (8) against the
# interface MTU. Counting the Ethernet header is 3 addresses stricter than
# needed; we copy it so that a mixed keepalived/pyvrrpd pair splits the same
# list the same way and their adverts carry equal address lists.
ADVERT_OVERHEAD = 14 + 20 + 8 + 8


def max_advert_vips(mtu: int | None = None) -> int:
    """How many VIPs one advert can carry on an interface of `mtu` (None: 255)."""
    if mtu is None:
        return MAX_ADVERT_VIPS
    return max(0, min(MAX_ADVERT_VIPS, (mtu - ADVERT_OVERHEAD) // 4))


@dataclass(slots=True)
class InstanceDraft:
    """Everything written in one vrrp_instance block, unresolved."""

    name: Token
    interface: str | None = None
    vrid: int | None = None
    vrid_tok: Token | None = None
    priority: int | None = None
    state: str | None = None
    state_tok: Token | None = None
    advert_int: float = 1.0
    nopreempt_tok: Token | None = None
    preempt_delay: float = 0.0
    preempt_delay_tok: Token | None = None
    auth_type: str | None = None
    auth_type_tok: Token | None = None
    auth_pass: bytes | None = None
    auth_pass_tok: Token | None = None
    vips: list[VirtualIP] = field(default_factory=list)
    vip_toks: list[Token] = field(default_factory=list)  # where each of `vips` was written
    vips_excluded: list[VirtualIP] = field(default_factory=list)
    allow_no_vips: bool = False  # `no_virtual_ipaddress`
    track: list[RefDraft] = field(default_factory=list)
    garp_master_delay: float | None = None
    garp_master_repeat: int | None = None
    garp_master_refresh: float | None = None
    garp_master_refresh_repeat: int | None = None
    garp_lower_prio_delay: float | None = None
    garp_lower_prio_repeat: int | None = None
    skip_check_adv_addr: bool = False
    tracking: TrackingDraft = field(default_factory=TrackingDraft)  # config/tracking.py
    notify: NotifyConfig = field(default_factory=NotifyConfig)  # notify_* hooks (config/notify.py)
    unicast: UnicastDraft = field(default_factory=UnicastDraft)  # config/unicast.py
    # accept/no_accept, strict_mode (config/strict.py); None: not written
    accept: bool | None = None
    accept_tok: Token | None = None
    strict_mode: bool | None = None
    # virtual_routes / virtual_rules (config/routes.py)
    virtual_routes: list[Route] = field(default_factory=list)
    virtual_rules: list[Rule] = field(default_factory=list)
    track_src_ip: bool = False  # config/hostside.py
    vmac: VmacDraft = field(default_factory=VmacDraft)  # use_vmac & co (config/vmac.py)
    track_process: list[RefDraft] = field(default_factory=list)  # config/trackprocess.py
    track_file: list[RefDraft] = field(default_factory=list)  # config/trackfile.py
    track_http: list[RefDraft] = field(default_factory=list)  # config/trackhttp.py


def read_instance(rep: Reporter, name: Token, body: Cursor) -> InstanceDraft:
    """Read the statements of a vrrp_instance body."""
    d = InstanceDraft(name)
    while (stmt := body.next()) is not None:
        kw = stmt.keyword
        word = kw.text
        if kw.is_open:
            rep.error(kw, "unexpected '{'")
            body.pos -= 1
            body.skip_optional_block(stmt)
            continue
        handler = _HANDLERS.get(word)
        if handler is not None:
            handler(rep, d, stmt, body)
        elif word == "version":
            keywords.vrrp_version(rep, stmt)
        else:
            # No handler: refused, no effect or unknown (config/keywords.py).
            keywords.not_handled(rep, stmt, body, keywords.INSTANCE, _HANDLERS.keys())
    return d


def _state(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: Cursor) -> None:
    tok = need_arg(rep, stmt, 1, "MASTER or BACKUP")
    if tok is None:
        return
    extra_args(rep, stmt, 1)
    d.state_tok = tok
    if tok.text in ("MASTER", "BACKUP"):
        d.state = tok.text
    else:
        rep.warn(tok, f"state must be MASTER or BACKUP, got '{tok.text}'; using BACKUP")
        d.state = "BACKUP"


def _interface(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: Cursor) -> None:
    d.interface = str_value(rep, stmt, "an interface name")


def _vrid(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: Cursor) -> None:
    d.vrid_tok = stmt.tokens[1] if len(stmt.tokens) > 1 else stmt.keyword
    d.vrid = int_value(rep, stmt, 1, 255)


def _priority(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: Cursor) -> None:
    d.priority = int_value(rep, stmt, 1, 255)


def _advert_int(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: Cursor) -> None:
    expect = "an integer 1..255 (seconds; VRRPv2)"
    tok = need_arg(rep, stmt, 1, expect)
    if tok is None:
        return
    extra_args(rep, stmt, 1)
    value = parse_decimal(tok.text)
    # keepalived accepts 0.01..255 then, for VRRPv2, rounds to whole seconds.
    if value is None or not 0.01 <= value <= 255:
        rep.error(tok, f"advert_int must be {expect}, got '{tok.text}'")
        return
    if value != int(value):
        rounded = max(1, int(value + 0.5))
        rep.warn(
            tok,
            f"advert_int must be a whole number of seconds in VRRPv2; "
            f"rounding {tok.text} to {rounded}",
        )
        value = float(rounded)
    d.advert_int = value


def _nopreempt(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: Cursor) -> None:
    flag(rep, stmt)
    d.nopreempt_tok = stmt.keyword


def _preempt(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: Cursor) -> None:
    # Backward compatibility in keepalived: `preempt` just clears `nopreempt`.
    flag(rep, stmt)
    d.nopreempt_tok = None


def _preempt_delay(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: Cursor) -> None:
    value = decimal_value(rep, stmt, 0, 1000, " (seconds)")
    if value is not None:
        d.preempt_delay = value
        d.preempt_delay_tok = stmt.keyword


def _authentication(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: Cursor) -> None:
    extra_args(rep, stmt, 0)
    inner = body.block(stmt)
    if inner is None:
        return
    while (s := inner.next()) is not None:
        kw = s.keyword
        if kw.text == "auth_type":
            tok = need_arg(rep, s, 1, "PASS")
            if tok is None:
                continue
            extra_args(rep, s, 1)
            if tok.text == "PASS":
                d.auth_type, d.auth_type_tok = tok.text, tok
            elif tok.text == "AH":
                # keepalived's IPsec-AH-style HMAC-MD5-96 (pyvrrpd/wire/ah.py).
                d.auth_type, d.auth_type_tok = tok.text, tok
            else:
                # keepalived 2.2.7 reports an unknown type and runs the instance
                # with no authentication; a mixed pair must agree, so we do too.
                semi = " (keepalived.conf has no ';' separator)" if tok.text.endswith(";") else ""
                rep.warn(
                    tok,
                    f"unknown authentication type '{tok.text}'{semi}: like keepalived 2.2.7, "
                    "this instance runs WITHOUT authentication",
                )
        elif kw.text == "auth_pass":
            tok = need_arg(rep, s, 1, "a password of up to 8 characters")
            if tok is None:
                continue
            extra_args(rep, s, 1)
            d.auth_pass_tok = tok
            keywords.note_semicolon(rep, tok, "auth_pass")
            raw = tok.text.encode("utf-8", "surrogateescape")
            if not raw:
                rep.error(tok, "auth_pass must not be empty")
                continue
            if len(raw) > AUTH_PASS_LEN:
                rep.warn(tok, "truncating auth_pass to 8 characters")
            # RFC 3768 5.3.11: the field is exactly 8 octets, zero-padded.
            d.auth_pass = raw[:AUTH_PASS_LEN].ljust(AUTH_PASS_LEN, b"\0")
        else:
            known = ("auth_type", "auth_pass")
            rep.warn(kw, unknown_keyword(kw.text, "authentication", known))
            inner.skip_optional_block(s)


def _vip_block(
    rep: Reporter,
    stmt: Stmt,
    body: Cursor,
    out: list[VirtualIP],
    toks: list[Token] | None = None,
) -> None:
    block = stmt.keyword.text
    # A set, not a scan of `out`: a 100,000-address list must stay linear.
    seen = {(v.address, v.dev) for v in out}
    for s in line_block(rep, stmt, body):
        vip = parse_vip(rep, s, block)
        if vip is None:
            continue
        if (vip.address, vip.dev) in seen:
            rep.warn(s.keyword, f"{block}: duplicate address {vip.address}; ignored")
            continue
        seen.add((vip.address, vip.dev))
        out.append(vip)
        if toks is not None:
            toks.append(s.keyword)


def _vips(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: Cursor) -> None:
    _vip_block(rep, stmt, body, d.vips, d.vip_toks)


def _no_vips(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: Cursor) -> None:
    # keepalived: an instance without VIPs on purpose (cloud routing, #2121);
    # it only silences the "No VIP specified" warning.
    flag(rep, stmt)
    d.allow_no_vips = True


def _vips_excluded(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: Cursor) -> None:
    _vip_block(rep, stmt, body, d.vips_excluded)


def _track_script(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: Cursor) -> None:
    extra_args(rep, stmt, 0)
    inner = body.block(stmt)
    if inner is None:
        return
    # Weights -254..254, +-254 coerced to +-253 (keepalived's script range).
    read_words_block(rep, iter(inner.next, None), d.track, "track_script", 254)


def _garp_delay(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: Cursor) -> None:
    value = int_value(rep, stmt, 0, GARP_SECS_MAX)
    if value is not None:
        d.garp_master_delay = float(value)


def _garp_refresh(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: Cursor) -> None:
    value = int_value(rep, stmt, 0, GARP_SECS_MAX)
    if value is not None:
        d.garp_master_refresh = float(value)


def garp_repeat(rep: Reporter, stmt: Stmt) -> int | None:
    """A GARP repeat count; 0 is taken as 1 with a warning, like keepalived."""
    value = int_value(rep, stmt, 0, GARP_REPEAT_MAX)
    if value == 0:
        rep.warn(stmt.tokens[1], f"{stmt.keyword.text} must be greater than 0; using 1")
        value = 1
    return value


def _garp_repeat(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: Cursor) -> None:
    value = garp_repeat(rep, stmt)
    if value is not None:
        d.garp_master_repeat = value


def _garp_refresh_repeat(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: Cursor) -> None:
    value = garp_repeat(rep, stmt)
    if value is not None:
        d.garp_master_refresh_repeat = value


def garp_lower_prio_repeat(rep: Reporter, stmt: Stmt) -> int | None:
    """GARPs per VIP after a lower-priority advert; unlike the master repeat, 0 is valid (none)."""
    return int_value(rep, stmt, 0, GARP_REPEAT_MAX)


def _garp_lower_prio_delay(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: Cursor) -> None:
    value = int_value(rep, stmt, 0, GARP_SECS_MAX)
    if value is not None:
        d.garp_lower_prio_delay = float(value)


def _garp_lower_prio_repeat(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: Cursor) -> None:
    value = garp_lower_prio_repeat(rep, stmt)
    if value is not None:
        d.garp_lower_prio_repeat = value


def _skip_check(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: Cursor) -> None:
    # keepalived 2.2.7 sets the flag even for `skip_check_adv_addr false` (a
    # bug, keepalived.md 1.3); we honour the value.
    value = bool_value(rep, stmt)
    if value is not None:
        d.skip_check_adv_addr = value


_HANDLERS = {
    "state": _state,
    "interface": _interface,
    "virtual_router_id": _vrid,
    "priority": _priority,
    "advert_int": _advert_int,
    "nopreempt": _nopreempt,
    "preempt": _preempt,
    "preempt_delay": _preempt_delay,
    "authentication": _authentication,
    "virtual_ipaddress": _vips,
    "virtual_ipaddress_excluded": _vips_excluded,
    "track_script": _track_script,
    "garp_master_delay": _garp_delay,
    "garp_master_repeat": _garp_repeat,
    "garp_master_refresh": _garp_refresh,
    "garp_master_refresh_repeat": _garp_refresh_repeat,
    "garp_lower_prio_delay": _garp_lower_prio_delay,
    "garp_lower_prio_repeat": _garp_lower_prio_repeat,
    "no_virtual_ipaddress": _no_vips,
    "skip_check_adv_addr": _skip_check,
    **TRACKING_HANDLERS,  # track_interface, dont_track_primary, *_advert(s) (config/tracking.py)
    **dict.fromkeys(NOTIFY_KEYWORDS, _notify),  # notify_*, smtp_alert (config/notify.py)
    **UNICAST_HANDLERS,  # unicast_*, mcast_src_ip, mcast_dst_ip (config/unicast.py)
    **STRICT_HANDLERS,  # accept, no_accept, strict_mode (config/strict.py)
    **VMAC_HANDLERS,  # use_vmac, use_vmac_addr, vmac_xmit_base (config/vmac.py)
    **ROUTE_HANDLERS,  # virtual_routes, virtual_rules (config/routes.py)
    **HOSTSIDE_HANDLERS,  # track_src_ip (config/hostside.py)
    **TRACKPROCESS_HANDLERS,  # track_process (config/trackprocess.py)
    **TRACKFILE_HANDLERS,  # track_file (config/trackfile.py)
    **TRACKHTTP_HANDLERS,  # track_http (config/trackhttp.py, pyvrrpd-only)
}
