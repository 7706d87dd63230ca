"""What a vrrp_sync_group does to its members' tracker references.

Owns the two rules keepalived applies alike to track_script, track_process
and (pyvrrpd's) track_http entries, and the second to track_file (vrrp.c
`vrrp_complete_instance()`, `sync_group_tracking_init()`,
add_vrrp_to_track_*()), each kind giving its weight lookup and messages:

- `drop_weighted`: without sync_group_tracking_weight a member's weighted
  entries are dropped (man5: "unless sync_group_tracking_weight is set on
  the group weight 0 must be set");
- `add_group_refs`: the group's entries are added to a member; one on both
  keeps the member's unweighted entry, else takes the group's.

Must not: look blocks up or build the model objects (the per-kind modules
resolve references and pass `weight_of`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar

from .lexer import Token
from .values import Reporter


class _Ref(Protocol):
    @property
    def name(self) -> str: ...


_R = TypeVar("_R", bound=_Ref)


def drop_weighted(
    rep: Reporter,
    at: Token,
    refs: Iterable[_R],
    weight_of: Callable[[_R], int | None],
    message: Callable[[_R], str],
) -> list[_R]:
    """`refs` without the weighted ones, each dropped with a warning at `at`."""
    kept: list[_R] = []
    for ref in refs:
        if weight_of(ref):
            rep.warn(at, message(ref))
        else:
            kept.append(ref)
    return kept


def add_group_refs(
    rep: Reporter,
    at: Token,
    refs: Iterable[_R],
    group: Iterable[_R],
    weight_of: Callable[[_R], int | None],
    message: Callable[[_R], str],
    *,
    silent: bool,
) -> list[_R]:
    """A member's `refs` with its group's added; a name on both is warned
    about (`silent`: keepalived only logs it, its `-t` stays 0)."""
    out = list(refs)
    for gref in group:
        mine = next((n for n, r in enumerate(out) if r.name == gref.name), None)
        if mine is None:
            out.append(gref)
            continue
        if silent:
            rep.warn_silent(at, message(gref))
        else:
            rep.warn(at, message(gref))
        # keepalived keeps an unweighted instance entry, else takes the group's.
        if weight_of(out[mine]):
            out[mine] = gref
    return out


__all__ = ["add_group_refs", "drop_weighted"]
