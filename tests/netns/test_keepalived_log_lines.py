"""The `keepalived` compat command logs keepalived 2.2.7's lines for the same events.

One scenario, run twice at once in two private LANs: on lb1 the compat
command in one, the real keepalived 2.2.7 in the other, with the real
keepalived as the higher-priority peer on lb2 in both. lb1 starts alone and
takes the VIP, lb2 preempts it, inj sends one lower-priority advert (lb1,
a preempting BACKUP, discards it), lb2 is stopped (its priority-0 advert
reaches lb1, which takes over again), lb1's tracked script fails (FAULT) and
recovers (MASTER again), lb1 is stopped.
The set of keepalived's state-change lines in lb1's log must be the
same for both, so alerts written against keepalived's log keep firing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from pyvrrpd.wire.ipv4 import build_ipv4
from pyvrrpd.wire.vrrp import VRRP_GROUP, AuthType, encode_advert
from tests.netns._nshelp import in_netns
from tests.netns._pair import HOSTS, PLAIN_CONF, VIP, Pair, pair_lan, wait_for

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 missing"),
    pytest.mark.skipif(
        not os.path.exists("/usr/sbin/keepalived"), reason="keepalived 2.2.7 not installed"
    ),
]

# keepalived -l's prefix: "Wed Nov 25 01:33:23 2026: "
CTIME = re.compile(r"^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}: ")
# lb1 waits for its first script result, so keepalived logs no "(init)" line.
EXPECTED = {
    "(VI_1) Receive advertisement timeout",
    "(VI_1) Entering MASTER STATE",
    "(VI_1) setting VIPs.",
    "(VI_1) Master received advert from 192.0.2.12 with higher priority 150, ours 100",
    "(VI_1) Entering BACKUP STATE",
    "(VI_1) received lower priority (50) advert from 192.0.2.66 - discarding",
    "(VI_1) Backup received priority 0 advertisement",  # keepalived: with -D only
    "(VI_1) removing VIPs.",
    "Stopping",
    "(VI_1) sent 0 priority",
    "Stopped",
    "VRRP_Script(chk) succeeded",
    "Script `chk` now returning 1",
    "VRRP_Script(chk) failed (exited with status 1)",
    "(VI_1) Entering FAULT STATE",
    "Script `chk` now returning 0",
}


GLOBAL = """\
global_defs {{
  enable_script_security
  script_user root
}}
vrrp_script chk {{
  script "/usr/bin/test -e {flag}"
  interval 1
  fall 1
  rise 1
}}
"""


def _conf_text(flag: Path) -> str:
    track = "  track_script {\n    chk\n  }"
    return GLOBAL.format(flag=flag) + PLAIN_CONF.format(prio=100, extra=track, vip=VIP)


def _start_compat(pair: Pair, host: str, conf_text: str) -> subprocess.Popen[bytes]:
    """The `keepalived` compat command with the flags _pair.start_keepalived gives keepalived."""
    conf = pair.workdir / f"{host}.conf"
    conf.write_text(conf_text)
    log = open(pair.workdir / f"{host}.log", "ab")  # noqa: SIM115
    code = "import sys; from pyvrrpd.cli.main import keepalived_main; sys.exit(keepalived_main())"
    cmd = ["ip", "netns", "exec", pair.ns(host), sys.executable, "-c", code]
    cmd += ["-n", "-l", "-D", "-G", "-P", "-f", str(conf)]
    cmd += ["-p", str(pair.workdir / f"{host}-ka.pid"), "-r", str(pair.workdir / f"{host}-r.pid")]
    cmd += ["--control-socket", pair.sock(host)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    pair.procs[host] = proc
    return proc


def _send_lower_advert(pair: Pair) -> None:
    """One valid advert at priority 50 from inj (PLAIN_CONF's VRID, VIP and password)."""
    inj = HOSTS["inj"]
    payload = encode_advert(51, 50, (IPv4Address(VIP),), 1, AuthType.PASS, b"1111")
    with in_netns(pair.ns("inj")):
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(inj))
        s.sendto(build_ipv4(IPv4Address(inj), VRRP_GROUP, payload), (str(VRRP_GROUP), 0))
    finally:
        s.close()


def _ka_lines(log: str) -> set[str]:
    """keepalived's texts in a -l log, trimmed to the ones in EXPECTED (Stopped: its prefix)."""
    found: set[str] = set()
    for line in log.splitlines():
        m = CTIME.match(line)
        if not m:
            continue
        text = line[m.end() :].split(" {", 1)[0]
        if text.startswith("Stopped ") and not text.startswith("Stopped -"):
            text = "Stopped"
        if text in EXPECTED:
            found.add(text)
    return found


def _scenario(tmp: Path, compat: bool) -> tuple[set[str], str]:
    tmp.mkdir()
    flag = tmp / "healthy"
    flag.touch()
    with pair_lan(tmp) as pair:
        if compat:
            _start_compat(pair, "lb1", _conf_text(flag))
        else:
            pair.start_keepalived("lb1", 100, conf_text=_conf_text(flag))
        assert wait_for(lambda: pair.holders() == ["lb1"], 10) is not None, pair.log("lb1")
        pair.start_keepalived("lb2", 150)  # preempts lb1
        assert wait_for(lambda: pair.holders() == ["lb2"], 10) is not None, pair.log("lb1")
        _send_lower_advert(pair)  # lb1, BACKUP with preempt, discards it
        discarded = "advert from 192.0.2.66 - discarding"
        assert wait_for(lambda: discarded in pair.log("lb1"), 5) is not None, pair.log("lb1")
        pair.signal("lb2", signal.SIGTERM)  # priority 0: lb1 takes over
        assert wait_for(lambda: pair.holders() == ["lb1"], 10) is not None, pair.log("lb1")
        pair.procs["lb2"].wait(timeout=10)
        flag.unlink()  # the check fails: FAULT, the VIP goes
        assert wait_for(lambda: pair.holders() == [], 10) is not None, pair.log("lb1")
        flag.touch()  # back: BACKUP, then MASTER after Master_Down_Interval
        assert wait_for(lambda: pair.holders() == ["lb1"], 10) is not None, pair.log("lb1")
        pair.signal("lb1", signal.SIGTERM)
        assert pair.procs["lb1"].wait(timeout=10) == 0
        assert pair.holders() == []
        log = pair.log("lb1")
    return _ka_lines(log), log


def test_compat_logs_the_same_lines_as_keepalived(tmp_path: Path) -> None:
    with ThreadPoolExecutor(2) as pool:
        ours = pool.submit(_scenario, tmp_path / "compat", True)
        theirs = pool.submit(_scenario, tmp_path / "keepalived", False)
        (ours_lines, ours_log), (ka_lines, ka_log) = ours.result(), theirs.result()
    assert ka_lines == EXPECTED, ka_log  # the scenario did what it means to
    assert ours_lines == ka_lines, ours_log
    # Each compat line also carries the structured event, as JSON after the text.
    entering = [ln for ln in ours_log.splitlines() if "Entering MASTER STATE" in ln]
    event = json.loads(entering[0][entering[0].index("{") :])
    assert event["event"] == "state_change" and event["new"] == "MASTER"
    assert event["msg"] == "(VI_1) Entering MASTER STATE"
