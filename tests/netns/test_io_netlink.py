"""pyvrrpd.io.netlink against a real kernel, inside private namespaces (root)."""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Interface

import pytest

if os.geteuid() != 0 or shutil.which("ip") is None:
    pytest.skip("needs root: network namespaces", allow_module_level=True)

from _nshelp import Topology, in_netns, ip, ip_json, two_namespaces

from pyvrrpd.io.errors import HostError
from pyvrrpd.io.netlink import LinkEvent, LinkMonitor, Netlink

pytestmark = pytest.mark.netns

VIP = IPv4Address("192.0.2.100")


@pytest.fixture
def topo() -> Iterator[Topology]:
    with two_namespaces() as t:
        yield t


def test_link_info(topo: Topology) -> None:
    async def main() -> None:
        async with await Netlink.open() as nl:
            info = await nl.link(topo.if_a)
            assert info.name == topo.if_a
            assert info.index == topo.ifindex("a")
            assert info.mac == topo.mac("a") and len(info.mac) == 6
            assert info.up
            assert info.primary_ip == IPv4Address(topo.ip_a)
            assert IPv4Interface(f"{topo.ip_a}/24") in info.addresses
            # A /32 VIP added later and a same-subnet (secondary) address do
            # not change the primary.
            assert await nl.add_address(topo.if_a, VIP, 32)
            assert await nl.add_address(topo.if_a, IPv4Address("192.0.2.101"), 24)
            info = await nl.link(topo.if_a)
            assert info.primary_ip == IPv4Address(topo.ip_a)
            assert IPv4Interface(f"{VIP}/32") in info.addresses

    with in_netns(topo.ns_a):
        asyncio.run(main())


def test_add_remove_idempotent(topo: Topology) -> None:
    async def main() -> list[float]:
        async with await Netlink.open() as nl:
            assert not await nl.has_address(topo.if_a, VIP)
            assert await nl.add_address(topo.if_a, VIP, 32) is True
            assert await nl.add_address(topo.if_a, VIP, 32) is False  # EEXIST = success
            assert await nl.has_address(topo.if_a, VIP)
            assert await nl.remove_address(topo.if_a, VIP, 32) is True
            assert await nl.remove_address(topo.if_a, VIP, 32) is False  # EADDRNOTAVAIL
            assert not await nl.has_address(topo.if_a, VIP)
            lat = []
            for _ in range(50):
                t0 = time.perf_counter()
                await nl.add_address(topo.if_a, VIP, 32)
                lat.append(time.perf_counter() - t0)
                await nl.remove_address(topo.if_a, VIP, 32)
            return lat

    with in_netns(topo.ns_a):
        lat = asyncio.run(main())
    print(
        f"\nadd_address (incl. ifname lookup): median {statistics.median(lat) * 1e3:.2f} ms,"
        f" max {max(lat) * 1e3:.2f} ms over {len(lat)}"
    )


def test_broadcast_scope_label(topo: Topology) -> None:
    async def main() -> None:
        async with await Netlink.open() as nl:
            await nl.add_address(
                topo.if_a, IPv4Address("192.0.2.50"), 24, broadcast="+", label=f"{topo.if_a}:v"
            )
            await nl.add_address(topo.if_a, IPv4Address("192.0.2.51"), 32, scope="host")

    with in_netns(topo.ns_a):
        asyncio.run(main())
    addrs = {
        a["local"]: a for a in ip_json(topo.ns_a, "addr", "show", "dev", topo.if_a)[0]["addr_info"]
    }
    assert addrs["192.0.2.50"]["broadcast"] == "192.0.2.255"
    assert addrs["192.0.2.50"]["label"] == f"{topo.if_a}:v"
    assert addrs["192.0.2.51"]["scope"] == "host"
    assert "broadcast" not in addrs["192.0.2.51"]


def test_missing_interface(topo: Topology) -> None:
    async def main() -> None:
        async with await Netlink.open() as nl:
            with pytest.raises(HostError) as err:
                await nl.link("pvnope0")
            assert str(err.value) == "interface 'pvnope0' not found"
            with pytest.raises(HostError, match=r"^interface 'pvnope0' not found$"):
                await nl.add_address("pvnope0", VIP, 32)
            with pytest.raises(HostError):
                await nl.remove_address("pvnope0", VIP, 32)

    with in_netns(topo.ns_a):
        asyncio.run(main())


