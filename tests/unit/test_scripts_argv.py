"""Scripts run as written (issue 5 item 4): argv[0] kept, PATH search, security on links.

Debian's ``pidof`` is a symlink to ``killall5``, which picks its behaviour by
argv[0]: run with argv[0] ``/usr/sbin/killall5`` it never finds anything. These
tests run the usual process checks (``pidof``, ``killall -0``, ``pgrep``, a
``/bin/sh -c`` one-liner) against a stand-in process with a unique name (the
host's /proc is shared with other tests, so never the name ``haproxy``).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyvrrpd.config.model import GlobalDefs, VrrpScript
from pyvrrpd.config.parser import parse_text
from pyvrrpd.io.scripts import (
    ScriptCommand,
    find_script,
    insecure_reason,
    resolve_script,
    run_script,
    script_command,
    search_path,
)
from pyvrrpd.shell.scripttrack import prepare_script


def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"missing tools: {', '.join(missing)}")


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A copy of sleep running under a unique short name (comm is 15 chars max)."""
    name = "pvhx" + secrets.token_hex(4)
    exe = tmp_path / name
    shutil.copy("/bin/sleep", exe)
    proc = subprocess.Popen([str(exe), "60"])
    try:
        yield name, proc
    finally:
        proc.kill()
        proc.wait()


def _run(argv: list[str] | tuple[str, ...], executable: str | None = None) -> bool:
    return asyncio.run(run_script(argv, timeout=5, executable=executable)).ok


def _command(*argv: str) -> ScriptCommand:
    command = script_command(argv)
    assert command is not None, f"{argv[0]} not found in PATH"
    return command


# ---- argv and executable building ---------------------------------------------


def test_bare_name_keeps_argv0_and_executes_path_match(monkeypatch: pytest.MonkeyPatch) -> None:
    _need("pidof")
    monkeypatch.setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    command = _command("pidof", "haproxy")
    assert command.argv == ("pidof", "haproxy")
    # The first PATH match, links not resolved: the kernel follows them at exec.
    assert command.executable == shutil.which("pidof")
    assert os.path.isabs(command.executable)


def test_absolute_and_relative_paths_kept_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    check = tmp_path / "check.sh"
    check.write_text("#!/bin/sh\nexit 0\n")
    check.chmod(0o755)
    assert _command(str(check), "a").argv == (str(check), "a")
    monkeypatch.chdir(tmp_path)
    rel = _command("./check.sh")
    assert rel.argv == ("./check.sh",)
    assert rel.executable == os.path.join(str(tmp_path), "./check.sh")


def test_path_is_the_daemons_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = tmp_path / "pvcheck"
    mine.write_text("#!/bin/sh\nexit 7\n")
    mine.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    assert search_path() == f"{tmp_path}:/usr/bin:/bin"
    assert find_script("pvcheck") == str(mine)
    res = asyncio.run(run_script(["pvcheck"], 5, executable=find_script("pvcheck")))
    assert res.exit_status == 7


def test_unset_path_falls_back_to_cs_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PATH", raising=False)
    # glibc's confstr(_CS_PATH), what keepalived's find_path() falls back to.
    assert search_path() == os.confstr("CS_PATH")
    assert find_script("sh") is not None


def test_path_search_skips_files_the_script_user_cannot_execute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for d in (first, second):
        d.mkdir()
        (d / "pvcheck").write_text("#!/bin/sh\nexit 0\n")
    (first / "pvcheck").chmod(0o700)  # owner only
    (second / "pvcheck").chmod(0o755)
    monkeypatch.setenv("PATH", f"{first}:{second}")
    owner = os.stat(first / "pvcheck").st_uid
    assert find_script("pvcheck", uid=owner, gid=0) == str(first / "pvcheck")
    assert find_script("pvcheck", uid=owner + 4242, gid=4242) == str(second / "pvcheck")
    (second / "pvcheck").chmod(0o644)
    assert find_script("pvcheck", uid=owner + 4242, gid=4242) is None
    assert find_script("no-such-command-pv") is None


def test_prepare_script_keeps_configured_argv() -> None:
    _need("pidof")
    prepared = prepare_script(VrrpScript("chk", ("pidof", "haproxy")), GlobalDefs())
    assert not isinstance(prepared, str), prepared
    command, _identity = prepared
    assert command.argv == ("pidof", "haproxy")
    assert resolve_script(command.executable) == os.path.realpath(command.executable)


@pytest.mark.skipif(os.geteuid() != 0, reason="script security applies to scripts run as root")
def test_prepare_script_security_passes_for_system_pidof() -> None:
    _need("pidof")
    secure = GlobalDefs(enable_script_security=True, script_user="root")
    prepared = prepare_script(VrrpScript("chk", ("pidof", "haproxy")), secure)
    assert not isinstance(prepared, str), prepared


