"""`use_vmac`, `vmac_xmit_base` and `use_vmac_addr` of a vrrp_instance.

Owns: reading these keywords into the draft and resolving them, with
keepalived 2.2.7's rules (vrrp_parser.c ``vrrp_vmac_handler``, vrrp.c
``vrrp_complete_instance``), into the instance's :class:`VmacConfig`.
Must not: look at the host's interfaces (whether a name is free is decided at
start by pyvrrpd.shell.host.vmac, where keepalived decides it too).

keepalived's reading, followed here:

* ``use_vmac [NAME] [MAC]``: up to two words, in either order; a word with a
  ``:`` is a MAC (interface names cannot hold one). The MAC may give five
  octets, the sixth then being the VRID. A multicast MAC or one of RFC 5798's
  own (00:00:5e:00:01:xx / 00:00:5e:00:02:xx) is refused with a message and
  the default is used; extra words are ignored.
* ``vmac_xmit_base`` without ``use_vmac`` is cleared with a message; with
  unicast peers keepalived forces it on; strict mode clears it and any MAC.
* a per-address ``use_vmac`` on an address of the instance's own interface,
  when the instance has ``use_vmac``, only draws a message (it goes on the
  instance's vmac anyway).

Each of these is an error line that keepalived then corrects and runs with,
so pyvrrpd warns and runs the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .lexer import Stmt, Token
from .model import VirtualIP, VmacConfig
from .values import Cursor, Reporter, extra_args, flag, need_arg

if TYPE_CHECKING:
    from .instance import InstanceDraft

IFNAMSIZ = 16  # <linux/if.h>, counting the terminating NUL
_RFC_MAC_PREFIX = bytes((0x00, 0x00, 0x5E, 0x00))


@dataclass(slots=True)
class VmacDraft:
    """What the vmac keywords of one instance said, with where."""

    use_tok: Token | None = None
    name: str | None = None
    mac: bytes | None = None
    mac_use_vrid: bool = False  # five octets given: the sixth is the VRID
    xmit_base_tok: Token | None = None
    addr: bool = False


def valid_ifname(name: str) -> bool:
    """The kernel's dev_valid_name(): 1..15 bytes, not . or .., no '/', ':' or space."""
    if not name or len(name.encode()) >= IFNAMSIZ or name in (".", ".."):
        return False
    return not any(c == "/" or c == ":" or c.isspace() for c in name)


def _parse_mac(text: str) -> tuple[bytes, bool] | None:
    """``xx:xx:xx:xx:xx:xx`` (or five octets); None if malformed."""
    parts = text.split(":")
    if parts and parts[-1] == "" and len(parts) == 6:
        parts = parts[:5]  # "00:11:22:33:44:" is five octets, as in keepalived
    if len(parts) not in (5, 6):
        return None
    out = []
    for part in parts:
        if not 1 <= len(part) <= 2 or any(c not in "0123456789abcdefABCDEF" for c in part):
            return None
        out.append(int(part, 16))
    return bytes(out), len(out) == 5


def _use_vmac(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: Cursor) -> None:
    v = d.vmac
    v.use_tok = stmt.keyword
    words = stmt.tokens[1:]
    for tok in words[:2]:
        text = tok.text
        if ":" in text:
            if v.mac is not None:
                rep.warn(tok, "use_vmac: VMAC interface address already specified; ignored")
                continue
            parsed = _parse_mac(text)
            if parsed is None:
                rep.warn(tok, f"use_vmac: invalid MAC address '{text}'; using the VRRP MAC")
                continue
            mac, use_vrid = parsed
            if mac[0] & 0x01:
                rep.warn(tok, f"use_vmac: MAC address {text} is multicast; using the VRRP MAC")
            elif mac[:4] == _RFC_MAC_PREFIX and mac[4] in (0x01, 0x02):
                rep.warn(
                    tok,
                    f"use_vmac: MAC address {text} may not be an RFC 5798 address;"
                    " using the VRRP MAC",
                )
            else:
                v.mac, v.mac_use_vrid = mac, use_vrid
            continue
        if v.name is not None:
            rep.warn(tok, "use_vmac: VMAC interface name already specified; ignored")
            continue
        if not valid_ifname(text):
            rep.warn(
                tok,
                f"use_vmac: interface name '{text}' is too long or has invalid characters;"
                " using the default name",
            )
            continue
        v.name = text
    for tok in words[2:]:
        rep.warn(tok, f"use_vmac takes at most a name and a MAC; '{tok.text}' ignored")


def _use_vmac_addr(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: Cursor) -> None:
    flag(rep, stmt)
    d.vmac.addr = True