async def _wait_for(
    q: asyncio.Queue[LinkEvent], pred: object, timeout: float = 3.0
) -> tuple[LinkEvent, float]:
    assert callable(pred)
    t0 = time.perf_counter()
    deadline = t0 + timeout
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            raise AssertionError("expected event not seen")
        ev = await asyncio.wait_for(q.get(), left)
        if pred(ev):
            return ev, time.perf_counter() - t0


def test_link_monitor(topo: Topology) -> None:
    async def main() -> float:
        mon = await LinkMonitor.open()
        q: asyncio.Queue[LinkEvent] = asyncio.Queue()

        async def pump() -> None:
            async for ev in mon:
                q.put_nowait(ev)

        task = asyncio.create_task(pump())
        async with await Netlink.open() as nl:
            t0 = time.perf_counter()
            await nl.add_address(topo.if_a, VIP, 32)
            await _wait_for(
                q, lambda e: e.kind == "addr_add" and e.address == VIP and e.ifname == topo.if_a
            )
            add_latency = time.perf_counter() - t0
            await nl.remove_address(topo.if_a, VIP, 32)
            await _wait_for(q, lambda e: e.kind == "addr_del" and e.address == VIP)
            # Labelled address: the event still names the interface.
            await nl.add_address(topo.if_a, IPv4Address("192.0.2.60"), 32, label=f"{topo.if_a}:x")
            ev, _ = await _wait_for(q, lambda e: e.address == IPv4Address("192.0.2.60"))
            assert ev.ifname == topo.if_a
        # The link flaps (ip runs in a thread so the loop keeps reading; that
        # thread is not in ns A, hence the explicit -n).
        await asyncio.to_thread(ip, "-n", topo.ns_a, "link", "set", topo.if_a, "down")
        await _wait_for(q, lambda e: e.kind == "link" and e.ifname == topo.if_a and e.up is False)
        await asyncio.to_thread(ip, "-n", topo.ns_a, "link", "set", topo.if_a, "up")
        await _wait_for(q, lambda e: e.kind == "link" and e.ifname == topo.if_a and e.up is True)
        # Peer down: our side stays admin-up but loses carrier.
        await asyncio.to_thread(ip, "-n", topo.ns_b, "link", "set", topo.if_b, "down")
        await _wait_for(q, lambda e: e.kind == "link" and e.ifname == topo.if_a and e.up is False)
        mon.close()
        await asyncio.wait_for(task, 2)
        return add_latency

    with in_netns(topo.ns_a):
        lat = asyncio.run(main())
    print(f"\nadd_address -> addr_add event seen: {lat * 1e3:.2f} ms")


def test_link_monitor_recovers_from_enobufs(topo: Topology) -> None:
    async def main() -> tuple[int, set[IPv4Address]]:
        mon = await LinkMonitor.open(rcvbuf=4096)
        batch = "".join(f"addr add 192.0.2.{i}/32 dev {topo.if_a}\n" for i in range(10, 250))
        # Deliberately block the loop so the kernel overflows the tiny buffer.
        subprocess.run(
            ["ip", "-n", topo.ns_a, "-batch", "-"], input=batch, text=True, check=True, timeout=10
        )
        seen: set[IPv4Address] = set()

        async def pump() -> None:
            async for ev in mon:
                if ev.kind == "addr_add" and ev.address is not None:
                    seen.add(ev.address)

        task = asyncio.create_task(pump())
        for _ in range(100):
            if len(seen) >= 240:
                break
            await asyncio.sleep(0.02)
        # Removals after the resync arrive as ordinary events again.
        mon.close()
        await asyncio.wait_for(task, 2)
        return mon.resyncs, seen

    with in_netns(topo.ns_a):
        resyncs, seen = asyncio.run(main())
    assert resyncs >= 1
    assert {IPv4Address(f"192.0.2.{i}") for i in range(10, 250)} <= seen
    print(f"\nENOBUFS: {resyncs} resync(s), all 240 addresses reported")
