"""Master daemon stopped (SIGTERM) or killed (SIGKILL) in the guide lab (root).

SIGTERM: the master resigns with priority 0, so the backup (priority 90) takes
over after its Skew_Time, (256-90)/256 = 0.65 s (RFC 3768 6.1); bound 2.0 s.
SIGKILL: nothing is sent; the backup waits Master_Down_Interval, 3 + 0.65 =
3.65 s after the last advert (RFC 3768 6.1); bound 5.0 s.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest

from pyvrrpd.lab.services import DaemonKind, Services
from pyvrrpd.lab.walkthrough import format_step, measure_takeover, step_start_both

pytestmark = pytest.mark.netns

DAEMONS = ["pyvrrpd", pytest.param("keepalived", marks=pytest.mark.interop)]


def _bring_up(svc: Services) -> None:
    svc.start_backends()
    first = step_start_both(svc)
    print(format_step(first))
    assert first.holders == ("lb1",) and first.client_ok, format_step(first)


@pytest.mark.parametrize("daemon", DAEMONS)
def test_sigterm_master_backup_takes_over_within_skew(
    lab_services: Callable[[DaemonKind], Services], daemon: DaemonKind
) -> None:
    svc = lab_services(daemon)
    _bring_up(svc)
    t = measure_takeover(svc, "lb1", signal.SIGTERM, timeout=8.0)
    print(f"[{daemon}] SIGTERM master: lb2 has the VIP after {t.seconds} s "
          f"(theory 0.65 s), client outage {t.outage_s:.2f} s")  # fmt: skip
    assert t.seconds is not None and t.seconds < 2.0, t
    assert svc.wait_daemon_exit("lb1", 5.0), "daemon on lb1 did not exit on SIGTERM"
    assert t.holders == ("lb2",), t  # a graceful stop removes the VIP from lb1
    assert t.client_ok, t


@pytest.mark.parametrize("daemon", DAEMONS)
def test_sigkill_master_backup_takes_over_after_master_down(
    lab_services: Callable[[DaemonKind], Services], daemon: DaemonKind
) -> None:
    svc = lab_services(daemon)
    _bring_up(svc)
    t = measure_takeover(svc, "lb1", signal.SIGKILL, timeout=8.0)
    print(f"[{daemon}] SIGKILL master: lb2 has the VIP after {t.seconds} s "
          f"(theory <= 3.65 s), client outage {t.outage_s:.2f} s")  # fmt: skip
    assert t.seconds is not None and t.seconds < 5.0, t
    assert "lb2" in t.holders, t  # lb1 keeps a stale VIP: nobody removed it
    assert t.client_ok, t  # lb2's gratuitous ARP moved the client over
