"""`vrrp_track_process NAME { }` and the `track_process { }` references to it.

Owns (keepalived.md 1.5; keepalived 2.2.7 vrrp_parser.c `vrrp_tprocess_*`
handlers, vrrp_data.c `alloc_vrrp_process()`, vrrp_track.c
`alloc_track_process()`, man5 "VRRP track processes"):

- the top-level block: `process NAME [PARAM ...]`, `param_match
  [initial|partial]`, `full_command`, `weight -254..254 [reverse]`,
  `quorum 1..65535` (default 1), `quorum_max 0..65535` (default unlimited),
  `delay`, `fork_delay`, `terminate_delay` (0.000001..3600 s, default 0);
- the entries `NAME [weight W [reverse|noreverse]]` of an instance's or a
  sync group's `track_process { }` block, checked against the blocks once
  the whole file has been read (keepalived does not care about block order);
- what a sync group does to them (the track_script rules of
  config/syncgroup.py, applied to processes), in `resolve`, a pass after
  the instances and groups are built (as config/trackhttp.py does).

keepalived reports bad values and ignores the line; pyvrrpd reports them as
errors (a tracker silently weaker than written is worse than a refused
start). Must not: look at /proc (pyvrrpd.trackers.process does).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .groupmerge import add_group_refs, drop_weighted
from .keywords import unknown_keyword
from .lexer import Stmt, Token
from .model import TrackProcessRef, VrrpTrackProcess
from .trackref import Positional, RefDraft, checked_weight
from .values import Cursor, Reporter, extra_args, line_block, need_arg, parse_decimal, parse_int

if TYPE_CHECKING:
    from .instance import InstanceDraft
    from .model import SyncGroup, VrrpInstance
    from .syncgroup import SyncGroupDraft

TOP_KEYWORD = "vrrp_track_process"
WEIGHT_MAX = 254  # keepalived: read_int_strvec(..., -254, 254)
QUORUM_MAX = 65535
DELAY_MIN = 0.000001  # keepalived: read_decimal_unsigned_strvec(1 µs .. 3600 s)
DELAY_MAX = 3600.0
COMM_LEN = 15  # TASK_COMM_LEN - 1: /proc/PID/comm holds at most 15 characters
PRIO_OWNER = 255
KEYWORDS = frozenset(
    {
        "process",
        "param_match",
        "weight",
        "quorum",
        "quorum_max",
        "delay",
        "fork_delay",
        "terminate_delay",
        "full_command",
    }
)


@dataclass(slots=True)
class _Block:
    name: Token
    process: str | None = None
    params: tuple[str, ...] = ()
    param_match: str | None = None
    full_command: bool = False
    weight: int = 0
    weight_tok: Token | None = None
    reverse: bool = False
    quorum: int = 1
    quorum_max: int | None = None
    fork_delay: float = 0.0
    terminate_delay: float = 0.0


# ------------------------------------------------------------ the top block


def read_top(
    rep: Reporter,
    stmt: Stmt,
    top: Cursor,
    out: list[VrrpTrackProcess],
    names: dict[str, Token],
) -> None:
    """The top-level `vrrp_track_process NAME { ... }` statement into `out`."""
    name = need_arg(rep, stmt, 1, "a name")
    extra_args(rep, stmt, 1)
    body = top.block(stmt)
    if body is None or name is None:
        return
    b = _Block(name)
    for s in body.lines():
        handler = _BLOCK_HANDLERS.get(s.keyword.text)
        if handler is None:
            rep.warn(s.keyword, unknown_keyword(s.keyword.text, TOP_KEYWORD, KEYWORDS))
            continue
        handler(rep, b, s)
    if b.process is None:
        # keepalived: "track process '%s' process name not specified"
        rep.error(name, f"track process '{name.text}' process name not specified")
        return
    if name.text in names:
        first = names[name.text].loc
        rep.error(name, f"duplicate vrrp_track_process '{name.text}' (first defined at {first})")
        return
    names[name.text] = name
    process = b.process
    if not b.full_command and len(process) > COMM_LEN:
        # keepalived compares the whole name with /proc/PID/comm, so it never
        # matches; pgrep-like, we compare the 15 characters the kernel keeps.
        rep.warn(
            name,
            f"vrrp_track_process {name.text}: process name '{process}' is longer than"
            f" {COMM_LEN} characters; matched against /proc/PID/comm, which keeps only the"
            f" first {COMM_LEN} (keepalived never matches it; consider full_command)",
        )
    out.append(
        VrrpTrackProcess(
            name=name.text,
            process=process,
            params=b.params,
            param_match=b.param_match,
            full_command=b.full_command,
            weight=b.weight,
            weight_reverse=b.reverse,
            quorum=b.quorum,
            quorum_max=b.quorum_max,
            fork_delay=b.fork_delay,
            terminate_delay=b.terminate_delay,
            loc=name.loc,
        )
    )


def _process(rep: Reporter, b: _Block, s: Stmt) -> None:
    tok = need_arg(rep, s, 1, "a process name [parameters]")
    if tok is None:
        return
    if b.process is not None:
        rep.error(
            tok,
            f"Process already set for track process {b.name.text} - ignoring {tok.text}",
        )
        return
    b.process = tok.text
    if len(s.tokens) > 2:
        # keepalived: parameters imply an exact match of the command line.
        b.params = tuple(t.text for t in s.tokens[2:])
        if b.param_match is None:
            b.param_match = "exact"
        b.full_command = True


def _param_match(rep: Reporter, b: _Block, s: Stmt) -> None:
    extra_args(rep, s, 1)
    if len(s.tokens) == 1:
        # No parameters written + bare param_match: the command must have none.
        b.param_match = "exact"
    elif s.tokens[1].text in ("initial", "partial"):
        b.param_match = s.tokens[1].text
    else:
        rep.error(s.tokens[1], f"Invalid param_match type {s.tokens[1].text} (initial|partial)")
        return
    b.full_command = True


def _weight(rep: Reporter, b: _Block, s: Stmt) -> None:
    pname = b.name.text
    if len(s.tokens) < 2:
        rep.error(s.keyword, f"No weight specified for track process {pname}")
        return
    if b.weight_tok is not None:
        rep.error(s.tokens[1], f"Weight already set for track process {pname} - ignoring")
        return
    tok = s.tokens[1]
    value = parse_int(tok.text)
    if value is None or not -WEIGHT_MAX <= value <= WEIGHT_MAX:
        rep.error(
            tok,
            f"Weight ({tok.text}) for vrrp_track_process {pname} must be between"
            f" [-{WEIGHT_MAX}..{WEIGHT_MAX}] inclusive",
        )
        return
    if len(s.tokens) > 2:
        if s.tokens[2].text == "reverse":
            b.reverse = True
        else:
            rep.error(
                s.tokens[2],
                f"vrrp_track_process {pname} unknown weight option {s.tokens[2].text}",
            )
            return
        extra_args(rep, s, 2)
    b.weight, b.weight_tok = value, tok


def _unsigned(rep: Reporter, b: _Block, s: Stmt, lo: int, what: str) -> int | None:
    tok = need_arg(rep, s, 1, f"an integer {lo}..{QUORUM_MAX}")
    if tok is None:
        return None
    extra_args(rep, s, 1)
    value = parse_int(tok.text)
    if value is None or not lo <= value <= QUORUM_MAX:
        rep.error(
            tok,
            f"{what} ({tok.text}) for vrrp_track_process {b.name.text} must be between"
            f" [{lo}..{QUORUM_MAX}] inclusive",
        )
        return None
    return value


def _quorum(rep: Reporter, b: _Block, s: Stmt) -> None:
    value = _unsigned(rep, b, s, 1, "Quorum")
    if value is None:
        return
    if b.quorum_max is not None and value > b.quorum_max:
        rep.error(s.tokens[1], "Quorum is greater than quorum_max")
        return
    b.quorum = value


def _quorum_max(rep: Reporter, b: _Block, s: Stmt) -> None:
    value = _unsigned(rep, b, s, 0, "quorum_max")
    if value is None:
        return
    # keepalived: quorum_max 0 (the process must NOT run) is allowed when no
    # quorum above 1 was written, and then sets the quorum to 0.
    if (value or b.quorum > 1) and value < b.quorum:
        rep.error(s.tokens[1], "quorum_max is less than quorum")
        return
    b.quorum_max = value
    if value == 0:
        b.quorum = 0
    elif b.quorum == 0:
        b.quorum = 1


def _delay(rep: Reporter, b: _Block, s: Stmt) -> None:
    word = s.keyword.text
    tok = need_arg(rep, s, 1, "seconds 0.000001..3600")
    if tok is None:
        return
    extra_args(rep, s, 1)
    value = parse_decimal(tok.text)
    if value is None or not DELAY_MIN <= value <= DELAY_MAX:
        rep.error(
            tok,
            f"{word} ({tok.text}) for vrrp_track_process {b.name.text} must be between"
            " [0.000001..3600] inclusive",
        )
        return
    if word != "fork_delay":
        b.terminate_delay = value
    if word != "terminate_delay":
        b.fork_delay = value


def _full_command(rep: Reporter, b: _Block, s: Stmt) -> None:
    extra_args(rep, s, 0)
    b.full_command = True


_BLOCK_HANDLERS = {
    "process": _process,
    "param_match": _param_match,
    "weight": _weight,
    "quorum": _quorum,
    "quorum_max": _quorum_max,
    "delay": _delay,
    "fork_delay": _delay,
    "terminate_delay": _delay,
    "full_command": _full_command,
}


# ------------------------------------------------- track_process { } entries


def _track_process(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: Cursor) -> None:
    """`track_process { NAME [weight W [reverse|noreverse]] ... }` (vrrp_track.c)."""
    _ENTRY.read_block(rep, line_block(rep, stmt, body), d.track_process)


# keepalived drops an entry not starting `weight` ("unknown track process
# option") and ignores a bad word after the weight.
_ENTRY = Positional(
    kind="track_process",
    span="-254..254",
    weight=checked_weight(
        WEIGHT_MAX,
        lambda name, word: (
            f"weight for track process {name} must be in [-254..254] inclusive, got '{word}'"
        ),
    ),
    options=("reverse", "noreverse"),
    bad_option=lambda name, word: f"unknown track_process {name} weight option {word}; ignored",
)


INSTANCE_HANDLERS = {"track_process": _track_process}


def resolve_refs(
    rep: Reporter, owner: str, refs: list[RefDraft], blocks: tuple[VrrpTrackProcess, ...]
) -> tuple[TrackProcessRef, ...]:
    """An instance's (or group's) entries that name a defined block.

    keepalived: "(%s) track process %s not found, ignoring..." (a config
    error for `keepalived -t`, the entry dropped at run time). Like an
    unknown track_script, a warning here.
    """
    known = {p.name for p in blocks}
    out: list[TrackProcessRef] = []
    for ref in refs:
        if ref.name.text not in known:
            rep.warn(
                ref.name,
                f"({owner}) track process {ref.name.text} not found (no vrrp_track_process"
                " of that name); ignored",
            )
            continue
        out.append(TrackProcessRef(ref.name.text, ref.weight, ref.reverse))
    return tuple(out)


def weight_of(ref: TrackProcessRef, blocks: tuple[VrrpTrackProcess, ...]) -> int:
    """The weight an entry applies: its own, else its block's."""
    if ref.weight is not None:
        return ref.weight
    return next((p.weight for p in blocks if p.name == ref.name), 0)


