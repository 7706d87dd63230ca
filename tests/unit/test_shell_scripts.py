"""vrrp_script scheduling in the shell: interval, rise/fall, disabling unsafe scripts."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from pyvrrpd.config.model import GlobalDefs, VrrpScript
from pyvrrpd.shell.scripttrack import ScriptTracker, prepare_script
from pyvrrpd.shell.timerheap import TimerHeap


def make_script(tmp_path: Path, body: str, name: str = "chk.sh") -> Path:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


def test_tracker_reports_fall_after_consecutive_failures(tmp_path: Path) -> None:
    flag = tmp_path / "ok"
    flag.write_text("")
    script = make_script(tmp_path, f"test -e {flag}")
    spec = VrrpScript("chk", (str(script),), interval=0.05, fall=3, rise=2)
    changes: list[tuple[float, bool | None]] = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        timers = TimerHeap(loop)
        prepared = prepare_script(spec, GlobalDefs())
        assert not isinstance(prepared, str), prepared
        tracker = ScriptTracker(
            spec, prepared[0], prepared[1], timers, lambda n, ok: changes.append((loop.time(), ok))
        )
        tracker.start(loop.time())
        while not changes:
            await asyncio.sleep(0.01)
        flag.unlink()
        t_fail = loop.time()
        while len(changes) < 2:
            await asyncio.sleep(0.01)
        flag.write_text("")
        while len(changes) < 3:
            await asyncio.sleep(0.01)
        tracker.stop()
        timers.close()
        # Three failures at a 50 ms interval: at least two intervals after the change.
        assert changes[1][0] - t_fail >= 0.09
        assert tracker.runs >= 6

    asyncio.run(asyncio.wait_for(scenario(), timeout=20))
    assert [ok for _, ok in changes] == [True, False, True]


def test_missing_script_is_disabled_with_reason() -> None:
    spec = VrrpScript("chk", ("/nonexistent/check.sh",))
    assert prepare_script(spec, GlobalDefs()) == (
        "script '/nonexistent/check.sh' not found or not executable"
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="script security applies to scripts run as root")
def test_insecure_script_refused_with_enable_script_security(tmp_path: Path) -> None:
    unsafe = tmp_path / "unsafe"
    unsafe.mkdir()
    unsafe.chmod(0o777)  # world-writable, no sticky bit
    script = make_script(unsafe, "exit 0")
    spec = VrrpScript("chk", (str(script),))
    secure = GlobalDefs(enable_script_security=True, script_user="root")
    reason = prepare_script(spec, secure)
    assert isinstance(reason, str) and reason.startswith("unsafe permissions:")
    assert "world-writable" in reason or "writable" in reason
    # Without enable_script_security keepalived runs it (and warns elsewhere).
    assert not isinstance(prepare_script(spec, GlobalDefs(script_user="root")), str)
    unsafe.chmod(stat.S_IRWXU)
    assert not isinstance(prepare_script(spec, secure), str)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching user needs root")
def test_script_user_runs_with_that_users_group_not_root() -> None:
    from pyvrrpd.io.scripts import run_script

    check = 'test "$(id -u)" != 0 && test "$(id -g)" != 0 && test "$(id -un)" = nobody'
    result = asyncio.run(run_script(["/bin/sh", "-c", check], 5, user="nobody"))
    assert result.ok, result
    as_root = asyncio.run(run_script(["/bin/sh", "-c", check], 5))
    assert not as_root.ok  # the same check fails as root: the test can fail
