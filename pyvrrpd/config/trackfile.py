"""`track_file NAME { }` (and the deprecated `vrrp_track_file`) and the references to it.

Owns (keepalived.md 1.6; keepalived trackers/track_file.c, vrrp.c
`vrrp_complete_instance()` and `sync_group_tracking_init()`):

- the top-level block: `file "PATH"`, `weight W [reverse]` (default 1,
  -254..254), `init_file [VALUE] [overwrite]`;
- `track_file { NAME [weight W [reverse|noreverse]] }` in a vrrp_instance and
  in a vrrp_sync_group (the sync group's reader calls this module's handler
  on its scratch draft);
- resolving the references once the whole file is read: weights and reverse
  made explicit, keepalived's rules for sync-group members and address owners
  (a member's own weight-1 file becomes weight 0, other weights are dropped,
  unless `sync_group_tracking_weight`; an owner's group gets weight 0), and a
  group's files added to every member.

Where keepalived drops a broken block or reference with a logged error (the
instance then silently runs untracked), pyvrrpd refuses the configuration.
Must not: look at the host. Whether the directory exists, the initial write
of `init_file` and the watching are run-time work (pyvrrpd.trackers.file), so
`pyvrrpd check-config` / `keepalived -t` never write a file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .groupmerge import add_group_refs
from .keywords import unknown_keyword
from .lexer import Stmt, Token
from .model import (
    SyncGroup,
    TrackFile,
    TrackFileRef,
    VrrpInstance,
)
from .trackref import Positional, RefDraft, checked_weight
from .values import Cursor, Reporter, extra_args, line_block, need_arg, parse_int

if TYPE_CHECKING:
    from .instance import InstanceDraft
    from .syncgroup import SyncGroupDraft

TOP_KEYWORDS = frozenset({"track_file", "vrrp_track_file"})
BLOCK_KEYWORDS = frozenset({"file", "weight", "init_file"})
WEIGHT_MIN, WEIGHT_MAX = -254, 254  # keepalived's read_int_strvec(..., -254, 254)
DEFAULT_WEIGHT = 1  # keepalived track_file_handler(): weight = 1
INIT_SENSIBLE = 254  # keepalived warns outside -254..254 but keeps the value
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
PRIO_OWNER = 255  # RFC 3768 5.3.4


@dataclass(slots=True)
class TrackFileDraft:
    """What one track_file block wrote, unresolved."""

    name: Token
    path: str | None = None
    path_tok: Token | None = None
    weight: int = DEFAULT_WEIGHT
    weight_tok: Token | None = None
    reverse: bool = False
    init_file: bool = False
    init_value: int = 0
    overwrite: bool = False


# ------------------------------------------------------------------- top level


def read_top(rep: Reporter, stmt: Stmt, top: Cursor, drafts: list[TrackFileDraft]) -> None:
    """The top-level `track_file NAME { ... }` (or `vrrp_track_file`) statement."""
    name = need_arg(rep, stmt, 1, "a name")
    extra_args(rep, stmt, 1)
    body = top.block(stmt)
    if stmt.keyword.text == "vrrp_track_file":
        # keepalived 2.x: log_message only ("deprecated, please use track_file").
        rep.warn_silent(stmt.keyword, '"vrrp_track_file" is deprecated, please use "track_file"')
    if body is None or name is None:
        return
    d = TrackFileDraft(name)
    while (s := body.next()) is not None:
        kw = s.keyword
        word = kw.text
        if kw.is_open:
            rep.error(kw, "unexpected '{'")
            body.pos -= 1
            body.skip_optional_block(s)
        elif word == "file":
            _file(rep, d, s)
        elif word == "weight":
            _weight(rep, d, s)
        elif word == "init_file":
            _init_file(rep, d, s)
        else:
            rep.warn(kw, unknown_keyword(word, stmt.keyword.text, BLOCK_KEYWORDS))
            body.skip_optional_block(s)
    if d.path is None:
        # keepalived: "No file set for track_file X - ignoring", and every
        # reference to it is then dropped: the instances would run untracked.
        rep.error(name, f"track_file {name.text} has no 'file'")
        return
    drafts.append(d)


def _file(rep: Reporter, d: TrackFileDraft, s: Stmt) -> None:
    tok = need_arg(rep, s, 1, "a file path")
    if tok is None:
        return
    extra_args(rep, s, 1)
    if d.path_tok is not None:
        rep.warn(
            tok,
            f"file already set for track_file {d.name.text} ({d.path_tok.loc}); ignoring"
            f" '{tok.text}'",
        )
        return
    text = tok.text
    if not text or text.endswith("/"):
        rep.error(tok, f"track_file {d.name.text}: '{text}' names no file")
        return
    if not os.path.isabs(text):
        # keepalived resolves a relative path against its working directory,
        # which differs between parsing (the file's directory) and running.
        base = os.path.dirname(tok.loc.file)
        resolved = os.path.abspath(os.path.join(base, text))
        rep.warn_silent(
            tok,
            f"track_file {d.name.text}: relative path '{text}' is taken as {resolved};"
            " write an absolute path",
        )
        text = resolved
    d.path, d.path_tok = os.path.normpath(text), tok


def _weight(rep: Reporter, d: TrackFileDraft, s: Stmt) -> None:
    words = s.tokens
    if len(words) < 2:
        rep.error(s.keyword, f"track_file {d.name.text}: weight needs a value -254..254")
        return
    if d.weight_tok is not None and d.weight != DEFAULT_WEIGHT:
        # keepalived's check is `weight != 1`, so a repeated `weight 1` is taken.
        rep.warn(
            words[1],
            f"weight already set for track_file {d.name.text} ({d.weight_tok.loc}); ignoring"
            f" '{words[1].text}'",
        )
        return
    value = parse_int(words[1].text)
    if value is None or not WEIGHT_MIN <= value <= WEIGHT_MAX:
        rep.error(
            words[1],
            f"track_file {d.name.text}: weight must be an integer -254..254, got '{words[1].text}'",
        )
        return
    d.weight, d.weight_tok = value, words[1]
    if len(words) > 2:
        if words[2].text == "reverse":
            d.reverse = True
        else:
            # keepalived knows only `reverse` here (`noreverse` is for references).
            rep.warn(
                words[2],
                f"track_file {d.name.text}: unknown weight option '{words[2].text}'; ignored",
            )
        if len(words) > 3:
            rep.warn(words[3], f"unexpected extra word '{words[3].text}'; ignored")


def _init_file(rep: Reporter, d: TrackFileDraft, s: Stmt) -> None:
    d.init_file, d.init_value, d.overwrite = True, 0, False
    for tok in s.tokens[1:]:
        word = tok.text.lstrip()
        if word[:1].isdigit() or word[:1] == "-":
            value = parse_int(word)
            if value is None or not INT_MIN <= value <= INT_MAX:
                # keepalived: "Track file X init value V is invalid", then 0.
                rep.error(tok, f"track_file {d.name.text}: init_file value '{word}' is invalid")
                continue
            if not -INIT_SENSIBLE <= value <= INIT_SENSIBLE:
                rep.warn(
                    tok,
                    f"track_file {d.name.text}: init_file value {value} is outside the"
                    " sensible range -254..254",
                )
            d.init_value = value
        elif word == "overwrite":
            d.overwrite = True
        else:
            rep.warn(tok, f"unknown init_file option '{word}'; ignored")


# --------------------------------------------------------- instance references


def _track_file(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: Cursor) -> None:
    """`track_file { NAME [weight W [reverse|noreverse]] ... }` (vrrp_alloc_track_file)."""
    _ENTRY.read_block(rep, line_block(rep, stmt, body), refs_of(d))


# keepalived drops a malformed entry with an error, which silently untracks
# the file: refused, a bad word after the weight included.
_ENTRY = Positional(
    kind="track_file",
    span="-254..254",
    weight=checked_weight(
        WEIGHT_MAX,
        lambda name, word: f"track_file {name}: weight must be an integer -254..254, got '{word}'",
    ),
    options=("reverse", "noreverse"),
    bad_option=lambda name, word: (
        f"track_file {name}: expected 'reverse' or 'noreverse' after the weight, got '{word}'"
    ),
    bad_option_fatal=True,
)


def refs_of(d: InstanceDraft) -> list[RefDraft]:
    """The track_file references a draft (instance or sync-group scratch) holds."""
    return d.track_file


INSTANCE_HANDLERS = {"track_file": _track_file}


# ------------------------------------------------------------------ resolution


def resolve(
    rep: Reporter,
    drafts: list[TrackFileDraft],
    instance_drafts: list[InstanceDraft],
    group_drafts: list[SyncGroupDraft],
    instances: tuple[VrrpInstance, ...],
    groups: tuple[SyncGroup, ...],
) -> tuple[tuple[VrrpInstance, ...], tuple[SyncGroup, ...], tuple[TrackFile, ...]]:
    """The track_file blocks, and the instances and groups with their references.

    References get explicit weights and reverse flags. Runs after the sync
    groups are resolved, in keepalived's order: each instance's own rules
    first (vrrp_complete_instance), then the groups' files (sync_group_tracking_init).
    """
    files: dict[str, TrackFile] = {}
    defined: dict[str, Token] = {}
    for d in drafts:
        if d.name.text in defined:
            first = defined[d.name.text].loc
            rep.error(d.name, f"duplicate track_file '{d.name.text}' (first defined at {first})")
            continue
        assert d.path is not None
        defined[d.name.text] = d.name
        files[d.name.text] = TrackFile(
            name=d.name.text,
            path=d.path,
            weight=d.weight,
            reverse=d.reverse,
            init_file=d.init_file,
            init_value=d.init_value,
            overwrite=d.overwrite,
            loc=d.name.loc,
        )
    member_of = {m: g for g in groups for m in g.members}
    by_name = {i.name: i for i in instances}
    for idraft in instance_drafts:
        inst = by_name.get(idraft.name.text)
        if inst is None or not refs_of(idraft):
            continue
        refs = _resolve_refs(rep, refs_of(idraft), files, defined, inst.name)
        group = member_of.get(inst.name)
        no_weights = group is not None and not group.tracking_weight
        if no_weights or inst.priority == PRIO_OWNER:
            why = "SYNC group" if no_weights else "address_owner"
            refs = _unweighted(rep, idraft.name, inst.name, refs, why)
        by_name[inst.name] = replace(inst, track_file=tuple(r for _, r in refs))
    out_groups: list[SyncGroup] = []
    group_by_name = {gd.name.text: gd for gd in group_drafts}
    for g in groups:
        gd = group_by_name.get(g.name)
        scratch = gd.scratch if gd is not None else None
        if gd is None or scratch is None or not refs_of(scratch):
            out_groups.append(g)
            continue
        refs = _resolve_refs(rep, refs_of(scratch), files, defined, g.name)
        if any(by_name[m].priority == PRIO_OWNER for m in g.members):
            for n, (tok, ref) in enumerate(refs):
                if ref.weight:
                    rep.warn(
                        tok,
                        f"({g.name}) cannot have weighted track file '{ref.name}' with a"
                        f" member having priority {PRIO_OWNER} - setting weight 0",
                    )
                    refs[n] = (tok, replace(ref, weight=0))
        for m in g.members:
            by_name[m] = _merge(rep, gd.name, by_name[m], refs)
        out_groups.append(replace(g, track_file=tuple(r for _, r in refs)))
    return (
        tuple(by_name[i.name] for i in instances),
        tuple(out_groups),
        tuple(files.values()),
    )


def _resolve_refs(
    rep: Reporter,
    drafts: list[RefDraft],
    files: dict[str, TrackFile],
    defined: dict[str, Token],
    owner: str,
) -> list[tuple[Token, TrackFileRef]]:
    out: list[tuple[Token, TrackFileRef]] = []
    for r in drafts:
        f = files.get(r.name.text)
        if f is None:
            # keepalived: "(X) track file NAME not found, ignoring...", which
            # leaves the instance silently untracked: refuse instead.
            rep.error(r.name, f"({owner}) track_file '{r.name.text}' is not defined")
            continue
        tok = defined[r.name.text]
        if (tok.loc.file, tok.loc.line) > (r.name.loc.file, r.name.loc.line) and (
            tok.loc.file == r.name.loc.file
        ):
            # keepalived looks the name up while parsing, so a block written
            # after its first use is "not found" there and the reference dropped.
            rep.warn(
                r.name,
                f"({owner}) track_file '{r.name.text}' is defined later ({tok.loc});"
                " keepalived ignores such a reference ('track file not found')",
            )
        weight = f.weight if r.weight is None else r.weight
        reverse = f.reverse if r.reverse is None else r.reverse
        out.append((r.name, TrackFileRef(f.name, weight, reverse)))
    return out


def _unweighted(
    rep: Reporter,
    at: Token,
    inst: str,
    refs: list[tuple[Token, TrackFileRef]],
    why: str,
) -> list[tuple[Token, TrackFileRef]]:
    """keepalived vrrp_complete_instance(): weight 1 (the default) becomes 0,
    any other weight drops the entry; each with a (counted) config error."""
    out: list[tuple[Token, TrackFileRef]] = []
    for tok, ref in refs:
        if ref.weight == DEFAULT_WEIGHT:
            rep.warn(
                tok,
                f"({inst}) ignoring weight from tracked file {ref.name} due to {why}."
                " specify weight 0",
            )
            ref = replace(ref, weight=0)
        elif ref.weight:
            rep.warn(
                tok,
                f"({inst}) ignoring tracked file {ref.name} with weight {ref.weight} due to {why}",
            )
            continue
        out.append((tok, ref))
    return out


def _merge(
    rep: Reporter, at: Token, inst: VrrpInstance, refs: list[tuple[Token, TrackFileRef]]
) -> VrrpInstance:
    """A group's files added to a member (keepalived add_obj_to_track_file())."""
    mine = add_group_refs(
        rep,
        at,
        inst.track_file,
        (gref for _, gref in refs),
        lambda ref: ref.weight,  # resolved: the block's weight already in
        lambda gref: (
            f"({inst.name}) track_file {gref.name} is configured on VRRP instance and"
            " sync group. Remove vrrp instance config"
        ),
        silent=True,  # keepalived only logs this one
    )
    return replace(inst, track_file=tuple(mine))


def file_by_name(files: tuple[TrackFile, ...], name: str) -> TrackFile | None:
    """The track_file block called `name`."""
    return next((f for f in files if f.name == name), None)


__all__ = [
    "INSTANCE_HANDLERS",
    "TOP_KEYWORDS",
    "TrackFileDraft",
    "file_by_name",
    "read_top",
    "refs_of",
    "resolve",
]
