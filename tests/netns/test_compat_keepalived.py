"""The `keepalived` compat command as the guide uses it: found by pidof, stopped by killall."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.netns._pair import ip

pytestmark = pytest.mark.netns

CONF = """\
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 51
  priority 150
  virtual_ipaddress {
    192.0.2.10
  }
}
"""


def test_pidof_and_killall_find_the_compat_daemon(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (network and pid namespaces)")
    for tool in ("pidof", "killall", "unshare"):
        if shutil.which(tool) is None:
            pytest.skip(f"missing tool: {tool}")
    compat = Path(sys.executable).parent / "keepalived"
    if not compat.exists():
        pytest.skip(f"{compat} not installed (pip install -e .)")
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF)
    ns = f"pvk{os.getpid() % 10000}"
    ip("netns", "add", ns)
    try:
        ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
        ip("-n", ns, "addr", "add", "192.0.2.50/24", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
        ip("-n", ns, "link", "set", "eth0p", "up")
        # A private pid namespace: pidof/killall see only this host's processes.
        script = textwrap.dedent(
            f"""
            {compat} -n -l -f {conf} -p {tmp_path}/k.pid -r {tmp_path}/kv.pid \\
                --control-socket {tmp_path}/k.sock >{tmp_path}/k.log 2>&1 &
            for i in $(seq 100); do pidof keepalived >/dev/null && break; sleep 0.05; done
            echo "pidof=$(pidof keepalived)"
            echo "comm=$(cat /proc/$!/comm)"
            for i in $(seq 100); do [ -S {tmp_path}/k.sock ] && break; sleep 0.05; done
            killall keepalived
            wait $!
            echo "rc=$?"
            """
        )
        out = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                ns,
                "unshare",
                "--pid",
                "--fork",
                "--mount-proc",
                "bash",
                "-c",
                script,
            ],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
    finally:
        ip("netns", "del", ns, check=False)
    log = (tmp_path / "k.log").read_text()
    assert "pidof=2" in out, out + log
    assert "comm=keepalived" in out
    assert "rc=0" in out, out + log  # SIGTERM from killall is a clean stop
    assert '"event": "stopped"' in log
