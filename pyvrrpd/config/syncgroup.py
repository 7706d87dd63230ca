"""`vrrp_sync_group NAME { }`: reading the block and applying it to its members.

Owns (keepalived.md 1.7; keepalived 2.2.7 vrrp_parser.c sync-group handlers,
vrrp_sync.c `vrrp_sync_set_group()`, vrrp.c `sync_group_tracking_init()`):

- the block: `group { INST ... }`, `track_script { }`, `track_interface { }`,
  `notify_master|backup|fault|stop`, `notify`, `smtp_alert`,
  `notify_priority_changes`, `sync_group_tracking_weight` and the deprecated
  `global_tracking`; `track_file { }` (read and merged into the members by
  config/trackfile.py). `track_process` and `track_bfd` are refused
  here as in a vrrp_instance (pyvrrpd does not do them yet);
- the cross-checks: a member must exist and be in one group only, a group
  needs members (keepalived's "Sync group X has only 1 virtual router(s)" is
  a warning);
- what the group does to its members' configuration: weights on a member's
  own trackers are ignored unless `sync_group_tracking_weight` is set
  (keepalived drops a weighted track_script and turns a weighted
  track_interface into weight 0, each with a message); the group's trackers
  are added to every member with their weights (a member that is an address
  owner clears them); the group's notify_priority_changes overrides the
  members'.

Group-level trackers become member trackers here, so the daemon runs and
applies them like any other; the daemon's sync coordinator
(pyvrrpd.core.syncgroup) then moves the members together.
Must not: look at the host.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from . import keywords
from .groupmerge import add_group_refs, drop_weighted
from .instance import InstanceDraft, _track_script
from .keywords import unknown_keyword
from .lexer import Stmt, Token
from .model import (
    SyncGroup,
    TrackInterface,
    TrackScriptRef,
    VrrpInstance,
    VrrpScript,
)
from .notify import read_instance_keyword as _notify
from .trackfile import INSTANCE_HANDLERS as TRACKFILE_HANDLERS
from .trackhttp import INSTANCE_HANDLERS as TRACKHTTP_HANDLERS
from .tracking import INSTANCE_HANDLERS as TRACKING_HANDLERS
from .trackprocess import INSTANCE_HANDLERS as TRACKPROCESS_HANDLERS
from .values import Cursor, Reporter, extra_args, flag, need_arg

PRIO_OWNER = 255

# keepalived 2.2.7 installs these under vrrp_sync_group (vrrp_parser.c ~2090-2110).
NOTIFY_WORDS = frozenset(
    {"notify_master", "notify_backup", "notify_fault", "notify_stop", "notify", "smtp_alert"}
)
REFUSED_WORDS = frozenset({"track_bfd"})
KEYWORDS = frozenset(
    {
        "group",
        "track_script",
        "track_interface",
        "notify_priority_changes",
        "sync_group_tracking_weight",
        "global_tracking",
        "track_http",
        "track_file",
        "track_process",
        *NOTIFY_WORDS,
        *REFUSED_WORDS,
    }
)


@dataclass(slots=True)
class SyncGroupDraft:
    """What one vrrp_sync_group block wrote, unresolved."""

    name: Token
    members: list[Token] = field(default_factory=list)
    group_tok: Token | None = None
    tracking_weight: bool = False
    # The notify and tracker readers of vrrp_instance fill this scratch draft.
    scratch: InstanceDraft | None = None


def read_top(rep: Reporter, stmt: Stmt, top: Cursor, drafts: list[SyncGroupDraft]) -> None:
    """The top-level `vrrp_sync_group NAME { ... }` statement."""
    name = need_arg(rep, stmt, 1, "a name")
    extra_args(rep, stmt, 1)
    body = top.block(stmt)
    if body is None or name is None:
        return
    d = SyncGroupDraft(name, scratch=InstanceDraft(name))
    while (s := body.next()) is not None:
        _statement(rep, d, s, body)
    drafts.append(d)


def _statement(rep: Reporter, d: SyncGroupDraft, stmt: Stmt, body: Cursor) -> None:
    kw = stmt.keyword
    word = kw.text
    scratch = d.scratch
    assert scratch is not None
    if kw.is_open:
        rep.error(kw, "unexpected '{'")
        body.pos -= 1
        body.skip_optional_block(stmt)
    elif word == "group":
        _group(rep, d, stmt, body)
    elif word == "track_script":
        _track_script(rep, scratch, stmt, body)
    elif word == "track_interface":
        TRACKING_HANDLERS["track_interface"](rep, scratch, stmt, body)
    elif word == "track_process":  # merged into the members by config/trackprocess.py
        TRACKPROCESS_HANDLERS["track_process"](rep, scratch, stmt, body)
    elif word == "track_file":  # merged into the members by config/trackfile.py
        TRACKFILE_HANDLERS["track_file"](rep, scratch, stmt, body)
    elif word == "track_http":  # pyvrrpd-only; merged by config/trackhttp.py
        TRACKHTTP_HANDLERS["track_http"](rep, scratch, stmt, body)
    elif word in NOTIFY_WORDS or word == "notify_priority_changes":
        _notify(rep, scratch, stmt, body)
    elif word == "sync_group_tracking_weight":
        d.tracking_weight = flag(rep, stmt)
    elif word == "global_tracking":
        # keepalived: deprecated synonym that also sets sync_group_tracking_weight.
        extra_args(rep, stmt, 0)
        rep.warn(
            kw,
            f"({d.name.text}) global_tracking is deprecated. Use track_interface/script/file"
            " on the sync group (sync_group_tracking_weight is set)",
        )
        d.tracking_weight = True
    elif word in REFUSED_WORDS:
        rep.error(kw, keywords.refused_message(keywords.SYNC, word))
        body.skip_optional_block(stmt)
    else:
        rep.warn(kw, unknown_keyword(word, "vrrp_sync_group", KEYWORDS))
        body.skip_optional_block(stmt)


def _group(rep: Reporter, d: SyncGroupDraft, stmt: Stmt, body: Cursor) -> None:
    extra_args(rep, stmt, 0)
    inner = body.block(stmt)
    if inner is None:
        return
    if d.group_tok is not None:
        rep.error(stmt.keyword, f"group list already specified for sync group {d.name.text}")
        return
    d.group_tok = stmt.keyword
    for s in inner.lines():
        # keepalived reads every word of the block (read_value_block): names
        # may share a line.
        d.members.extend(s.tokens)


def resolve(
    rep: Reporter,
    drafts: list[SyncGroupDraft],
    instances: tuple[VrrpInstance, ...],
    scripts: list[VrrpScript],
) -> tuple[tuple[VrrpInstance, ...], tuple[SyncGroup, ...]]:
    """Check the groups against the instances; the members updated, and the groups."""
    by_name = {i.name: i for i in instances}
    script_weight = {s.name: (s.weight, s.weight_reverse) for s in scripts}
    owner: dict[str, str] = {}  # instance -> its group
    names: dict[str, Token] = {}
    groups: list[SyncGroup] = []
    for d in drafts:
        gname = d.name.text
        if gname in names:
            rep.error(d.name, f"vrrp sync group {gname} already defined ({names[gname].loc})")
            continue
        names[gname] = d.name
        members: list[str] = []
        for tok in d.members:
            if tok.text not in by_name:
                rep.error(
                    tok,
                    f"virtual router {tok.text} specified in sync group {gname} doesn't exist",
                )
            elif tok.text in owner:
                rep.error(
                    tok,
                    f"virtual router {tok.text} cannot exist in more than one sync group"
                    f" (already in {owner[tok.text]})",
                )
            elif tok.text in members:
                rep.warn(tok, f"virtual router {tok.text} is listed twice in sync group {gname}")
            else:
                members.append(tok.text)
                owner[tok.text] = gname
        if not members:
            rep.error(d.group_tok or d.name, f"sync group {gname} has no virtual router(s)")
            continue
        if len(members) == 1:
            rep.warn(
                d.group_tok or d.name,
                f"sync group {gname} has only 1 virtual router(s) -"
                " this probably isn't what you want",
            )
        group = _group_model(rep, d, members, [by_name[m] for m in members], script_weight)
        for m in members:
            by_name[m] = _apply(rep, group, by_name[m], script_weight, d.name)
        groups.append(group)
    return tuple(by_name[i.name] for i in instances), tuple(groups)


def _group_model(
    rep: Reporter,
    d: SyncGroupDraft,
    members: list[str],
    insts: list[VrrpInstance],
    script_weight: dict[str, tuple[int, bool]],
) -> SyncGroup:
    scratch = d.scratch
    assert scratch is not None
    has_owner = any(i.priority == PRIO_OWNER for i in insts)
    tracks: list[TrackScriptRef] = []
    for ref in scratch.track:
        if ref.name.text not in script_weight:
            rep.warn(
                ref.name,
                f"({d.name.text}) track_script '{ref.name.text}' is not a defined vrrp_script;"
                " ignored",
            )
            continue
        weight = script_weight[ref.name.text][0] if ref.weight is None else ref.weight
        if has_owner and weight:
            rep.warn(
                ref.name,
                f"({d.name.text}) cannot have weighted track script '{ref.name.text}' with a"
                f" member having priority {PRIO_OWNER} - clearing weight",
            )
            ref.weight = 0
        tracks.append(TrackScriptRef(ref.name.text, ref.weight, ref.reverse))
    ifaces: list[TrackInterface] = []
    for t in scratch.tracking.interfaces:
        if has_owner and t.weight:
            rep.warn(
                d.name,
                f"({d.name.text}) cannot have weighted track interface '{t.name}' with a"
                f" member having priority {PRIO_OWNER} - clearing weight",
            )
            t = replace(t, weight=0)
        ifaces.append(t)
    return SyncGroup(
        name=d.name.text,
        members=tuple(members),
        track_script=tuple(tracks),
        track_interface=tuple(ifaces),
        notify=scratch.notify,
        tracking_weight=d.tracking_weight,
        loc=d.name.loc,
    )


def _apply(
    rep: Reporter,
    group: SyncGroup,
    inst: VrrpInstance,
    script_weight: dict[str, tuple[int, bool]],
    at: Token,
) -> VrrpInstance:
    """A member's configuration as its group makes it (vrrp.c ~3825, ~3990)."""
    name = inst.name
    scripts = list(inst.track_script)
    ifaces = list(inst.track_interface)

    def weight_of(ref: TrackScriptRef) -> int:
        return script_weight.get(ref.name, (0, False))[0] if ref.weight is None else ref.weight

    if not group.tracking_weight:
        scripts = drop_weighted(
            rep,
            at,
            scripts,
            weight_of,
            lambda ref: (
                f"({name}) ignoring tracked script {ref.name} with weights due to SYNC group"
            ),
        )
        for n, t in enumerate(ifaces):
            if t.weight:
                rep.warn(
                    at, f"({name}) ignoring {t.name} tracked interface weight due to SYNC group"
                )
                ifaces[n] = replace(t, weight=0)
    scripts = add_group_refs(
        rep,
        at,
        scripts,
        group.track_script,
        weight_of,
        lambda gref: (
            f"({name}) track_script {gref.name} is configured on VRRP instance and sync"
            " group. Remove vrrp instance config"
        ),
        silent=True,  # keepalived only logs this one (log_message)
    )
    for gif in group.track_interface:
        mine = next((n for n, t in enumerate(ifaces) if t.name == gif.name), None)
        if mine is None:
            ifaces.append(gif)
            continue
        rep.warn(
            at,
            f"({name}) track_interface {gif.name} is configured on VRRP instance and sync"
            " group. Remove vrrp instance or sync group config",
        )
        if ifaces[mine].weight:
            ifaces[mine] = gif
    notify = inst.notify
    if group.notify.priority_changes is not None:
        notify = replace(notify, priority_changes=group.notify.priority_changes)
    return replace(
        inst,
        track_script=tuple(scripts),
        track_interface=tuple(ifaces),
        notify=notify,
    )


__all__ = ["KEYWORDS", "SyncGroupDraft", "read_top", "resolve"]
