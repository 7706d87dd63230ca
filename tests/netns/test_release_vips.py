"""`pyvrrpd release-vips` after a crash: the dead master's VIP goes, the backup takes over fast.

After SIGKILL the VIP stays on the dead box (as with keepalived 2.2.7) and
the backup waits a whole Master_Down_Interval. release-vips removes what
the daemon recorded under its run-state file and sends priority 0, so the
backup takes over after its Skew_Time (RFC 3768 6.4.2). Also: it refuses
while the daemon runs, and leaves a -V daemon's VIPs in place.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.netns._pair import VIP, Pair, wait_for

pytestmark = pytest.mark.netns

COMPAT = "import sys; from pyvrrpd.cli import keepalived_main; sys.exit(keepalived_main())"

CONF = """\
vrrp_instance VI_1 {{
  state {state}
  interface eth0
  virtual_router_id 51
  priority {prio}
  advert_int 1
  authentication {{
    auth_type PASS
    auth_pass 1111
  }}
  virtual_ipaddress {{
    {vip}
  }}
}}
"""

SKEW_100 = (256 - 100) / 256  # lb2 (backup, priority 100): Skew_Time 0.609 s
MDI_50 = 3 + (256 - 50) / 256  # lb1 back as a priority-50 backup: 3.805 s


def release(pair: Pair, host: str, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = ["ip", "netns", "exec", pair.ns(host), sys.executable, "-m", "pyvrrpd", "release-vips"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=20)


def kill9(pair: Pair, host: str) -> None:
    proc = pair.procs[host]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=5)


def test_release_after_sigkill_hands_over_in_skew_time(pair: Pair) -> None:
    pair.start("lb1", 0, conf_text=CONF.format(state="MASTER", prio=150, vip=VIP))
    pair.start("lb2", 0, conf_text=CONF.format(state="BACKUP", prio=100, vip=VIP))
    assert wait_for(lambda: pair.state("lb1") == "MASTER" and pair.has_vip("lb1"), 8.0)
    assert wait_for(lambda: pair.state("lb2") == "BACKUP", 5.0)
    record_path = Path(pair.sock("lb1")[: -len(".sock")] + ".state")
    record = json.loads(record_path.read_text())
    assert record["instances"]["VI_1"]["state"] == "MASTER"
    assert record["instances"]["VI_1"]["vips"] == [[VIP, 32, "eth0"]]

    # A running daemon: refused, one line, nothing touched.
    busy = release(pair, "lb1", "--control-socket", pair.sock("lb1"))
    assert busy.returncode != 0
    assert len(busy.stderr.strip().splitlines()) == 1, busy.stderr
    assert "refusing" in busy.stderr and "still runs" in busy.stderr
    assert pair.has_vip("lb1") and record_path.exists()

    kill9(pair, "lb1")
    time.sleep(0.2)
    assert pair.holders() == ["lb1"], "the dead master keeps its VIP until released"

    # Sample lb2 every 10 ms from the start of the release.
    took: list[float] = []

    def watch() -> None:
        while time.monotonic() - t0 < 5.0:
            if pair.has_vip("lb2"):
                took.append(time.monotonic())
                return
            time.sleep(0.01)

    t0 = time.monotonic()
    sampler = threading.Thread(target=watch)
    sampler.start()
    done = release(pair, "lb1", "--control-socket", pair.sock("lb1"))
    t_end = time.monotonic()
    sampler.join()
    assert done.returncode == 0, done.stderr
    assert "sent priority 0" in done.stdout and f"removed {VIP}/32 from eth0" in done.stdout
    assert not pair.has_vip("lb1")
    assert not record_path.exists()
    assert took, "the backup never took the VIP"
    since_end = took[0] - t_end
    print(
        f"\nrelease-vips: command {t_end - t0:.3f} s; backup holds the VIP "
        f"{took[0] - t0:.3f} s after it started, {since_end:.3f} s after it returned "
        f"(Skew_Time {SKEW_100:.3f} s)"
    )
    assert since_end <= SKEW_100 + 0.1
    assert pair.state("lb2") == "MASTER"

    again = release(pair, "lb1", "--control-socket", pair.sock("lb1"))
    assert again.returncode == 0 and "nothing to release" in again.stdout

    # The figure without release-vips: lb1 back as a low-priority backup,
    # then lb2 killed: lb1 waits its whole Master_Down_Interval.
    pair.start("lb1", 0, conf_text=CONF.format(state="BACKUP", prio=50, vip=VIP))
    assert wait_for(lambda: pair.state("lb1") == "BACKUP", 5.0)
    kill9(pair, "lb2")
    t_kill = time.monotonic()
    assert wait_for(lambda: pair.has_vip("lb1"), 6.0)
    without = time.monotonic() - t_kill
    print(
        f"SIGKILL without release-vips: backup holds the VIP after {without:.3f} s "
        f"(Master_Down_Interval {MDI_50:.3f} s), and the dead box still has it: "
        f"{pair.has_vip('lb2')}"
    )
    assert without > 3.0
    assert pair.has_vip("lb2"), "SIGKILL leaves the VIP on the dead box"
    cleanup = release(pair, "lb2", "--control-socket", pair.sock("lb2"))
    assert cleanup.returncode == 0, cleanup.stderr
    assert pair.holders() == ["lb1"]


def test_dont_release_vrrp_leaves_the_vip(pair: Pair, tmp_path: Path) -> None:
    conf = tmp_path / "ka1.conf"
    conf.write_text(CONF.format(state="MASTER", prio=150, vip=VIP))
    pid_file = tmp_path / "ka1.pid"
    cmd = ["ip", "netns", "exec", pair.ns("lb1"), sys.executable, "-c", COMPAT]
    cmd += ["-n", "-l", "-V", "-f", str(conf), "-p", str(pid_file)]
    cmd += ["-r", str(tmp_path / "ka1-vrrp.pid")]
    log = open(tmp_path / "ka1.log", "ab")  # noqa: SIM115
    pair.procs["lb1"] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    assert wait_for(lambda: pair.has_vip("lb1"), 8.0)
    record_path = tmp_path / "ka1.pyvrrpd.state"
    assert wait_for(record_path.exists, 2.0)
    kill9(pair, "lb1")
    kept = release(pair, "lb1", "--pid-file", str(pid_file))
    assert kept.returncode == 0, kept.stderr
    assert "left in place" in kept.stdout and "-V" in kept.stdout
    assert pair.has_vip("lb1")


AH_CONF = """\
vrrp_instance VI_1 {{
  state {state}
  interface eth0
  virtual_router_id 51
  priority {prio}
  advert_int 1
  authentication {{
    auth_type AH
    auth_pass s3cret
  }}
  virtual_ipaddress {{
    {vip}
  }}
}}
"""


def test_release_with_ah_continues_the_sequence(pair: Pair) -> None:
    """The priority-0 advert carries AH with a number above the backup's counter."""
    pair.start("lb1", 0, conf_text=AH_CONF.format(state="MASTER", prio=150, vip=VIP))
    pair.start("lb2", 0, conf_text=AH_CONF.format(state="BACKUP", prio=100, vip=VIP))
    assert wait_for(lambda: pair.state("lb1") == "MASTER" and pair.state("lb2") == "BACKUP", 8.0)
    time.sleep(1.5)  # a few AH adverts: the backup's counter moved on
    kill9(pair, "lb1")
    done = release(pair, "lb1", "--control-socket", pair.sock("lb1"))
    assert done.returncode == 0, done.stderr
    assert "(AH, sequence" in done.stdout
    took = wait_for(lambda: pair.has_vip("lb2"), 3.0)
    assert took is not None
    print(f"\nAH release: backup holds the VIP {took:.3f} s after release-vips returned")
    assert took <= SKEW_100 + 0.1
    assert pair.status("lb2")["stats"]["pri_zero_rcvd"] == 1  # type: ignore[index]


