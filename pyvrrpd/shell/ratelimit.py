"""Rate limiting for log lines that a peer (or an attacker) can trigger per packet.

Owns: deciding, per key, whether a line is logged now or folded into a
summary with a count. The first occurrence of a key is logged at once; later
ones within `interval` seconds are counted and reported by the next line that
gets through ("suppressed": N). Must not be used for state transitions: those
are always logged (design.md, issue 5 item 3).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass

#: keys kept at most; beyond that the oldest are forgotten (an attacker can
#: vary source addresses, which must not grow memory without bound).
MAX_KEYS = 1024


@dataclass(slots=True)
class _Slot:
    last: float
    suppressed: int = 0


class RateLimiter:
    """At most one line per key per `interval` seconds, with counts of the rest."""

    def __init__(self, interval: float, clock: Callable[[], float]) -> None:
        self.interval = interval
        self._clock = clock
        self._slots: dict[Hashable, _Slot] = {}
        #: lines suppressed in total (for tests and status)
        self.suppressed_total = 0

    def allow(self, key: Hashable) -> int | None:
        """None to suppress this line; else the count of lines suppressed for
        `key` since the last one logged (0 for the first)."""
        now = self._clock()
        slot = self._slots.get(key)
        if slot is None:
            if len(self._slots) >= MAX_KEYS:
                self._slots.pop(next(iter(self._slots)))
            self._slots[key] = _Slot(now)
            return 0
        if now - slot.last < self.interval:
            slot.suppressed += 1
            self.suppressed_total += 1
            return None
        count, slot.suppressed, slot.last = slot.suppressed, 0, now
        return count
