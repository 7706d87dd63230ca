"""`keepalived -t` parity: the real keepalived 2.2.7 and ours give the same exit code.

Each config runs through `/usr/sbin/keepalived -t`, our compat `keepalived -t`
and `pyvrrpd check-config`, all inside one network namespace with an eth0
(keepalived checks interfaces; -t touches no network). The only allowed
differences are the documented ones (README, `keepalived -t` section).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.netns._pair import ip, wait_for

pytestmark = pytest.mark.netns

KEEPALIVED = "/usr/sbin/keepalived"
REPO = Path(__file__).parents[2]
OURS_T = "import sys; from pyvrrpd.cli import keepalived_main; sys.exit(keepalived_main())"

HEAD = "global_defs {\n  router_id lb1\n  script_user root\n  enable_script_security\n}\n"


def instance(extra: str = "", interface: str = "eth0") -> str:
    return (
        "vrrp_instance VI_1 {\n  state BACKUP\n"
        f"  interface {interface}\n  virtual_router_id 51\n  priority 100\n"
        f"  virtual_ipaddress {{\n    192.0.2.10/24\n  }}\n{extra}}}\n"
    )


def script(path: str, name: str = "chk") -> str:
    return f'vrrp_script {name} {{\n  script "{path}"\n  interval 1\n}}\n'


TRACK = "  track_script {\n    chk\n  }\n"
NOSEC = "global_defs {\n  router_id lb1\n  script_user root\n}\n"

# name -> (config text; {SCRIPTS} is the scripts directory), keepalived's code,
# our code when it differs on purpose (None: must be equal).
CASES: dict[str, tuple[str, int, int | None]] = {
    "implemented": (
        HEAD.replace("}\n", "  vrrp_min_garp\n  vrrp_version 2\n}\n")
        + instance("  nopreempt\n  advert_int 2\n"),
        0,
        None,
    ),
    "implemented_unicast": (
        HEAD + instance("  unicast_src_ip 192.0.2.11\n  unicast_peer {\n    192.0.2.12\n  }\n"),
        0,
        None,
    ),
    "no_effect": (
        "global_defs {\n  router_id lb1\n  enable_script_security\n  lvs_flush\n"
        "  enable_snmp_vrrp\n  checker_priority 5\n}\n"
        "virtual_server 192.0.2.10 80 {\n  delay_loop 6\n  lb_algo rr\n  lb_kind DR\n"
        "  protocol TCP\n"
        "  real_server 192.0.2.21 80 {\n    weight 1\n  }\n}\n"
        + instance("  debug 2\n  kernel_rx_buf_size 65536\n").replace(
            "192.0.2.10/24", "192.0.2.10/24 no_track -nodad"
        ),
        0,
        None,
    ),
    "track_process": (
        HEAD
        + "vrrp_track_process haproxy {\n  process haproxy\n}\n"
        + instance("  track_process {\n    haproxy\n  }\n"),
        0,
        None,
    ),
    # keepalived 2.2.7 accepts these; pyvrrpd cannot run them as keepalived would.
    "refused_vrrp_version_3": (HEAD.replace("}\n", "  vrrp_version 3\n}\n") + instance(), 0, 5),
    "unknown_keyword": (HEAD + instance("  bogus_keyword 1\n"), 5, None),
    "newer_keepalived_keyword": (
        HEAD.replace("}\n", "  json_version 2\n}\n") + instance(),
        5,
        None,
    ),
    "bad_value": (HEAD + instance().replace("priority 100", "priority 300"), 5, None),
    "auth_pass_semicolon": (
        HEAD + instance("  authentication {\n    auth_type PASS;\n    auth_pass 1111\n  }\n"),
        5,
        None,
    ),
    "nopreempt_semicolon": (HEAD + instance("  nopreempt;\n"), 5, None),
    # The ';' is part of the password for both: accepted, with our (silent) warning.
    "auth_pass_value_semicolon": (
        HEAD + instance("  authentication {\n    auth_type PASS\n    auth_pass 1111;\n  }\n"),
        0,
        None,
    ),
    "missing_interface": (HEAD + instance(interface="eth9"), 5, None),
    "script_ok": (HEAD + script("{SCRIPTS}/ok.sh") + instance(TRACK), 0, None),
    "script_missing": (HEAD + script("{SCRIPTS}/missing.sh") + instance(TRACK), 5, None),
    "script_not_executable": (HEAD + script("{SCRIPTS}/noexec.sh") + instance(TRACK), 0, None),
    "script_insecure": (HEAD + script("{SCRIPTS}/open/ok.sh") + instance(TRACK), 5, None),
    "script_without_security": (NOSEC + script("{SCRIPTS}/ok.sh") + instance(TRACK), 6, None),
    "unused_script_without_security": (NOSEC + script("{SCRIPTS}/ok.sh") + instance(), 6, None),
    "notify_without_security": (
        NOSEC + instance('  notify_master "{SCRIPTS}/ok.sh"\n'),
        6,
        None,
    ),
    "notify_missing": (HEAD + instance('  notify_master "{SCRIPTS}/missing.sh"\n'), 0, None),
}


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("needs root (a network namespace)")
    if not os.access(KEEPALIVED, os.X_OK):
        pytest.skip(f"{KEEPALIVED} not installed")
    ns = f"hpar{os.getpid() % 100000}"
    ip("netns", "add", ns)
    try:
        ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
        ip("-n", ns, "addr", "add", "192.0.2.11/24", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
        ip("-n", ns, "link", "set", "eth0p", "up")
        # A second LAN, as the shipped sync-group config uses.
        ip("-n", ns, "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p")
        ip("-n", ns, "addr", "add", "198.51.100.11/24", "dev", "eth1")
        ip("-n", ns, "link", "set", "eth1", "up")
        ip("-n", ns, "link", "set", "eth1p", "up")
        yield ns
    finally:
        ip("netns", "del", ns, check=False)


@pytest.fixture(scope="module")
def scripts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("scripts")
    d.chmod(0o755)
    for name, mode in (("ok.sh", 0o755), ("noexec.sh", 0o644)):
        (d / name).write_text("#!/bin/sh\nexit 0\n")
        (d / name).chmod(mode)
    open_dir = d / "open"
    open_dir.mkdir()
    (open_dir / "ok.sh").write_text("#!/bin/sh\nexit 0\n")
    (open_dir / "ok.sh").chmod(0o755)
    open_dir.chmod(0o777)  # world-writable, not sticky: script security refuses it
    return d


def codes(ns: str, conf: Path, shell_prefix: str = "") -> tuple[int, int, int, str]:
    """(keepalived -t, our keepalived -t, pyvrrpd check-config) exit codes, and our output."""

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        cmd = " ".join(f"'{a}'" for a in argv)
        return subprocess.run(
            ["ip", "netns", "exec", ns, "sh", "-c", f"{shell_prefix}exec {cmd}"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )

    theirs = run(KEEPALIVED, "-t", "-f", str(conf))
    ours = run(sys.executable, "-c", OURS_T, "-t", "-f", str(conf))
    check = run(sys.executable, "-m", "pyvrrpd", "check-config", "-f", str(conf))
    detail = f"keepalived:\n{theirs.stderr}\nours:\n{ours.stderr}\ncheck-config:\n{check.stderr}"
    return theirs.returncode, ours.returncode, check.returncode, detail


@pytest.mark.parametrize("case", sorted(CASES))
def test_exit_code_matches_keepalived(case: str, netns: str, scripts: Path, tmp_path: Path) -> None:
    text, expected_theirs, deliberate = CASES[case]
    conf = tmp_path / f"{case}.conf"
    conf.write_text(text.replace("{SCRIPTS}", str(scripts)))
    theirs, ours, check, detail = codes(netns, conf)
    assert theirs == expected_theirs, detail
    assert ours == (theirs if deliberate is None else deliberate), detail
    assert check == ours, detail
    if case == "auth_pass_semicolon":
        assert "WITHOUT authentication" in detail
    if case == "auth_pass_value_semicolon":
        assert "ends with ';'" in detail
    if case == "script_not_executable":
        assert "is not executable" in detail  # keepalived is silent, we are not


def test_missing_file_is_fatal_for_us_and_ok_for_keepalived(netns: str, tmp_path: Path) -> None:
    # keepalived 2.2.7 exits 0 for a config file that does not exist; we exit 4.
    theirs, ours, check, detail = codes(netns, tmp_path / "nonexistent.conf")
    assert (theirs, ours, check) == (0, 4, 4), detail


@pytest.mark.parametrize("conf", sorted(p.name for p in (REPO / "conf").glob("*.conf")))
def test_shipped_configs_pass_both(conf: str, netns: str) -> None:
    """Every conf/*.conf: exit 0 from keepalived -t, our -t and check-config.

    Their check scripts live in /etc/keepalived: a tmpfs is mounted there in the
    namespace's private mount table (ip netns exec unshares mounts), so the
    host's /etc is never touched.
    """
    text = (REPO / "conf" / conf).read_text()
    wanted = sorted(
        {
            w.strip('"').split()[0]
            for line in text.splitlines()
            if line.strip().startswith(("script ", "notify"))
            for w in [line.strip().split(None, 1)[1]]
            if w.strip('"').startswith("/etc/keepalived/")
        }
    )
    if wanted and not Path("/etc/keepalived").is_dir():
        pytest.skip("/etc/keepalived missing: cannot mount the scripts' directory")
    prefix = "mount -t tmpfs -o mode=755 pvparity /etc/keepalived && " if wanted else ""
    for path in wanted:
        prefix += f"printf '#!/bin/sh\\nexit 0\\n' > {path} && chmod 755 {path} && "
    if shutil.which("sh") is None:
        pytest.skip("no sh")
    theirs, ours, check, detail = codes(netns, REPO / "conf" / conf, prefix)
    assert (theirs, ours, check) == (0, 0, 0), detail


def test_run_logs_a_disabled_script_once_at_start(
    netns: str, scripts: Path, tmp_path: Path
) -> None:
    """What -t reports about a missing script, `run` logs once, as an error, and shows in status."""
    conf = tmp_path / "k.conf"
    conf.write_text(HEAD + script(f"{scripts}/missing.sh") + instance(TRACK))
    sock = tmp_path / "k.sock"
    log_path = tmp_path / "k.log"
    run_cmd = ["ip", "netns", "exec", netns, sys.executable, "-m", "pyvrrpd", "run"]
    status_cmd = [sys.executable, "-m", "pyvrrpd", "status", "--json"]
    got: list[dict[str, object]] = []

    def answered() -> bool:
        r = subprocess.run(
            [*status_cmd, "--control-socket", str(sock)],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=REPO,
        )
        if r.returncode == 0:
            got.append(json.loads(r.stdout)["instances"][0])
        return bool(got)

    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [*run_cmd, "-f", str(conf), "--control-socket", str(sock), "--log-format", "json"],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    try:
        assert wait_for(answered, 10) is not None, log_path.read_text()
        disabled = got[0]["disabled_trackers"]
        assert isinstance(disabled, list)
        assert [d["name"] for d in disabled] == ["chk"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    events = [
        json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")
    ]
    lines = [e for e in events if e.get("event") == "script_disabled"]
    assert len(lines) == 1, events
    assert lines[0]["level"] == "error"
    assert "not found or not executable" in lines[0]["reason"]
