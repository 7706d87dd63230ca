"""pyvrrpd.io.scripts and procname: real processes, no root needed (some checks need it)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from pyvrrpd.io import scripts
from pyvrrpd.io.scripts import insecure_reason, resolve_script, run_script


def _script(tmp_path: Path, name: str, body: str) -> str:
    p = tmp_path / name
    p.write_text("#!/bin/sh\n" + body)
    p.chmod(0o755)
    return str(p)


def _gone(pid: int) -> bool:
    """The pid no longer exists (a zombie awaiting an absent reaper counts as gone)."""
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("code", [0, 1, 3])
def test_exit_status(tmp_path: Path, code: int) -> None:
    path = _script(tmp_path, "s.sh", f"exit {code}\n")
    res = asyncio.run(run_script([path], timeout=5))
    assert res.ok is (code == 0)
    assert res.exit_status == code
    assert res.signal is None and not res.timed_out and res.error is None
    assert 0 <= res.duration < 5


def test_args_env_scrubbed_and_output_discarded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "env.txt"
    path = _script(
        tmp_path,
        "s.sh",
        f'echo "noise"; echo "noise" >&2; echo "$1 IFS=${{IFS-unset}} LDP=${{LD_PRELOAD-unset}} '
        f'LDLP=${{LD_LIBRARY_PATH-unset}} KEEP=$KEEP" > {out}\n',
    )
    monkeypatch.setenv("LD_PRELOAD", "/nonexistent.so")
    monkeypatch.setenv("LD_LIBRARY_PATH", "/nonexistent")
    monkeypatch.setenv("KEEP", "yes")
    res = asyncio.run(run_script([path, "arg1"], timeout=5))
    assert res.ok
    # dash sets IFS itself when it is unset; what matters is that ours (unset
    # here) and the LD_* variables are not passed through.
    text = out.read_text()
    assert "arg1 " in text and "LDP=unset" in text and "LDLP=unset" in text
    assert "KEEP=yes" in text
    captured = capfd.readouterr()
    assert "noise" not in captured.out and "noise" not in captured.err


def test_timeout_kills_whole_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    # The script starts a grandchild `sleep` in the background, records both
    # pids, then blocks. A timeout must take out the grandchild too.
    path = _script(
        tmp_path,
        "slow.sh",
        f"sleep 60 &\necho $$ $! > {pidfile}\nwait\n",
    )

    async def main() -> scripts.ScriptResult:
        return await run_script([path], timeout=0.5)

    t0 = time.monotonic()
    res = asyncio.run(main())
    elapsed = time.monotonic() - t0
    assert res.timed_out and not res.ok
    assert res.signal == signal.SIGTERM
    assert elapsed < 0.5 + scripts.KILL_GRACE
    script_pid, grandchild = (int(x) for x in pidfile.read_text().split())
    deadline = time.monotonic() + 2
    while not (_gone(grandchild) and _gone(script_pid)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _gone(grandchild), f"grandchild sleep {grandchild} survived the timeout"
    assert _gone(script_pid)
    print(f"\ntimeout 0.5 s: result after {elapsed * 1e3:.0f} ms, group gone")


def test_timeout_sigkill_after_grace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scripts, "KILL_GRACE", 0.3)
    pidfile = tmp_path / "pids"
    # Ignores SIGTERM (and so does its child, which inherits the ignore).
    path = _script(
        tmp_path, "stubborn.sh", f"trap '' TERM\nsleep 60 &\necho $$ $! > {pidfile}\nwait\n"
    )
    res = asyncio.run(run_script([path], timeout=0.3))
    assert res.timed_out and not res.ok
    assert res.signal == signal.SIGKILL
    script_pid, grandchild = (int(x) for x in pidfile.read_text().split())
    deadline = time.monotonic() + 2
    while not _gone(grandchild) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _gone(grandchild) and _gone(script_pid)


def test_killed_by_external_signal(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    path = _script(tmp_path, "victim.sh", f"echo $$ > {pidfile}\nexec sleep 30\n")

    async def main() -> scripts.ScriptResult:
        task = asyncio.create_task(run_script([path], timeout=10))
        for _ in range(200):
            if pidfile.exists() and pidfile.read_text().strip():
                break
            await asyncio.sleep(0.01)
        os.kill(int(pidfile.read_text()), signal.SIGUSR1)  # our own child only
        return await task

    res = asyncio.run(main())
    assert not res.ok and not res.timed_out
    assert res.signal == signal.SIGUSR1 and res.exit_status is None


def test_missing_script(tmp_path: Path) -> None:
    res = asyncio.run(run_script([str(tmp_path / "nope.sh")], timeout=1))
    assert not res.ok and res.exit_status is None and res.error is not None
    assert "not found" in res.error and "\n" not in res.error


def test_not_executable(tmp_path: Path) -> None:
    p = tmp_path / "noexec.sh"
    p.write_text("#!/bin/sh\nexit 0\n")
    p.chmod(0o644)
    res = asyncio.run(run_script([str(p)], timeout=1))
    if os.geteuid() == 0 and res.ok:
        pytest.skip("root may exec files without x bits on this filesystem")
    assert not res.ok and res.error is not None and "permission denied" in res.error


def test_no_shebang_runs_with_sh(tmp_path: Path) -> None:
    p = tmp_path / "plain"
    p.write_text("exit 4\n")
    p.chmod(0o755)
    res = asyncio.run(run_script([str(p)], timeout=2))
    assert res.exit_status == 4 and not res.ok


def test_bare_name_in_path() -> None:
    res = asyncio.run(run_script(["true"], timeout=2))
    assert res.ok
    assert resolve_script("true") == os.path.realpath(shutil.which("true") or "")
    assert resolve_script("definitely-not-a-command-pv") is None


def test_unknown_user() -> None:
    res = asyncio.run(run_script(["true"], timeout=2, user="no-such-user-pvtest"))
    assert not res.ok and res.error is not None and "unknown user" in res.error


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to change user")
def test_runs_as_user() -> None:
    import pwd

    uid = pwd.getpwnam("nobody").pw_uid
    # Output is discarded, so the check is the exit status.
    check = f'test "$(id -u)" = {uid} && test "$(id -G)" = "$(id -g)"'
    res = asyncio.run(run_script(["sh", "-c", check], timeout=5, user="nobody", group="nogroup"))
    assert res.ok, res


def test_loop_stays_responsive(tmp_path: Path) -> None:
    path = _script(tmp_path, "sleepy.sh", "sleep 0.6\n")

    async def main() -> tuple[int, float]:
        ticks = 0
        worst = 0.0

        async def ticker() -> None:
            nonlocal ticks, worst
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.01)
                now = time.monotonic()
                worst = max(worst, now - last)
                last = now
                ticks += 1

        t = asyncio.create_task(ticker())
        res = await run_script([path], timeout=5)
        t.cancel()
        assert res.ok
        return ticks, worst

    ticks, worst = asyncio.run(main())
    assert ticks >= 30
    assert worst < 0.2
    print(f"\n{ticks} ticks of 10 ms during a 0.6 s script; worst gap {worst * 1e3:.1f} ms")


def test_cancel_kills_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    path = _script(tmp_path, "long.sh", f"echo $$ > {pidfile}\nexec sleep 30\n")

    async def main() -> None:
        task = asyncio.create_task(run_script([path], timeout=30))
        for _ in range(200):
            if pidfile.exists() and pidfile.read_text().strip():
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.1)

    asyncio.run(main())
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 2
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _gone(pid)


# ---- insecure_reason -------------------------------------------------------


def _mk(tmp_path: Path, rel: str, mode: int) -> str:
    p = tmp_path / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("#!/bin/sh\nexit 0\n")
    p.chmod(mode)
    return str(p)


@pytest.fixture
def safe_root(tmp_path: Path) -> Path:
    """A root-owned 0755 directory chain under tmp_path (needs root for chown)."""
    if os.geteuid() != 0:
        pytest.skip("needs root: files must be root-owned for the safe case")
    # tmp_path's ancestors must themselves be safe for a clean "None" result.
    if insecure_reason(str(tmp_path)) is not None:
        pytest.skip(f"tmp dir ancestors are not root-safe: {insecure_reason(str(tmp_path))}")
    return tmp_path


def test_insecure_world_writable_dir(safe_root: Path) -> None:
    path = _mk(safe_root, "x/check.sh", 0o755)
    (safe_root / "x").chmod(0o777)
    reason = insecure_reason(path)
    assert reason == f"{path}: directory {safe_root / 'x'} is world-writable"


def test_insecure_group_writable_file(safe_root: Path) -> None:
    path = _mk(safe_root, "y/check.sh", 0o775)
    os.chown(path, 0, 4242)
    reason = insecure_reason(path)
    assert reason is not None and "file" in reason and "group-writable" in reason


def test_group_writable_by_root_group_allowed(safe_root: Path) -> None:
    path = _mk(safe_root, "g/check.sh", 0o775)
    os.chown(path, 0, 0)
    assert insecure_reason(path) is None


def test_sticky_dir_allowed(safe_root: Path) -> None:
    path = _mk(safe_root, "t/check.sh", 0o755)
    (safe_root / "t").chmod(0o777 | stat.S_ISVTX)
    assert insecure_reason(path) is None


def test_safe_file(safe_root: Path) -> None:
    assert insecure_reason(_mk(safe_root, "ok/check.sh", 0o755)) is None


def test_non_root_owner(safe_root: Path) -> None:
    path = _mk(safe_root, "o/check.sh", 0o755)
    os.chown(path, 4242, 0)
    reason = insecure_reason(path)
    assert reason is not None and "owned by uid 4242" in reason


def test_symlink_resolved(safe_root: Path) -> None:
    real = _mk(safe_root, "ww/check.sh", 0o755)
    (safe_root / "ww").chmod(0o777)
    link = safe_root / "link.sh"
    link.symlink_to(real)
    reason = insecure_reason(str(link))
    assert reason is not None and f"directory {safe_root / 'ww'}" in reason


def test_world_writable_file_any_user(tmp_path: Path) -> None:
    path = _mk(tmp_path, "w/check.sh", 0o757)
    reason = insecure_reason(path)
    assert reason is not None and reason.startswith(f"{path}: ") and "\n" not in reason


def test_system_binary_is_safe() -> None:
    true = resolve_script("true")
    assert true is not None
    assert insecure_reason(true) is None


# ---- procname ----------------------------------------------------------------


def test_set_process_name_comm_pidof_killall() -> None:
    code = (
        "import sys, time; from pyvrrpd.io.procname import set_process_name; "
        "set_process_name('pvtestname'); print('ready', flush=True); time.sleep(30)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=os.getcwd()
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        comm = Path(f"/proc/{proc.pid}/comm").read_text().strip()
        assert comm == "pvtestname"
        findings = [f"comm={comm!r}"]
        killall = shutil.which("killall")
        if killall:
            # psmisc killall matches comm. Signal 0 only probes ("killall -0
            # NAME" is the classic keepalived track script); only our child
            # carries this name.
            out = subprocess.run([killall, "-0", "pvtestname"], capture_output=True, text=True)
            assert out.returncode == 0, out
            findings.append("killall -0 matches")
        pgrep = shutil.which("pgrep")
        if pgrep:
            out = subprocess.run([pgrep, "-x", "pvtestname"], capture_output=True, text=True)
            assert str(proc.pid) in out.stdout.split()
            findings.append("pgrep -x matches")
        pidof = shutil.which("pidof")
        if pidof:
            # sysvinit-utils pidof (killall5) matches the basename of argv[0]
            # (or argv[1] with -x), NOT comm: recorded, not asserted.
            out = subprocess.run([pidof, "pvtestname"], capture_output=True, text=True)
            hit = str(proc.pid) in out.stdout.split()
            findings.append(f"pidof {'matches' if hit else 'does NOT match (argv[0]-based)'}")
        print("\n" + "; ".join(findings))
    finally:
        proc.kill()
        proc.wait()
