"""One heap of deadlines for the whole daemon, armed as a single asyncio timer.

Owns: mapping keys (instances, script trackers, ...) to their next deadline
and calling each key's callback when it is due. However many instances run,
there is exactly one `loop.call_at` outstanding (design.md "The shape").
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable, Hashable


class TimerHeap:
    """Deadlines per key on one heap with lazy deletion."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._heap: list[tuple[float, int, Hashable]] = []
        self._current: dict[Hashable, tuple[float, int]] = {}
        self._callbacks: dict[Hashable, Callable[[float], None]] = {}
        self._seq = itertools.count()
        self._handle: asyncio.TimerHandle | None = None
        self._armed_for: float | None = None
        #: Worst lateness of a due deadline since `take_lateness()` (sdnotify's watchdog).
        self._late = 0.0

    def register(self, key: Hashable, callback: Callable[[float], None]) -> None:
        """`callback(now)` runs when `key`'s deadline passes; `now >= deadline`."""
        self._callbacks[key] = callback

    def unregister(self, key: Hashable) -> None:
        self._callbacks.pop(key, None)
        self.set(key, None)

    def set(self, key: Hashable, deadline: float | None) -> None:
        """Replace `key`'s deadline (None cancels it)."""
        if deadline is None:
            self._current.pop(key, None)
        else:
            cur = self._current.get(key)
            if cur is not None and cur[0] == deadline:
                return
            seq = next(self._seq)
            self._current[key] = (deadline, seq)
            heapq.heappush(self._heap, (deadline, seq, key))
        self._rearm()

    def deadline(self, key: Hashable) -> float | None:
        cur = self._current.get(key)
        return cur[0] if cur else None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None
        self._heap.clear()
        self._current.clear()

    def _prune(self) -> None:
        while self._heap:
            deadline, seq, key = self._heap[0]
            if self._current.get(key) == (deadline, seq):
                return
            heapq.heappop(self._heap)

    def _rearm(self) -> None:
        self._prune()
        nxt = self._heap[0][0] if self._heap else None
        if nxt == self._armed_for:
            return
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._armed_for = nxt
        if nxt is not None:
            self._handle = self._loop.call_at(nxt, self._fire)

    def take_lateness(self) -> float:
        """Seconds the latest-served deadline waited past its time, since the last call."""
        late, self._late = self._late, 0.0
        return late

    def _fire(self) -> None:
        self._handle = None
        self._armed_for = None
        now = self._loop.time()
        due: list[tuple[float, Hashable]] = []
        self._prune()
        if self._heap:  # pruned: the head is a live deadline
            self._late = max(self._late, now - self._heap[0][0])
        while self._heap and self._heap[0][0] <= now:
            deadline, seq, key = heapq.heappop(self._heap)
            if self._current.get(key) == (deadline, seq):
                del self._current[key]
                due.append((deadline, key))
            self._prune()
        try:
            for deadline, key in due:
                cb = self._callbacks.get(key)
                if cb is None:
                    continue
                try:
                    # Never hand the core an early timer (design.md): now >= deadline.
                    cb(max(deadline, self._loop.time()))
                except Exception as exc:
                    # One key's failure must not cost the others their timers.
                    self._loop.call_exception_handler(
                        {"message": f"timer callback for {key!r} failed", "exception": exc}
                    )
        finally:
            self._rearm()
