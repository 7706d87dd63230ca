"""`track_interface`, `dont_track_primary` and keepalived's advert/timer keywords.

Owns: reading, per `vrrp_instance`, `track_interface { IF [weight W [reverse]] }`
(keepalived vrrp_track.c `alloc_track_if()`), `dont_track_primary`,
`lower_prio_no_advert [BOOL]`, `higher_prio_send_advert [BOOL]` and
`down_timer_adverts 1..100`; in `global_defs` their `vrrp_*` defaults plus
`vrrp_startup_delay SECS` and `vrrp_delay_after_boot SECS` (keepalived.md 1.3,
1.8); and resolving an instance's values (its own, else the global one).
Strict mode (config/strict.py) overrides the resolved values afterwards.
Must not: look at the host (whether a tracked interface exists is decided at
run time by pyvrrpd.trackers.interface) or read /proc/uptime (the shell
turns `vrrp_delay_after_boot` into a delay when the daemon starts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypedDict, TypeVar

from .lexer import Stmt
from .model import GlobalDefs, TrackInterface
from .trackref import Positional, coerce_weight
from .values import (
    Cursor,
    Reporter,
    bool_value,
    decimal_value,
    flag,
    int_value,
    line_block,
)

if TYPE_CHECKING:
    from .instance import InstanceDraft

# keepalived: weight -253..253; +-254 is coerced to +-253 with an error.
WEIGHT_MAX = 253
DOWN_TIMER_ADVERTS = 3  # keepalived's VRRP_DOWN_TIMER_ADVERTS (RFC 3768 6.1)
DOWN_TIMER_ADVERTS_MAX = 100
# keepalived's read_timer(TIMER_HZ / 1000, UINT_MAX): 1 ms .. about 71 minutes.
DELAY_MIN = 0.001
DELAY_MAX = 4294.0

GLOBAL_KEYWORDS = frozenset(
    {
        "vrrp_lower_prio_no_advert",
        "vrrp_higher_prio_send_advert",
        "vrrp_down_timer_adverts",
        "vrrp_startup_delay",
        "vrrp_delay_after_boot",
    }
)


@dataclass(slots=True)
class TrackingDraft:
    """What one vrrp_instance wrote; None: not written (use the global value)."""

    interfaces: list[TrackInterface] = field(default_factory=list)
    dont_track_primary: bool = False
    lower_prio_no_advert: bool | None = None
    higher_prio_send_advert: bool | None = None
    down_timer_adverts: int | None = None


class TrackingFields(TypedDict):
    """The VrrpInstance fields this module resolves (`VrrpInstance(**fields)`)."""

    track_interface: tuple[TrackInterface, ...]
    dont_track_primary: bool
    lower_prio_no_advert: bool
    higher_prio_send_advert: bool
    down_timer_adverts: int


def instance_fields(d: TrackingDraft, gd: GlobalDefs) -> TrackingFields:
    """An instance's values: its own, else the global `vrrp_*` default."""
    return TrackingFields(
        track_interface=tuple(d.interfaces),
        dont_track_primary=d.dont_track_primary,
        lower_prio_no_advert=_pick(d.lower_prio_no_advert, gd.vrrp_lower_prio_no_advert),
        higher_prio_send_advert=_pick(d.higher_prio_send_advert, gd.vrrp_higher_prio_send_advert),
        down_timer_adverts=_pick(d.down_timer_adverts, gd.vrrp_down_timer_adverts),
    )


_T = TypeVar("_T")


def _pick(own: _T | None, default: _T) -> _T:
    return default if own is None else own


# ---------------------------------------------------------------- vrrp_instance


def _track_interface(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: Cursor) -> None:
    draft = d.tracking
    for s in line_block(rep, stmt, body):
        ref = _ENTRY.read(rep, s)
        if ref is None:
            continue
        entry = TrackInterface(ref.name.text, ref.weight or 0, bool(ref.reverse))
        if any(t.name == entry.name for t in draft.interfaces):
            # keepalived: "duplicate track_interface IF - ignoring"
            rep.warn(s.keyword, f"duplicate track_interface {entry.name}; ignored")
            continue
        draft.interfaces.append(entry)


