"""`script "pidof haproxy"` works (issue 5, bullet 3): exactly one box holds the VIP.

Debian's pidof is a symlink to killall5, which behaves as pidof only when
argv[0] says ``pidof``. With weight 0 a failing check means FAULT, so a
runner that rewrote argv[0] to the resolved path left both boxes in FAULT and
no VIP anywhere (keepalived 2.2.7 does exactly that on Debian 12). Each box
runs in its own PID namespace with a stand-in named ``haproxy`` (a copy of
sleep), so each pidof sees only its own host.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.netns._pair import PLAIN_CONF, VIP, Pair, wait_for
from tests.netns._pidns import kill, start_daemon, start_holder, start_in

pytestmark = pytest.mark.netns

HEAD = """\
global_defs {{
  router_id {host}
  enable_script_security
  script_user root
}}
vrrp_script chk_haproxy {{
  script "pidof haproxy"
  interval 1
  weight 0
}}
"""
TRACK = "  track_script {\n    chk_haproxy\n  }"


def _conf(pair: Pair, host: str, prio: int) -> Path:
    path = pair.workdir / f"{host}.conf"
    body = PLAIN_CONF.format(prio=prio, extra=TRACK, vip=VIP)
    path.write_text(HEAD.format(host=host) + body)
    return path


def _one_holder_for(pair: Pair, host: str, settle: float = 1.5) -> None:
    took = wait_for(lambda: pair.holders() == [host], timeout=8.0)
    assert took is not None, f"holders: {pair.holders()}"
    assert wait_for(lambda: pair.holders() != [host], timeout=settle) is None, pair.holders()


def test_pidof_check_elects_exactly_one_master_and_follows_haproxy(
    pair: Pair, tmp_path: Path
) -> None:
    for tool in ("pidof", "nsenter", "unshare"):
        if shutil.which(tool) is None:
            pytest.skip(f"missing tool: {tool}")
    standin = tmp_path / "bin" / "haproxy"
    standin.parent.mkdir()
    shutil.copy("/bin/sleep", standin)
    holders = {h: start_holder(pair, h) for h in ("lb1", "lb2")}
    haproxy = {
        h: start_in(pair, f"{h}-haproxy", holders[h], [str(standin), "600"]) for h in holders
    }
    start_daemon(pair, "lb1", holders["lb1"], _conf(pair, "lb1", 150))
    start_daemon(pair, "lb2", holders["lb2"], _conf(pair, "lb2", 100))

    _one_holder_for(pair, "lb1")
    for host in ("lb1", "lb2"):
        status = pair.status(host)
        assert [t["status"] for t in status["trackers"]] == ["up"], status  # type: ignore[attr-defined]
    assert pair.status("lb2")["state"] == "BACKUP"

    # HAProxy dies on the master: its check fails, it goes to FAULT, lb2 takes over.
    kill(haproxy["lb1"])
    _one_holder_for(pair, "lb2")
    assert pair.status("lb1")["state"] == "FAULT"

    # Back on lb1: it leaves FAULT and, higher priority with preempt, takes the VIP back.
    start_in(pair, "lb1-haproxy2", holders["lb1"], [str(standin), "600"])
    _one_holder_for(pair, "lb1", settle=0.5)
    assert '"script_failed"' in pair.log("lb1")
    assert '"script_failed"' not in pair.log("lb2")
