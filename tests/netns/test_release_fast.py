"""`pyvrrpd release-vips` acts within tens of milliseconds of its exec.

After a watchdog SIGKILL the backup may already have taken over while the
dead box still holds the VIP (README "After a crash"); every millisecond
release-vips spends importing modules before it sends priority 0 and
deletes the VIP is a millisecond of the VIP on both boxes. Measured from
just before the exec of `ip netns exec NS python -m pyvrrpd release-vips`:
the priority-0 advert on the backup's wire (AF_PACKET, kernel timestamp)
and the RTM_DELADDR of the VIP in the dead box's namespace. With
virtual_routes/rules to undo as well, those (and their pyroute2 and asyncio
imports) come after the VIP and do not delay it.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pyvrrpd.lab import advertcap
from pyvrrpd.lab.nssocket import socket_in_netns
from tests.netns._pair import HOSTS, VIP, Pair, wait_for
from tests.netns.test_release_vips import AH_CONF, CONF, kill9

pytestmark = pytest.mark.netns

#: From exec to the advert on the wire and to the VIP gone. Measured on a
#: 2-core box: 29-34 ms idle, 86-105 ms with both cores spinning; before the
#: fast path 200-208 ms idle, 611-669 ms busy (README "After a crash").
BOUND = 0.150
#: AH's advert first imports hmac and the wire package for its ICV (~30 ms
#: idle): 87-104 ms from exec while other tests loaded the box (PASS 60-68
#: ms then), old code 390-440 ms.
AH_EXTRA = 0.050

_RTMGRP_IPV4_IFADDR = 0x10
_RTM_DELADDR = 21
_NLMSG = struct.Struct("=IHHII")


_parse_vrrp = advertcap.parse_vrrp


def parse_advert(packet: bytes) -> tuple[str, int, int] | None:
    """advertcap.parse_vrrp, and the VRRP message inside AH (protocol 51) too."""
    if len(packet) >= 20 and packet[0] >> 4 == 4 and packet[9] == 51:
        ihl = (packet[0] & 0x0F) * 4
        if len(packet) < ihl + 2 or packet[ihl] != 112:  # AH next header: VRRP
            return None
        ah_len = (packet[ihl + 1] + 2) * 4  # RFC 4302 2.2: in 32-bit words, minus 2
        vrrp = packet[ihl + ah_len :]
        if len(vrrp) < 3 or vrrp[0] & 0x0F != 1:
            return None
        return socket.inet_ntoa(packet[12:16]), vrrp[1], vrrp[2]
    return _parse_vrrp(packet)


class DelAddrWatch:
    """Monotonic time of each RTM_DELADDR (address -> first time) in one namespace."""

    def __init__(self, netns: str) -> None:
        def make() -> socket.socket:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
            sock.bind((0, _RTMGRP_IPV4_IFADDR))
            return sock

        self._sock = socket_in_netns(f"/run/netns/{netns}", make, "watch addresses")
        self._sock.settimeout(0.1)
        self.gone: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            t = time.monotonic()
            off = 0
            while off + _NLMSG.size <= len(data):
                length, mtype = _NLMSG.unpack_from(data, off)[:2]
                if length < _NLMSG.size:
                    break
                if mtype == _RTM_DELADDR:
                    pos, end = off + _NLMSG.size + 8, off + length  # after struct ifaddrmsg
                    while pos + 4 <= end:
                        alen, atype = struct.unpack_from("=HH", data, pos)
                        if alen < 4:
                            break
                        if atype == 2:  # IFA_LOCAL
                            addr = socket.inet_ntoa(data[pos + 4 : pos + 8])
                            self.gone.setdefault(addr, t)
                        pos += (alen + 3) & ~3
                off += (length + 3) & ~3

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)
        with contextlib.suppress(OSError):
            self._sock.close()


def timed_release(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> tuple[subprocess.CompletedProcess[str], float, float, float]:
    """Kill lb1 (MASTER) and run release-vips: (result, advert s, VIP gone s, command s)."""
    # advertcap's reader looks parse_vrrp up at each packet: AH adverts too.
    monkeypatch.setattr(advertcap, "parse_vrrp", parse_advert)
    cap = advertcap.AdvertCapture(pair.ns("lb2"), "eth0")
    watch = DelAddrWatch(pair.ns("lb1"))
    try:
        kill9(pair, "lb1")
        time.sleep(0.2)  # lb1's last adverts long gone; the machine settles
        cmd = ["ip", "netns", "exec", pair.ns("lb1"), sys.executable, "-m", "pyvrrpd"]
        cmd += ["release-vips", "--control-socket", pair.sock("lb1")]
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = proc.communicate(timeout=20)
        took = time.monotonic() - t0
        assert wait_for(lambda: VIP in watch.gone, 1.0), "no RTM_DELADDR seen for the VIP"
        advert = cap.first(HOSTS["lb1"], 0, t0)
        assert advert is not None, "no priority-0 advert on the backup's wire"
        result = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
        return result, advert.t - t0, watch.gone[VIP] - t0, took
    finally:
        watch.close()
        cap.close()


@pytest.mark.parametrize("conf", [CONF, AH_CONF], ids=["pass", "ah"])
def test_release_sends_priority_0_and_removes_the_vip_right_after_exec(
    pair: Pair, conf: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pair.start("lb1", 0, conf_text=conf.format(state="MASTER", prio=150, vip=VIP))
    pair.start("lb2", 0, conf_text=conf.format(state="BACKUP", prio=100, vip=VIP))
    assert wait_for(lambda: pair.state("lb1") == "MASTER" and pair.has_vip("lb1"), 8.0)
    assert wait_for(lambda: pair.state("lb2") == "BACKUP", 5.0)
    done, advert, gone, took = timed_release(pair, monkeypatch)
    print(
        f"\nrelease-vips from exec: priority 0 on the wire {advert * 1000:.1f} ms, "
        f"VIP gone {gone * 1000:.1f} ms, command {took * 1000:.1f} ms"
    )
    assert done.returncode == 0, done.stderr
    sent, removed = done.stdout.splitlines()
    assert sent.startswith("VI_1: sent priority 0 (vrid 51) on eth0 to 224.0.0.18")
    assert ("(AH, sequence" in sent) == (conf is AH_CONF)
    assert removed == f"VI_1: removed {VIP}/32 from eth0"
    assert not pair.has_vip("lb1")
    assert not Path(pair.sock("lb1")[: -len(".sock")] + ".state").exists()
    assert advert < gone, "priority 0 goes first: the backup's Skew_Time starts sooner"
    bound = BOUND + (AH_EXTRA if conf is AH_CONF else 0.0)
    assert advert <= bound and gone <= bound
    assert wait_for(lambda: pair.has_vip("lb2"), 2.0), "the backup took over"


ROUTES_CONF = """\
vrrp_instance VI_1 {{
  state {state}
  interface eth0
  virtual_router_id 51
  priority {prio}
  advert_int 1
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


def test_routes_and_rules_come_after_the_vip_without_delaying_it(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rest (pyroute2, asyncio) loads after the VIP is gone; its lines follow."""
    pair.start("lb1", 0, conf_text=ROUTES_CONF.format(state="MASTER", prio=150, vip=VIP))
    pair.start("lb2", 0, conf_text=ROUTES_CONF.format(state="BACKUP", prio=100, vip=VIP))
    assert wait_for(lambda: pair.state("lb1") == "MASTER" and pair.has_vip("lb1"), 8.0)
    assert wait_for(lambda: pair.state("lb2") == "BACKUP", 5.0)
    done, advert, gone, took = timed_release(pair, monkeypatch)
    print(
        f"\nrelease-vips with routes, from exec: priority 0 on the wire {advert * 1000:.1f} ms, "
        f"VIP gone {gone * 1000:.1f} ms, command {took * 1000:.1f} ms"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "VI_1: sent priority 0 (vrid 51) on eth0 to 224.0.0.18",
        f"VI_1: removed {VIP}/32 from eth0",
        f"VI_1: removed rule from {VIP} table 100 priority 100",
        "VI_1: removed route 203.0.113.0/24 via 192.0.2.66 dev eth0",
    ]
    assert advert <= BOUND and gone <= BOUND
    left = subprocess.run(
        ["ip", "-n", pair.ns("lb1"), "route", "show"], capture_output=True, text=True, timeout=10
    ).stdout
    left += subprocess.run(
        ["ip", "-n", pair.ns("lb1"), "rule", "show"], capture_output=True, text=True, timeout=10
    ).stdout
    assert "203.0.113.0/24" not in left and "lookup 100" not in left
