"""Two MASTERs from a bad source address or a resolved duplicate VRID (issue 6 review).

- `unicast_src_ip` that is not local: the kernel refuses every advert
  (IP_PKTINFO needs a local source), so a MASTER would keep the VIP and go
  silent while its peer takes it too. keepalived 2.2.7 enters FAULT ("src
  address not configured"); so must pyvrrpd, and also when the address goes
  away later (keepalived keeps sending from it without track_src_ip).
- Two instances with one VRID whose `interface` comes from unicast_src_ip:
  pyvrrpd must refuse to start, naming both.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.netns._pair import HOSTS, VIP, Pair, ip, logged_pair_lan, wait_for

pytestmark = [pytest.mark.netns]

GONE = "192.0.2.99"  # documentation address no box has (or has for a while)

CONF = """\
vrrp_instance {name} {{
  state BACKUP
{interface}  virtual_router_id {vrid}
  priority {prio}
  advert_int 1
  unicast_src_ip {src}
  unicast_peer {{
    {peer}
  }}
  virtual_ipaddress {{
    {vip}/24 dev eth0
  }}
}}
"""


def conf(
    prio: int, src: str, peer: str, *, name: str = "VI_1", vrid: int = 51, vip: str = VIP
) -> str:
    iface = "  interface eth0\n"
    return CONF.format(
        name=name, interface=iface, vrid=vrid, prio=prio, src=src, peer=peer, vip=vip
    )


@pytest.fixture
def lan(tmp_path: Path) -> Iterator[Pair]:
    with logged_pair_lan(tmp_path) as p:
        yield p


def reasons(p: Pair, host: str) -> list[str]:
    return [str(r) for r in p.status(host)["fault_reasons"]]  # type: ignore[attr-defined]


def test_source_address_not_local_means_fault_and_one_master(lan: Pair) -> None:
    # lb1 would win (200) but cannot send from GONE; lb2 hears nothing from it.
    lan.start("lb1", 200, conf_text=conf(200, GONE, HOSTS["lb2"]))
    lan.start("lb2", 100, conf_text=conf(100, HOSTS["lb2"], HOSTS["lb1"]))
    assert wait_for(lambda: lan.state("lb1") == "FAULT", 10), lan.state("lb1")
    assert wait_for(lambda: lan.holders() == ["lb2"], 10), lan.holders()
    assert any(f"src_ip:{GONE}" in r for r in reasons(lan, "lb1")), reasons(lan, "lb1")
    assert "src address not configured" in lan.log("lb1")
    # Stays that way: lb1 never takes the VIP back while the address is missing.
    assert wait_for(lambda: lan.holders() != ["lb2"], 4) is None, lan.holders()


def test_source_address_removed_later_hands_over_to_the_peer(lan: Pair) -> None:
    # No track_src_ip: keepalived would stay MASTER sending from a vanished
    # address; pyvrrpd cannot (IP_PKTINFO), so it resigns and the peer takes over.
    ip("-n", lan.ns("lb1"), "addr", "add", f"{GONE}/24", "dev", "eth0")
    lan.start("lb1", 200, conf_text=conf(200, GONE, HOSTS["lb2"]))
    lan.start("lb2", 100, conf_text=conf(100, HOSTS["lb2"], GONE))
    assert wait_for(lambda: lan.holders() == ["lb1"] and lan.state("lb2") == "BACKUP", 12)
    ip("-n", lan.ns("lb1"), "addr", "del", f"{GONE}/24", "dev", "eth0")
    assert wait_for(lambda: lan.holders() == ["lb2"], 6), lan.holders()
    assert lan.state("lb1") == "FAULT"
    # Added back: lb1 leaves FAULT and, with the higher priority, preempts.
    ip("-n", lan.ns("lb1"), "addr", "add", f"{GONE}/24", "dev", "eth0")
    assert wait_for(lambda: lan.holders() == ["lb1"], 8), lan.holders()


def test_duplicate_vrid_on_a_resolved_interface_refuses_to_start(lan: Pair) -> None:
    # VI_A names eth0, VI_B finds it from its unicast_src_ip: only the kernel
    # can tell they collide (two omitted interfaces with one address are
    # refused by the config check already: tests/unit/test_splitbrain_fixes.py).
    text = conf(200, HOSTS["lb1"], HOSTS["lb2"], name="VI_A") + conf(
        200, HOSTS["lb1"], HOSTS["lb2"], name="VI_B", vip="192.0.2.20"
    ).replace("  interface eth0\n", "")
    path = lan.workdir / "dup.conf"
    path.write_text(text)
    cmd = ["ip", "netns", "exec", lan.ns("lb1"), sys.executable, "-m", "pyvrrpd", "run"]
    cmd += ["-f", str(path), "--control-socket", str(lan.workdir / "dup.sock")]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    assert res.returncode != 0
    err = res.stderr.strip().splitlines()
    assert any("VI_A" in line and "VI_B" in line and "51" in line for line in err), res.stderr
    assert "Traceback" not in res.stderr
    assert not lan.has_vip("lb1")


def test_unicast_src_ip_on_loopback_is_a_fault(lan: Pair) -> None:
    text = conf(200, "127.0.0.1", HOSTS["lb2"]).replace("  interface eth0\n", "")
    lan.start("lb1", 200, conf_text=text)
    assert wait_for(lambda: lan.state("lb1") == "FAULT", 10), lan.state("lb1")
    assert any("loopback interface (lo)" in r for r in reasons(lan, "lb1")), reasons(lan, "lb1")
    assert not lan.has_vip("lb1")


NFT_DROP_ADVERTS = """\
table inet splitbrain_test {
  chain out {
    type filter hook output priority 0;
    ip protocol 112 counter drop
  }
}
"""


def test_a_master_whose_adverts_all_fail_resigns(lan: Pair) -> None:
    # Every advert refused by the kernel (an output drop rule: EPERM), source
    # address still local, so only the shell's safety net can notice.
    if shutil.which("nft") is None:
        pytest.skip("nft not installed")
    lan.start("lb1", 200)
    lan.start("lb2", 100)
    assert wait_for(lambda: lan.holders() == ["lb1"] and lan.state("lb2") == "BACKUP", 12)
    subprocess.run(
        ["ip", "netns", "exec", lan.ns("lb1"), "nft", "-f", "-"],
        input=NFT_DROP_ADVERTS,
        text=True,
        check=True,
        timeout=10,
    )
    # Two failed rounds (2 s), then lb2's Master_Down_Interval (~3.6 s).
    assert wait_for(lambda: lan.holders() == ["lb2"], 8), lan.holders()
    assert "master_silent" in lan.log("lb1")
