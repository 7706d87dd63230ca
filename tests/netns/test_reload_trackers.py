"""A reload applies tracker changes: vrrp_track_process and track_file blocks
and references are read again, as keepalived does (keepalived.md 4.4).

lb1 (100) and lb2 (90) in their own PID namespaces (tests/netns/_pidns.py),
a stand-in `haproxy` on lb1. Each reload goes through `pyvrrpd reload`, and
who holds the VIP is sampled every 20 ms around it:

- adding a track_process of the running stand-in to the MASTER: the tracker
  is up at once, nothing moves, and nothing needs a restart;
- changing the block to a process that does not run: lb1 goes to FAULT and
  the VIP is on lb2 within its Skew_Time after the reload's verdict;
- changing it back: lb1 takes the VIP back (preempt), never both;
- track_file with `init_file 0 overwrite`: a value the operator wrote
  survives a reload that rebuilds the file tracker (keepalived skips the
  overwrite on reload), so a drained box stays drained.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyvrrpd.lab.vipwatch import AddrWatch
from pyvrrpd.shell.ops.control import query
from tests.netns._pair import VIP, wait_for
from tests.netns._pidns import STANDIN_CONF, StandinLab, children_of, kill, standin_lab
from tests.netns.test_reload import reload_cli

pytestmark = pytest.mark.netns

SKEW_90 = (256 - 90) / 256  # RFC 3768 6.1: Skew_Time of the priority-90 backup
SLACK = 0.15

NO_TRACKER = """\
vrrp_instance VI_1 {{
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority {prio}
  advert_int 1
  virtual_ipaddress {{
    {vip}
  }}
}}
"""

FILE_CONF = """\
track_file drain {{
  file {path}
  weight 0
  init_file 0 overwrite
}}
{extra}
vrrp_instance VI_1 {{
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority {prio}
  advert_int 1
  virtual_ipaddress {{
    {vip}
  }}
  track_file {{
    drain
  }}
}}
"""


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[StandinLab]:
    with standin_lab(tmp_path) as lab:
        yield lab


class Sampler:
    """Who holds the VIP, every 20 ms, in the background (a netlink watch of
    its own: lab.watch is not for two threads)."""

    def __init__(self, lab: StandinLab) -> None:
        self.watch = AddrWatch({h: lab.pair.ns(h) for h in ("lb1", "lb2")})
        self.samples: list[tuple[float, frozenset[str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            held = frozenset(self.watch.holders(VIP))
            self.samples.append((time.monotonic(), held))
            self._stop.wait(0.02)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5.0)
        self.watch.close()

    def held(self) -> frozenset[str] | None:
        """The latest sample."""
        return self.samples[-1][1] if self.samples else None

    def first(self, holders: set[str], after: float) -> float | None:
        """Seconds from `after` until the VIP was first held by `holders` alone."""
        for t, held in self.samples:
            if t >= after and held == holders:
                return t - after
        return None

    def doubled(self) -> list[float]:
        return [t for t, held in self.samples if len(held) > 1]


def _reload(lab: StandinLab, host: str, text: str) -> dict[str, object]:
    (lab.pair.workdir / f"{host}.conf").write_text(text)
    done = reload_cli(lab.pair, host)
    assert done.returncode == 0, done.stdout + done.stderr
    return {"stdout": done.stdout, "stderr": done.stderr}


def test_track_process_changes_apply_on_reload(lab: StandinLab) -> None:
    pair = lab.pair
    lab.standin("lb1")
    lab.start_daemons(NO_TRACKER)
    lb1_conf = STANDIN_CONF.format(prio=100, vip=VIP)

    with Sampler(lab) as s:
        # 1. A tracker of the running stand-in added to the MASTER.
        out = _reload(lab, "lb1", lb1_conf)
        assert "restart" not in out["stderr"], out
        t = pair.tracker("lb1", "process")
        assert (t["name"], t["status"], t["count"]) == ("process:chk_haproxy", "up", 1)
        time.sleep(1.5)  # an advert or two after it
        assert pair.fast_state("lb1") == "MASTER" and pair.fast_state("lb2") == "BACKUP"
        steady = [held for _, held in s.samples]
        assert steady and all(h == frozenset({"lb1"}) for h in steady), set(steady)

        # 2. The block now names a process that does not run: FAULT, VIP moves.
        _reload(lab, "lb1", lb1_conf.replace("process haproxy", "process haproxy-gone"))
        t_verdict = time.monotonic()
        assert wait_for(lambda: pair.fast_state("lb1") == "FAULT", 2.0, 0.02) is not None
        assert pair.tracker("lb1", "process")["status"] == "down"
        assert wait_for(lambda: s.held() == {"lb2"}, 3.0, 0.01) is not None
        moved = s.first({"lb2"}, t_verdict)
        assert moved is not None
        print(f"reload to a dead process -> VIP on lb2 {moved * 1000:.0f} ms after the verdict")
        assert moved <= SKEW_90 + SLACK

        # 3. Back to the running process: lb1 preempts and holds it again.
        _reload(lab, "lb1", lb1_conf)
        assert wait_for(lambda: pair.fast_state("lb1") == "MASTER", 6.0, 0.05) is not None
        assert wait_for(lambda: s.held() == {"lb1"}, 3.0, 0.01) is not None
        time.sleep(0.3)
    assert not s.doubled(), f"the VIP was on both boxes at {s.doubled()[:5]}"
    assert "reload_restart_needed" not in pair.log("lb1")


def test_init_file_overwrite_keeps_a_drain_across_reload(lab: StandinLab) -> None:
    pair = lab.pair
    # Each box its own file: drain-100 on lb1, drain-90 on lb2.
    drain = pair.workdir / "drain-100"
    lab.start_daemons(_template(FILE_CONF, path=f"{pair.workdir}/drain-\0prio\0", extra=""))
    assert drain.read_text() == "0\n"

    drain.write_text("1\n")  # the operator drains lb1
    assert wait_for(lambda: pair.fast_state("lb1") == "FAULT", 2.0, 0.02) is not None
    assert wait_for(lambda: set(lab.watch.holders(VIP)) == {"lb2"}, 3.0, 0.01) is not None

    with Sampler(lab) as s:
        # A second (unused) block: the track_file kind is rebuilt, init_file
        # is looked at again, and the drain value must survive it.
        extra = f"track_file other {{\n  file {drain}-other\n  init_file 0\n}}\n"
        out = _reload(lab, "lb1", FILE_CONF.format(path=drain, prio=100, vip=VIP, extra=extra))
        assert "restart" not in out["stderr"], out
        time.sleep(2.0)
    assert drain.read_text() == "1\n"
    assert (pair.workdir / "drain-100-other").read_text() == "0\n"  # a missing file is created
    assert pair.fast_state("lb1") == "FAULT"
    assert pair.tracker("lb1", "file")["value"] == 1
    assert all(held == frozenset({"lb2"}) for _, held in s.samples), {h for _, h in s.samples}


def _template(conf: str, **fields: str) -> str:
    """`conf` with `fields` filled in, still a template for prio and vip."""
    text = conf.format(prio="\0prio\0", vip="\0vip\0", **fields)
    text = text.replace("{", "{{").replace("}", "}}")
    return text.replace("\0prio\0", "{prio}").replace("\0vip\0", "{vip}")


def test_a_tracker_dropped_and_readded_is_not_briefed_its_old_value(lab: StandinLab) -> None:
    # The stand-in dies: lb1 (weight-0 track_process) goes to FAULT. A reload
    # drops the reference (lb1 preempts back), the stand-in is started again,
    # and a second reload adds the reference back: lb1 must not be told the
    # value from the time the reference was dropped ("down"), which would
    # fault the MASTER until the new watcher reports "up".
    pair = lab.pair
    pid = lab.standin("lb1")
    lab.standin("lb2")
    lab.start_daemons()
    lb1_conf = STANDIN_CONF.format(prio=100, vip=VIP)
    untracked = lb1_conf.replace("  track_process {\n    chk_haproxy\n  }\n", "")
    assert untracked != lb1_conf

    kill(pid)
    assert wait_for(lambda: pair.fast_state("lb1") == "FAULT", 3.0, 0.02) is not None
    _reload(lab, "lb1", untracked)
    assert wait_for(lambda: pair.fast_state("lb1") == "MASTER", 6.0, 0.05) is not None
    assert wait_for(lambda: set(lab.watch.holders(VIP)) == {"lb1"}, 3.0, 0.01) is not None
    lab.standin("lb1", key="haproxy2")

    with Sampler(lab) as s:
        _reload(lab, "lb1", lb1_conf)
        t = pair.tracker("lb1", "process")
        assert (t["status"], t["count"]) == ("up", 1)
        time.sleep(1.5)
    assert pair.fast_state("lb1") == "MASTER"
    held = {h for _, h in s.samples}
    assert held == {frozenset({"lb1"})}, f"the VIP left lb1 during the reload: {held}"
    assert '"reason": "tracker process:chk_haproxy' not in pair.log("lb1").split("reloading")[-1]


ALL_KINDS = """\
vrrp_track_process chk_haproxy {{
  process haproxy
  weight 0
  quorum_max {qmax}
}}
track_file drain {{
  file {path}
  weight {fweight}
  init_file 0
}}
vrrp_track_http probe {{
  url http://127.0.0.1:9/
  interval {interval}
  timeout 0.1
  weight -5
}}
vrrp_instance VI_1 {{
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority {prio}
  advert_int 1
  virtual_ipaddress {{
    {vip}
  }}
  track_process {{
    chk_haproxy
  }}
  track_file {{
    drain
  }}
  track_http {{
    probe
  }}
}}
"""


def _fds(pid: int) -> list[str]:
    return sorted(os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd"))


def test_fifty_reloads_rebuilding_every_tracker_kind_leak_no_fd(lab: StandinLab) -> None:
    # Each reload changes one setting of every block: the process (pidfds,
    # connector socket), file (inotify fd) and http (probe tasks) sources are
    # all rebuilt, 50 times; the daemon's fds are the same afterwards and the
    # MASTER never lets go of the VIP.
    pair = lab.pair
    for host in ("lb1", "lb2"):
        lab.standin(host)
    path = f"{pair.workdir}/drain-\0prio\0"
    confs = [
        _template(ALL_KINDS, qmax=str(q), path=path, interval=str(i), fweight=w)
        for q, i, w in ((5, 0.5, "0"), (6, 0.6, "-1"))
    ]
    lab.start_daemons(confs[0])
    daemon = children_of(pair.procs["lb1"].pid)[0]
    lb1 = [c.format(prio=100, vip=VIP) for c in confs]
    sock = pair.sock("lb1")

    def reload(text: str) -> None:
        (pair.workdir / "lb1.conf").write_text(text)
        verdict = query(sock, "reload", timeout=10.0)
        assert verdict["ok"] and len(verdict["trackers_rebuilt"]) == 3, verdict

    reload(lb1[1])  # warm up: anything opened once, on the first reload
    reload(lb1[0])
    before = _fds(daemon)
    with Sampler(lab) as s:
        for n in range(50):  # ends as it began, on lb1[0]
            reload(lb1[(n + 1) % 2])
    after = _fds(daemon)
    print(f"daemon fds before {len(before)} after 50 reloads {len(after)}")
    assert after == before
    assert pair.fast_state("lb1") == "MASTER"
    assert {h for _, h in s.samples} == {frozenset({"lb1"})}
    t = {t["kind"]: t for t in pair.inst("lb1")["trackers"]}
    assert (t["process"]["status"], t["file"]["value"], t["http"]["status"]) == ("up", 0, "down")
