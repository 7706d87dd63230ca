"""Split-brain fixes after issue 6's review: each case once made two MASTERs
(or a resignation the peer ignored); these pin what must happen instead."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address
from types import SimpleNamespace
from typing import Any, cast

from pyvrrpd.config.parser import parse_text
from pyvrrpd.core.actions import SendAdvert
from pyvrrpd.core.router import VirtualRouter
from pyvrrpd.core.state import State
from pyvrrpd.io.errors import HostError
from pyvrrpd.io.netlink import LinkEvent
from pyvrrpd.io.vrrp_socket import AdvertNotSent
from pyvrrpd.shell.executor import Executor
from pyvrrpd.shell.host.unicast import duplicate_vrid, resolve_interfaces
from pyvrrpd.shell.instance import Instance, router_config
from pyvrrpd.trackers.srcip import SrcIpTracker
from pyvrrpd.wire.vrrp import AuthType

from .test_core_router import cfg

SRC = IPv4Address("192.0.2.21")


def conf(body: str) -> Any:
    return parse_text(body, "k.conf")


def instance(name: str, extra: str, vrid: int = 51) -> str:
    return (
        f"vrrp_instance {name} {{\n  virtual_router_id {vrid}\n  priority 100\n{extra}\n"
        "  virtual_ipaddress {\n    192.0.2.10/24 dev eth0\n  }\n}\n"
    )


# ---------------------------------------------- 1. the configured source address


def test_a_source_address_is_followed_without_track_src_ip() -> None:
    c = conf(instance("VI_1", f"  interface eth0\n  mcast_src_ip {SRC}"))
    specs = router_config(c.instances[0], c, mtu=1500).trackers
    assert [(s.name, s.weight) for s in specs] == [("src_ip:192.0.2.21", 0)]


def test_without_track_src_ip_any_interface_counts() -> None:
    c = conf(
        instance(
            "VI_1", f"  interface eth0\n  unicast_src_ip {SRC}\n  unicast_peer {{\n 192.0.2.12\n }}"
        )
    )
    have = {("eth1", SRC)}
    seen: list[tuple[str, bool | None]] = []
    tr = SrcIpTracker(c.instances, lambda n, ok: seen.append((n, ok)), lambda: ["eth0", "eth1"])
    tr.start(lambda i, a: (i, a) in have)  # on eth1: the kernel can send from it
    have.clear()
    tr.observe(LinkEvent("eth1", "addr_del", None, SRC))
    have.add(("eth0", SRC))
    tr.observe(LinkEvent("eth0", "addr_add", None, SRC))
    assert seen == [
        ("src_ip:192.0.2.21", True),
        ("src_ip:192.0.2.21", False),
        ("src_ip:192.0.2.21", True),
    ]


def test_a_source_address_nowhere_at_start_means_fault() -> None:
    c = conf(instance("VI_1", f"  interface eth0\n  mcast_src_ip {SRC}"))
    seen: list[tuple[str, bool | None]] = []
    tr = SrcIpTracker(c.instances, lambda n, ok: seen.append((n, ok)), lambda: ["eth0"])
    tr.start(lambda i, a: False)
    assert seen == [("src_ip:192.0.2.21", False)]


def test_unicast_src_ip_on_loopback_is_a_fault_not_an_interface() -> None:
    c = conf(instance("VI_1", "  unicast_src_ip 127.0.0.1\n  unicast_peer {\n 192.0.2.12\n }"))
    out = resolve_interfaces(c, lambda i, a: i == "lo", is_loopback=lambda n: n == "lo")
    inst = out.instances[0]
    assert inst.interface == ""
    assert inst.unicast_fault is not None and "loopback interface (lo)" in inst.unicast_fault


# --------------------------------------- 1b. a MASTER whose adverts reach nobody


class Sock:
    def __init__(self) -> None:
        self.fail = True

    def send(self, payload: bytes) -> None:
        if self.fail:
            raise AdvertNotSent(
                "cannot send VRRP advert on 'eth0' to 192.0.2.12: Network unreachable"
            )


def fake(state: State = State.MASTER, ah: bool = False, sock: object = None) -> Instance:
    ns = SimpleNamespace(
        name="VI_1",
        drops_since_warn={},
        iface=SimpleNamespace(sock=sock, ah_sock=None),
        cfg=SimpleNamespace(interface="eth0"),
        router=SimpleNamespace(
            state=state,
            ah_seq=object() if ah else None,
            config=cfg(),
        ),
        adverts={},
    )
    return cast(Instance, ns)


def silent_calls(
    inst: Instance, rounds: list[int], sock: Sock | None = None, fail: list[bool] | None = None
) -> list[str]:
    ex = Executor({})
    calls: list[str] = []
    ex.on_silent = lambda i, reason: calls.append(reason)
    for n, prio in enumerate(rounds):
        if sock is not None and fail is not None:
            sock.fail = fail[n]
        ex.run(inst, [SendAdvert(prio)])
    return calls


def test_two_silent_rounds_as_master_resign() -> None:
    sock = Sock()
    calls = silent_calls(fake(sock=sock), [100, 100], sock, [True, True])
    assert len(calls) == 1 and "Network unreachable" in calls[0]


def test_one_good_round_resets_the_count() -> None:
    sock = Sock()
    assert silent_calls(fake(sock=sock), [100, 100, 100], sock, [True, False, True]) == []


def test_priority_0_and_backup_rounds_do_not_count() -> None:
    sock = Sock()
    assert silent_calls(fake(sock=sock), [0, 0, 0], sock, [True] * 3) == []
    assert silent_calls(fake(State.BACKUP, sock=sock), [100, 100], sock, [True] * 2) == []


def test_an_ah_instance_without_its_ah_socket_resigns() -> None:
    sock = Sock()
    calls = silent_calls(fake(ah=True, sock=sock), [100, 100])
    assert len(calls) == 1 and "no AH socket" in calls[0]


def test_a_partial_failure_is_no_silence() -> None:
    class Partial(Sock):
        def send(self, payload: bytes) -> None:
            raise HostError("cannot send VRRP advert on 'eth0' to 192.0.2.13: unreachable")

    assert silent_calls(fake(sock=Partial()), [100, 100, 100]) == []


# ------------------------------------------------ 2. duplicate VRIDs, resolved


def test_duplicate_vrid_after_resolution_names_both_instances() -> None:
    uni = f"  unicast_src_ip {SRC}\n  unicast_peer {{\n 192.0.2.12\n }}"
    # VI_A names eth0; VI_B's interface is found from its address: eth0 too.
    c = conf(instance("VI_A", "  interface eth0\n" + uni) + instance("VI_B", uni))
    out = resolve_interfaces(c, lambda i, a: i == "eth0", is_loopback=lambda n: False)
    if not all(i.interface for i in out.instances):  # no eth0 on this host
        out = replace(out, instances=tuple(replace(i, interface="eth0") for i in out.instances))
    err = duplicate_vrid(out)
    assert err is not None and "VI_A" in err and "VI_B" in err and "51" in err
    c2 = conf(instance("VI_A", "  interface eth0\n" + uni) + instance("VI_B", uni, vrid=52))
    c2 = replace(c2, instances=tuple(replace(i, interface="eth0") for i in c2.instances))
    assert duplicate_vrid(c2) is None


def test_two_omitted_interfaces_with_one_source_share_the_vrid_check() -> None:
    import pytest

    from pyvrrpd.config.model import ConfigError

    uni = f"  unicast_src_ip {SRC}\n  unicast_peer {{\n 192.0.2.12\n }}"
    with pytest.raises(
        ConfigError, match="virtual_router_id 51 on the interface of unicast_src_ip"
    ):
        conf(instance("VI_A", uni) + instance("VI_B", uni))
    other = uni.replace(str(SRC), "192.0.2.22")
    assert len(conf(instance("VI_A", uni) + instance("VI_B", other)).instances) == 2


# ------------------------------------------------- 3. AH sequence across adopt


def test_adopt_carries_the_ah_sequence() -> None:
    old = VirtualRouter(cfg(auth_type=int(AuthType.AH), auth_data=b"1111\0\0\0\0"))
    assert old.ah_seq is not None
    for _ in range(41):
        old.ah_seq.next_send()
    fresh = VirtualRouter(old.config)
    fresh.adopt(old)
    assert fresh.ah_seq is not None and fresh.ah_seq.next_send() == 42


# ------------------------------------------------- 4. SIGTERM during the start

STOP_DURING_START = r"""
import asyncio, json
from types import SimpleNamespace
from pyvrrpd.config.parser import parse_text
from pyvrrpd.shell.daemon import Daemon

conf = parse_text(
    "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n priority 255\n"
    " virtual_ipaddress {\n 192.0.2.10/24\n }\n}\n",
    "k.conf",
)
d = Daemon(conf)
fed = []

async def setup():
    d.request_stop("SIGTERM")  # arrives while the daemon sets up

async def shutdown():
    pass

d._setup = setup
d._shutdown = shutdown
d._feed = lambda inst, event, now: fed.append(type(event).__name__)
# One instance, never touched unless fed.
d.instances.append(SimpleNamespace(name="VI_1", iface=SimpleNamespace(link=None, sock=None)))
print(json.dumps({"rc": asyncio.run(d.run()), "fed": fed}))
"""


def test_a_stop_during_the_start_feeds_no_started() -> None:
    import json
    import subprocess
    import sys
    from pathlib import Path

    proc = subprocess.run(
        [sys.executable, "-c", STOP_DURING_START],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parents[2],
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"rc": 0, "fed": []}
