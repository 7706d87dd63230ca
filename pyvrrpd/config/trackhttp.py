"""`vrrp_track_http NAME { }` and `track_http { }`: pyvrrpd's HAProxy health probe.

Owns: reading the top-level block (pyvrrpd-only; keepalived 2.2.7 does not
know it and its `-t` says "Unknown keyword 'vrrp_track_http'"), the
`track_http { NAME [weight W [reverse|noreverse]] }` references of a
vrrp_instance or a vrrp_sync_group, and resolving them onto the instances
(a group's references go to every member the way config/syncgroup.py does
it for track_script, keepalived vrrp.c `sync_group_tracking_init()`).

    vrrp_track_http NAME {
        url http://127.0.0.1:8081/healthz   # or: stats_socket /run/haproxy/admin.sock
        expect 200        # status code that means healthy (url only)
        interval 0.5      # seconds between probe starts
        timeout 0.5       # whole probe; default min(interval, 1)
        rise 2            # keepalived vrrp_script's rise/fall counter
        fall 2
        weight 0 [reverse]
    }

Defaults are for fast HAProxy failover: a local HAProxy answers its
monitor-uri in well under a millisecond, so half a second without an
answer is a hung HAProxy, not a slow one; fall 2 keeps one lost probe (a
reload handing its listeners over) from moving the VIP; rise 2 keeps a
flapping HAProxy from getting it back on one lucky answer. A hung HAProxy is
then down within fall x interval + timeout (1.5 s), a refused connection
within fall x interval (1 s).

Every `vrrp_track_http` and `track_http` statement gets a warning that the
config is pyvrrpd-only; it is marked keepalived-silent so `pyvrrpd
check-config` and our `keepalived -t` still exit 0 (pyvrrpd runs it).
Must not: look at the host (resolve names, stat the socket) or probe.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

from .groupmerge import add_group_refs, drop_weighted
from .lexer import Stmt, Token
from .model import Diagnostic, Severity, SyncGroup, TrackHttp, TrackHttpRef, VrrpInstance
from .trackref import RefDraft, read_words_block
from .values import (
    Cursor,
    Reporter,
    decimal_value,
    extra_args,
    int_value,
    line_block,
    need_arg,
    str_value,
)

if TYPE_CHECKING:
    from .instance import InstanceDraft
    from .syncgroup import SyncGroupDraft

TOP_KEYWORD = "vrrp_track_http"
BLOCK_KEYWORDS = frozenset(
    {"url", "stats_socket", "expect", "interval", "timeout", "rise", "fall", "weight"}
)
WEIGHT_MAX = 253
INTERVAL_MIN = 0.05  # 20 probes a second is plenty for a local HAProxy
TIMER_MAX = 4294.0
DEFAULT_INTERVAL = 0.5
DEFAULT_TIMEOUT_CAP = 1.0
DEFAULT_RISE_FALL = 2
PRIO_OWNER = 255
_HOSTNAME = re.compile(r"(?=.{1,253}\Z)[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9-]{1,63})*\Z")
URL_HELP = (
    "http://HOST[:PORT][/PATH] with HOST an IP address or a name this host resolves"
    " (/etc/hosts); plain HTTP only, no https"
)


def pyvrrpd_only(rep: Reporter, at: Token) -> None:
    """The note that keepalived 2.2.7 does not know `at` (exit code unchanged)."""
    rep.diagnostics.append(
        Diagnostic(
            Severity.WARNING,
            at.loc,
            f"'{at.text}' is pyvrrpd-only: keepalived 2.2.7 does not know it (its -t reports"
            f" \"Unknown keyword '{at.text}'\"); this config runs on pyvrrpd only",
            at.source_line,
            keepalived_silent=True,
        )
    )


@dataclass(slots=True)
class Blocks:
    """The vrrp_track_http blocks read so far (the parser holds one)."""

    blocks: list[TrackHttp] = field(default_factory=list)
    names: dict[str, Token] = field(default_factory=dict)

    def model(self) -> tuple[TrackHttp, ...]:
        return tuple(self.blocks)


# ------------------------------------------------------------------ top level


def read_top(rep: Reporter, stmt: Stmt, top: Cursor, into: Blocks) -> None:
    """The top-level `vrrp_track_http NAME { ... }` statement."""
    pyvrrpd_only(rep, stmt.keyword)
    name = need_arg(rep, stmt, 1, "a name")
    extra_args(rep, stmt, 1)
    body = top.block(stmt)
    if body is None or name is None:
        return
    fields: dict[str, object] = {}
    where: dict[str, Token] = {}
    for s in body.lines():
        word = s.keyword.text
        if word not in BLOCK_KEYWORDS:
            rep.warn(s.keyword, _unknown(word))
            continue
        where[word] = s.keyword
        _block_keyword(rep, s, fields)
    if name.text in into.names:
        first = into.names[name.text].loc
        rep.error(name, f"duplicate vrrp_track_http '{name.text}' (first defined at {first})")
        return
    into.names[name.text] = name
    has_url, has_sock = "url" in where, "stats_socket" in where
    if has_url == has_sock:
        at = where["stats_socket"] if has_sock else name
        rep.error(
            at,
            f"vrrp_track_http {name.text} needs exactly one of 'url' and 'stats_socket'",
        )
        return
    if has_sock and "expect" in where:
        rep.warn(where["expect"], "expect applies to 'url' only; ignored with stats_socket")
        fields.pop("expect", None)
    if "url" not in fields and "stats_socket" not in fields:
        return  # its value was bad: already reported
    interval = float(fields.get("interval", DEFAULT_INTERVAL))  # type: ignore[arg-type]
    fields.setdefault("timeout", min(interval, DEFAULT_TIMEOUT_CAP))
    into.blocks.append(TrackHttp(name.text, loc=name.loc, **fields))  # type: ignore[arg-type]


def _unknown(word: str) -> str:
    close = difflib.get_close_matches(word, sorted(BLOCK_KEYWORDS), n=1, cutoff=0.75)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown keyword '{word}' in vrrp_track_http{hint}"


def _block_keyword(rep: Reporter, s: Stmt, fields: dict[str, object]) -> None:
    word = s.keyword.text
    if word == "url":
        text = str_value(rep, s, URL_HELP)
        if text is not None:
            parts = split_url(text)
            if isinstance(parts, str):
                rep.error(s.tokens[1], f"url {parts}: must be {URL_HELP}, got '{text}'")
            else:
                fields["url"] = text
                fields["host"], fields["port"], fields["path"] = parts
    elif word == "stats_socket":
        path = str_value(rep, s, "the path of HAProxy's stats socket")
        if path is not None and not path.startswith("/"):
            rep.error(s.tokens[1], f"stats_socket must be an absolute path, got '{path}'")
        elif path is not None:
            fields["stats_socket"] = path
    elif word == "expect":
        code = int_value(rep, s, 100, 599, what="expect (an HTTP status code)")
        if code is not None:
            fields["expect"] = code
    elif word in ("interval", "timeout"):
        lo = INTERVAL_MIN if word == "interval" else 0.001
        value = decimal_value(rep, s, lo, TIMER_MAX, " (seconds)")
        if value is not None:
            fields[word] = value
    elif word in ("rise", "fall"):
        count = int_value(rep, s, 1, 2**31 - 1)
        if count is not None:
            fields[word] = count
    elif word == "weight":
        value = int_value(rep, s, -WEIGHT_MAX, WEIGHT_MAX, check_extra=False)
        if len(s.tokens) > 2:
            tok = s.tokens[2]
            if tok.text in ("reverse", "noreverse"):
                fields["reverse"] = tok.text == "reverse"
                extra_args(rep, s, 2)
            else:
                rep.warn(tok, f"expected 'reverse' after the weight, got '{tok.text}'; ignored")
        if value is not None:
            fields["weight"] = value


def split_url(text: str) -> tuple[str, int, str] | str:
    """(host, port, path) of an http:// URL, or what is wrong with it."""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return "has a bad port or address"
    if parts.scheme == "https":
        return "uses https (the probe speaks plain HTTP to the local HAProxy)"
    if parts.scheme != "http":
        return "is not http://"
    if parts.username is not None or parts.password is not None:
        return "carries a user name (no authentication is sent)"
    host = parts.hostname or ""
    if not host:
        return "has no host"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.match(host):
            return "has a host that is neither an IP address nor a host name"
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return host, port or 80, path


