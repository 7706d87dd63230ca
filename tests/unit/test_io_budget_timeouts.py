"""The I/O layer's two guards against a host that misbehaves (issue 5 items 2 and 5).

* Netlink: every command has a deadline; a request that never returns
  becomes a one-line HostError (ETIMEDOUT) and the command socket is
  replaced; the fault-injection seam runs before the command.
* VrrpSocket: one wake-up reads at most RECV_BUDGET datagrams, so a flood
  cannot keep the loop from running the advert timer.

No real netlink or raw socket is opened: pyroute2's AsyncIPRoute is replaced
by a fake, and the VRRP receive socket by a fake or an AF_UNIX socketpair.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import socket
import warnings
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
from ipaddress import IPv4Address
from typing import Any, cast

import pytest

from pyvrrpd.io import netlink as netlink_mod
from pyvrrpd.io.errors import HostError
from pyvrrpd.io.netlink import Netlink
from pyvrrpd.io.rawsock import RECV_BUDGET
from pyvrrpd.io.vrrp_socket import VrrpSocket
from pyvrrpd.shell.faults import FaultInjector

VIP = IPv4Address("192.0.2.10")
ME = IPv4Address("192.0.2.11")


def run(scenario: Callable[[], Coroutine[Any, Any, None]], timeout: float = 10) -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout))


# ------------------------------------------------------------------- netlink


class FakeIPR:
    """Just enough of pyroute2's AsyncIPRoute; `hang` makes its requests never answer.

    Instances are recorded so a test can see the socket being replaced.
    """

    made: list[FakeIPR] = []
    hang_new = False  # whether sockets made from now on hang

    def __init__(self) -> None:
        self.hang = FakeIPR.hang_new
        self.closed = False
        self.log: list[str] = []
        FakeIPR.made.append(self)

    async def _maybe_hang(self) -> None:
        if self.hang:
            await asyncio.Event().wait()

    async def link(self, cmd: str, **kw: Any) -> list[dict[str, Any]]:
        self.log.append(f"link {cmd}")
        await self._maybe_hang()
        return [{"index": 2}]

    async def addr(self, cmd: str, **kw: Any) -> Any:
        self.log.append(f"addr {cmd}")
        await self._maybe_hang()
        return _no_messages() if cmd == "dump" else None

    def close(self) -> None:
        self.closed = True


async def _no_messages() -> AsyncIterator[dict[str, Any]]:
    for msg in list[dict[str, Any]]():
        yield msg


@pytest.fixture
def fake_ipr(monkeypatch: pytest.MonkeyPatch) -> type[FakeIPR]:
    FakeIPR.made = []
    FakeIPR.hang_new = False
    # _replace_socket makes its new socket with this name: no real netlink.
    monkeypatch.setattr(netlink_mod, "AsyncIPRoute", FakeIPR)
    return FakeIPR


def test_hung_add_times_out_as_etimedout_and_replaces_the_socket(
    fake_ipr: type[FakeIPR],
) -> None:
    async def scenario() -> None:
        old = FakeIPR()
        old.hang = True
        nl = Netlink(old)
        nl.timeout = 0.05
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(HostError) as info:
            await nl.add_address("eth0", VIP, 32)
        assert loop.time() - t0 < 1.0
        assert info.value.errno_code == errno.ETIMEDOUT
        assert str(info.value) == (
            f"cannot add {VIP}/32 to 'eth0': netlink did not answer within 0.05 s"
        )
        assert nl.timeouts == 1
        assert old.closed
        assert len(FakeIPR.made) == 2
        # The next command goes to the fresh socket, which answers.
        assert await nl.add_address("eth0", VIP, 32) is True
        assert FakeIPR.made[1].log == ["link get", "addr add"]
        nl.close()
        assert FakeIPR.made[1].closed

    run(scenario)


@pytest.mark.parametrize(
    ("call", "what"),
    [
        (lambda nl: nl.link("eth0"), "cannot query interface 'eth0'"),
        (lambda nl: nl.remove_address("eth0", VIP, 32), f"cannot remove {VIP}/32 from 'eth0'"),
        (lambda nl: nl.has_address("eth0", VIP), "cannot list addresses of 'eth0'"),
    ],
)
def test_every_command_has_the_deadline(
    fake_ipr: type[FakeIPR], call: Callable[[Netlink], Coroutine[Any, Any, Any]], what: str
) -> None:
    async def scenario() -> None:
        ipr = FakeIPR()
        ipr.hang = True
        nl = Netlink(ipr)
        nl.timeout = 0.02
        with pytest.raises(HostError, match=f"^{what}: netlink did not answer") as info:
            await call(nl)
        assert info.value.errno_code == errno.ETIMEDOUT
        assert nl.timeouts == 1

    run(scenario)


def test_inject_hook_runs_before_the_command(fake_ipr: type[FakeIPR]) -> None:
    async def scenario() -> None:
        ipr = FakeIPR()
        nl = Netlink(ipr)
        seen: list[str] = []

        async def hook(op: str) -> None:
            seen.append(f"inject {op}")

        ipr.log = seen  # one timeline for both
        nl.inject = hook
        assert await nl.add_address("eth0", VIP, 32) is True
        assert seen == ["inject add_address", "link get", "addr add"]

    run(scenario)


def test_injected_error_fails_the_command_without_sending_it(fake_ipr: type[FakeIPR]) -> None:
    async def scenario() -> None:
        ipr = FakeIPR()
        nl = Netlink(ipr)
        faults = FaultInjector()
        nl.inject = faults.netlink
        assert faults.apply({"op": "add_address", "mode": "error", "count": 2}) == {
            "ok": True,
            "rules": 1,
        }
        for _ in range(2):
            with pytest.raises(HostError) as info:
                await nl.add_address("eth0", VIP, 32)
            assert info.value.errno_code == errno.ENOBUFS
            assert str(info.value) == "injected fault: No buffer space available"
        assert ipr.log == []
        # The rule is spent: the third call reaches the kernel.
        assert await nl.add_address("eth0", VIP, 32) is True
        assert faults.hits == 2
        assert nl.timeouts == 0 and len(FakeIPR.made) == 1

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(scenario)
        gc.collect()
    # The command coroutine that never ran was closed, not leaked.
    assert not [w for w in caught if "never awaited" in str(w.message)]


def test_injected_hang_meets_the_deadline(fake_ipr: type[FakeIPR]) -> None:
    async def scenario() -> None:
        nl = Netlink(FakeIPR())
        nl.timeout = 0.05
        faults = FaultInjector()
        nl.inject = faults.netlink
        faults.apply({"op": "remove_address", "mode": "hang"})
        with pytest.raises(HostError) as info:
            await nl.remove_address("eth0", VIP, 32)
        assert info.value.errno_code == errno.ETIMEDOUT
        assert nl.timeouts == 1 and len(FakeIPR.made) == 2
        # Other operations are not affected, and the hang rule is spent.
        assert await nl.remove_address("eth0", VIP, 32) is True

    run(scenario)


def test_timeout_after_close_opens_no_new_socket(fake_ipr: type[FakeIPR]) -> None:
    async def scenario() -> None:
        ipr = FakeIPR()
        ipr.hang = True
        nl = Netlink(ipr)
        nl.timeout = 0.02
        nl.close()
        with pytest.raises(HostError):
            await nl.add_address("eth0", VIP, 32)
        assert len(FakeIPR.made) == 1

    run(scenario)


# --------------------------------------------------------------- VRRP socket


class FakeLoop:
    """Captures the reader callback so a test can play the loop's wake-ups."""

    def __init__(self) -> None:
        self.readers: dict[int, Callable[[], None]] = {}

    def add_reader(self, fd: int, cb: Callable[[], None]) -> None:
        self.readers[fd] = cb

    def remove_reader(self, fd: int) -> bool:
        return self.readers.pop(fd, None) is not None

    def is_closed(self) -> bool:
        return False


