"""systemd/*.service pass `systemd-analyze verify` in the install layout, and their commands parse.

`verify` checks that ExecStart and the other commands exist, so it runs on a
temporary root laid out as scripts/install.sh installs (units in
/etc/systemd/system, stand-ins for /usr/local/sbin/pyvrrpd and keepalived,
systemd's own units copied for the targets they name). The commands in the
units are also parsed with pyvrrpd's own option parsers.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from pyvrrpd.cli.keepalived import _parser as keepalived_parser
from pyvrrpd.cli.main import build_parser

REPO = Path(__file__).resolve().parents[2]
UNITS = ("pyvrrpd.service", "keepalived.service")
SYSTEM_UNITS = Path("/usr/lib/systemd/system")


def _root(tmp: Path) -> Path:
    root = tmp / "root"
    (root / "usr/local/sbin").mkdir(parents=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    (root / "usr/lib/systemd").mkdir(parents=True)
    shutil.copytree(SYSTEM_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    for name in ("pyvrrpd", "keepalived"):
        exe = root / "usr/local/sbin" / name
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    for unit in UNITS:
        shutil.copy(REPO / "systemd" / unit, root / "etc/systemd/system" / unit)
    return root


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None or not SYSTEM_UNITS.is_dir(),
    reason="systemd-analyze missing (apt-get install systemd)",
)
def test_units_verify_clean_in_the_install_layout(tmp_path: Path) -> None:
    root = _root(tmp_path)
    res = subprocess.run(
        [
            "systemd-analyze",
            "verify",
            f"--root={root}",
            *(f"/etc/systemd/system/{u}" for u in UNITS),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert res.stderr.strip() == "", res.stderr  # unknown keys are only warnings: none allowed


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_verify_notices_a_missing_binary(tmp_path: Path) -> None:
    if not SYSTEM_UNITS.is_dir():
        pytest.skip("no systemd units on this host")
    root = _root(tmp_path)
    (root / "usr/local/sbin/pyvrrpd").unlink()
    res = subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", "/etc/systemd/system/pyvrrpd.service"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode != 0 and "/usr/local/sbin/pyvrrpd" in res.stderr


def _commands(unit: str) -> dict[str, list[str]]:
    text = (REPO / "systemd" / unit).read_text()
    return {
        m.group(1): shlex.split(m.group(2)) for m in re.finditer(r"^(Exec\w+)=(.*)$", text, re.M)
    }


@pytest.mark.parametrize("unit", UNITS)
def test_unit_commands_parse(unit: str) -> None:
    cmds = _commands(unit)
    assert set(cmds) == {"ExecStart", "ExecReload", "ExecStopPost"}
    for key, argv in cmds.items():
        assert argv[0].startswith("/usr/local/sbin/"), (key, argv)
        args = [a for a in argv[1:] if not a.startswith("$")]
        if argv[0].endswith("/keepalived"):
            ns = keepalived_parser().parse_args(args)
            assert ns.dont_fork  # Type=notify: the process systemd started is the daemon
        else:
            build_parser().parse_args(args)  # exits (SystemExit) on a bad option


def test_watchdog_is_shorter_than_the_shortest_master_down_minus_one_advert() -> None:
    """RFC 3768 6.1 with advert_int 1 and a backup at priority 254 at most."""
    shortest_mdi = 3 * 1.0 + (256 - 254) / 256  # a backup never has priority 255
    for unit in UNITS:
        text = (REPO / "systemd" / unit).read_text()
        m = re.search(r"^WatchdogSec=(\d+)s$", text, re.M)
        assert m, unit
        assert int(m.group(1)) < shortest_mdi - 1.0
        assert re.search(r"^Type=notify$", text, re.M)
        assert re.search(r"^Restart=on-failure$", text, re.M)
        # /tmp/keepalived.* dumps and notify FIFOs stay where operators look.
        assert not re.search(r"^PrivateTmp=", text, re.M)


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None or not SYSTEM_UNITS.is_dir(),
    reason="systemd-analyze missing (apt-get install systemd)",
)
def test_readme_relax_dropin_verifies(tmp_path: Path) -> None:
    """README "systemd": the drop-in that relaxes the hardening is valid as written."""
    readme = (REPO / "README.md").read_text()
    m = re.search(
        r"```ini\n# (/etc/systemd/system/pyvrrpd\.service\.d/\S+)\n(.*?)```", readme, re.S
    )
    assert m, "README has no pyvrrpd.service.d drop-in example"
    root = _root(tmp_path)
    dropin = root / m.group(1).lstrip("/")
    dropin.parent.mkdir(parents=True)
    dropin.write_text(m.group(2))
    res = subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", "/etc/systemd/system/pyvrrpd.service"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0 and res.stderr.strip() == "", res.stderr
