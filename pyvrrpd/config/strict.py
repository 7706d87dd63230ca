"""Accept mode, strict mode and the firewall behind them (keepalived.md 1.3, 1.8, 2.11).

Owns: reading `vrrp_strict`, `nftables [TABLE]`, `nftables_priority`,
`nftables_counters`, `nftables_ifindex`, `vrrp_iptables` and `vrrp_ipsets`
(global_defs) and `accept`, `no_accept`, `strict_mode` (vrrp_instance), and
the strict-mode transform keepalived 2.2.7 applies when it completes an
instance (vrrp.c `vrrp_complete_instance()`), with keepalived's messages.

The transform runs in two steps: `before_finish` on the instance draft (the
fields the draft holds, with the tokens to point at), before defaults are
resolved, because keepalived fixes the state before it looks at nopreempt;
`after_finish` on the finished model, for the keywords other modules add
(unicast peers, down_timer_adverts, lower/higher_prio adverts, VMAC). Those
fields are looked up by name, so this module works before and after they land.

keepalived reports most strict-mode conflicts as configuration errors and
then runs with the value reset; pyvrrpd warns with the same text and runs the
same way, so a mixed pair agrees. The two conflicts keepalived refuses to run
with (no VIP, unicast peers) are errors here too.
Must not: touch the firewall (pyvrrpd.shell.host.firewall does, at run time).
"""

from __future__ import annotations

import re
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

from .lexer import Stmt, Token
from .model import VrrpInstance
from .values import FALSE_WORDS, TRUE_WORDS, Reporter, bool_value, extra_args, flag, int_value

if TYPE_CHECKING:
    from .instance import InstanceDraft

DEFAULT_TABLE = "keepalived"  # keepalived's DEFAULT_NFTABLES_TABLE
DEFAULT_PRIORITY = -1  # keepalived: chains hook at `filter - 1`
NFT_TABLE_MAXNAMELEN = 256  # <linux/netfilter/nf_tables.h>
_NFT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")
OWNER = 255  # RFC 3768 5.3.4: the address owner's priority
DOWN_TIMER_ADVERTS = 3  # keepalived's VRRP_DOWN_TIMER_ADVERTS (RFC 3768 6.1)

GLOBAL_KEYWORDS = frozenset(
    {
        "vrrp_strict",
        "nftables",
        "nftables_priority",
        "nftables_counters",
        "nftables_ifindex",
        "vrrp_iptables",
        "vrrp_ipsets",
    }
)


def read_global(rep: Reporter, stmt: Stmt, values: dict[str, object]) -> None:
    """One global_defs statement whose keyword is in GLOBAL_KEYWORDS into `values`."""
    kw = stmt.keyword
    word = kw.text
    if word == "vrrp_strict":
        # keepalived 2.2.7's handler ignores any argument: `vrrp_strict false`
        # still turns strict mode on. Follow it (a mixed pair must agree), loudly.
        if len(stmt.tokens) > 1 and bool_value(rep, stmt) is False:
            rep.warn(
                stmt.tokens[1],
                "keepalived 2.2.7 ignores the value of vrrp_strict: strict mode is ON; "
                "remove the line to turn it off",
            )
        values["vrrp_strict"] = True
    elif word == "nftables":
        extra_args(rep, stmt, 1)
        if "nftables_table" in values:
            rep.warn(kw, "nftables already specified - ignoring")
            return
        name = stmt.tokens[1].text if len(stmt.tokens) > 1 else DEFAULT_TABLE
        if len(name) >= NFT_TABLE_MAXNAMELEN:
            rep.warn(stmt.tokens[1], "nftables table name too long - ignoring")
            return
        if not _NFT_NAME.match(name):
            # The name goes into an `nft -f` script: nothing that could end
            # the statement or quote (keepalived itself talks netlink).
            rep.error(
                stmt.tokens[1],
                f"nftables table name '{name}' is not supported by pyvrrpd: use letters,"
                " digits, '_' and '.', starting with a letter or '_'",
            )
            return
        values["nftables_table"] = name
    elif word == "nftables_priority":
        value = int_value(rep, stmt, -(2**31), 2**31 - 1, what="nftables chain priority")
        if value is not None:
            values["nftables_priority"] = value
    elif word in ("nftables_counters", "nftables_ifindex"):
        values[word] = flag(rep, stmt)
    elif word == "vrrp_iptables":
        # keepalived 2.2.7 as Debian builds it has no iptables support and
        # maps this keyword onto nftables, with this message.
        rep.warn(
            kw,
            "iptables not supported, using nftables instead. Please replace 'vrrp_iptables' "
            "and 'vrrp_ipsets' with 'nftables' config option",
        )
        values.setdefault("nftables_table", DEFAULT_TABLE)
    elif word == "vrrp_ipsets":
        rep.warn(
            kw,
            "vrrp_ipsets: ipsets are not supported (keepalived 2.2.7 built with nftables "
            "does not know this keyword); no_accept rules use nftables; ignored",
        )


# -- vrrp_instance keywords ------------------------------------------------


def read_accept(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: object) -> None:
    """`accept` / `no_accept`: the last one written wins, as in keepalived."""
    flag(rep, stmt)
    d.accept = stmt.keyword.text == "accept"
    d.accept_tok = stmt.keyword


def read_strict_mode(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: object) -> None:
    """`strict_mode [BOOL]` (alone: true); overrides the global vrrp_strict."""
    if len(stmt.tokens) == 1:
        d.strict_mode = True
        return
    extra_args(rep, stmt, 1)
    word = stmt.tokens[1].text.lower()
    if word in TRUE_WORDS | FALSE_WORDS:
        d.strict_mode = word in TRUE_WORDS
    else:
        # keepalived reports it and keeps the global vrrp_strict: so do we.
        rep.warn(
            stmt.tokens[1], f"({d.name.text}) invalid strict_mode {stmt.tokens[1].text} specified"
        )


