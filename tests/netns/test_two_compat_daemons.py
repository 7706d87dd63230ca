"""Two `keepalived` compat daemons on one host, each in its own network namespace.

They share the file system (one run directory, as two keepalived instances
share /run): distinct -p/-r pid files must give distinct control sockets,
`pyvrrpd status --pid-file` must reach each one, and they must fail over
between them like any pair.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest

from tests.netns._pair import VIP, Pair, pair_lan, wait_for

pytestmark = pytest.mark.netns

COMPAT = "import sys; from pyvrrpd.cli import keepalived_main; sys.exit(keepalived_main())"
HOSTS = {"lb1": 150, "lb2": 100}


def start_compat(pair: Pair, host: str, prio: int, *flags: str) -> None:
    conf = pair.conf(host, prio)
    log = open(pair.workdir / f"{host}.log", "ab")  # noqa: SIM115
    cmd = ["ip", "netns", "exec", pair.ns(host), sys.executable, "-c", COMPAT]
    cmd += ["-n", "-l", "-f", str(conf), *flags]
    pair.procs[host] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def status(pid_file: Path) -> dict[str, object] | None:
    """The instance a compat daemon reports, addressed by its pid file; None if not answering."""
    r = subprocess.run(
        [sys.executable, "-m", "pyvrrpd", "status", "--json", "--pid-file", str(pid_file)],
        capture_output=True,
        text=True,
        timeout=10,
    )
    if r.returncode != 0:
        return None
    inst: dict[str, object] = json.loads(r.stdout)["instances"][0]
    return inst


def state(pid_file: Path) -> str | None:
    got = status(pid_file)
    return None if got is None else str(got["state"])


def answers(pid_file: Path) -> bool:
    return state(pid_file) is not None


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")


def test_two_compat_daemons_with_distinct_pid_files_share_a_run_dir(tmp_path: Path) -> None:
    need_root()
    run = tmp_path / "run"  # both daemons' /run
    run.mkdir()
    with pair_lan(tmp_path) as pair:
        pids = {h: run / f"keepalived-{h}.pid" for h in HOSTS}
        for host, prio in HOSTS.items():
            start_compat(
                pair, host, prio, "-p", str(pids[host]), "-r", str(run / f"vrrp-{host}.pid")
            )
        # Each answers on the socket next to its own pid file.
        for host in HOSTS:
            answering = wait_for(partial(answers, pids[host]), 10)
            assert answering is not None, pair.log(host)
            assert (run / f"keepalived-{host}.pyvrrpd.sock").exists()
            assert int(pids[host].read_text().split()[0]) > 0
        assert wait_for(lambda: state(pids["lb1"]) == "MASTER", 10) is not None, pair.log("lb1")
        assert state(pids["lb2"]) == "BACKUP"
        assert wait_for(lambda: pair.holders() == ["lb1"], 5) is not None
        # Fail over: stop the master; the other daemon takes the VIP.
        pair.signal("lb1", signal.SIGTERM)
        assert pair.procs["lb1"].wait(timeout=10) == 0, pair.log("lb1")
        assert wait_for(lambda: state(pids["lb2"]) == "MASTER", 5) is not None, pair.log("lb2")
        assert wait_for(lambda: pair.holders() == ["lb2"], 5) is not None
        # The stopped daemon removed its pid file and socket, not the other's.
        assert not pids["lb1"].exists()
        assert not (run / "keepalived-lb1.pyvrrpd.sock").exists()
        assert pids["lb2"].exists()
        assert VIP in str(status(pids["lb2"]))


def test_namespace_flag_names_pid_files_like_keepalived(tmp_path: Path) -> None:
    """`-s NS` without -p/-r: /run/keepalived/NS/keepalived.pid, as keepalived 2.2.7 names them.

    Each daemon is started inside its namespace (`ip netns exec NS ... -s NS`:
    entering the namespace it is already in), so nothing runs in the host's.
    """
    need_root()
    with pair_lan(tmp_path) as pair:
        dirs = [Path("/run/keepalived") / pair.ns(h) for h in HOSTS]
        try:
            for host, prio in HOSTS.items():
                start_compat(pair, host, prio, "-s", pair.ns(host))
            pids = {h: Path("/run/keepalived") / pair.ns(h) / "keepalived.pid" for h in HOSTS}
            for host in HOSTS:
                answering = wait_for(partial(answers, pids[host]), 10)
                assert answering is not None, pair.log(host)
                assert (pids[host].parent / "vrrp.pid").exists()
            assert wait_for(lambda: state(pids["lb1"]) == "MASTER", 10) is not None
            assert state(pids["lb2"]) == "BACKUP"
        finally:
            for proc in pair.procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(timeout=10)
            for d in dirs:
                shutil.rmtree(d, ignore_errors=True)


def test_namespace_flag_with_unknown_namespace_is_one_line(tmp_path: Path) -> None:
    need_root()
    conf = tmp_path / "k.conf"
    conf.write_text("vrrp_instance V {\n interface eth0\n virtual_router_id 1\n}\n")
    with pair_lan(tmp_path) as pair:  # started inside a lab namespace all the same
        cmd = ["ip", "netns", "exec", pair.ns("lb1"), sys.executable, "-c", COMPAT]
        r = subprocess.run(
            [*cmd, "-n", "-l", "-f", str(conf), "-s", "pvd-no-such-ns"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert r.returncode == 1
    assert "unable to set network namespace pvd-no-such-ns" in r.stderr
    assert "Traceback" not in r.stderr
