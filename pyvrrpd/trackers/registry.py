"""The tracker kinds the daemon knows beyond scripts, interfaces and source addresses.

Owns: the two lists the daemon walks: `SPECS`, turning an instance's
references (`track_process`, `track_file`, `track_http`) into core
TrackerSpecs, and `SOURCES`, building the source that watches a kind for the
whole config (None when nothing uses it). One entry per kind; the kinds stay
independent of each other and of the shell.
"""

from __future__ import annotations

from collections.abc import Callable

from pyvrrpd.config.model import Config, VrrpInstance
from pyvrrpd.core.tracking import TrackerSpec
from pyvrrpd.trackers.base import OnChange, TrackerSource
from pyvrrpd.trackers.file import file_source, file_specs
from pyvrrpd.trackers.http import http_source, http_specs
from pyvrrpd.trackers.process import process_source, process_specs

SpecsFor = Callable[[VrrpInstance, Config], tuple[TrackerSpec, ...]]
SourceFor = Callable[[Config, OnChange], TrackerSource | None]

SPECS: list[SpecsFor] = [
    process_specs,
    file_specs,
    http_specs,
]
SOURCES: list[SourceFor] = [
    process_source,
    file_source,
    http_source,
]


def specs(inst: VrrpInstance, config: Config) -> tuple[TrackerSpec, ...]:
    """Every registered kind's trackers of `inst`."""
    return tuple(spec for fn in SPECS for spec in fn(inst, config))


def sources(config: Config, on_change: OnChange) -> list[TrackerSource]:
    """The sources `config` needs, not yet started."""
    out = []
    for fn in SOURCES:
        src = fn(config, on_change)
        if src is not None:
            out.append(src)
    return out
