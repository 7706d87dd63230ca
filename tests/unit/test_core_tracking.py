"""keepalived's rise/fall counting (keepalived.md 2.3)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pyvrrpd.core.tracking import RiseFall


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
