"""What every tracker source offers the daemon, and the kinds of tracker names.

Owns: the `OnChange` callback a source reports through, the `TrackerSource`
protocol the daemon drives (start once before the instances start, stop at
shutdown, describe for `pyvrrpd status`), and the name prefixes that tell a
tracker's kind (`process:haproxy`, `file:NAME`, `http:NAME`, `interface:IF`,
`src_ip:A`; a bare name is a vrrp_script). Keeping kinds in the name lets two
kinds share a configured name, as keepalived allows.
Must not: decide priorities or states (pyvrrpd.core.tracking does).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

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


def tracker_kind(name: str) -> str:
    """The kind of tracker a core tracker name belongs to (`script` if bare)."""
    for prefix, kind in KINDS.items():
        if name.startswith(prefix):
            return kind
    return "script"