# ---------------------------------------------------------------- sync groups


def resolve(
    rep: Reporter,
    blocks: tuple[VrrpTrackProcess, ...],
    drafts: list[InstanceDraft],
    sync_drafts: list[SyncGroupDraft],
    instances: tuple[VrrpInstance, ...],
    groups: tuple[SyncGroup, ...],
) -> tuple[tuple[VrrpInstance, ...], tuple[SyncGroup, ...]]:
    """Instances and groups with their track_process entries checked and merged."""
    own: dict[str, tuple[TrackProcessRef, ...]] = {}
    for d in drafts:
        if d.name.text not in own:
            own[d.name.text] = resolve_refs(rep, d.name.text, d.track_process, blocks)
    by_name = {i.name: i for i in instances}
    by_group = {g.name: g for g in groups}
    group_of: dict[str, tuple[SyncGroup, Token]] = {}
    for gd in sync_drafts:
        group = by_group.get(gd.name.text)
        if group is None or gd.scratch is None or group.loc != gd.name.loc:
            continue
        has_owner = any(by_name[m].priority == PRIO_OWNER for m in group.members if m in by_name)
        refs = _group_refs(rep, gd.name, gd.scratch.track_process, blocks, has_owner)
        by_group[group.name] = group = replace(group, track_process=refs)
        for m in group.members:
            group_of[m] = (group, gd.name)
    out = []
    for inst in instances:
        inst = replace(inst, track_process=own.get(inst.name, ()))
        if inst.name in group_of:
            group, at = group_of[inst.name]
            inst = _apply_group(rep, group, inst, blocks, at)
        out.append(inst)
    return tuple(out), tuple(by_group[g.name] for g in groups)


