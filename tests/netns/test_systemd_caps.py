"""The units' CapabilityBoundingSet keeps the guide's scripts working (issue 7 item 5).

PID 1 here is not systemd, so the unit's set is applied the way systemd
applies it to a root service: `setpriv --bounding-set` (a root process's
permitted and effective sets are then the bounding set). In lb1's network
namespace, with a private PID namespace (so `killall` sees only this
test's HAProxy), HAProxy runs as user `haproxy` and `pyvrrpd run` runs under
exactly the set read from systemd/pyvrrpd.service: the track script
`killall -0 haproxy` must pass (CAP_KILL: HAProxy is another user's
process), so the instance becomes MASTER with its VIP; its notify_master
script runs as user nobody (CAP_SETUID/CAP_SETGID) and writes its uid.
Control: the same set without CAP_KILL makes `killall -0 haproxy` fail.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.netns._pair import VIP, Pair, wait_for

pytestmark = pytest.mark.netns

REPO = Path(__file__).resolve().parents[2]

HAPROXY_CFG = """\
global
    user haproxy
    group haproxy
    daemon
    pidfile {run}/haproxy.pid
defaults
    mode tcp
    timeout connect 1s
    timeout client 1s
    timeout server 1s
frontend fe
    bind 127.0.0.1:8080
    default_backend be
backend be
    server s1 127.0.0.1:9
"""

CONF = """\
vrrp_script chk_haproxy {{
  script "{check}"
  interval 1
  fall 1
  rise 1
}}
vrrp_instance VI_1 {{
  state MASTER
  interface eth0
  virtual_router_id 51
  priority 150
  advert_int 1
  virtual_ipaddress {{
    {vip}
  }}
  track_script {{
    chk_haproxy
  }}
  notify_master "{notify}" nobody
}}
"""


def unit_caps(unit: str) -> list[str]:
    text = (REPO / "systemd" / unit).read_text()
    m = re.search(r"^CapabilityBoundingSet=(.*)$", text, re.M)
    assert m, f"{unit} has no CapabilityBoundingSet"
    return m.group(1).split()


def setpriv_set(caps: list[str]) -> str:
    return "-all," + ",".join("+" + c.lower().removeprefix("cap_") for c in caps)


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) missing")
@pytest.mark.skipif(shutil.which("killall") is None, reason="killall (psmisc) missing")
def test_unit_capability_set_runs_check_and_notify_scripts(pair: Pair) -> None:
    caps = unit_caps("pyvrrpd.service")
    assert unit_caps("keepalived.service") == caps
    assert {"CAP_KILL", "CAP_SETUID", "CAP_SETGID", "CAP_NET_ADMIN", "CAP_NET_RAW"} <= set(caps)
    without_kill = [c for c in caps if c != "CAP_KILL"]
    # Scripts and their output where user nobody can reach them (pytest's tmp is 0700).
    base = Path(tempfile.mkdtemp(prefix="pvd-caps-"))
    try:
        base.chmod(0o755)
        out = base / "out"
        out.mkdir()
        out.chmod(0o777)
        check = base / "check_haproxy.sh"
        check.write_text("#!/bin/sh\nkillall -0 haproxy\n")
        notify = base / "notify.sh"
        notify.write_text(f"#!/bin/sh\nid -u > {out}/notify_uid\n")
        for p in (check, notify):
            p.chmod(0o755)
        (base / "haproxy.cfg").write_text(HAPROXY_CFG.format(run=base))
        conf = pair.workdir / "caps.conf"
        conf.write_text(CONF.format(check=check, notify=notify, vip=VIP))
        inner = (
            f"haproxy -f {base}/haproxy.cfg || exit 90\n"
            f"setpriv --bounding-set={setpriv_set(without_kill)} {check}; "
            f"echo $? > {out}/without_kill\n"
            f"exec setpriv --bounding-set={setpriv_set(caps)} {sys.executable} -m pyvrrpd run "
            f"-f {conf} --control-socket {pair.sock('lb1')} --log-format json\n"
        )
        cmd = ["ip", "netns", "exec", pair.ns("lb1")]
        cmd += ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "sh", "-c", inner]
        log = open(pair.workdir / "lb1.log", "ab")  # noqa: SIM115
        pair.procs["lb1"] = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO)
        )
        assert wait_for(lambda: pair.state("lb1") == "MASTER" and pair.has_vip("lb1"), 8.0), (
            pair.log("lb1")
        )
        st = pair.status("lb1")
        assert st["trackers"][0]["status"] == "up", st  # type: ignore[index]
        uid_file = out / "notify_uid"
        assert wait_for(uid_file.exists, 5.0), pair.log("lb1")
        assert uid_file.read_text().strip() == "65534"  # nobody
        assert (out / "without_kill").read_text().strip() != "0", "CAP_KILL was not needed?"
        print(f"\nunit capability set ({len(caps)}): {' '.join(caps)}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_unit_capability_set_is_the_daemons_own(tmp_path: Path) -> None:
    """setpriv with the unit's set really bounds the daemon (no CAP_SYS_ADMIN in CapBnd)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv")
    caps = unit_caps("pyvrrpd.service")
    out = subprocess.run(
        ["setpriv", f"--bounding-set={setpriv_set(caps)}", "grep", "CapBnd", "/proc/self/status"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    bnd = int(out.split()[1], 16)
    assert not bnd & (1 << 21), "CAP_SYS_ADMIN still in the bounding set"
    assert bnd & (1 << 5), "CAP_KILL missing"
