"""The daemon as PID 1 of a container reaps its scripts' orphans (issue 5 item 10).

`pyvrrpd run` is started as PID 1 of a new PID namespace (``unshare --pid
--fork`` inside a network namespace of ours), with a check script that leaves
three background sleeps behind on every run. Nobody but the daemon can reap
them there. Zombies in that namespace are counted through the host's /proc
(processes whose parent is the daemon) while the script's result is flipped
from success to failure and back: the orphans never pile up and the
instance follows the script (MASTER, FAULT, MASTER).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyvrrpd.shell.ops.control import query
from tests.netns._pair import ip, wait_for
from tests.netns._pidns import children_of

pytestmark = pytest.mark.netns

VIP = "192.0.2.10"

CONF = """\
vrrp_script chk {{
  script "/bin/sh -c 'sleep 0.1 & sleep 0.2 & sleep 0.3 & test -e {flag}'"
  interval 1
  fall 2
  rise 2
}}
vrrp_instance VI_1 {{
  state BACKUP
  interface veth0
  virtual_router_id 51
  priority 100
  advert_int 1
  virtual_ipaddress {{
    {vip}
  }}
  track_script {{
    chk
  }}
}}
"""


def _zombies_of(pid: int) -> int:
    count = 0
    for child in children_of(pid):
        with contextlib.suppress(OSError):
            data = Path(f"/proc/{child}/stat").read_bytes()
            if data[data.rfind(b")") + 2 :].split()[0] == b"Z":
                count += 1
    return count


@pytest.fixture
def netns() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("needs root (network and PID namespaces)")
    if shutil.which("unshare") is None:
        pytest.skip("missing tool: unshare")
    ns = f"pvreap-{secrets.token_hex(3)}"
    try:
        ip("netns", "add", ns)
        ip("-n", ns, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1")
        for dev in ("lo", "veth0", "veth1"):
            ip("-n", ns, "link", "set", dev, "up")
        ip("-n", ns, "addr", "add", "192.0.2.11/24", "dev", "veth0")
        yield ns
    finally:
        for pid in ip("netns", "pids", ns, check=False).stdout.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        ip("netns", "del", ns, check=False)
        assert not os.path.exists(f"/run/netns/{ns}")


def test_daemon_as_pid1_reaps_script_orphans(netns: str, tmp_path: Path) -> None:
    flag = tmp_path / "healthy"
    flag.write_text("")
    conf = tmp_path / "pyvrrpd.conf"
    conf.write_text(CONF.format(flag=flag, vip=VIP))
    sock = str(tmp_path / "ctl.sock")
    log = tmp_path / "daemon.log"
    cmd = ["ip", "netns", "exec", netns, "unshare", "--pid", "--fork", "--mount-proc"]
    cmd += ["--kill-child", sys.executable, "-m", "pyvrrpd", "run", "-f", str(conf)]
    cmd += ["--control-socket", sock, "--log-format", "json"]
    with open(log, "wb") as out:
        unshare = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=os.getcwd())
    samples: list[int] = []
    stop = threading.Event()
    try:
        assert wait_for(lambda: bool(children_of(unshare.pid)), timeout=5) is not None
        daemon = children_of(unshare.pid)[0]  # PID 1 in its namespace

        def sample() -> None:
            while not stop.wait(0.1):
                samples.append(_zombies_of(daemon))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()

        def state() -> str | None:
            try:
                return str(query(sock, timeout=2)["instances"][0]["state"])
            except Exception:
                return None

        def has_vip() -> bool:
            out = ip("-n", netns, "-4", "-o", "addr", "show", "dev", "veth0").stdout
            return f" {VIP}/" in out

        assert wait_for(lambda: state() == "MASTER" and has_vip(), timeout=10) is not None, state()
        flag.unlink()  # the check now fails: FAULT after two runs, VIP released
        assert wait_for(lambda: state() == "FAULT" and not has_vip(), timeout=6) is not None
        flag.write_text("")
        assert wait_for(lambda: state() == "MASTER" and has_vip(), timeout=10) is not None
        stop.set()
        sampler.join()
        runs = len(samples) / 10  # about one script run (three orphans) per second
        text = log.read_text(errors="replace")
        print(
            f"\n{len(samples)} samples over ~{runs:.0f} s, {3 * runs:.0f} orphans made; "
            f"zombies at most {max(samples)}, at the end {samples[-1]}"
        )
        assert runs >= 8
        # Reaped within about two sweeps: never more than two runs' worth.
        assert max(samples) <= 6, samples
        assert '"script_failed"' in text  # once, when the flag went away
        assert text.count('"script_failed"') == 1, text
        assert "Unknown child process" not in text
        assert "Traceback" not in text
        assert unshare.poll() is None
    finally:
        stop.set()
        unshare.kill()  # --kill-child: SIGKILL to the daemon, and so its namespace
        unshare.wait(timeout=5)