def _group_refs(
    rep: Reporter,
    gname: Token,
    refs: list[RefDraft],
    blocks: tuple[VrrpTrackProcess, ...],
    has_owner: bool,
) -> tuple[TrackProcessRef, ...]:
    """A group's entries; weights cleared when a member owns the address (vrrp.c)."""
    out: list[TrackProcessRef] = []
    for ref in resolve_refs(rep, gname.text, refs, blocks):
        if has_owner and weight_of(ref, blocks):
            rep.warn(
                gname,
                f"({gname.text}) Cannot have weighted track process '{ref.name}' with"
                f" member having priority {PRIO_OWNER} - setting weight 0",
            )
            ref = replace(ref, weight=0)
        out.append(ref)
    return tuple(out)


def _apply_group(
    rep: Reporter,
    group: SyncGroup,
    inst: VrrpInstance,
    blocks: tuple[VrrpTrackProcess, ...],
    at: Token,
) -> VrrpInstance:
    """A member's track_process entries as its group makes them.

    The track_script rules of config/syncgroup.py: without
    sync_group_tracking_weight a member's weighted entries are dropped (man5:
    "unless sync_group_tracking_weight is set on the group weight 0 must be
    set"); the group's entries are added; one on both keeps the member's
    unweighted entry, else takes the group's (vrrp.c add_vrrp_to_track_process).
    """
    name = inst.name
    refs = list(inst.track_process)

    def weight(ref: TrackProcessRef) -> int:
        return weight_of(ref, blocks)

    if not group.tracking_weight:
        refs = drop_weighted(
            rep,
            at,
            refs,
            weight,
            lambda ref: (
                f"({name}) ignoring tracked process {ref.name} with weights due to SYNC group"
            ),
        )
    refs = add_group_refs(
        rep,
        at,
        refs,
        group.track_process,
        weight,
        lambda gref: (
            f"({name}) track_process {gref.name} is configured on VRRP instance and sync"
            " group. Remove vrrp instance config"
        ),
        silent=True,  # keepalived only logs this one
    )
    return replace(inst, track_process=tuple(refs))


__all__ = [
    "INSTANCE_HANDLERS",
    "KEYWORDS",
    "TOP_KEYWORD",
    "read_top",
    "resolve",
    "resolve_refs",
    "weight_of",
]
