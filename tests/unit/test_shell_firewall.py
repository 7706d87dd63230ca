"""The drop rules and virtual routes ride with the VIPs (shell/host/vips.py companions).

What a user sees: as master, the drop rule is in before any VIP and the
routes after them; leaving, the routes go first and the drop rule last; a
drop rule that cannot be installed keeps the VIPs out and the instance gives
up (FAULT) instead of accepting traffic; a missing `nft` is a one-line error.
"""

from __future__ import annotations

import asyncio
import shutil
from ipaddress import IPv4Address
from typing import Any, cast

import pytest

from pyvrrpd.config.model import VirtualIP
from pyvrrpd.io.errors import HostError
from pyvrrpd.io.netlink import Netlink
from pyvrrpd.io.nft import Nft
from pyvrrpd.shell.host import vips
from pyvrrpd.shell.host.vips import VipSet

A = VirtualIP(IPv4Address("192.0.2.10"))


class Journal:
    def __init__(self) -> None:
        self.events: list[str] = []


class FakeNetlink:
    def __init__(self, j: Journal) -> None:
        self.j = j

    async def add_address(self, dev: str, address: IPv4Address, *a: Any, **k: Any) -> bool:
        self.j.events.append(f"+vip {address}")
        return True

    async def remove_address(self, dev: str, address: IPv4Address, prefixlen: int) -> bool:
        self.j.events.append(f"-vip {address}")
        return True


class Comp:
    def __init__(self, j: Journal, name: str, first: bool, fail: str | None = None) -> None:
        self.j, self.name, self.first, self.fail = j, name, first, fail

    async def apply(self, want: bool) -> str | None:
        self.j.events.append(f"{'+' if want else '-'}{self.name}")
        return self.fail


def make(j: Journal, gave_up: list[str]) -> VipSet:
    return VipSet(
        "VI_1",
        (A,),
        lambda v: "eth0",
        cast(Netlink, FakeNetlink(j)),
        send_garp=lambda n: None,
        on_give_up=gave_up.append,
    )


def test_order_matches_keepalived() -> None:
    async def scenario() -> None:
        j, gave_up = Journal(), list[str]()
        vs = make(j, gave_up)
        vs.companions += [Comp(j, "drop", True), Comp(j, "routes", False)]
        vs.add()
        assert await vs.wait_settled(1)
        vs.remove()
        assert await vs.wait_settled(1)
        assert j.events == [
            "+drop",
            "+vip 192.0.2.10",
            "+routes",
            "-routes",
            "-vip 192.0.2.10",
            "-drop",
        ]
        assert not gave_up

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_a_drop_rule_that_fails_keeps_the_vips_out(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        monkeypatch.setattr(vips, "BACKOFF_FIRST", 0.001)
        j, gave_up = Journal(), list[str]()
        vs = make(j, gave_up)
        vs.companions.append(Comp(j, "drop", True, fail="cannot add nftables drop rules: boom"))
        vs.add()
        for _ in range(200):
            if gave_up:
                break
            await asyncio.sleep(0.005)
        assert gave_up and "boom" in gave_up[0]
        assert not any(e.startswith("+vip") for e in j.events)
        vs.cancel()

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_missing_nft_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
        with pytest.raises(HostError) as err:
            await Nft("keepalived").add([IPv4Address("192.0.2.10")])
        assert str(err.value) == (
            "no_accept/strict mode needs the 'nft' command (package nftables): not found"
        )

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_nft_failure_is_one_line(tmp_path: Any) -> None:
    async def scenario() -> None:
        fake = tmp_path / "nft"
        fake.write_text(
            "#!/bin/sh\necho 'Error: Could not process rule: Operation not permitted' >&2\n"
            "echo '  add table ip keepalived' >&2\nexit 1\n"
        )
        fake.chmod(0o755)
        with pytest.raises(HostError) as err:
            await Nft("keepalived", binary=str(fake)).add([IPv4Address("192.0.2.10")])
        assert str(err.value) == (
            "cannot add nftables drop rules for 192.0.2.10: "
            "Error: Could not process rule: Operation not permitted"
        )

    asyncio.run(asyncio.wait_for(scenario(), 10))
