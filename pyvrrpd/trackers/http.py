"""`vrrp_track_http`: HAProxy's monitor-uri or stats socket, probed on a timer.

Owns: one probe loop per vrrp_track_http block (an asyncio task), keepalived
vrrp_script's rise/fall counting of the results (pyvrrpd.core.tracking
RiseFall), the tracker names the core sees (``http:NAME``), the TrackerSpecs
of an instance's `track_http` references, and the status fields of each
block. It catches the HAProxy that is alive but not serving (SIGSTOPped,
hung, its listener gone), which process tracking cannot see.

Probes never overlap: the next one starts `interval` after the previous
start, or right after a probe that overran it (only possible with timeout >
interval); a probe that does not finish in `timeout` is a failure.
The first result decides the tracker either way (keepalived's counter
starts at rise - 1), so `start` waits for each block's first probe (at
most its timeout) and the instances start with a known result. A source
built again by a reload takes over the counters of the blocks whose
definition did not change (`inherit`), as an unchanged vrrp_script keeps
its own (keepalived.md 4.4).
Must not: decide priorities or states (pyvrrpd.core.tracking) or block the loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

import structlog

from pyvrrpd.config.model import Config, TrackHttp, VrrpInstance
from pyvrrpd.core.tracking import RiseFall, TrackerSpec
from pyvrrpd.io.httpprobe import ProbeResult, probe_http, probe_stats
from pyvrrpd.trackers.base import OnChange, ref_specs

log = structlog.get_logger("pyvrrpd.track")

PREFIX = "http:"

Probe = Callable[[TrackHttp], Awaitable[ProbeResult]]


def tracker_name(name: str) -> str:
    """The name a vrrp_track_http block has in the core and in `pyvrrpd status`."""
    return PREFIX + name


def http_specs(inst: VrrpInstance, config: Config) -> tuple[TrackerSpec, ...]:
    """The instance's `track_http` references as core trackers (block defaults filled)."""
    blocks = {b.name: (b.weight, b.reverse) for b in config.track_https}
    return ref_specs(inst.track_http, blocks, PREFIX)


def http_source(config: Config, on_change: OnChange, reloading: bool = False) -> HttpTracker | None:
    """The source for every referenced vrrp_track_http block; None if none is used."""
    used = {ref.name for inst in config.instances for ref in inst.track_http}
    blocks = [b for b in config.track_https if b.name in used]
    return HttpTracker(blocks, on_change) if blocks else None


async def run_probe(block: TrackHttp) -> ProbeResult:
    """One probe of `block` as configured; never raises (a bug is a failed probe)."""
    start = time.monotonic()
    try:
        if block.stats_socket is not None:
            return await probe_stats(block.stats_socket, block.timeout)
        return await probe_http(block.host, block.port, block.path, block.expect, block.timeout)
    except Exception as exc:  # a bug must not end the loop: a failed probe that says why
        return ProbeResult(False, None, f"error: {exc}", time.monotonic() - start)


class _Block:
    """The state of one block: counter, last result, streaks."""

    __slots__ = ("block", "counter", "failures", "first", "last", "reported", "successes")

    def __init__(self, block: TrackHttp) -> None:
        self.block = block
        self.counter = RiseFall(block.rise, block.fall)
        self.last: ProbeResult | None = None
        self.successes = 0  # consecutive
        self.failures = 0
        self.reported: tuple[bool | None, int | None] | None = None
        self.first = asyncio.Event()


class HttpTracker:
    """Probe loops for the used vrrp_track_http blocks; reports `http:NAME` changes."""

    def __init__(
        self, blocks: list[TrackHttp], on_change: OnChange, probe: Probe = run_probe
    ) -> None:
        self._blocks = {b.name: _Block(b) for b in blocks}
        self._on_change = on_change
        self._probe = probe
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start every loop; return once each block's first probe is in (its timeout at most)."""
        for state in self._blocks.values():
            task = asyncio.create_task(self._run(state), name=f"track_http {state.block.name}")
            self._tasks.append(task)
        waits = [
            asyncio.wait_for(s.first.wait(), s.block.timeout + 0.5) for s in self._blocks.values()
        ]
        # A first probe that somehow does not finish must not hold the start.
        await asyncio.gather(*waits, return_exceptions=True)

    def inherit(self, old: HttpTracker) -> None:
        """Before `start`: carry on the counter, streaks and last result of each
        block `old` probed with the same definition (a reload rebuilt the
        source for another block), so one failed probe right after a reload
        does not fail a `fall 2` tracker, nor one success raise a `rise 2`
        one; `start` does not wait for their first probe (they have a result)."""
        for name, s in self._blocks.items():
            was = old._blocks.get(name)
            if was is None or replace(was.block, loc=None) != replace(s.block, loc=None):
                continue
            s.counter, s.last, s.reported = was.counter, was.last, was.reported
            s.successes, s.failures = was.successes, was.failures
            s.first.set()

    def stop(self) -> None:
        """Cancel the loops; a probe in flight closes its socket as it unwinds."""
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()

    def describe(self) -> dict[str, dict[str, object]]:
        """Per tracker: what is probed, the last result, streaks and the probe's duration."""
        out: dict[str, dict[str, object]] = {}
        for name, s in self._blocks.items():
            b = s.block
            last = s.last
            fields: dict[str, object] = {
                "target": b.url if b.stats_socket is None else f"stats_socket {b.stats_socket}",
                "interval": b.interval,
                "timeout": b.timeout,
                "rise": b.rise,
                "fall": b.fall,
                "last_result": None if last is None else last.detail,
                "consecutive_ok": s.successes,
                "consecutive_failed": s.failures,
                "last_duration_ms": None if last is None else round(last.duration * 1000, 2),
            }
            if b.stats_socket is None:
                fields["expect"] = b.expect
            out[tracker_name(name)] = fields
        return out

    async def _run(self, s: _Block) -> None:
        loop = asyncio.get_running_loop()
        interval = s.block.interval
        next_at = loop.time()
        while True:
            self._record(s, await self._probe(s.block))
            s.first.set()
            next_at += interval
            now = loop.time()
            if next_at < now:
                # Overran (timeout > interval) or the loop was late: start now and
                # keep the ticks `interval` apart from here on.
                next_at = now
            await asyncio.sleep(next_at - now)

    def _record(self, s: _Block, result: ProbeResult) -> None:
        s.last = result
        if result.ok:
            s.successes += 1
            s.failures = 0
        else:
            s.failures += 1
            s.successes = 0
        was = s.counter.ok
        s.counter.record(result.ok)
        ok = s.counter.ok
        name = tracker_name(s.block.name)
        if ok != was:
            if ok:
                log.info("http_track_up", tracker=name, result=result.detail)
            else:
                log.warning(
                    "http_track_down",
                    tracker=name,
                    result=result.detail,
                    failures=s.failures,
                    target=s.block.url or s.block.stats_socket,
                )
        now = (ok, result.status)
        if now != s.reported:
            s.reported = now
            self._on_change(name, ok, result.status)


__all__ = ["PREFIX", "HttpTracker", "http_source", "http_specs", "run_probe", "tracker_name"]
