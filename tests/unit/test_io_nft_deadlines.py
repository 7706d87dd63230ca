"""nft runs under deadlines that fit the VIP give-up, and the table never stays behind.

What a user sees: with a hung `nft` the no_accept master gives up (and the
peer takes over) within GIVE_UP_AFTER, the daemon never waits unboundedly
for a killed nft, a transition to MASTER is a single `add element` run (the
table is made at start), and stopping deletes the table even when the run
that created it timed out.
"""

from __future__ import annotations

import asyncio
import errno
import time
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from pyvrrpd.config.model import Config
from pyvrrpd.io import nft as nft_mod
from pyvrrpd.io.errors import HostError
from pyvrrpd.io.nft import NFT_TIMEOUT, Nft
from pyvrrpd.shell.host import vips
from pyvrrpd.shell.host.firewall import Firewall

VIP = IPv4Address("192.0.2.10")


def fake_nft(tmp_path: Path, body: str = "exit 0") -> tuple[Path, Path]:
    """An nft that appends each script it gets to a journal, then runs `body`."""
    journal = tmp_path / "journal"
    fake = tmp_path / "nft"
    fake.write_text(f'#!/bin/sh\ncat >> "{journal}"\necho --- >> "{journal}"\n{body}\n')
    fake.chmod(0o755)
    return fake, journal


def scripts(journal: Path) -> list[str]:
    if not journal.exists():
        return []
    return [s.strip() for s in journal.read_text().split("---") if s.strip()]


def test_two_nft_attempts_fit_in_the_vip_give_up_time() -> None:
    # A hung nft must cost no more than a hung netlink call: the VipSet gives
    # up after GIVE_UP_AFTER, and its second attempt must end by then.
    assert 2 * NFT_TIMEOUT + vips.BACKOFF_FIRST <= vips.GIVE_UP_AFTER


def test_a_hung_nft_times_out_on_time_and_the_table_is_still_cleaned_up(tmp_path: Path) -> None:
    # The add commits (the journal has it) and then hangs: killed at the
    # deadline, but the table may exist, so remove and stop must still run.
    fake, journal = fake_nft(tmp_path, "exec sleep 1000")

    async def scenario() -> None:
        nft = Nft("keepalived", binary=str(fake))
        t0 = time.monotonic()
        with pytest.raises(HostError) as err:
            await nft.add([VIP])
        assert err.value.errno_code == errno.ETIMEDOUT
        assert time.monotonic() - t0 < NFT_TIMEOUT + 0.5
        assert "nft did not finish within 0.7 s" in str(err.value)
        fake.write_text(f'#!/bin/sh\ncat >> "{journal}"\necho --- >> "{journal}"\n')
        await nft.remove([VIP])
        assert "delete element ip keepalived vips { 192.0.2.10 }" in scripts(journal)[-1]

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_stop_deletes_the_table_even_if_this_process_never_saw_it_made(tmp_path: Path) -> None:
    fake, journal = fake_nft(tmp_path)

    async def scenario() -> None:
        fw = Firewall(Config(), Nft("keepalived", binary=str(fake)))
        assert not fw.nft.created
        await fw.stop()

    asyncio.run(asyncio.wait_for(scenario(), 10))
    assert scripts(journal) == ["delete table ip keepalived"]


def test_stop_with_no_table_is_quiet(tmp_path: Path) -> None:
    fake, journal = fake_nft(
        tmp_path,
        "echo 'Error: Could not process rule: No such file or directory' >&2; exit 1",
    )

    async def scenario() -> None:
        await Firewall(Config(), Nft("keepalived", binary=str(fake))).stop()

    asyncio.run(asyncio.wait_for(scenario(), 10))
    assert scripts(journal) == ["delete table ip keepalived"]


def test_the_table_is_made_at_start_so_a_transition_only_adds_elements(tmp_path: Path) -> None:
    fake, journal = fake_nft(tmp_path)

    async def scenario() -> None:
        fw = Firewall(Config(), Nft("keepalived", binary=str(fake)))
        await fw.start()
        await fw.add([VIP])
        await fw.remove([VIP])
        await fw.add([VIP])

    asyncio.run(asyncio.wait_for(scenario(), 10))
    runs = scripts(journal)
    assert runs[0] == "delete table ip keepalived"
    assert "add chain ip keepalived in" in runs[1] and "add element" not in runs[1]
    assert runs[2] == "add element ip keepalived vips { 192.0.2.10 }"
    assert runs[4] == runs[2]


def test_setup_runs_again_without_stacking_rules(tmp_path: Path) -> None:
    # A setup that may have committed is run again: it flushes the chains in
    # the same batch before adding their rule.
    script = Nft("keepalived")._setup()
    lines = script.splitlines()
    assert lines.index("flush chain ip keepalived out") < lines.index(
        "add rule ip keepalived out ip saddr @vips drop"
    )
    assert lines.index("flush chain ip keepalived in") < lines.index(
        "add rule ip keepalived in ip daddr @vips drop"
    )


class _StuckProc:
    """A killed process the kernel never lets go of (uninterruptible sleep)."""

    pid = 999999
    returncode = None

    async def communicate(self, _data: bytes) -> tuple[bytes, bytes]:
        await asyncio.Event().wait()
        raise AssertionError

    async def wait(self) -> int:
        await asyncio.Event().wait()
        raise AssertionError

    def kill(self) -> None:
        pass


def test_waiting_for_a_killed_nft_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    async def spawn(*_a: Any, **_k: Any) -> _StuckProc:
        return _StuckProc()

    monkeypatch.setattr(asyncio, "create_subprocess_exec", spawn)

    async def scenario() -> float:
        nft = Nft("keepalived", binary="/bin/true", timeout=0.2)
        t0 = time.monotonic()
        with pytest.raises(HostError):
            await nft.add([VIP])
        return time.monotonic() - t0

    took = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert took < 0.2 + nft_mod._REAP_TIMEOUT + 0.5
