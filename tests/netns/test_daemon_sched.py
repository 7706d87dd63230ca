"""global_defs scheduling on a real daemon: realtime and locked, its scripts not.

`vrrp_rt_priority 10` and `vrrp_no_swap` on lb1: what `chrt -p` and
/proc/PID/status show for the daemon, and what a track script sees of its own
scheduling (keepalived resets scripts to normal scheduling; so does pyvrrpd,
through SCHED_RESET_ON_FORK). The daemon still becomes MASTER with the VIP.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.netns._pair import PLAIN_CONF, VIP, Pair, wait_for

pytestmark = pytest.mark.netns

HEAD = """\
global_defs {{
  vrrp_rt_priority 10
  vrrp_no_swap
}}
vrrp_script chk_sched {{
  script "{script}"
  interval 1
  weight 0
}}
"""
TRACK = "  track_script {\n    chk_sched\n  }"


def test_daemon_realtime_and_locked_scripts_normal(pair: Pair, tmp_path: Path) -> None:
    if shutil.which("chrt") is None:
        pytest.skip("missing tool: chrt")
    seen = tmp_path / "script-sched.txt"
    script = tmp_path / "chk_sched.sh"
    # nice is field 19 of /proc/PID/stat (the command field has no spaces here).
    script.write_text(
        f"#!/bin/sh\nchrt -p $$ > {seen}.tmp\n"
        f"echo nice $(cut -d' ' -f19 /proc/$$/stat) >> {seen}.tmp\nmv {seen}.tmp {seen}\n"
    )
    script.chmod(0o755)
    conf = HEAD.format(script=script) + PLAIN_CONF.format(prio=100, extra=TRACK, vip=VIP)
    pid = pair.start("lb1", 100, conf_text=conf).pid

    assert wait_for(lambda: pair.holders() == ["lb1"], timeout=10.0) is not None
    assert os.sched_getscheduler(pid) & ~os.SCHED_RESET_ON_FORK == os.SCHED_RR
    assert os.sched_getparam(pid).sched_priority == 10
    status = Path(f"/proc/{pid}/status").read_text()
    locked_kb = int(next(x for x in status.splitlines() if x.startswith("VmLck:")).split()[1])
    assert locked_kb > 1024, status  # the interpreter's touched pages, at least

    assert wait_for(seen.exists, timeout=5.0) is not None
    out = seen.read_text()
    assert "SCHED_OTHER" in out and "nice 0" in out, out
    assert '"process_scheduling"' in pair.log("lb1")