# ---- the usual process checks, run as configured --------------------------------


def test_pidof_finds_running_process(standin: tuple[str, subprocess.Popen[bytes]]) -> None:
    _need("pidof")
    name, proc = standin
    command = _command("pidof", name)
    assert _run(command.argv, command.executable)
    assert _run(["pidof", name])  # no executable given: looked up at spawn, argv kept
    # What the old runner did (argv[0] = the resolved path): killall5 mode, always fails.
    assert not _run([os.path.realpath(command.executable), name])
    proc.kill()
    proc.wait()
    assert not _run(command.argv, command.executable)


def test_killall_0_finds_running_process(standin: tuple[str, subprocess.Popen[bytes]]) -> None:
    _need("killall")
    name, proc = standin
    command = _command("killall", "-0", name)
    assert command.argv[0] == "killall"
    assert _run(command.argv, command.executable)
    proc.kill()
    proc.wait()
    assert not _run(command.argv, command.executable)


def test_pgrep_finds_running_process(standin: tuple[str, subprocess.Popen[bytes]]) -> None:
    _need("pgrep")
    name, proc = standin
    command = _command("pgrep", "-x", name)
    assert _run(command.argv, command.executable)
    proc.kill()
    proc.wait()
    assert not _run(command.argv, command.executable)


def test_sh_c_script_from_config(standin: tuple[str, subprocess.Popen[bytes]]) -> None:
    _need("pidof")
    name, proc = standin
    config = parse_text(
        f"""
vrrp_script chk {{
  script "/bin/sh -c 'pidof {name} > /dev/null && test -d /proc'"
}}
"""
    )
    spec = config.script("chk")
    assert spec is not None
    assert spec.argv == ("/bin/sh", "-c", f"pidof {name} > /dev/null && test -d /proc")
    prepared = prepare_script(spec, GlobalDefs())
    assert not isinstance(prepared, str), prepared
    command = prepared[0]
    assert command.argv[0] == "/bin/sh"
    assert _run(command.argv, command.executable)
    proc.kill()
    proc.wait()
    assert not _run(command.argv, command.executable)


def test_argv0_seen_by_the_process_is_the_configured_one(tmp_path: Path) -> None:
    out = tmp_path / "argv0"
    # bash sets $0 from argv[0] in -c mode: the name it was started as.
    res = asyncio.run(
        run_script(["myname", "-c", f'printf %s "$0" > {out}'], 5, executable="/bin/sh")
    )
    assert res.ok, res
    assert out.read_text() == "myname"


# ---- script security follows the symlink chain -----------------------------------


@pytest.fixture
def safe_dir(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        pytest.skip("needs root: files must be root-owned for the safe case")
    reason = insecure_reason(str(tmp_path))
    if reason is not None:
        pytest.skip(f"tmp dir ancestors are not root-safe: {reason}")
    return tmp_path


def _target(safe_dir: Path) -> Path:
    real = safe_dir / "real" / "check.sh"
    real.parent.mkdir()
    real.write_text("#!/bin/sh\nexit 0\n")
    real.chmod(0o755)
    return real


def test_root_owned_link_in_safe_dir_is_secure(safe_dir: Path) -> None:
    link = safe_dir / "check"
    link.symlink_to(_target(safe_dir))
    assert insecure_reason(str(link)) is None


def test_link_owned_by_another_user_is_insecure(safe_dir: Path) -> None:
    link = safe_dir / "check"
    link.symlink_to(_target(safe_dir))
    os.lchown(link, 4242, 0)
    assert insecure_reason(str(link)) == f"{link}: symlink {link} is owned by uid 4242, not root"


def test_link_in_world_writable_dir_is_insecure(safe_dir: Path) -> None:
    real = _target(safe_dir)
    open_dir = safe_dir / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)  # anyone could replace the link: root would run their file
    link = open_dir / "check"
    link.symlink_to(real)
    assert insecure_reason(str(link)) == f"{link}: directory {open_dir} is world-writable"


def test_relative_link_chain_checked(safe_dir: Path) -> None:
    real = _target(safe_dir)
    hop = safe_dir / "hop"
    hop.mkdir()
    (hop / "one").symlink_to("../real/check.sh")
    two = safe_dir / "two"
    two.symlink_to("hop/one")
    assert insecure_reason(str(two)) is None
    os.lchown(hop / "one", 4242, 0)
    expected = f"{two}: symlink {hop / 'one'} is owned by uid 4242, not root"
    assert insecure_reason(str(two)) == expected
    assert resolve_script(str(two)) == str(real)
