"""scripts/install.sh, demo.sh, test.sh argument handling: one-line refusals, exit 2.

Nothing here installs anything: every case stops before the first write (a bad
argument, or not root). As root, the not-root case runs the script as `nobody`
via setpriv(1); it is skipped when that is not possible.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _bash(*args: str, as_nobody: bool = False) -> subprocess.CompletedProcess[str]:
    cmd = ["bash", *args]
    if as_nobody and os.geteuid() == 0:
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False, cwd="/")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--bogus"], "unknown argument '--bogus'"),
        (["--prefix", "relative/dir"], "--prefix must be an absolute directory"),
        (["--wheel"], "--wheel needs a file"),
    ],
)
def test_bad_arguments_one_line_exit_2(args: list[str], says: str) -> None:
    r = _bash(str(REPO / "scripts/install.sh"), *args)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and says in r.stderr, r.stderr


def test_help_lists_the_options() -> None:
    r = _bash(str(REPO / "scripts/install.sh"), "--help")
    assert r.returncode == 0
    for opt in ("--compat", "--uninstall", "--wheel", "--prefix", "/usr/local/sbin"):
        assert opt in r.stdout


@pytest.mark.parametrize(
    "script",
    ["scripts/install.sh", "scripts/uninstall.sh", "scripts/demo.sh", "scripts/test.sh",
     "scripts/setup.sh"],
)  # fmt: skip
def test_not_root_says_so_in_one_line(script: str) -> None:
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("root without setpriv: cannot drop to a non-root user")
    # A world-readable copy, so a root-only checkout (or pytest's 0700 tmp) does
    # not stop `nobody` from reading the script.
    with tempfile.TemporaryDirectory(prefix="pyvrrpd-install-args-") as tmp:
        copy = Path(tmp) / "repo"
        shutil.copytree(REPO / "scripts", copy / "scripts")
        for d in (Path(tmp), copy, copy / "scripts"):
            d.chmod(0o755)
        r = _bash(str(copy / script), as_nobody=True)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "run as root" in lines[0], r.stderr
