"""vrrp_sync_group in a real kernel lab (issue 6 item 4).

Two LANs (tests/netns/_pair.py `pair_lan(lans=2)`): on each box VI_LAN runs
on eth0 (VIP 192.0.2.10) and VI_DMZ on eth1 (VIP 198.51.100.10), in one sync
group; lb1 has priority 100, lb2 90. One link going down on the master must
move BOTH VIPs (the group goes FAULT), they come back when it returns, and a
SIGTERM of the master moves both. Then the same with the real keepalived as
the peer (both pairings). A recorder script on the group's generic `notify` shows the GROUP
notifies a user's hook gets.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.netns._helpers import checker_codes
from tests.netns._pair import VIP, VIP2, Pair, ip, logged_pair_lan, wait_for

pytestmark = pytest.mark.netns

SKEW_90 = (256 - 90) / 256  # the backup's Skew_Time (RFC 3768 6.1)
MDI_90 = 3 + SKEW_90
MDI_100 = 3 + (256 - 100) / 256

CONF = """\
global_defs {{
  enable_script_security
  script_user root
}}
vrrp_sync_group VG_1 {{
  group {{
    VI_LAN
    VI_DMZ
  }}
  notify {recorder}
}}
vrrp_instance VI_LAN {{
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority {prio}
  advert_int 1
  authentication {{
    auth_type PASS
    auth_pass 1111
  }}
  virtual_ipaddress {{
    {vip}/24
  }}
}}
vrrp_instance VI_DMZ {{
  state BACKUP
  interface eth1
  virtual_router_id 52
  priority {prio}
  advert_int 1
  authentication {{
    auth_type PASS
    auth_pass 2222
  }}
  virtual_ipaddress {{
    {vip2}/24
  }}
}}
"""

RECORDER = '#!/bin/sh\necho "$@" >> "{out}"\n'


@pytest.fixture
def lan(tmp_path: Path) -> Iterator[Pair]:
    os.chmod(tmp_path, 0o755)
    with logged_pair_lan(tmp_path, lans=2, tail=4000) as p:
        yield p


def conf(lan: Pair, host: str, prio: int) -> str:
    recorder = lan.workdir / f"{host}-notify.sh"
    recorder.write_text(RECORDER.format(out=lan.workdir / f"{host}-notify.out"))
    recorder.chmod(0o755)
    return CONF.format(prio=prio, recorder=recorder, vip=VIP, vip2=VIP2)


def notifies(lan: Pair, host: str) -> list[str]:
    out = lan.workdir / f"{host}-notify.out"
    lines = out.read_text().splitlines() if out.exists() else []
    return [ln for ln in lines if ln.startswith("GROUP")]


def holds(lan: Pair, host: str) -> tuple[bool, bool]:
    """(has 192.0.2.10 on eth0, has 198.51.100.10 on eth1)."""
    ns = lan.ns(host)
    lan0 = ip("-n", ns, "-4", "-o", "addr", "show", "dev", "eth0").stdout
    lan1 = ip("-n", ns, "-4", "-o", "addr", "show", "dev", "eth1").stdout
    return f" {VIP}/" in lan0, f" {VIP2}/" in lan1


def both_on(lan: Pair, host: str) -> bool:
    other = "lb2" if host == "lb1" else "lb1"
    return holds(lan, host) == (True, True) and holds(lan, other) == (False, False)


def link(lan: Pair, host: str, ifname: str, state: str) -> None:
    ip("-n", lan.ns(host), "link", "set", ifname, state)


def scenario(lan: Pair, kinds: tuple[str, str]) -> None:
    """lb1 (priority 100) and lb2 (90) run `kinds` (pyvrrpd or keepalived)."""
    assert wait_for(lambda: both_on(lan, "lb1"), timeout=8.0) is not None, (
        holds(lan, "lb1"),
        holds(lan, "lb2"),
    )
    # keepalived notifies the group's BACKUP at start, then MASTER.
    want = ["GROUP VG_1 BACKUP 0", "GROUP VG_1 MASTER 0"]
    assert wait_for(lambda: notifies(lan, "lb1") == want, 2.0), notifies(lan, "lb1")
    seen2 = len(notifies(lan, "lb2"))

    # eth1 down on the master: its group goes FAULT, VI_LAN resigns with
    # priority 0; the peer's VI_DMZ hears nothing and takes over after its
    # Master_Down_Interval, its VI_LAN waits for it, then both move together.
    t0 = time.monotonic()
    link(lan, "lb1", "eth1", "down")
    took = wait_for(lambda: both_on(lan, "lb2"), timeout=MDI_90 + 2.0)
    print(f"eth1 down on lb1: both VIPs on lb2 after {took} s (MDI {MDI_90:.3f} s)")
    assert took is not None and took < MDI_90 + 1.0
    if kinds[1] == "pyvrrpd":
        groups = lan.status_all("lb2")["sync_groups"]
        assert groups == [{"name": "VG_1", "state": "MASTER", "members": ["VI_LAN", "VI_DMZ"]}]
    if kinds[0] == "pyvrrpd":
        assert lan.status_all("lb1")["sync_groups"][0]["state"] == "FAULT"
    assert wait_for(lambda: notifies(lan, "lb1")[-1:] == ["GROUP VG_1 FAULT 0"], 2.0)
    assert wait_for(lambda: notifies(lan, "lb2")[seen2:] == ["GROUP VG_1 MASTER 0"], 2.0), notifies(
        lan, "lb2"
    )

    # The link returns: lb1 leaves FAULT and, priority 100 with preempt,
    # takes both back.
    link(lan, "lb1", "eth1", "up")
    took = wait_for(lambda: both_on(lan, "lb1"), timeout=MDI_100 + 3.0)
    print(f"eth1 up on lb1: both VIPs back on lb1 after {took} s")
    assert took is not None
    assert notifies(lan, "lb1")[-2:] == ["GROUP VG_1 BACKUP 0", "GROUP VG_1 MASTER 0"]
    assert wait_for(lambda: notifies(lan, "lb2")[-1:] == ["GROUP VG_1 BACKUP 0"], 2.0)

    # SIGTERM of the master: priority 0 on both LANs; both move within Skew_Time.
    t0 = time.monotonic()
    lan.signal("lb1", signal.SIGTERM)
    took = wait_for(lambda: both_on(lan, "lb2"), timeout=3.0)
    print(f"SIGTERM of lb1: both VIPs on lb2 after {took} s (Skew_Time {SKEW_90:.3f} s)")
    assert took is not None and took < SKEW_90 + 0.5
    lan.procs["lb1"].wait(timeout=5)
    assert notifies(lan, "lb1")[-1] == "GROUP VG_1 STOP 0"
    assert time.monotonic() - t0 < 5


@pytest.mark.parametrize(
    "kinds",
    [("pyvrrpd", "pyvrrpd"), ("pyvrrpd", "keepalived"), ("keepalived", "pyvrrpd")],
    ids=["pyvrrpd-pair", "keepalived-backup", "keepalived-master"],
)
def test_one_link_down_moves_both_vips(lan: Pair, kinds: tuple[str, str]) -> None:
    if "keepalived" in kinds and not os.path.exists("/usr/sbin/keepalived"):
        pytest.skip("keepalived not installed")
    for host, prio, kind in (("lb1", 100, kinds[0]), ("lb2", 90, kinds[1])):
        start = lan.start if kind == "pyvrrpd" else lan.start_keepalived
        start(host, prio, conf_text=conf(lan, host, prio))
    scenario(lan, kinds)
    print("group notifies:", {h: notifies(lan, h) for h in ("lb1", "lb2")})
    # The master's whole story, the same lines whether lb1 runs keepalived or pyvrrpd.
    states = ["BACKUP", "MASTER", "FAULT", "BACKUP", "MASTER", "STOP"]
    assert notifies(lan, "lb1") == [f"GROUP VG_1 {s} 0" for s in states]


def test_sync_group_conf_passes_both_checkers(lan: Pair) -> None:
    """conf/sync-group.conf: exit 0 from `pyvrrpd check-config` and the real
    `keepalived -t`, both in lb1's namespace (it has eth0 and eth1)."""
    if not os.path.exists("/usr/sbin/keepalived"):
        pytest.skip("keepalived not installed")
    conf = Path(__file__).resolve().parents[2] / "conf" / "sync-group.conf"
    ns = lan.ns("lb1")
    for cmd in (
        ["/usr/sbin/keepalived", "-t", "-f", str(conf)],
        [sys.executable, "-m", "pyvrrpd", "check-config", "-f", str(conf)],
    ):
        out = subprocess.run(
            ["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, timeout=30
        )
        assert out.returncode == 0, (cmd[0], out.stdout, out.stderr)


PARITY_HEAD = """\
global_defs {
  enable_script_security
  script_user root
}
vrrp_script chk {
  script "/bin/true"
  weight 10
}
vrrp_script chk0 {
  script "/bin/true"
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 51
  virtual_ipaddress {
    192.0.2.10
  }
  track_script {
    chk0
  }
}
vrrp_instance VI_2 {
  interface eth1
  virtual_router_id 52
  virtual_ipaddress {
    198.51.100.10
  }
}
"""
GROUP = "vrrp_sync_group {name} {{\n  group {{\n{members}  }}\n{extra}}}\n"


def group(members: str, extra: str = "", name: str = "G") -> str:
    lines = "".join(f"    {m}\n" for m in members.split())
    return GROUP.format(name=name, members=lines, extra=extra)


PARITY = {
    # name: (config tail, keepalived 2.2.7's `-t` exit code, checked by hand too)
    "ok": (group("VI_1 VI_2", '  notify "/usr/bin/logger -t x"\n  smtp_alert\n'), 0),
    "one_member": (group("VI_1"), 5),
    "two_groups": (group("VI_1 VI_2") + group("VI_2", name="H"), 5),
    "unknown_member": (group("VI_1 VI_3"), 5),
    "empty": ("vrrp_sync_group G {\n}\n", 5),
    "script_on_both": (
        group(
            "VI_1 VI_2", "  track_script {\n    chk0 weight 5\n  }\n  sync_group_tracking_weight\n"
        ),
        0,
    ),
    "weights_global_tracking": (
        group(
            "VI_1 VI_2",
            "  track_script {\n    chk\n  }\n  track_interface {\n    eth0 weight 5\n  }\n"
            "  global_tracking\n",
        ),
        5,
    ),
}


def test_check_config_exit_codes_match_keepalived(lan: Pair) -> None:
    """`pyvrrpd check-config` gives keepalived -t's exit code on sync-group configs."""
    if not os.path.exists("/usr/sbin/keepalived"):
        pytest.skip("keepalived not installed")
    got = {}
    for name, (tail, _) in PARITY.items():
        path = lan.workdir / f"parity-{name}.conf"
        path.write_text(PARITY_HEAD + tail)
        got[name] = checker_codes(lan, path)
    assert got == {name: (rc, rc) for name, (_, rc) in PARITY.items()}