def _entry_weight(rep: Reporter, s: Stmt) -> int | None:
    weight = int_value(
        rep, s, -WEIGHT_MAX - 1, WEIGHT_MAX + 1, index=2, what="track_interface weight"
    )
    return None if weight is None else coerce_weight(rep, "track_interface", s.tokens[2], weight)


# One `IF [weight W [reverse]]` line, keepalived's alloc_track_if() rules:
# it drops an entry not starting `weight` (refused here) and knows only
# `reverse` after the weight.
_ENTRY = Positional(
    kind="track_interface",
    span="-253..253",
    weight=_entry_weight,
    options=("reverse",),
    bad_option=lambda name, word: f"expected 'reverse' after the weight, got '{word}'; ignored",
)


def _dont_track_primary(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: Cursor) -> None:
    d.tracking.dont_track_primary = flag(rep, stmt)


def _lower_prio_no_advert(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: Cursor) -> None:
    value = bool_value(rep, stmt)
    if value is not None:
        d.tracking.lower_prio_no_advert = value


def _higher_prio_send_advert(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: Cursor) -> None:
    value = bool_value(rep, stmt)
    if value is not None:
        d.tracking.higher_prio_send_advert = value


def _down_timer_adverts(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: Cursor) -> None:
    value = int_value(rep, stmt, 1, DOWN_TIMER_ADVERTS_MAX)
    if value is not None:
        d.tracking.down_timer_adverts = value


INSTANCE_HANDLERS = {
    "track_interface": _track_interface,
    "dont_track_primary": _dont_track_primary,
    "lower_prio_no_advert": _lower_prio_no_advert,
    "higher_prio_send_advert": _higher_prio_send_advert,
    "down_timer_adverts": _down_timer_adverts,
}


# ------------------------------------------------------------------ global_defs


def read_global(rep: Reporter, stmt: Stmt, g: dict[str, object]) -> None:
    """One of GLOBAL_KEYWORDS into the GlobalDefs field of the same name."""
    word = stmt.keyword.text
    value: object = None
    if word in ("vrrp_lower_prio_no_advert", "vrrp_higher_prio_send_advert"):
        value = bool_value(rep, stmt)
    elif word == "vrrp_down_timer_adverts":
        value = int_value(rep, stmt, 1, DOWN_TIMER_ADVERTS_MAX)
    elif word in ("vrrp_startup_delay", "vrrp_delay_after_boot"):
        value = decimal_value(rep, stmt, DELAY_MIN, DELAY_MAX, " (seconds)")
        if word == "vrrp_delay_after_boot":
            # keepalived 2.4.0+; 2.2.7 reports "Unknown keyword" and its -t exits 5.
            rep.warn(
                stmt.keyword,
                "vrrp_delay_after_boot is new in keepalived 2.4: keepalived 2.2.7 does not"
                " know it (a 2.2.7 peer starts without the delay)",
            )
        if value is not None and word in g:
            # keepalived keeps the largest of repeated delays.
            value = max(value, float(g[word]))  # type: ignore[arg-type]
    if value is not None:
        g[word] = value


def startup_delay(gd: GlobalDefs, uptime: float | None) -> float:
    """Seconds to hold the instances after start: vrrp_startup_delay, or what is
    left of vrrp_delay_after_boot at `uptime` (None: unknown; keepalived then
    ignores the boot delay), whichever is longer (keepalived global_parser.c)."""
    after_boot = 0.0
    if gd.vrrp_delay_after_boot and uptime is not None:
        after_boot = max(0.0, gd.vrrp_delay_after_boot - uptime)
    return max(gd.vrrp_startup_delay, after_boot)


__all__ = [
    "GLOBAL_KEYWORDS",
    "INSTANCE_HANDLERS",
    "TrackingDraft",
    "TrackingFields",
    "instance_fields",
    "read_global",
    "startup_delay",
]