VMAC_CONF = """\
vrrp_instance VI_1 {{
  state MASTER
  interface eth0
  virtual_router_id 51
  priority 150
  advert_int 1
  use_vmac vrrp.51
  no_accept
  virtual_ipaddress {{
    {vip}
  }}
  virtual_routes {{
    203.0.113.0/24 via 192.0.2.66 dev eth0
  }}
  virtual_rules {{
    from {vip} table 100 priority 100
  }}
}}
"""


def nft_tables(pair: Pair, host: str) -> str:
    cmd = ["ip", "netns", "exec", pair.ns(host), "nft", "list", "tables"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout


def vmac_present(pair: Pair, host: str) -> bool:
    cmd = ["ip", "-n", pair.ns(host), "link", "show", "vrrp.51"]
    return subprocess.run(cmd, capture_output=True, timeout=10).returncode == 0


def routes_and_rules(pair: Pair, host: str) -> str:
    routes = subprocess.run(
        ["ip", "-n", pair.ns(host), "route", "show"], capture_output=True, text=True, timeout=10
    ).stdout
    rules = subprocess.run(
        ["ip", "-n", pair.ns(host), "rule", "show"], capture_output=True, text=True, timeout=10
    ).stdout
    return routes + rules


def test_release_removes_vmac_nft_table_and_virtual_routes(pair: Pair) -> None:
    if subprocess.run(["which", "nft"], capture_output=True).returncode != 0:
        pytest.skip("nft missing")
    pair.start("lb1", 0, conf_text=VMAC_CONF.format(vip=VIP))
    out = ["ip", "-n", pair.ns("lb1"), "-4", "-o", "addr", "show", "dev", "vrrp.51"]

    def vip_on_vmac() -> bool:
        r = subprocess.run(out, capture_output=True, text=True, timeout=10)
        return f" {VIP}/" in r.stdout

    assert wait_for(vip_on_vmac, 8.0), pair.log("lb1")
    assert wait_for(lambda: "keepalived" in nft_tables(pair, "lb1"), 3.0)
    assert wait_for(lambda: "203.0.113.0/24" in routes_and_rules(pair, "lb1"), 3.0)
    assert "lookup 100" in routes_and_rules(pair, "lb1")
    kill9(pair, "lb1")
    assert vmac_present(pair, "lb1") and "keepalived" in nft_tables(pair, "lb1")
    done = release(pair, "lb1", "--control-socket", pair.sock("lb1"))
    assert done.returncode == 0, done.stderr
    print("\n" + done.stdout)
    assert "sent priority 0" in done.stdout
    assert not vmac_present(pair, "lb1")
    assert "keepalived" not in nft_tables(pair, "lb1")
    left = routes_and_rules(pair, "lb1")
    assert "203.0.113.0/24" not in left and "lookup 100" not in left
