"""`virtual_routes`, `virtual_rules`, `static_routes`, `static_rules`, `static_ipaddress`.

Owns: reading the `ip route` / `ip rule` subset keepalived configs use
(keepalived's vrrp_iproute.c `alloc_route()` and vrrp_iprule.c
`alloc_rule()` accept the same words) into `routemodel.Route` / `Rule`:

  route: [to] [unicast|blackhole|unreachable|prohibit] DST [via|gw ADDR]
         [dev|oif IF] [src ADDR] [metric|priority|preference N]
         [table ID|NAME] [scope S] [protocol P] [onlink] [no_track]
  rule:  [from PREFIX|all] [to PREFIX|all] [iif|dev IF] [oif IF]
         [fwmark N[/MASK]] [priority|preference|order N]
         table|lookup ID|NAME [protocol P] [no_track]

Anything else keepalived knows (nexthop groups, encap, metrics such as mtu,
realms, IPv6, uidrange ...) is refused with an error at its word: installing
a route that differs from what the operator wrote is worse than not starting.
As in keepalived, a route or rule without `no_track` gets protocol
`keepalived` (18). Must not: touch the kernel.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from .lexer import Stmt, Token
from .model import VirtualIP
from .routemodel import RTPROT_KEEPALIVED, SCOPES, Route, Rule
from .values import Cursor, Reporter, line_block, parse_int
from .vip import parse_vip

ROUTE_TYPES = ("unicast", "blackhole", "unreachable", "prohibit")
_BUILTIN_TABLES = {"local": 255, "main": 254, "default": 253, "unspec": 0}
_BUILTIN_PROTOS = {"kernel": 2, "boot": 3, "static": 4, "keepalived": RTPROT_KEEPALIVED}
# Words keepalived knows for routes / rules that pyvrrpd does not install.
_ROUTE_REFUSED = frozenset(
    {
        "inet6", "nexthop", "encap", "expires", "mtu", "hoplimit", "advmss", "rtt",
        "rttvar", "reordering", "window", "cwnd", "ssthresh", "realms", "rto_min",
        "initcwnd", "initrwnd", "features", "quickack", "congctl", "pref",
        "ttl-propagate", "fastopen_no_cookie", "as", "from", "tos", "dsfield",
        "vrf", "track_group", "add", "prepend", "append", "or", "weight",
    }
)  # fmt: skip
_RULE_REFUSED = frozenset(
    {
        "inet6", "tos", "dsfield", "realms", "suppress_prefixlength", "sup_pl",
        "suppress_ifgroup", "sup_group", "tunnel-id", "uidrange", "l3mdev", "ipproto",
        "sport", "dport", "track_group", "type", "goto", "nop", "blackhole",
        "unreachable", "prohibit",
    }
)  # fmt: skip


def _names(path: str, builtin: Mapping[str, int]) -> dict[str, int]:
    """iproute2's `NUMBER NAME` files (rt_tables, rt_protos), plus their .d directory."""
    out = dict(builtin)
    files = [Path(path)]
    with contextlib.suppress(OSError):
        files += sorted(Path(path + ".d").glob("*.conf"))
    for f in files:
        try:
            text = f.read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split("#", 1)[0].split()
            if len(words) >= 2 and words[0].isdigit():
                out.setdefault(words[1], int(words[0]))
    return out


def _number(text: str, names: Mapping[str, int], hi: int) -> int | None:
    value = parse_int(text)
    if value is None:
        with contextlib.suppress(ValueError):
            value = int(text, 0) if text.lower().startswith("0x") else None
    if value is None:
        value = names.get(text)
    return value if value is not None and 0 <= value <= hi else None


def _text(stmt: Stmt) -> str:
    return " ".join(t.text for t in stmt.tokens)


def _prefix(text: str) -> IPv4Network | None:
    if text in ("default", "all", "any"):
        return IPv4Network("0.0.0.0/0")
    if ":" in text:
        return None
    try:
        return IPv4Network(text, strict=True)
    except ValueError:
        return None


def _addr(text: str) -> IPv4Address | None:
    try:
        return IPv4Address(text)
    except ValueError:
        return None