def _xmit_base(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: Cursor) -> None:
    flag(rep, stmt)
    d.vmac.xmit_base_tok = stmt.keyword


GLOBAL_KEYWORDS = frozenset({"vmac_prefix", "vmac_addr_prefix"})


def read_global(rep: Reporter, stmt: Stmt, values: dict[str, object]) -> None:
    """`vmac_prefix PREFIX` / `vmac_addr_prefix PREFIX` (global_defs): the first one wins.

    keepalived names a vmac PREFIX.VRID (then PREFIXn.VRID), default `vrrp`;
    vmac_addr_prefix is for the per-address vmacs (default: vmac_prefix).
    """
    word = stmt.keyword.text
    tok = need_arg(rep, stmt, 1, "an interface name prefix")
    if tok is None:
        return
    extra_args(rep, stmt, 1)
    if word in values:
        what = "vmac prefix" if word == "vmac_prefix" else "vmac_addr prefix"
        rep.warn(tok, f"{what} has already been specified - ignoring {tok.text}")
        return
    if any(c in "/:" or c.isspace() for c in tok.text):
        # keepalived would make names the kernel refuses (vmac creation fails).
        rep.warn(tok, f"{word} '{tok.text}' cannot start an interface name; ignored")
        return
    values[word] = tok.text


HANDLERS = {
    "use_vmac": _use_vmac,
    "use_vmac_addr": _use_vmac_addr,
    "vmac_xmit_base": _xmit_base,
}


def resolve(rep: Reporter, d: InstanceDraft) -> VmacConfig:
    """The instance's VmacConfig, after keepalived's cross-checks (module docstring)."""
    v = d.vmac
    name = d.name.text
    enabled = v.use_tok is not None
    xmit_base = v.xmit_base_tok is not None
    mac = v.mac
    strict = bool(d.strict_mode)
    if enabled and mac is not None and strict:
        rep.warn(
            v.use_tok or d.name,
            f"({name}) cannot specify MAC address with strict mode; clearing it",
        )
        mac = None
    if mac is not None and v.mac_use_vrid and d.vrid is not None:
        mac = mac[:5] + bytes((d.vrid,))
    if xmit_base and not enabled:
        rep.warn(
            v.xmit_base_tok or d.name, f"({name}) vmac_xmit_base is only valid with a vmac; ignored"
        )
        xmit_base = False
    if enabled and d.unicast.configured:
        if d.interface is None:
            rep.warn(
                v.use_tok or d.name,
                f"({name}) Cannot use VMAC with unicast and no interface; clearing use_vmac",
            )
            enabled, xmit_base, mac = False, False, None
        elif not xmit_base:
            rep.warn(
                v.use_tok or d.name,
                f"({name}) unicast with use_vmac requires vmac_xmit_base; setting it",
            )
            xmit_base = True
    if enabled and xmit_base and strict:
        rep.warn(
            v.xmit_base_tok or d.name,
            f"({name}) vmac_xmit_base is incompatible with strict mode; clearing it",
        )
        xmit_base = False
    _check_vips(rep, d, enabled, v.addr, d.vips + d.vips_excluded)
    return VmacConfig(
        enabled=enabled,
        name=v.name if enabled else None,
        mac=mac,
        xmit_base=xmit_base,
        addr=v.addr,
    )


def _check_vips(
    rep: Reporter, d: InstanceDraft, enabled: bool, addr: bool, vips: list[VirtualIP]
) -> None:
    """keepalived's messages for a per-address `use_vmac` that changes nothing."""
    name = d.name.text
    for vip in vips:
        if not vip.use_vmac:
            continue
        own = vip.dev is None or vip.dev == d.interface
        if own and enabled:
            rep.warn(d.name, f"({name}) use_vmac specified for VIP/eVIP {vip} and vrrp instance")
        elif not own and addr:
            rep.warn(
                d.name,
                f"({name}) use_vmac_addr specified and use_vmac specified for VIP/eVIP {vip}",
            )


def vip_wants_vmac(inst_vmac: VmacConfig, interface: str, vip: VirtualIP) -> bool:
    """Whether `vip` goes on a vmac of its own device rather than the instance's vmac.

    keepalived (vrrp_complete_instance): an address on the instance's own
    interface uses the instance's vmac when it has one; any other address gets
    a vmac on its device with per-address `use_vmac`, or with `use_vmac_addr`.
    (Addresses of the other family, also covered by `use_vmac_addr`, cannot
    occur here: pyvrrpd refuses IPv6 addresses.)
    """
    own = vip.dev is None or vip.dev == interface
    if own:
        return not inst_vmac.enabled and vip.use_vmac
    return vip.use_vmac or inst_vmac.addr
