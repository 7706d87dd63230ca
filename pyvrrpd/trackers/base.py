"""What every tracker source offers the daemon, and the kinds of tracker names.

Owns: the `OnChange` callback a source reports through, the `TrackerSource`
protocol the daemon drives (start once before the instances start, stop at
shutdown, describe for `pyvrrpd status`), and the name prefixes that tell a
tracker's kind (`process:haproxy`, `file:NAME`, `http:NAME`, `interface:IF`,
`src_ip:A`; a bare name is a vrrp_script). Keeping kinds in the name lets two
kinds share a configured name, as keepalived allows.
`ref_specs` turns an instance's references (track_script, track_process,
track_file, track_http) into core TrackerSpecs, the block's weight and
reverse filling what the entry leaves out.
Must not: decide priorities or states (pyvrrpd.core.tracking does).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from pyvrrpd.core.tracking import TrackerSpec

#: name, ok (True up / False down / None unknown), value (what was measured)
OnChange = Callable[[str, bool | None, int | None], None]

#: prefix -> kind, for `pyvrrpd status`
KINDS = {
    "interface:": "interface",
    "src_ip:": "src_ip",
    "process:": "process",
    "file:": "file",
    "http:": "http",
}


class TrackerSource(Protocol):
    """A watcher of one kind of thing that reports tracker changes."""

    async def start(self) -> None:
        """Begin watching; report each tracker's first result as soon as it
        is known. Host problems are logged and reported as a failed tracker,
        never raised."""

    def stop(self) -> None:
        """Stop watching and release every fd and task (daemon shutdown)."""

    def describe(self) -> dict[str, dict[str, object]]:
        """Extra JSON-able status fields per tracker name."""


class _Ref(Protocol):
    """A reference entry of the config model (TrackProcessRef, ...)."""

    @property
    def name(self) -> str: ...
    @property
    def weight(self) -> int | None: ...
    @property
    def reverse(self) -> bool | None: ...


def ref_specs(
    refs: Iterable[_Ref],
    blocks: Mapping[str, tuple[int, bool]],
    prefix: str = "",
    *,
    scaled: bool = False,
) -> tuple[TrackerSpec, ...]:
    """`refs` as core trackers named prefix + name; weight and reverse the
    entry's own, else its block's (`blocks`: name -> (weight, reverse)).
    An entry naming no block is skipped: the config reader refuses it, a
    hand-made Config may not."""
    out: list[TrackerSpec] = []
    for ref in refs:
        block = blocks.get(ref.name)
        if block is None:
            continue
        weight = block[0] if ref.weight is None else ref.weight
        reverse = block[1] if ref.reverse is None else ref.reverse
        out.append(TrackerSpec(prefix + ref.name, weight, reverse, scaled=scaled))
    return tuple(out)


def tracker_kind(name: str) -> str:
    """The kind of tracker a core tracker name belongs to (`script` if bare)."""
    for prefix, kind in KINDS.items():
        if name.startswith(prefix):
            return kind
    return "script"
