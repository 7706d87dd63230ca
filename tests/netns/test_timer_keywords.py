"""vrrp_startup_delay and down_timer_adverts in real daemons (issue 6 item 7).

Two lone instances on separate VRIDs, so they do not interact: lb1 holds its
first election for `vrrp_startup_delay`, lb2 waits one advert instead of
three. Times come from each daemon's own log (its `started` line to its
MASTER transition), so process start-up does not blur them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.netns._pair import Pair, logged_pair_lan, wait_for

pytestmark = pytest.mark.netns

CONF = """\
{globals}
vrrp_instance VI_1 {{
  interface eth0
  virtual_router_id {vrid}
  priority 100
  advert_int 1
{extra}
  virtual_ipaddress {{
    {vip}
  }}
}}
"""
SKEW_100 = (256 - 100) / 256  # 0.609 s


@pytest.fixture
def lan(tmp_path: Path) -> Iterator[Pair]:
    with logged_pair_lan(tmp_path, tail=2000) as p:
        yield p


def master_after(pair: Pair, host: str) -> float | None:
    """Seconds from the daemon's `started` line to its first MASTER, if both logged."""
    started = master = None
    for line in pair.log(host).splitlines():
        if not line.startswith("{"):
            continue
        ev = json.loads(line)
        stamp = datetime.fromisoformat(ev["timestamp"])
        if ev["event"] == "started" and started is None:
            started = stamp
        if ev["event"] == "state_change" and ev["new"] == "MASTER" and master is None:
            master = stamp
    if started is None or master is None:
        return None
    return (master - started).total_seconds()


def test_startup_delay_and_down_timer_adverts(lan: Pair) -> None:
    lan.start(
        "lb1",
        100,
        conf_text=CONF.format(
            globals="global_defs {\n  vrrp_startup_delay 2\n}",
            vrid=51,
            extra="",
            vip="192.0.2.10",
        ),
    )
    lan.start(
        "lb2",
        100,
        conf_text=CONF.format(
            globals="", vrid=52, extra="  down_timer_adverts 1", vip="192.0.2.20"
        ),
    )
    assert wait_for(lambda: master_after(lan, "lb2") is not None, timeout=5.0) is not None
    assert wait_for(lambda: master_after(lan, "lb1") is not None, timeout=9.0) is not None
    delayed, quick = master_after(lan, "lb1"), master_after(lan, "lb2")
    print(f"vrrp_startup_delay 2: MASTER after {delayed} s (2 + 3 + {SKEW_100:.3f})")
    print(f"down_timer_adverts 1: MASTER after {quick} s (1 + {SKEW_100:.3f})")
    assert delayed is not None and 2 + 3 + SKEW_100 - 0.01 <= delayed < 2 + 3 + SKEW_100 + 0.3
    assert quick is not None and 1 + SKEW_100 - 0.01 <= quick < 1 + SKEW_100 + 0.3
