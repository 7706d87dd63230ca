"""Smoke test of the benchmark's HAProxy-death rows (bench/haproxy_death.py), root.

One round of the pyvrrpd ``vrrp_track_process`` variant in the guide lab:
HAProxy's master (master-worker mode) on lb1 gets SIGKILL; the VIP must move to
lb2 and the four figures must be sane. Not the benchmark's targets (the full
run on a quiet machine checks those): only bounds that catch a broken
measurement, e.g. a timestamp in the wrong clock or a capture that saw nothing.
Theory: lb1 leaves MASTER at once with a priority-0 advert, lb2 takes over
after its Skew_Time, (256 - 90) / 256 = 0.648 s (RFC 3768 6.1).
"""

from __future__ import annotations

import os

import pytest

from bench import haproxy_death as hd
from pyvrrpd.lab.netns import cleanup_stale, missing_tools
from pyvrrpd.lab.services import daemon_missing

pytestmark = pytest.mark.netns


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    missing = missing_tools()
    if missing:
        return f"missing tools: {', '.join(missing)}"
    return daemon_missing("pyvrrpd")


def test_one_round_of_track_process_moves_the_vip_with_sane_figures() -> None:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    cleanup_stale()
    r = hd.one_round(hd.BY_KEY["py-process"], phase=0.0)
    print(r)
    assert not r.never_master and not r.notes, r
    # the VIP moved, not before lb2's Skew_Time and not after a Master_Down_Interval
    assert r.vip_s is not None and hd.SKEW_LB2 - 0.05 < r.vip_s < 3.0, r
    # a tracker event, from the daemon's own timestamp, after the kill and well before the VIP
    assert r.detect_s is not None and 0.0 <= r.detect_s < 0.5, r
    assert "FAULT" in r.detect_line or "process" in r.detect_line, r
    # priority 0 on the wire, near the detection (the capture has kernel stamps)
    assert r.advert_s is not None and 0.0 <= r.advert_s < r.vip_s, r
    assert abs(r.advert_s - r.detect_s) < 0.2, r
    # the client's gap spans the takeover and ends once lb2 answers
    assert r.gap_s is not None and r.vip_s - 0.2 < r.gap_s < r.vip_s + 0.5, r
