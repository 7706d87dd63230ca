"""Tracker arithmetic: rise/fall counting, weights, effective priority.

Owns: keepalived's rules for turning tracker results into a priority or a
FAULT (keepalived.md 2.1-2.3). Pure: the shell runs the scripts and feeds
each exit status to a `RiseFall` counter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

PRIO_OWNER = 255  # RFC 3768 5.3.4: the address owner; never adjusted by trackers


@dataclass(frozen=True, slots=True)
class TrackerSpec:
    """One tracked object as an instance sees it (weight already resolved)."""

    name: str
    weight: int = 0
    reverse: bool = False
    # track_file: the tracker reports an integer and the priority moves by
    # value x weight (keepalived.md 1.6), not by a fixed weight on failure.
    scaled: bool = False


class RiseFall:
    """keepalived's script result counter.

    A counter runs over 0..rise+fall-1 and the script is OK while it is at
    least `rise`. It starts "unknown" at rise-1, so the first result decides
    either way; afterwards `fall` consecutive failures are needed to go down
    and `rise` consecutive successes to come back up.
    """

    __slots__ = ("_initialising", "_result", "fall", "rise")

    def __init__(self, rise: int = 1, fall: int = 1, init_fail: bool = False) -> None:
        self.rise = max(rise, 1)
        self.fall = max(fall, 1)
        self._initialising = not init_fail
        self._result = 0 if init_fail else self.rise - 1

    @property
    def ok(self) -> bool | None:
        """True (up), False (down) or None (no result yet)."""
        if self._initialising:
            return None
        return self._result >= self.rise

    def record(self, success: bool) -> bool | None:
        """Feed one result; return the new status if it changed, else None."""
        before = self.ok
        top = self.rise + self.fall - 1
        if success:
            if self._initialising or self._result >= self.rise - 1:
                self._result = top
            else:
                self._result += 1
        elif not self._initialising and self._result > self.rise:
            self._result -= 1
        else:
            self._result = 0
        self._initialising = False
        after = self.ok
        return after if after != before else None


#: keepalived's track_file bounds on one file's value x weight; the floor
#: means FAULT (trackers/track_file.c `process_update_vrrp_track_file_status`).
SCALED_MIN = -254
SCALED_MAX = 253


def scaled_status(spec: TrackerSpec, value: int | None) -> int | None:
    """A scaled (track_file) tracker's priority change, or None for FAULT.

    keepalived: with weight 0 a non-zero value is a failure (reverse: a zero
    value); otherwise value x weight (negated when reversed), clamped to
    -254..253, where -254 means FAULT. An unknown value changes nothing.
    """
    if value is None:
        return 0
    if spec.weight == 0:
        return None if (value != 0) != spec.reverse else 0
    mult = -1 if spec.reverse else 1
    change = max(SCALED_MIN, min(SCALED_MAX, value * spec.weight * mult))
    return None if change == SCALED_MIN else change


def contribution(spec: TrackerSpec, ok: bool | None, value: int | None = None) -> int:
    """Priority change a weighted tracker makes in status `ok` (keepalived.md 2.2).

    Positive weights add while OK; negative weights subtract while failed;
    `reverse` swaps the sense. Unknown status contributes nothing. A scaled
    tracker contributes its value x weight (`scaled_status`), nothing in FAULT.
    """
    if spec.scaled:
        return scaled_status(spec, value) or 0
    if ok is None or spec.weight == 0:
        return 0
    mult = -1 if spec.reverse else 1
    if spec.weight > 0:
        return spec.weight * mult if ok else 0
    return 0 if ok else spec.weight * mult


def faulted(spec: TrackerSpec, ok: bool | None, value: int | None = None) -> bool:
    """A weight-0 tracker faults the instance when failed (OK when reversed);
    a scaled one when its value says so (`scaled_status`)."""
    if spec.scaled:
        return scaled_status(spec, value) is None
    if spec.weight != 0 or ok is None:
        return False
    return ok if spec.reverse else not ok


def effective_priority(base: int, adjustments: Iterable[int]) -> int:
    """Base plus tracker adjustments, clamped to 1..254; 255 is never adjusted."""
    if base == PRIO_OWNER:
        return base
    return max(1, min(254, base + sum(adjustments)))