INSTANCE_HANDLERS = {
    "accept": read_accept,
    "no_accept": read_accept,
    "strict_mode": read_strict_mode,
}


# -- the strict-mode transform ---------------------------------------------


def is_strict(d: InstanceDraft, vrrp_strict: bool) -> bool:
    return vrrp_strict if d.strict_mode is None else d.strict_mode


def before_finish(rep: Reporter, d: InstanceDraft, vrrp_strict: bool) -> bool:
    """Apply strict mode to the draft; False if keepalived refuses the instance.

    Also resolves `d.accept` (True/False), which needs the priority default.
    """
    strict = is_strict(d, vrrp_strict)
    name = d.name.text
    ok = True
    priority = d.priority
    if priority is None:
        priority = OWNER if d.state == "MASTER" else 100
    if strict:
        if not d.vips:
            rep.error(d.name, f"({name}) No VIP specified; at least one is required")
            d.allow_no_vips = True  # no second, softer message about the same thing
            ok = False
        if d.state is not None and (d.state == "MASTER") != (priority == OWNER):
            rep.warn(d.state_tok or d.name, f"({name}) State MASTER must match being address owner")
            d.state = "MASTER" if priority == OWNER else "BACKUP"
        if d.auth_type is not None:
            rep.warn(
                d.auth_type_tok or d.name,
                f"({name}) Strict mode does not support authentication. Ignoring.",
            )
            d.auth_type = d.auth_type_tok = None
            d.auth_pass = None
            d.auth_pass_tok = None
        if d.preempt_delay:
            rep.warn(
                d.preempt_delay_tok or d.name,
                f"({name}) preempt_delay is incompatible with strict mode - resetting",
            )
            d.preempt_delay = 0.0
            d.preempt_delay_tok = None
        # Unset: 0 without a word; set to something else: keepalived's error.
        if d.garp_lower_prio_repeat:
            rep.warn(d.name, f"({name}) Strict mode requires no repeat garps. resetting")
        d.garp_lower_prio_repeat = 0
        if d.garp_lower_prio_delay:
            rep.warn(d.name, f"({name}) Strict mode requires no repeat garp delay. resetting")
        d.garp_lower_prio_delay = 0.0
    # Accept mode (vrrp.c ~3150): unset means on, except in strict mode where
    # only the address owner accepts; a VRRPv2 non-owner in strict mode never does.
    accept = d.accept
    if accept is None:
        accept = priority == OWNER or not strict
    if accept and priority != OWNER and strict:
        rep.warn(
            d.accept_tok or d.name,
            f"({name}) warning - accept mode for VRRP version 2 does not comply with "
            "RFC3768 - resetting",
        )
        accept = False
    d.accept = accept
    d.strict_mode = strict
    return ok


# Fields other modules add to VrrpInstance, with the value strict mode forces
# and keepalived's message when the configured value differs (None: silent).
_FORCED: tuple[tuple[str, object, str | None], ...] = (
    (
        "down_timer_adverts",
        DOWN_TIMER_ADVERTS,
        "down_timer_adverts is incompatible with strict mode - resetting",
    ),
    ("lower_prio_no_advert", True, None),
    (
        "higher_prio_send_advert",
        False,
        "strict mode requires higher_prio_send_advert to be clear. resetting",
    ),
)
# Fields of the instance's `vmac` (use_vmac, config/vmac.py) strict mode clears.
_FORCED_VMAC: tuple[tuple[str, object, str], ...] = (
    ("mac", None, "cannot specify MAC address with strict mode - clearing"),
    ("xmit_base", False, "xmit_base is incompatible with strict mode - resetting"),
)
# keepalived refuses to run an instance with these in strict mode.
_REFUSED: tuple[tuple[str, str], ...] = (
    ("unicast_peer", "Unicast peers are not supported in strict mode"),
    ("unicast_peers", "Unicast peers are not supported in strict mode"),
)


def after_finish(rep: Reporter, at: Token, inst: VrrpInstance) -> VrrpInstance | None:
    """Strict mode on the fields other modules add; None if the instance is refused."""
    if not inst.strict_mode:
        return inst
    have = {f.name for f in fields(inst)}
    for name, refusal in _REFUSED:
        if name in have and getattr(inst, name):
            rep.error(at, f"({inst.name}) {refusal}")
            return None
    changes: dict[str, Any] = {}
    for name, forced, message in _FORCED:
        if name not in have or getattr(inst, name) == forced:
            continue
        if message is not None:
            rep.warn(at, f"({inst.name}) {message}")
        changes[name] = forced
    vmac = getattr(inst, "vmac", None)
    if vmac is not None:
        vmac_changes: dict[str, Any] = {}
        for field_name, value, text in _FORCED_VMAC:
            if hasattr(vmac, field_name) and getattr(vmac, field_name) != value:
                rep.warn(at, f"({inst.name}) {text}")
                vmac_changes[field_name] = value
        if vmac_changes:
            changes["vmac"] = replace(vmac, **vmac_changes)
    return replace(inst, **changes) if changes else inst


def needs_firewall(inst: VrrpInstance) -> bool:
    """Whether the instance drops traffic to its VIPs as master (keepalived's test)."""
    return not inst.accept and inst.priority != OWNER


__all__ = [
    "DEFAULT_TABLE",
    "GLOBAL_KEYWORDS",
    "INSTANCE_HANDLERS",
    "after_finish",
    "before_finish",
    "needs_firewall",
    "read_global",
]
