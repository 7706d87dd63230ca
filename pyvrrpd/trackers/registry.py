"""The tracker kinds the daemon knows beyond scripts, interfaces and source addresses.

Owns: the list of those kinds (`KINDS`): for each, how an instance's
references (`track_process`, `track_file`, `track_http`) become core
TrackerSpecs, how the source that watches the kind for the whole config is
built (None when nothing uses it), and what that source is built from, so a
reload can tell which kinds changed (`built_from`) and rebuild only those,
and what a rebuilt source keeps of the one it replaces (`carry_over`).
The kinds stay independent of each other and of the shell.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyvrrpd.config.model import Config, VrrpInstance
from pyvrrpd.core.tracking import TrackerSpec
from pyvrrpd.trackers.base import OnChange, TrackerSource
from pyvrrpd.trackers.file import file_source, file_specs
from pyvrrpd.trackers.http import HttpTracker, http_source, http_specs
from pyvrrpd.trackers.process import process_source, process_specs

SpecsFor = Callable[[VrrpInstance, Config], tuple[TrackerSpec, ...]]
#: config, on_change, reloading (a reload, not the start: keepalived leaves
#: an existing file alone then, even with `init_file ... overwrite`)
SourceFor = Callable[[Config, OnChange, bool], TrackerSource | None]


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of tracker block and what the daemon does with it."""

    keyword: str  # the block's keyword, for logs and reload verdicts
    prefix: str  # of its core tracker names (trackers/base.py KINDS)
    blocks: str  # the Config field holding the blocks
    refs: str  # the VrrpInstance field holding the references
    specs: SpecsFor
    source: SourceFor


KINDS: tuple[Kind, ...] = (
    Kind(
        "vrrp_track_process",
        "process:",
        "track_processes",
        "track_process",
        process_specs,
        process_source,
    ),
    Kind("track_file", "file:", "track_files", "track_file", file_specs, file_source),
    Kind("vrrp_track_http", "http:", "track_https", "track_http", http_specs, http_source),
)


def specs(inst: VrrpInstance, config: Config) -> tuple[TrackerSpec, ...]:
    """Every registered kind's trackers of `inst`."""
    return tuple(spec for kind in KINDS for spec in kind.specs(inst, config))


def sources(
    config: Config, on_change: OnChange, *, reloading: bool = False
) -> dict[str, TrackerSource]:
    """The sources `config` needs, not yet started, by kind keyword."""
    out: dict[str, TrackerSource] = {}
    for kind in KINDS:
        src = kind.source(config, on_change, reloading)
        if src is not None:
            out[kind.keyword] = src
    return out


def built_from(config: Config, kind: Kind) -> tuple[object, frozenset[str]]:
    """What `kind`'s source is made of: its blocks (in name order: blocks
    moved around the file change nothing) and the names instances use. Two
    configs giving equal values (locations aside) need the same source."""
    used = frozenset(r.name for i in config.instances for r in getattr(i, kind.refs))
    return tuple(sorted(getattr(config, kind.blocks), key=lambda b: str(b.name))), used


def carry_over(new: TrackerSource, old: TrackerSource) -> None:
    """Before `new` starts: what it keeps of `old`, the source of the same kind
    it replaces on reload. vrrp_track_http blocks whose definition did not
    change keep their rise/fall counters (as vrrp_script does); process and
    file sources count and read afresh (keepalived re-reads /proc and the
    files on reload), so they keep nothing."""
    if isinstance(new, HttpTracker) and isinstance(old, HttpTracker):
        new.inherit(old)
