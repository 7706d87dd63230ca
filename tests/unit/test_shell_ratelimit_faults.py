"""Rate-limited per-packet log lines and the test-only fault injector (issue 5 items 3, 5, 6).

What a user sees: a flood of packets that each could log a line (a master
seen, a drop, a failed send) produces a couple of lines with counts, never
one per packet; state changes are all logged. The fault injector answers on
its socket only when the test environment asked for it, and its rules fail,
hang or raise exactly the calls they name, as many times as they say.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import stat
from collections.abc import MutableMapping
from ipaddress import IPv4Address
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from structlog.testing import capture_logs

from pyvrrpd.config.model import VirtualIP
from pyvrrpd.core.actions import Dropped, MasterSeen, SendAdvert, SendGarp, StateChanged
from pyvrrpd.core.state import State
from pyvrrpd.io.errors import HostError
from pyvrrpd.shell import faults as faults_mod
from pyvrrpd.shell import ratelimit
from pyvrrpd.shell.executor import DROP_WARN_EVERY, PER_PACKET_EVERY, Executor
from pyvrrpd.shell.faults import FaultInjector, FaultSocket
from pyvrrpd.shell.instance import Instance
from pyvrrpd.shell.ratelimit import RateLimiter

PEER = IPv4Address("192.0.2.12")
ROGUE = IPv4Address("192.0.2.66")


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------- RateLimiter


def test_first_line_passes_then_one_per_interval_with_the_count() -> None:
    clock = Clock()
    rl = RateLimiter(5.0, clock)
    assert rl.allow("k") == 0
    for _ in range(99):
        clock.now += 0.01
        assert rl.allow("k") is None
    clock.now += 5.0
    assert rl.allow("k") == 99  # the summary says how many were folded
    assert rl.allow("k") is None
    clock.now += 5.0
    assert rl.allow("k") == 1
    assert rl.suppressed_total == 100


def test_keys_are_limited_independently() -> None:
    clock = Clock()
    rl = RateLimiter(5.0, clock)
    assert rl.allow(("VI_1", "master_seen")) == 0
    assert rl.allow(("VI_2", "master_seen")) == 0
    assert rl.allow(("VI_1", "drops")) == 0
    assert rl.allow(("VI_1", "master_seen")) is None


def test_memory_is_bounded_when_keys_vary() -> None:
    rl = RateLimiter(5.0, Clock())
    for i in range(5 * ratelimit.MAX_KEYS):
        assert rl.allow(("src", i)) == 0
    assert len(rl._slots) <= ratelimit.MAX_KEYS


# ------------------------------------------------------------------ Executor


def fake_instance(name: str = "VI_1") -> Instance:
    """What the executor touches of an Instance when it only logs, or fails to send."""
    ns = SimpleNamespace(
        name=name,
        drops_since_warn={},
        iface=SimpleNamespace(sock=None),  # interface missing: sends fail
        cfg=SimpleNamespace(interface="eth0"),
        addresses=(VirtualIP(IPv4Address("192.0.2.10")),),
        dev=lambda vip: "eth0",
        adverts={},
    )
    return cast(Instance, ns)


def events(logs: list[MutableMapping[str, Any]], name: str) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == name]


def test_ten_thousand_master_seen_make_a_couple_of_lines() -> None:
    clock = Clock()
    ex = Executor({}, clock=clock)
    inst = fake_instance()
    with capture_logs() as logs:
        # Two senders alternating for 10 s, as a rogue box makes the backup do.
        for i in range(10_000):
            ex.run(inst, [MasterSeen(PEER if i % 2 else ROGUE, 100 + i % 2)])
            clock.now += 0.001
    lines = events(logs, "master_seen")
    assert 1 <= len(lines) <= 1 + 10.0 / PER_PACKET_EVERY
    assert lines[0]["instance"] == "VI_1" and "suppressed" not in lines[0]
    assert lines[1]["suppressed"] >= 4_000  # the summary carries the count
    assert ex.suppressed_lines >= 9_990


def test_frozen_clock_gives_exactly_one_line_per_instance() -> None:
    ex = Executor({}, clock=Clock())
    a, b = fake_instance("VI_1"), fake_instance("VI_2")
    with capture_logs() as logs:
        for _ in range(10_000):
            ex.run(a, [MasterSeen(PEER, 100)])
            ex.run(b, [MasterSeen(PEER, 100)])
    assert [e["instance"] for e in events(logs, "master_seen")] == ["VI_1", "VI_2"]


def test_state_changes_are_never_dropped() -> None:
    ex = Executor({}, clock=Clock())
    inst = fake_instance()
    flips = [
        StateChanged(State.BACKUP, State.MASTER, "master_down_timer"),
        StateChanged(State.MASTER, State.BACKUP, f"higher priority advert from {PEER}"),
    ]
    with capture_logs() as logs:
        for i in range(1_000):
            ex.run(inst, [MasterSeen(PEER, 200), flips[i % 2]])
    changes = events(logs, "state_change")
    assert len(changes) == 1_000
    assert changes[0]["new"] == "MASTER" and changes[1]["new"] == "BACKUP"
    assert len(events(logs, "master_seen")) == 1


def test_dropped_packets_make_a_warning_summary_per_interval() -> None:
    clock = Clock()
    ex = Executor({}, clock=clock)
    inst = fake_instance()
    reasons = ["auth_failure", "vrid_mismatch", "packet_len_err"]
    with capture_logs() as logs:
        for i in range(10_000):
            ex.run(inst, [Dropped(reasons[i % 3], "bad", ROGUE)])
            clock.now += 0.002  # 20 s in all
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert 1 <= len(warnings) <= 1 + 20.0 / DROP_WARN_EVERY
    assert all(e["event"] == "packets_dropped" for e in warnings)
    # The summaries count every drop up to the last one logged, by reason:
    # the first at once, the next with the ~5,000 of the following 10 s.
    # (Drops after the last summary wait for the next drop to be reported.)
    summed = sum(sum(e["counts"].values()) for e in warnings)
    assert 5_000 <= summed <= 5_003
    assert set(warnings[-1]["counts"]) == set(reasons)


def test_failed_sends_are_rate_limited() -> None:
    ex = Executor({}, clock=Clock())  # no ARP socket, no VRRP socket: every send fails
    inst = fake_instance()
    with capture_logs() as logs:
        for _ in range(1_000):
            ex.run(inst, [SendAdvert(100)])
            ex.send_garp(inst, 5)
    failed = events(logs, "action_failed")
    assert len(failed) == 1
    assert failed[0]["error"] == "no VRRP socket on 'eth0' (interface missing)"
    garp = events(logs, "garp_failed")
    assert len(garp) == 1 and garp[0]["interface"] == "eth0"


def test_a_failed_action_does_not_stop_the_batch() -> None:
    ex = Executor({}, clock=Clock())
    inst = fake_instance()
    with capture_logs() as logs:
        ex.run(
            inst,
            [SendAdvert(0), StateChanged(State.MASTER, State.FAULT, "interface missing")],
        )
    assert [e["event"] for e in logs] == ["action_failed", "state_change"]


def test_garp_before_install_is_handed_to_the_vipset() -> None:
    ex = Executor({}, clock=Clock())
    asked: list[int] = []
    inst = fake_instance()
    inst.vipset = cast(Any, SimpleNamespace(garp=asked.append))
    ex.run(inst, [SendGarp(5), SendGarp(3)])
    assert asked == [5, 3]  # the VipSet coalesces (test_shell_vips.py)


# -------------------------------------------------------------- FaultInjector


def hang_or_fail(fi: FaultInjector, op: str) -> str:
    """What one netlink call sees: 'ok', 'ERRNAME' or 'hang'."""

    async def go() -> str:
        try:
            await asyncio.wait_for(fi.netlink(op), 0.02)
        except TimeoutError:
            return "hang"
        except HostError as exc:
            assert exc.errno_code is not None
            return errno.errorcode[exc.errno_code]
        return "ok"

    return asyncio.run(go())


def test_no_rules_no_effect() -> None:
    fi = FaultInjector()
    assert hang_or_fail(fi, "add_address") == "ok"
    fi.handling("VI_1", "PacketReceived")
    assert fi.hits == 0


def test_rules_hit_only_their_operation_and_only_count_times() -> None:
    fi = FaultInjector()
    assert fi.apply({"op": "add_address", "count": 2, "errno": errno.EBUSY})["ok"]
    assert hang_or_fail(fi, "remove_address") == "ok"
    assert hang_or_fail(fi, "add_address") == "EBUSY"
    assert hang_or_fail(fi, "add_address") == "EBUSY"
    assert hang_or_fail(fi, "add_address") == "ok"
    assert fi.hits == 2
    assert fi.rules == []


def test_default_error_is_enobufs_and_minus_one_lasts_until_cleared() -> None:
    fi = FaultInjector()
    fi.apply({"op": "link", "count": -1})
    assert [hang_or_fail(fi, "link") for _ in range(5)] == ["ENOBUFS"] * 5
    assert fi.apply({"op": "clear"}) == {"ok": True}
    assert hang_or_fail(fi, "link") == "ok"


def test_hang_mode_makes_the_call_never_answer() -> None:
    fi = FaultInjector()
    fi.apply({"op": "has_address", "mode": "hang"})
    assert hang_or_fail(fi, "has_address") == "hang"
    assert hang_or_fail(fi, "has_address") == "ok"


def test_first_matching_rule_wins() -> None:
    fi = FaultInjector()
    fi.apply({"op": "add_address", "errno": errno.EBUSY})
    fi.apply({"op": "add_address", "mode": "hang"})
    assert hang_or_fail(fi, "add_address") == "EBUSY"
    assert hang_or_fail(fi, "add_address") == "hang"


def test_handle_rules_match_instance_and_event() -> None:
    fi = FaultInjector()
    fi.apply({"op": "handle", "mode": "raise", "instance": "VI_2", "event": "TimerFired"})
    fi.handling("VI_1", "TimerFired")  # other instance: untouched
    fi.handling("VI_2", "PacketReceived")  # other event: untouched
    with pytest.raises(RuntimeError, match="injected fault while VI_2 handled TimerFired"):
        fi.handling("VI_2", "TimerFired")
    fi.handling("VI_2", "TimerFired")  # spent
    fi.apply({"op": "handle", "count": 2})  # any instance, any event
    for name in ("VI_1", "VI_2"):
        with pytest.raises(RuntimeError):
            fi.handling(name, "LinkChanged")
    fi.handling("VI_1", "LinkChanged")


@pytest.mark.parametrize(
    "spec",
    [{"op": "reboot"}, {"op": "link", "mode": "explode"}, {"mode": "hang"}],
)
def test_bad_rules_are_refused(spec: dict[str, Any]) -> None:
    fi = FaultInjector()
    reply = fi.apply(spec)
    assert "bad rule" in reply["error"]
    assert fi.rules == []


def test_off_unless_the_environment_asks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(faults_mod.ENV, raising=False)
    assert faults_mod.from_environment() is None
    path = str(tmp_path / "faults.sock")
    monkeypatch.setenv(faults_mod.ENV, path)
    sock = faults_mod.from_environment()
    assert sock is not None and sock.path == path


def test_fault_socket_takes_one_json_rule_per_connection(tmp_path: Path) -> None:
    path = str(tmp_path / "faults.sock")
    fi = FaultInjector()

    async def send(line: bytes) -> dict[str, Any]:
        reader, writer = await asyncio.open_unix_connection(path)
        writer.write(line)
        await writer.drain()
        reply = json.loads(await reader.readline())
        writer.close()
        return cast(dict[str, Any], reply)

    async def scenario() -> None:
        fs = FaultSocket(path, fi)
        await fs.start()
        try:
            # Only its owner may switch faults on.
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
            rule = {"op": "add_address", "mode": "hang", "count": 3}
            assert await send(json.dumps(rule).encode() + b"\n") == {"ok": True, "rules": 1}
            assert "error" in await send(b"not json\n")
            assert "error" in await send(b"[1, 2]\n")
            assert await send(b'{"op": "clear"}\n') == {"ok": True}
        finally:
            await fs.close()
        assert not os.path.exists(path)

    asyncio.run(asyncio.wait_for(scenario(), 5))
    assert fi.rules == []
