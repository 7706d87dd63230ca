"""VipSet: the kernel ends up with the VIPs the core asked for, or the core hears why not.

A fake netlink stands in for the kernel (a set of installed addresses) and
fails or hangs on demand, since a real kernel cannot be made to return
ENOBUFS (issue 5 item 5). What a user sees: every VIP present after an add,
the GARP only after the addresses are in and only once per burst asked,
transient errors retried with backoff, a hopeless add given up with a
reason (the instance then resigns), removals retried until the VIP is gone.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
from collections.abc import Callable, Coroutine
from ipaddress import IPv4Address
from typing import Any, cast

import pytest

from pyvrrpd.config.model import VirtualIP
from pyvrrpd.io.errors import HostError
from pyvrrpd.io.netlink import Netlink
from pyvrrpd.shell.host import vips
from pyvrrpd.shell.host.vips import VipSet

A = VirtualIP(IPv4Address("192.0.2.10"))
B = VirtualIP(IPv4Address("192.0.2.20"), 24)
C = VirtualIP(IPv4Address("198.51.100.7"), dev="eth1")

# One behaviour per netlink call, consumed in order; "ok" once the plan is empty.
# "enobufs"/"enodev": HostError with that errno; "gate": wait for FakeNetlink.gate;
# "hang": never answer (the caller's deadline must save it).
Plan = list[str]


class FakeNetlink:
    """The two calls VipSet makes, against an in-memory 'kernel'."""

    def __init__(self, add_plan: Plan | None = None, remove_plan: Plan | None = None) -> None:
        self.kernel: set[tuple[str, IPv4Address]] = set()
        self.add_plan = list(add_plan or [])
        self.remove_plan = list(remove_plan or [])
        self.calls: list[tuple[float, str, IPv4Address]] = []
        self.gate = asyncio.Event()

    async def _behave(self, plan: Plan, op: str, address: IPv4Address) -> None:
        self.calls.append((asyncio.get_running_loop().time(), op, address))
        step = plan.pop(0) if plan else "ok"
        if step == "enobufs":
            raise HostError(f"cannot {op} {address}: ENOBUFS", errno_code=errno.ENOBUFS)
        if step == "enodev":
            raise HostError("interface 'eth0' not found", errno_code=errno.ENODEV)
        if step == "gate":
            await self.gate.wait()
        if step == "hang":
            await asyncio.Event().wait()

    async def add_address(
        self, dev: str, address: IPv4Address, prefixlen: int, **_kw: object
    ) -> bool:
        await self._behave(self.add_plan, "add", address)
        if (dev, address) in self.kernel:
            return False
        self.kernel.add((dev, address))
        return True

    async def remove_address(self, dev: str, address: IPv4Address, prefixlen: int) -> bool:
        await self._behave(self.remove_plan, "remove", address)
        if (dev, address) not in self.kernel:
            return False
        self.kernel.discard((dev, address))
        return True

    def adds(self) -> list[float]:
        return [t for t, op, _ in self.calls if op == "add"]


class Harness:
    """A VipSet wired like the daemon wires it: give-up makes the core ask for removal."""

    def __init__(self, nl: Any, addresses: tuple[VirtualIP, ...] = (A, B, C)) -> None:
        self.nl = nl
        self.garps: list[tuple[int, set[tuple[str, IPv4Address]]]] = []
        self.give_ups: list[str] = []
        self.vs = VipSet(
            "VI_1",
            addresses,
            lambda vip: vip.dev or "eth0",
            cast(Netlink, nl),
            send_garp=self._garp,
            on_give_up=self._give_up,
        )

    def _garp(self, repeat: int) -> None:
        # What the kernel had when the GARP went out.
        kernel: set[tuple[str, IPv4Address]] = getattr(self.nl, "kernel", set())
        self.garps.append((repeat, set(kernel)))

    def _give_up(self, reason: str) -> None:
        self.give_ups.append(reason)
        # The core answers HostFault with RemoveVips (test_core_hostfault.py).
        self.vs.remove()


ALL = {("eth0", A.address), ("eth0", B.address), ("eth1", C.address)}


def run(scenario: Callable[[], Coroutine[Any, Any, None]], timeout: float = 10) -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout))


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for `cond` with a deadline (no bare sleeps)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "condition not met in time"
        await asyncio.sleep(0.002)


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vips, "BACKOFF_FIRST", 0.005)
    monkeypatch.setattr(vips, "BACKOFF_MAX", 0.02)


# ---------------------------------------------------------------- the happy path


def test_add_installs_every_address_then_garps_once_with_the_largest_burst() -> None:
    async def scenario() -> None:
        h = Harness(FakeNetlink())
        h.vs.add()
        # Asked twice before the addresses are in (become master, then a
        # lower-priority advert): one burst, the larger one, after install.
        h.vs.garp(2)
        h.vs.garp(5)
        h.vs.garp(3)
        assert h.garps == []
        assert await h.vs.wait_settled(1.0)
        assert h.nl.kernel == ALL
        assert h.garps == [(5, ALL)]
        # Once installed, a GARP goes out at once.
        h.vs.garp(1)
        assert h.garps[-1] == (1, ALL)
        assert h.give_ups == [] and h.vs.retries == 0

    run(scenario)


def test_garp_is_never_sent_for_addresses_being_removed() -> None:
    async def scenario() -> None:
        h = Harness(FakeNetlink())
        h.vs.add()
        h.vs.garp(5)
        h.vs.remove()  # lost mastership before the add pass ran
        h.vs.garp(5)  # a stray burst after removal is ignored
        assert await h.vs.wait_settled(1.0)
        assert h.nl.kernel == set()
        assert h.garps == []

    run(scenario)


def test_remove_wish_during_an_add_pass_supersedes_it() -> None:
    async def scenario() -> None:
        nl = FakeNetlink(add_plan=["gate"])
        h = Harness(nl)
        h.vs.add()
        h.vs.garp(5)
        await until(lambda: len(nl.calls) == 1)  # first add in flight
        h.vs.remove()
        nl.gate.set()
        assert await h.vs.wait_settled(1.0)
        # The add pass stopped after the address in flight, which is removed.
        assert [op for _, op, _ in nl.calls].count("add") == 1
        assert nl.kernel == set()
        assert h.garps == []
        assert h.vs.want is False and h.vs.settled

    run(scenario)


def test_removal_of_a_vanished_interface_counts_as_removed() -> None:
    async def scenario() -> None:
        nl = FakeNetlink(remove_plan=["enodev", "enodev", "enodev"])
        h = Harness(nl)
        h.vs.remove()
        assert await h.vs.wait_settled(1.0)
        assert h.vs.retries == 0 and h.vs.last_error is None
        assert len(nl.calls) == 3

    run(scenario)


# ------------------------------------------------------------------- failures


def test_failed_add_is_retried_and_other_addresses_are_not_held_back(fast_backoff: None) -> None:
    async def scenario() -> None:
        nl = FakeNetlink(add_plan=["ok", "enobufs", "ok", "ok", "enobufs"])
        h = Harness(nl)
        h.vs.add()
        h.vs.garp(5)
        # After the first pass the good addresses are in, the GARP still waits.
        await until(lambda: len(nl.calls) >= 3)
        assert ("eth0", A.address) in nl.kernel and ("eth1", C.address) in nl.kernel
        assert h.garps == []
        assert await h.vs.wait_settled(2.0)
        assert nl.kernel == ALL
        assert h.garps == [(5, ALL)]
        assert h.vs.retries == 2  # two failing passes, then success
        assert h.give_ups == []
        assert h.vs.last_error is None

    run(scenario)


def test_retry_intervals_back_off_exponentially_then_give_up() -> None:
    """Real constants: 0.1, 0.2, 0.4 s between attempts, give-up after 4."""

    async def scenario() -> None:
        nl = FakeNetlink(add_plan=["enobufs"] * vips.GIVE_UP_ATTEMPTS)
        h = Harness(nl, (A,))
        h.vs.add()
        h.vs.garp(5)
        await until(lambda: bool(h.give_ups), timeout=3.0)
        times = nl.adds()
        assert len(times) == vips.GIVE_UP_ATTEMPTS
        gaps = [b - a for a, b in itertools.pairwise(times)]
        for i, gap in enumerate(gaps):
            expected = vips.BACKOFF_FIRST * 2**i
            # Lower bound exact; upper bound loose (2 busy cores, other tests).
            assert expected - 0.01 <= gap <= expected + 0.25, gaps
        assert await h.vs.wait_settled(1.0)

    run(scenario)


def test_give_up_reports_once_with_the_reason_and_the_vips_are_removed(
    fast_backoff: None,
) -> None:
    async def scenario() -> None:
        # Every add fails; the removal the core then asks for succeeds.
        nl = FakeNetlink(add_plan=["ok"] + ["enobufs"] * 100)
        h = Harness(nl, (A, B))
        h.vs.add()
        h.vs.garp(5)
        assert await h.vs.wait_settled(2.0)
        assert len(h.give_ups) == 1
        assert h.give_ups[0].startswith("cannot install VIPs: ")
        assert "ENOBUFS" in h.give_ups[0]
        assert h.vs.gave_up == 1
        # A passes then fails every later pass, B fails every pass: 4 passes of 2.
        assert len(nl.adds()) == 2 * vips.GIVE_UP_ATTEMPTS
        # The half-installed VIP is taken out again: no VIP on a resigned master.
        assert nl.kernel == set()
        assert h.garps == []
        assert h.vs.want is False

    run(scenario)


def test_removal_is_retried_until_it_succeeds(fast_backoff: None) -> None:
    async def scenario() -> None:
        failures = 3 * vips.GIVE_UP_ATTEMPTS  # far more than an add would get
        nl = FakeNetlink(remove_plan=["enobufs"] * failures)
        nl.kernel.add(("eth0", A.address))
        h = Harness(nl, (A,))
        h.vs.remove()
        await until(lambda: h.vs.settled, timeout=3.0)
        assert nl.kernel == set()
        assert h.vs.retries == failures
        assert h.give_ups == []  # removal never gives up: a VIP left behind is split brain
        # Retries settle at BACKOFF_MAX (no retry storm, no ever-growing wait).
        times = [t for t, _, _ in nl.calls]
        assert times[-1] - times[-2] >= vips.BACKOFF_MAX - 0.005

    run(scenario)


def test_add_after_failed_removals_gets_its_own_attempts(fast_backoff: None) -> None:
    """A master-again after a stretch of failing removals must not give up on
    the first transient add error: attempts count per wish."""

    async def scenario() -> None:
        nl = FakeNetlink(remove_plan=["enobufs"] * 10)
        h = Harness(nl, (A,))
        h.vs.remove()
        await until(lambda: h.vs.retries >= 8)
        nl.remove_plan.clear()
        nl.add_plan = ["enobufs"]  # one transient error, then fine
        h.vs.add()
        h.vs.garp(5)
        await until(lambda: h.vs.settled or bool(h.give_ups))
        assert h.give_ups == []
        assert nl.kernel == {("eth0", A.address)}
        assert h.garps == [(5, {("eth0", A.address)})]

    run(scenario)


def test_hung_add_is_given_up_after_give_up_after_seconds(
    monkeypatch: pytest.MonkeyPatch, fast_backoff: None
) -> None:
    """A netlink call that never returns costs its deadline per attempt; the
    time bound gives up before GIVE_UP_ATTEMPTS such attempts."""
    monkeypatch.setattr(vips, "GIVE_UP_AFTER", 0.25)

    class Deadlined(FakeNetlink):
        # What Netlink._guarded turns a hang into (test_io_budget_timeouts.py).
        async def add_address(
            self, dev: str, address: IPv4Address, prefixlen: int, **kw: object
        ) -> bool:
            try:
                return await asyncio.wait_for(super().add_address(dev, address, prefixlen), 0.1)
            except TimeoutError:
                raise HostError("netlink did not answer", errno_code=errno.ETIMEDOUT) from None

    async def scenario() -> None:
        nl = Deadlined(add_plan=["hang"] * 100)
        h = Harness(nl, (A,))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        h.vs.add()
        await until(lambda: bool(h.give_ups), timeout=3.0)
        elapsed = loop.time() - t0
        assert 0.25 <= elapsed < 1.0
        assert len(nl.adds()) < vips.GIVE_UP_ATTEMPTS
        assert "netlink did not answer" in h.give_ups[0]
        assert await h.vs.wait_settled(1.0)

    run(scenario)


# ---------------------------------------------------------------- wait_settled


def test_wait_settled_is_bounded_and_does_not_cancel_the_work() -> None:
    async def scenario() -> None:
        nl = FakeNetlink(add_plan=["gate"])
        h = Harness(nl, (A,))
        h.vs.add()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        assert await h.vs.wait_settled(0.05) is False
        assert loop.time() - t0 < 0.5
        # The pass carries on: release the kernel and it completes.
        nl.gate.set()
        assert await h.vs.wait_settled(1.0) is True
        assert nl.kernel == {("eth0", A.address)}

    run(scenario)


def test_repeated_wishes_never_become_a_burst_of_tasks() -> None:
    async def scenario() -> None:
        nl = FakeNetlink(add_plan=["gate"])
        h = Harness(nl, (A,))
        h.vs.add()
        await until(lambda: len(nl.calls) == 1)
        for _ in range(10_000):  # e.g. AddVips per packet of a flood
            h.vs.add()
            h.vs.garp(5)
        tasks = [t for t in asyncio.all_tasks() if t.get_name() == "vips:VI_1"]
        assert len(tasks) == 1
        nl.gate.set()
        assert await h.vs.wait_settled(1.0)
        assert len(nl.calls) == 2  # the pass in flight, then one more
        assert h.garps == [(5, {("eth0", A.address)})]

    run(scenario)


def test_give_up_time_bound_holds_within_one_pass(
    monkeypatch: pytest.MonkeyPatch, fast_backoff: None
) -> None:
    """Several VIPs that each hang until the netlink deadline: the give-up
    comes after GIVE_UP_AFTER, not after one deadline per VIP (the backup
    waits for it, so every extra second is a second with no VIP anywhere)."""
    monkeypatch.setattr(vips, "GIVE_UP_AFTER", 0.15)

    class Deadlined(FakeNetlink):
        async def add_address(
            self, dev: str, address: IPv4Address, prefixlen: int, **kw: object
        ) -> bool:
            try:
                return await asyncio.wait_for(super().add_address(dev, address, prefixlen), 0.1)
            except TimeoutError:
                raise HostError("netlink did not answer", errno_code=errno.ETIMEDOUT) from None

    six = (A, B, C, *(VirtualIP(IPv4Address(f"203.0.113.{i}")) for i in range(1, 4)))

    async def scenario() -> None:
        nl = Deadlined(add_plan=["hang"] * 100)
        h = Harness(nl, six)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        h.vs.add()
        await until(lambda: bool(h.give_ups), timeout=3.0)
        # Two deadlines (0.1 s, then past 0.15 s), not six.
        assert len(nl.adds()) <= 3
        assert loop.time() - t0 < 0.55
        assert await h.vs.wait_settled(1.0)
        assert nl.kernel == set()

    run(scenario)