class FloodRx:
    """A receive socket with a backlog: `queue` datagrams, or a flood.

    The flood ends after FLOOD_LIMIT reads so that a reader without a budget
    makes the timer test fail (late timer) rather than hang.
    """

    FLOOD_LIMIT = 3_000_000

    def __init__(self, datagrams: int | None, fd: int = 1000) -> None:
        self.queue: deque[bytes] = deque(b"%d" % i for i in range(datagrams or 0))
        self.endless = datagrams is None
        self.fd = fd
        self.errors: deque[OSError] = deque()
        self.reads = 0

    def recv(self, _size: int) -> bytes:
        if self.errors:
            raise self.errors.popleft()
        if self.endless and self.reads < self.FLOOD_LIMIT:
            self.reads += 1
            return b"flood"
        self.reads += 1
        if not self.queue:
            raise BlockingIOError(errno.EAGAIN, "empty")
        return self.queue.popleft()

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        self.fd = -1


def flood_socket(rx: Any) -> VrrpSocket:
    return VrrpSocket("eth0", 2, ME, cast(socket.socket, rx), cast(socket.socket, FloodRx(0)))


def test_one_wake_up_reads_at_most_the_budget() -> None:
    rx = FloodRx(3 * RECV_BUDGET + 5)
    vs = flood_socket(rx)
    loop = FakeLoop()
    got: list[bytes] = []
    vs.attach(cast(asyncio.AbstractEventLoop, loop), got.append)
    wake = loop.readers[rx.fd]
    delivered = []
    for _ in range(5):
        before = len(got)
        wake()
        delivered.append(len(got) - before)
    assert delivered == [RECV_BUDGET, RECV_BUDGET, RECV_BUDGET, 5, 0]
    assert got[:2] == [b"0", b"1"]  # in order, none lost
    assert vs.received == 3 * RECV_BUDGET + 5
    vs.detach()
    assert loop.readers == {}