class _Words:
    """The words of one line, with located errors."""

    def __init__(self, rep: Reporter, stmt: Stmt, block: str) -> None:
        self.rep, self.toks, self.block = rep, stmt.tokens, block
        self.i = 0
        self.ok = True

    def more(self) -> bool:
        return self.i < len(self.toks)

    def take(self) -> Token:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def value(self, key: Token) -> Token | None:
        if not self.more():
            self.fail(key, f"'{key.text}' needs a value")
            return None
        return self.take()

    def number(self, key: Token, names: Mapping[str, int], hi: int, bad: str) -> int | None:
        """The value after `key`: 0..`hi` or a name in `names`; else the error
        `bad` (its `{}` is the value) and None."""
        val = self.value(key)
        if val is None:
            return None
        n = _number(val.text, names, hi)
        if n is None:
            self.fail(val, bad.format(val.text))
        return n

    def fail(self, at: Token, message: str) -> None:
        self.rep.error(at, f"{self.block}: {message}")
        self.ok = False


def _protocol(
    rep: Reporter, stmt: Stmt, block: str, f: dict[str, Any], protocol: int | None, what: str
) -> None:
    """Set `f["protocol"]`; a tracked (not `no_track`) route or rule is always
    protocol keepalived, as keepalived resets it (with its warning)."""
    if protocol is not None and not f.get("no_track") and protocol != RTPROT_KEEPALIVED:
        rep.warn(
            stmt.keyword,
            f"{block}: {what} cannot be tracked if protocol is not RTPROT_KEEPALIVED"
            f"({RTPROT_KEEPALIVED}), resetting protocol",
        )
        protocol = RTPROT_KEEPALIVED
    if protocol is not None:
        f["protocol"] = protocol


def parse_route(rep: Reporter, stmt: Stmt, block: str) -> Route | None:
    """One line of a routes block; None (with an error) if pyvrrpd cannot install it."""
    w = _Words(rep, stmt, block)
    f: dict[str, Any] = {}
    protocol: int | None = None
    tables = _names("/etc/iproute2/rt_tables", _BUILTIN_TABLES)
    while w.more() and w.ok:
        key = w.take()
        word = key.text
        if word in ("via", "gw"):
            if word == "gw":
                rep.warn(key, f'{block}: "gw" for routes is deprecated. Please use "via"')
            val = w.value(key)
            if val is not None and val.text == "inet":
                val = w.value(val)
            if val is not None and (gw := _addr(val.text)) is not None:
                f["via"] = gw
            elif val is not None:
                w.fail(val, f"invalid route via address {val.text} (IPv4 only)")
        elif word in ("dev", "oif"):
            if (val := w.value(key)) is not None:
                f["dev"] = val.text
        elif word == "src":
            val = w.value(key)
            if val is not None and (src := _addr(val.text)) is not None:
                f["src"] = src
            elif val is not None:
                w.fail(val, f"invalid route src address {val.text}")
        elif word in ("metric", "priority", "preference"):
            bad = f"{word} must be an integer 0..4294967295, got '{{}}'"
            if (n := w.number(key, {}, 2**32 - 1, bad)) is not None:
                f["metric"] = n
        elif word == "table":
            bad = "Routing table {} not found for route"
            if (n := w.number(key, tables, 2**32 - 1, bad)) is not None:
                f["table"] = n
        elif word == "scope":
            bad = "Scope {} not found or invalid for route"
            if (n := w.number(key, SCOPES, 255, bad)) is not None:
                f["scope"] = n
        elif word == "protocol":
            protos = _names("/etc/iproute2/rt_protos", _BUILTIN_PROTOS)
            bad = "Protocol {} not found or invalid for route"
            if (n := w.number(key, protos, 255, bad)) is not None:
                protocol = n
        elif word == "onlink":
            f["onlink"] = True
        elif word == "no_track":
            f["no_track"] = True
        elif word in _ROUTE_REFUSED:
            w.fail(key, f"route option '{word}' is not supported by pyvrrpd")
        else:
            # keepalived: anything else is the destination, optionally after
            # `to` and a route type.
            if word == "to":
                if not w.more():
                    w.fail(key, "'to' needs a destination")
                    break
                key = w.take()
            if key.text in ROUTE_TYPES and w.more():
                f["type"] = key.text
                key = w.take()
            if "dst" in f:
                w.fail(key, f"unknown route keyword {key.text}")
                break
            dst = _prefix(key.text)
            if dst is None:
                why = "IPv6 routes need VRRPv3, not supported yet" if ":" in key.text else ""
                w.fail(key, why or f"unknown route keyword {key.text} (not an IPv4 prefix)")
                break
            f["dst"] = dst
    if not w.ok:
        return None
    if "dst" not in f:
        w.fail(stmt.keyword, "Route must have a destination")
        return None
    _protocol(rep, stmt, block, f, protocol, "Route")
    if f.get("type", "unicast") != "unicast" and ("via" in f or "dev" in f):
        w.fail(stmt.keyword, f"a {f['type']} route takes no 'via' or 'dev'")
        return None
    return Route(text=_text(stmt), **f)