# ----------------------------------------------------------- track_http refs


def _track_http(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: Cursor) -> None:
    """`track_http { NAME [weight W] [reverse|noreverse] }` of an instance or group."""
    pyvrrpd_only(rep, stmt.keyword)
    read_words_block(rep, line_block(rep, stmt, body), d.track_http, "track_http", WEIGHT_MAX)


INSTANCE_HANDLERS = {"track_http": _track_http}


# ---------------------------------------------------------------- resolution


def resolve(
    rep: Reporter,
    blocks: Blocks,
    drafts: list[InstanceDraft],
    sync_drafts: list[SyncGroupDraft],
    instances: tuple[VrrpInstance, ...],
    groups: tuple[SyncGroup, ...],
) -> tuple[tuple[VrrpInstance, ...], tuple[SyncGroup, ...]]:
    """Instances and groups with their track_http references checked and applied.

    An unknown name is an error (not keepalived's "ignored" for a missing
    vrrp_script: this keyword has no keepalived behaviour to match, and a
    typo would silently leave HAProxy untracked).
    """
    weights = {b.name: b.weight for b in blocks.blocks}
    own: dict[str, list[TrackHttpRef]] = {}
    for d in drafts:
        own.setdefault(d.name.text, _refs(rep, d.track_http, weights, None))
    by_name = {i.name: i for i in instances}
    by_group = {g.name: g for g in groups}
    group_of: dict[str, tuple[SyncGroup, list[TrackHttpRef], Token]] = {}
    for gd in sync_drafts:
        group = by_group.get(gd.name.text)
        if group is None or gd.scratch is None or group.loc != gd.name.loc:
            continue
        has_owner = any(by_name[m].priority == PRIO_OWNER for m in group.members if m in by_name)
        refs = _refs(rep, gd.scratch.track_http, weights, gd.name.text if has_owner else None)
        by_group[group.name] = group = _with_refs(group, refs)
        for m in group.members:
            group_of[m] = (group, refs, gd.name)
    out = []
    for inst in instances:
        refs = own.get(inst.name, [])
        if inst.name in group_of:
            group, grefs, at = group_of[inst.name]
            refs = _merge(rep, inst.name, refs, grefs, group.tracking_weight, weights, at)
        out.append(_with_refs(inst, refs) if refs else inst)
    return tuple(out), tuple(by_group[g.name] for g in groups)