def test_transient_receive_error_ends_the_wake_up_but_not_the_reader() -> None:
    rx = FloodRx(10)
    rx.errors.append(OSError(errno.ENETDOWN, "Network is down"))
    vs = flood_socket(rx)
    loop = FakeLoop()
    got: list[bytes] = []
    vs.attach(cast(asyncio.AbstractEventLoop, loop), got.append)
    loop.readers[rx.fd]()
    assert got == []
    assert rx.fd in loop.readers
    loop.readers[rx.fd]()
    assert len(got) == 10


def test_real_datagram_socket_drains_what_is_queued_and_stops() -> None:
    rx, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    tx, _tx_peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        rx.setblocking(False)
        for i in range(5):
            peer.send(bytes([i]) * 40)
        vs = VrrpSocket("eth0", 2, ME, rx, tx)
        loop = FakeLoop()
        got: list[bytes] = []
        vs.attach(cast(asyncio.AbstractEventLoop, loop), got.append)
        loop.readers[rx.fileno()]()
        assert got == [bytes([i]) * 40 for i in range(5)]
        vs.close()
        assert loop.readers == {}
    finally:
        for s in (rx, peer, tx, _tx_peer):
            s.close()


def test_timers_run_on_time_under_a_flood() -> None:
    """With a real loop: the advert timer fires on time while packets keep coming."""
    rx_end, writer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    writer.send(b"x")  # keeps the descriptor readable for the selector

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        rx = FloodRx(None, fd=rx_end.fileno())
        vs = flood_socket(rx)
        handled = 0

        def on_datagram(_data: bytes) -> None:
            nonlocal handled
            handled += 1

        fired = loop.create_future()
        due = loop.time() + 0.02
        loop.call_at(due, lambda: fired.set_result(loop.time()))
        vs.attach(loop, on_datagram)
        try:
            at = await asyncio.wait_for(fired, 2.0)
        finally:
            vs.detach()
        # One wake-up is ~RECV_BUDGET cheap callbacks (well under 1 ms); the
        # bound leaves room for a loaded machine. Without the budget the first
        # wake-up reads the whole flood and the timer is ~0.4 s late.
        assert at - due < 0.15
        assert handled >= RECV_BUDGET  # the flood was being read meanwhile

    try:
        run(scenario)
    finally:
        rx_end.close()
        writer.close()


def test_budget_is_small_enough_to_matter() -> None:
    # The figure the docstring reasons about (~1-2 ms of classification).
    assert 1 <= RECV_BUDGET <= 256
