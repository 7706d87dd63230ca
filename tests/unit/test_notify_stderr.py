"""Notify hooks' stderr is bounded: the first and last 4 KiB are logged, the
rest counted, and a script writing stderr without end costs no memory."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

from structlog.testing import capture_logs

from pyvrrpd.config.model import GlobalDefs, NotifyConfig, NotifyFifo, NotifyScript
from pyvrrpd.io.scripts import StderrCapture, run_script
from pyvrrpd.shell.ops.notify import STDERR_MAX, Notifier


async def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def buffered_bytes() -> int:
    """Bytes held in memfds/regular files this process has open for stderr
    (the old memfd buffer grew with everything a hook wrote)."""
    total = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{fd}").startswith("/memfd:pyvrrpd"):
                total += os.fstat(int(fd)).st_size
    return total


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def test_a_hook_flooding_stderr_logs_its_start_and_end_only(tmp_path: Path) -> None:
    flood = "head -c 100000000 /dev/zero | tr '\\0' x >&2; echo THE-END >&2; exit 2"
    cfg = NotifyConfig(master=NotifyScript((script(tmp_path, "m.sh", flood),)))
    peak = 0

    async def scenario() -> None:
        nonlocal peak
        n = Notifier(GlobalDefs(), {"VI_1": cfg})
        n.start()
        n.instance_state("VI_1", "MASTER", 100)
        while n.counters.scripts_failed == 0:
            peak = max(peak, buffered_bytes())
            await asyncio.sleep(0.01)
        n.close()

    with capture_logs() as logs:
        asyncio.run(scenario())
    failed = [e for e in logs if e["event"] == "notify_script_failed"]
    assert len(failed) == 1
    stderr = failed[0]["stderr"]
    assert stderr.startswith("x" * 100) and stderr.endswith("THE-END")
    assert f"[... {100_000_000 + 8 - 2 * STDERR_MAX} bytes skipped ...]" in stderr
    assert len(stderr) < 2 * STDERR_MAX + 100
    assert peak < 1_000_000, f"{peak} bytes of stderr buffered"


def test_a_grandchild_holding_stderr_does_not_delay_the_result(tmp_path: Path) -> None:
    body = "sleep 3 >&2 & echo hello >&2"

    async def scenario() -> tuple[str, float]:
        cap = StderrCapture()
        t0 = time.monotonic()
        await run_script([script(tmp_path, "g.sh", body)], 10, stderr_fd=cap.write_fd)
        await asyncio.sleep(0.05)
        cap.close()
        return cap.text(), time.monotonic() - t0

    text, took = asyncio.run(scenario())
    assert text == "hello"
    assert took < 2.0


def test_a_fifo_script_chattering_on_stderr_stays_bounded(tmp_path: Path) -> None:
    fifo = tmp_path / "v.fifo"
    body = 'head -c 30000000 /dev/zero >&2; echo ready > "$1.ready"; exec cat "$1" >/dev/null'
    reader = NotifyScript((script(tmp_path, "reader.sh", body),))
    gdefs = GlobalDefs(vrrp_notify_fifo=NotifyFifo(str(fifo), script=reader))
    peak = 0

    async def scenario() -> None:
        nonlocal peak
        n = Notifier(gdefs, {"VI_1": NotifyConfig()})
        n.start()
        ready = Path(f"{fifo}.ready")
        deadline = time.monotonic() + 10
        while not ready.exists() and time.monotonic() < deadline:
            peak = max(peak, buffered_bytes())
            await asyncio.sleep(0.01)
        assert ready.exists(), "the fifo script did not get through its stderr"
        await n.stop({"VI_1": 100})

    with capture_logs() as logs:
        asyncio.run(scenario())
    assert peak < 1_000_000, f"{peak} bytes of stderr buffered"
    exited = [e for e in logs if e["event"] == "notify_fifo_script_exited"]
    assert len(exited) == 1 and "bytes skipped" in exited[0]["stderr"]