_T = TypeVar("_T", VrrpInstance, SyncGroup)


def _with_refs(obj: _T, refs: list[TrackHttpRef]) -> _T:
    return replace(obj, track_http=tuple(refs))


def _refs(
    rep: Reporter, drafts: list[RefDraft], weights: dict[str, int], owner_group: str | None
) -> list[TrackHttpRef]:
    out = []
    for r in drafts:
        if r.name.text not in weights:
            rep.error(r.name, f"track_http '{r.name.text}' is not a defined vrrp_track_http")
            continue
        weight = r.weight
        if owner_group is not None and (weights[r.name.text] if weight is None else weight):
            rep.warn(
                r.name,
                f"({owner_group}) cannot have weighted track_http '{r.name.text}' with a"
                f" member having priority {PRIO_OWNER} - clearing weight",
            )
            weight = 0
        out.append(TrackHttpRef(r.name.text, weight, r.reverse))
    return out


def _merge(
    rep: Reporter,
    name: str,
    mine: list[TrackHttpRef],
    group: list[TrackHttpRef],
    tracking_weight: bool,
    weights: dict[str, int],
    at: Token,
) -> list[TrackHttpRef]:
    """A member's refs under its group: track_script's rules (config/syncgroup.py)."""

    def weight_of(ref: TrackHttpRef) -> int:
        return weights.get(ref.name, 0) if ref.weight is None else ref.weight

    refs = list(mine)
    if not tracking_weight:
        refs = drop_weighted(
            rep,
            at,
            refs,
            weight_of,
            lambda ref: f"({name}) ignoring track_http {ref.name} with weights due to SYNC group",
        )
    return add_group_refs(
        rep,
        at,
        refs,
        group,
        weight_of,
        lambda gref: (
            f"({name}) track_http {gref.name} is configured on VRRP instance and sync"
            " group. Remove vrrp instance or sync group config"
        ),
        silent=False,
    )


__all__ = [
    "INSTANCE_HANDLERS",
    "TOP_KEYWORD",
    "Blocks",
    "read_top",
    "resolve",
    "split_url",
]
