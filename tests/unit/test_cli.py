"""What an operator sees from the commands: messages and exit codes, never a traceback."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

GUIDE = Path(__file__).parents[2] / "conf" / "guide-primary.conf"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pyvrrpd", *args], capture_output=True, text=True, timeout=60
    )


def compat(*args: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from pyvrrpd.cli import keepalived_main; sys.exit(keepalived_main())"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60
    )


def test_check_config_accepts_the_guide() -> None:
    # --syntax-only: the guide's interface and check script need not exist here.
    r = run("check-config", "--syntax-only", "-f", str(GUIDE))
    assert r.returncode == 0, r.stderr
    assert "OK, 1 instance, 1 script, 0 warnings" in r.stdout
    assert r.stderr == ""


def test_check_config_reports_every_error_with_location(tmp_path: Path) -> None:
    bad = tmp_path / "bad.conf"
    bad.write_text(
        "vrrp_instance VI_1 {\n"
        "  interface eth0\n"
        "  virtual_router_id 300\n"
        "  priority abc\n"
        "  virtual_ipaddress {\n"
        "    192.0.2.10\n"
        "  }\n"
        "}\n"
    )
    r = run("check-config", "-f", str(bad))
    assert r.returncode == 5  # keepalived -t's code for errors
    assert f"{bad}:3:21: error:" in r.stderr
    assert f"{bad}:4:12: error:" in r.stderr
    assert "^" in r.stderr
    assert "Traceback" not in r.stderr


def test_run_with_bad_config_exits_without_starting(tmp_path: Path) -> None:
    bad = tmp_path / "bad.conf"
    bad.write_text("vrrp_instance VI_1 {\n  interface eth0\n")
    r = run("run", "-f", str(bad), "--control-socket", str(tmp_path / "s"))
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert "bad.conf:" in r.stderr


def test_missing_config_is_one_line() -> None:
    r = run("check-config", "-f", "/nonexistent/keepalived.conf")
    assert r.returncode == 4
    assert "/nonexistent/keepalived.conf" in r.stderr
    assert "Traceback" not in r.stderr


def test_status_without_daemon_is_one_line(tmp_path: Path) -> None:
    r = run("status", "--control-socket", str(tmp_path / "none.sock"))
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0
    assert "no daemon" in r.stderr


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (
            "global_defs {\n enable_script_security\n}\n"
            "vrrp_instance X {\n interface eth0\n virtual_router_id 1\n"
            " virtual_ipaddress {\n  192.0.2.10\n }\n}\n",
            0,
        ),
        ("vrrp_instance X {\n interface eth0\n virtual_router_id 1\n bogus_kw 1\n}\n", 5),
        (
            "vrrp_script c {\n script /bin/true\n}\n"
            "vrrp_instance X {\n interface eth0\n virtual_router_id 1\n"
            " track_script {\n  c\n }\n}\n",
            6,
        ),
    ],
)
def test_keepalived_t_exit_codes(tmp_path: Path, text: str, code: int) -> None:
    if not Path("/sys/class/net/eth0").exists():
        pytest.skip("no eth0 here (keepalived -t checks the interface exists)")
    path = tmp_path / "k.conf"
    path.write_text(text)
    r = compat("-t", "-f", str(path))
    assert r.returncode == code, r.stderr


def test_keepalived_t_missing_file_is_fatal() -> None:
    assert compat("-t", "-f", "/nonexistent.conf").returncode == 4


def test_status_rendering_for_an_operator() -> None:
    from pyvrrpd.cli.main import render_status

    stats = dict.fromkeys(
        ("advert_rcvd", "advert_sent", "become_master", "release_master", "pri_zero_rcvd"), 0
    )
    reply = {
        "instances": [
            {
                "name": "VI_1",
                "state": "BACKUP",
                "vrid": 51,
                "interface": "eth0",
                "priority": 100,
                "effective_priority": 80,
                "master": {"address": "192.0.2.12", "priority": 90},
                "vips": ["192.0.2.10/32"],
                "trackers": [
                    {"name": "chk", "status": "down", "weight": -20, "reverse": False},
                    {
                        "name": "process:haproxy",
                        "status": "down",
                        "weight": 0,
                        "reverse": False,
                        "value": 0,
                        "last_change": 1_790_000_000.5,
                        "scan_error": "/proc: EMFILE",
                    },
                ],
                "fault_reasons": [],
                "stats": {**stats, "advert_rcvd": 7, "pri_zero_sent": 0, "auth_failure": 2},
            }
        ]
    }
    text = render_status(reply)
    assert "VI_1: BACKUP  vrid 51 on eth0, priority 100 (effective 80)" in text
    assert "master:   192.0.2.12 (priority 90)" in text
    assert "tracker:  chk down (weight -20)" in text
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(1_790_000_000.5))
    assert (
        f"tracker:  process:haproxy down (weight 0) value 0, changed {stamp}"
        " [scan_error /proc: EMFILE]"
    ) in text
    assert "dropped:  auth_failure 2" in text


def test_check_config_takes_keepalived_config_id(tmp_path: Path) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text(
        "@lb1 vrrp_instance V {\n@lb1 interface eth0\n@lb1 virtual_router_id 1\n"
        "@lb1 virtual_ipaddress {\n@lb1 192.0.2.10\n@lb1 }\n@lb1 }\n"
    )
    r = run("check-config", "--syntax-only", "-i", "lb1", "-f", str(conf))
    assert r.returncode == 0, r.stderr
    assert "OK, 1 instance" in r.stdout


@pytest.mark.parametrize(
    ("main", "vrrp", "ns", "inst", "want"),
    [
        (None, None, None, None, ("/run/keepalived.pid", "/run/keepalived_vrrp.pid")),
        ("/run/a.pid", None, None, None, ("/run/a.pid", "/run/keepalived_vrrp.pid")),
        (
            None,
            None,
            "ns1",
            None,
            ("/run/keepalived/ns1/keepalived.pid", "/run/keepalived/ns1/vrrp.pid"),
        ),
        (
            None,
            None,
            None,
            "lb",
            ("/run/keepalived/keepalived_lb.pid", "/run/keepalived/vrrp_lb.pid"),
        ),
        (None, "/x/v.pid", "ns1", "lb", ("/run/keepalived/ns1/keepalived_lb.pid", "/x/v.pid")),
    ],
)
def test_keepalived_pid_file_names(
    main: str | None, vrrp: str | None, ns: str | None, inst: str | None, want: tuple[str, str]
) -> None:
    from pyvrrpd.cli.common import keepalived_pid_files

    assert keepalived_pid_files(main, vrrp, ns, inst) == want


def test_control_socket_follows_the_pid_file() -> None:
    from pyvrrpd.cli.common import control_socket_for
    from pyvrrpd.shell.ops.control import DEFAULT_SOCKET

    assert control_socket_for("/run/keepalived.pid") == DEFAULT_SOCKET
    assert control_socket_for(None) == DEFAULT_SOCKET
    assert control_socket_for("/run/ka1.pid") == "/run/ka1.pyvrrpd.sock"
    assert control_socket_for("/run/keepalived/ns1/keepalived.pid") == (
        "/run/keepalived/ns1/keepalived.pyvrrpd.sock"
    )
