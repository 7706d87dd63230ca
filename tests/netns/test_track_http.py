"""`vrrp_track_http` against real HAProxy 2.6 (issue 8: the HAProxy alive but not serving).

Two pyvrrpd boxes (priorities 100/90, advert_int 1, preempt) on the pair LAN,
each in its own PID namespace with its own `haproxy -Ws` and the guide's
`listen stats` (:8081, `monitor-uri /healthz`; tests/netns/_haproxy.py), both
with a weight-0 `vrrp_track_http`: lb1 on http://127.0.0.1:8081/healthz
(through its own netns's loopback), lb2 on its HAProxy's stats socket
(`show info`). Process tracking sees
nothing wrong in either case below: every `haproxy` process stays alive.

- HAProxy SIGSTOPped on the master (hung: the kernel still accepts
  connections into the listen queue, nobody answers): the probes time out,
  after `fall` of them the master goes FAULT and the backup has the VIP
  within fall x interval + timeout + Skew_Time + slack; SIGCONT brings it back.
- the stats listener gone (HAProxy reloaded with a config without the
  `listen stats` block): connection refused, the VIP moves within
  fall x interval + Skew_Time + slack.
- the shipped example (conf/pyvrrpd-only/haproxy-http-probe.conf): keepalived
  2.2.7's -t refuses it, ours and check-config warn and exit 0.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from tests.netns import test_check_parity as parity
from tests.netns._haproxy import HaproxyLab, haproxy_lab
from tests.netns._pair import PLAIN_CONF, VIP, first_time, wait_for
from tests.netns._pidns import children_of

netns = parity.netns  # the fixture: a netns with eth0, for keepalived -t

INTERVAL = 0.2
TIMEOUT = 0.2
FALL = 2
SKEW_90 = (256 - 90) / 256  # Skew_Time of the priority-90 backup, advert_int 1 (RFC 3768 6.1)
# The backup hears the master's priority-0 advert and waits Skew_Time (RFC 3768
# 6.4.2); slack for the probe schedule's phase, the status sampling and 2 busy cores.
SLACK = 0.35

TRACK = f"""\
vrrp_track_http haproxy {{
  TARGET
  interval {INTERVAL}
  timeout {TIMEOUT}
  rise 2
  fall {FALL}
}}
"""


def conf(prio: int, target: str) -> str:
    extra = "  track_http {\n    haproxy\n  }"
    return TRACK.replace("TARGET", target) + PLAIN_CONF.format(prio=prio, extra=extra, vip=VIP)


class Lab(HaproxyLab):
    kind = "http"

    def start_pair(self) -> None:
        # lb2 probes its HAProxy's stats socket instead: real HAProxy's `show info`.
        sock = self.pair.workdir / "lb2-haproxy.sock"
        for host, prio, want, target in (
            ("lb1", 100, "MASTER", "url http://127.0.0.1:8081/healthz"),
            ("lb2", 90, "BACKUP", f"stats_socket {sock}"),
        ):
            self.start(host, conf(prio, target))
            ok = wait_for(partial(_is_state, self, host, want), 10.0, 0.05)
            assert ok is not None, f"{host} never {want}:\n{self.pair.log(host)[-3000:]}"
        assert self.vip_holders() == {"lb1"}
        assert self.tracker("lb1")["status"] == "up"
        lb2 = self.tracker("lb2")
        assert (lb2["status"], lb2["last_result"]) == ("up", "ok"), lb2

    def hang(self, host: str, sig: int) -> list[int]:
        """`sig` to every process of the host's HAProxy tree (master and workers)."""
        hap = self.haproxy[host]
        pids = [hap.master, *children_of(hap.master)]
        for pid in pids:
            os.kill(pid, sig)
        return pids


def _is_state(lab: Lab, host: str, want: str) -> bool:
    return lab.state(host) == want


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with haproxy_lab(tmp_path, Lab) as lab:
        yield lab


def test_sigstopped_haproxy_moves_the_vip(lab: Lab) -> None:
    lab.start_pair()
    t0 = time.monotonic()
    lab.hang("lb1", signal.SIGSTOP)
    fault = first_time(lambda: lab.state("lb1") == "FAULT", t0, 5.0)
    moved = first_time(lambda: lab.vip_holders() == {"lb2"}, t0, 5.0)
    bound = FALL * INTERVAL + TIMEOUT + SKEW_90 + SLACK
    print(f"SIGSTOP: lb1 FAULT after {fault} s, VIP on lb2 after {moved} s (bound {bound:.3f} s)")
    assert fault is not None, "lb1 never went FAULT"
    assert moved is not None, "the VIP never moved to lb2"
    assert fault <= FALL * INTERVAL + TIMEOUT + SLACK
    assert moved <= bound
    tracker = lab.tracker("lb1")
    assert tracker["status"] == "down"
    assert tracker["last_result"] == "timeout"
    assert tracker["consecutive_failed"] >= FALL
    assert lab.state("lb2") == "MASTER"
    # Every haproxy process is still there: process tracking would see nothing.
    assert lab.haproxy["lb1"].alive()

    lab.hang("lb1", signal.SIGCONT)
    back = wait_for(lambda: lab.state("lb1") in ("BACKUP", "MASTER"), 5.0, 0.05)
    assert back is not None, "lb1 stayed FAULT after SIGCONT"
    assert lab.tracker("lb1")["status"] == "up"
    assert lab.tracker("lb1")["last_result"] == "200"
    # Priority 100 with preempt: lb1 takes the VIP back.
    assert wait_for(lambda: lab.vip_holders() == {"lb1"}, 5.0) is not None


def test_stats_listener_gone_moves_the_vip(lab: Lab) -> None:
    lab.start_pair()
    hap = lab.haproxy["lb1"]
    text = hap.cfg.read_text()
    cut = re.sub(r"listen stats\n(    .*\n)+\n", "", text)
    assert "8081" not in cut
    hap.cfg.write_text(cut)
    t0 = time.monotonic()
    hap.reload()
    reloaded = time.monotonic() - t0
    moved = first_time(lambda: lab.vip_holders() == {"lb2"}, t0, 5.0)
    bound = reloaded + FALL * INTERVAL + SKEW_90 + SLACK
    print(f"listener gone: reload took {reloaded:.3f} s, VIP on lb2 after {moved} s")
    assert moved is not None, "the VIP never moved to lb2"
    assert moved <= bound
    assert lab.state("lb1") == "FAULT"
    assert lab.tracker("lb1")["last_result"] == "connection refused"
    assert hap.alive()


def test_example_config_is_pyvrrpd_only(netns: str) -> None:
    """conf/pyvrrpd-only/haproxy-http-probe.conf: keepalived 2.2.7's -t refuses it (5);
    ours and check-config warn at the lines and exit 0 (pyvrrpd runs it)."""
    conf = Path(__file__).parents[2] / "conf" / "pyvrrpd-only" / "haproxy-http-probe.conf"
    theirs, ours, check, detail = parity.codes(netns, conf)
    assert (theirs, ours, check) == (5, 0, 0), detail
    assert "Unknown keyword 'vrrp_track_http'" in detail  # keepalived's own words
    assert f"{conf}:24:1: warning: 'vrrp_track_http' is pyvrrpd-only" in detail
    assert f"{conf}:48:3: warning: 'track_http' is pyvrrpd-only" in detail