def parse_rule(rep: Reporter, stmt: Stmt, block: str) -> Rule | None:
    """One line of a rules block; None (with an error) if pyvrrpd cannot install it."""
    w = _Words(rep, stmt, block)
    f: dict[str, Any] = {}
    protocol: int | None = None
    tables = _names("/etc/iproute2/rt_tables", _BUILTIN_TABLES)
    while w.more() and w.ok:
        key = w.take()
        word = key.text
        if word in ("from", "to"):
            val = w.value(key)
            if val is not None and (net := _prefix(val.text)) is not None:
                f["src" if word == "from" else "dst"] = None if net.prefixlen == 0 else net
            elif val is not None:
                w.fail(val, f"invalid rule {word} address {val.text} (an IPv4 prefix or all)")
        elif word in ("table", "lookup"):
            bad = "Routing table {} not found for rule"
            if (n := w.number(key, tables, 2**32 - 1, bad)) is not None:
                f["table"] = n
        elif word in ("priority", "preference", "order", "pref"):
            bad = "invalid rule preference {}"
            if (n := w.number(key, {}, 2**32 - 1, bad)) is not None:
                f["priority"] = n
        elif word in ("iif", "dev", "oif"):
            if (val := w.value(key)) is not None:
                f["oif" if word == "oif" else "iif"] = val.text
        elif word == "fwmark":
            val = w.value(key)
            if val is not None:
                mark, _, mask = val.text.partition("/")
                m = _number(mark, {}, 2**32 - 1)
                k = _number(mask, {}, 2**32 - 1) if mask else None
                if m is None or (mask and k is None):
                    w.fail(val, f"invalid fwmark {val.text}")
                else:
                    f["fwmark"], f["fwmask"] = m, k
        elif word == "protocol":
            protos = _names("/etc/iproute2/rt_protos", _BUILTIN_PROTOS)
            if (n := w.number(key, protos, 255, "Invalid protocol {}")) is not None:
                protocol = n
        elif word == "no_track":
            f["no_track"] = True
        elif word in _RULE_REFUSED:
            w.fail(key, f"rule option '{word}' is not supported by pyvrrpd")
        else:
            w.fail(key, f"unknown rule keyword '{word}'")
    if not w.ok:
        return None
    if "table" not in f:
        w.fail(stmt.keyword, "a rule needs 'table ID' (other rule actions are not supported)")
        return None
    _protocol(rep, stmt, block, f, protocol, "Rule")
    return Rule(text=_text(stmt), **f)


def read_block(
    rep: Reporter,
    stmt: Stmt,
    body: Cursor,
    parse: Callable[[Reporter, Stmt, str], Any],
    out: list[Any],
) -> None:
    """A `{ ... }` of one item per line into `out`."""
    block = stmt.keyword.text
    for s in line_block(rep, stmt, body):
        item = parse(rep, s, block)
        if item is not None:
            out.append(item)


# -- handlers ---------------------------------------------------------------


def read_virtual_routes(rep: Reporter, d: Any, stmt: Stmt, body: Cursor) -> None:
    read_block(rep, stmt, body, parse_route, d.virtual_routes)


def read_virtual_rules(rep: Reporter, d: Any, stmt: Stmt, body: Cursor) -> None:
    read_block(rep, stmt, body, parse_rule, d.virtual_rules)


INSTANCE_HANDLERS = {
    "virtual_routes": read_virtual_routes,
    "virtual_rules": read_virtual_rules,
}
TOP_KEYWORDS = frozenset({"static_ipaddress", "static_routes", "static_rules"})


def _static_vip(rep: Reporter, stmt: Stmt, block: str) -> VirtualIP | None:
    vip = parse_vip(rep, stmt, block)
    if vip is not None and vip.dev is None:
        # keepalived: a static address has no instance to take an interface from.
        rep.error(stmt.keyword, f"{block}: {vip} needs 'dev IF'")
        return None
    return vip


def read_top(rep: Reporter, stmt: Stmt, top: Cursor, values: dict[str, list[Any]]) -> None:
    """A top-level static_* block into `values[keyword]` (appending: blocks may repeat)."""
    word = stmt.keyword.text
    parse: Callable[[Reporter, Stmt, str], Any] = {
        "static_ipaddress": _static_vip,
        "static_routes": parse_route,
        "static_rules": parse_rule,
    }[word]
    read_block(rep, stmt, top, parse, values.setdefault(word, []))
