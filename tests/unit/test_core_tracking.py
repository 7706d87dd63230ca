"""keepalived's rise/fall counting (keepalived.md 2.3)."""

from __future__ import annotations

from ipaddress import IPv4Address

from hypothesis import given
from hypothesis import strategies as st

from pyvrrpd.core.events import Started, TrackerChanged
from pyvrrpd.core.router import RouterConfig, VirtualRouter
from pyvrrpd.core.state import State
from pyvrrpd.core.tracking import RiseFall, TrackerSpec, scaled_status


def test_first_result_decides_either_way() -> None:
    c = RiseFall(rise=3, fall=3)
    assert c.ok is None
    assert c.record(True) is True
    c = RiseFall(rise=3, fall=3)
    assert c.record(False) is False


def test_fall_consecutive_failures_to_go_down() -> None:
    c = RiseFall(rise=2, fall=3)
    c.record(True)
    assert c.record(False) is None
    assert c.record(False) is None
    assert c.record(False) is False


def test_success_resets_fall_count() -> None:
    c = RiseFall(rise=1, fall=2)
    c.record(True)
    c.record(False)
    c.record(True)
    assert c.record(False) is None
    assert c.record(False) is False


def test_rise_consecutive_successes_to_come_up() -> None:
    c = RiseFall(rise=3, fall=1)
    c.record(False)
    assert c.record(True) is None
    assert c.record(True) is None
    assert c.record(True) is True


def test_init_fail_starts_failed() -> None:
    c = RiseFall(rise=2, fall=1, init_fail=True)
    assert c.ok is False
    assert c.record(True) is None
    assert c.record(True) is True


@given(st.integers(1, 5), st.integers(1, 5), st.lists(st.booleans(), max_size=60))
def test_status_follows_runs(rise: int, fall: int, results: list[bool]) -> None:
    """Reference model: status flips only after `fall` failures / `rise` successes in a row."""
    c = RiseFall(rise, fall)
    status: bool | None = None
    run_ok = run_fail = 0
    for r in results:
        c.record(r)
        run_ok, run_fail = (run_ok + 1, 0) if r else (0, run_fail + 1)
        if status is None:
            status = r
        elif status and run_fail >= fall:
            status = False
        elif not status and run_ok >= rise:
            status = True
        assert c.ok is status


# ---------------------------------------------------------------- scaled (track_file)


def _file(weight: int, reverse: bool = False) -> TrackerSpec:
    return TrackerSpec("file:f", weight, reverse, scaled=True)


def test_scaled_value_times_weight_clamped_and_floor_is_fault() -> None:
    # keepalived.md 1.6: value x weight; the result is clamped to -254..253
    # and -254 means FAULT.
    assert scaled_status(_file(1), 5) == 5
    assert scaled_status(_file(-2), 5) == -10
    assert scaled_status(_file(2, reverse=True), 5) == -10
    assert scaled_status(_file(10), 100) == 253
    assert scaled_status(_file(1), -254) is None
    assert scaled_status(_file(-100), 3) is None
    assert scaled_status(_file(1), -253) == -253
    assert scaled_status(_file(5), None) == 0


def test_scaled_weight_zero_faults_on_nonzero_value_or_zero_when_reversed() -> None:
    assert scaled_status(_file(0), 0) == 0
    assert scaled_status(_file(0), 7) is None
    assert scaled_status(_file(0, reverse=True), 0) is None
    assert scaled_status(_file(0, reverse=True), 1) == 0


def test_router_effective_priority_follows_the_file_value() -> None:
    cfg = RouterConfig(name="VI", vrid=1, priority=100, trackers=(_file(1),))
    r = VirtualRouter(cfg)
    r.handle(Started(IPv4Address("192.0.2.1"), True), 0.0)
    r.handle(TrackerChanged("file:f", True, -30), 0.1)
    assert r.effective_priority == 70
    r.handle(TrackerChanged("file:f", True, 20), 0.2)
    assert r.effective_priority == 120
    assert r.status().trackers["file:f"] is True
    r.handle(TrackerChanged("file:f", True, -254), 0.3)
    assert r.state is State.FAULT
    assert r.status().trackers["file:f"] is False
    assert "tracker file:f failed" in r.fault_reasons()
    r.handle(TrackerChanged("file:f", True, 0), 0.4)
    assert r.state is State.BACKUP
    assert r.effective_priority == 100
