"""Notify hooks, notify FIFOs and alert mails: pyvrrpd against keepalived 2.2.7, same run.

keepalived runs on lb1 (VRID 51, VIP 192.0.2.10) and pyvrrpd on lb2 (VRID 52,
VIP 192.0.2.20), each alone in its group, with the same configuration: every
notify hook calling a recorder script (it appends its argv to a file), a
weight-0 track_script testing a flag file, a notify_fifo the test reads, a
vrrp_notify_fifo with a fifo script copying what it reads, and smtp_alert to
an aiosmtpd relay on inj. The test drives both through the same scenario at
the same time (start-up, FAULT when the flag goes, recovery, SIGTERM) and
compares what each side's hooks, FIFOs and mails saw.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from pyvrrpd.wire.ipv4 import build_ipv4
from pyvrrpd.wire.vrrp import VRRP_GROUP, encode_advert
from tests.netns._helpers import check_with_private_etc
from tests.netns._pair import Pair, ip, wait_for
from tests.netns.test_daemon_hostile import INJ, send_raw

pytestmark = [pytest.mark.netns, pytest.mark.interop]

CONF = """\
global_defs {{
  router_id {rid}
  enable_script_security
  script_user root
  notify_fifo {work}/{side}-global.fifo
  vrrp_notify_fifo {work}/{side}-vrrp.fifo
  vrrp_notify_fifo_script "{work}/fifo-reader.sh {work}/{side}-fifo-script.out"
  notification_email {{
    ops@example.org
  }}
  notification_email_from {side}@example.org
  smtp_server 192.0.2.66 2525
  smtp_connect_timeout 5
  smtp_alert
}}
vrrp_script chk {{
  script "/usr/bin/test -e {work}/{side}.flag"
  interval 1
  weight 0
}}
vrrp_instance VI_1 {{
  state BACKUP
  interface eth0
  virtual_router_id {vrid}
  priority 100
  advert_int 1
  track_script {{
    chk
  }}
  notify_master "{work}/rec.sh {work}/{side}.calls master"
  notify_backup "{work}/rec.sh {work}/{side}.calls backup"
  notify_fault "{work}/rec.sh {work}/{side}.calls fault"
  notify_stop "{work}/rec.sh {work}/{side}.calls stop"
  notify "{work}/rec.sh {work}/{side}.calls generic"
  notify_master_rx_lower_pri "{work}/rec.sh {work}/{side}.calls lower"
  virtual_ipaddress {{
    {vip}/24
  }}
}}
"""

RELAY_ARGS = ["-n", "-l", "192.0.2.66:2525", "-c", "aiosmtpd.handlers.Debugging"]
SIDES = {"ka": ("lb1", 51, "192.0.2.10"), "py": ("lb2", 52, "192.0.2.20")}


@pytest.fixture(autouse=True)
def _need_tools() -> None:
    if not os.path.exists("/usr/sbin/keepalived"):
        pytest.skip("keepalived not installed (apt-get install keepalived)")
    try:
        import aiosmtpd  # noqa: F401
    except ImportError:
        pytest.skip("aiosmtpd not installed (test dependency)")


class FifoReader:
    """Holds a FIFO open for reading (non-blocking) and collects its lines."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path, 0o644)
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.buf = b""

    def lines(self) -> list[str]:
        with contextlib.suppress(BlockingIOError):
            while chunk := os.read(self.fd, 65536):
                self.buf += chunk
        return self.buf.decode().splitlines()

    def close(self) -> None:
        os.close(self.fd)


def read(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def by_transition(calls: list[str]) -> list[frozenset[str]]:
    """The recorder's lines, two per transition (specific + generic, launched
    in that order but run concurrently: keepalived.md 3.1), as sets."""
    return [frozenset(calls[i : i + 2]) for i in range(0, len(calls), 2)]


def mail_subjects(log: str, sender: str) -> list[str]:
    """Subjects of the mails aiosmtpd's Debugging handler printed, for one sender."""
    out = []
    for block in log.split("---------- MESSAGE FOLLOWS ----------")[1:]:
        if f"From: {sender}" in block:
            m = re.search(r"^Subject: (.*)$", block, re.M)
            if m:
                out.append(m.group(1).strip())
    return out


def has_vip(pair: Pair, host: str, vip: str) -> bool:
    out = ip("-n", pair.ns(host), "-4", "-o", "addr", "show", "dev", "eth0").stdout
    return f" {vip}/" in out


def test_notify_hooks_fifo_and_mail_match_keepalived(pair: Pair) -> None:
    work = pair.workdir
    os.chmod(work, 0o755)
    (work / "rec.sh").write_text('#!/bin/sh\nout="$1"; shift\necho "$*" >> "$out"\n')
    (work / "fifo-reader.sh").write_text(
        "#!/bin/sh\n# argv: OUT FIFO (keepalived appends the FIFO path)\n"
        'echo "ARGV $(basename "$2")" >> "$1"\nexec cat "$2" >> "$1"\n'
    )
    for script in ("rec.sh", "fifo-reader.sh"):
        (work / script).chmod(0o755)
    smtp_log = open(work / "smtp.log", "wb")  # noqa: SIM115
    in_inj = ["ip", "netns", "exec", pair.ns("inj")]
    relay = subprocess.Popen(
        [*in_inj, sys.executable, "-u", "-m", "aiosmtpd", *RELAY_ARGS],
        stdout=smtp_log,
        stderr=subprocess.STDOUT,
    )
    pair.procs["inj"] = relay
    assert wait_for(
        lambda: "2525" in ip("netns", "exec", pair.ns("inj"), "ss", "-ltn").stdout, 10.0
    ), "aiosmtpd did not start"

    fifos: dict[str, FifoReader] = {}
    for side, (host, vrid, vip) in SIDES.items():
        (work / f"{side}.flag").write_text("")
        fifos[side] = FifoReader(work / f"{side}-global.fifo")
        rid = "ka_lb1" if side == "ka" else "py_lb2"
        text = CONF.format(rid=rid, work=work, side=side, vrid=vrid, vip=vip)
        if side == "ka":
            pair.start_keepalived(host, 100, conf_text=text)
        else:
            pair.start(host, 100, conf_text=text)
    try:
        _scenario(pair, fifos)
    finally:
        for f in fifos.values():
            f.close()

    calls = {side: read(work / f"{side}.calls") for side in SIDES}
    fifo_lines = {side: fifos[side].buf.decode().splitlines() for side in SIDES}
    fifo_script = {side: read(work / f"{side}-fifo-script.out") for side in SIDES}
    _print_side_by_side("recorder argv", calls)
    _print_side_by_side("notify_fifo lines", fifo_lines)
    _print_side_by_side("vrrp_notify_fifo_script output", fifo_script)

    expected_fifo = [
        f'INSTANCE "VI_1" {s} 100'
        for s in ("BACKUP", "MASTER", "FAULT", "BACKUP", "MASTER", "MASTER_RX_LOWER_PRI", "STOP")
    ]
    assert fifo_lines["ka"] == expected_fifo, "keepalived did not do what this test assumes"
    assert fifo_lines["py"] == fifo_lines["ka"]
    # notify_master_rx_lower_pri: its configured argv, nothing appended, no generic call.
    assert calls["ka"][10] == calls["py"][10] == "lower"
    del calls["ka"][10], calls["py"][10]
    assert by_transition(calls["py"]) == by_transition(calls["ka"])
    assert len(calls["ka"]) == 12
    # The fifo script got the FIFO path as its last argument and every line
    # up to STOP (it is SIGTERMed before the STOP lines are written).
    assert (
        fifo_script["py"][0] == "ARGV py-vrrp.fifo" and fifo_script["ka"][0] == "ARGV ka-vrrp.fifo"
    )
    assert fifo_script["py"][1:] == fifo_script["ka"][1:] == expected_fifo[:-1]

    # Mail: one per transition, keepalived's subjects. keepalived's STOP mail
    # races its exit, so compare up to the last MASTER and check ours has STOP.
    def relay_has_py_stop() -> bool:
        text = (work / "smtp.log").read_text(errors="replace")
        return any("Stopping" in s for s in mail_subjects(text, "py@example.org"))

    wait_for(relay_has_py_stop, 5.0)
    log = (work / "smtp.log").read_text(errors="replace")
    subjects = {
        "ka": mail_subjects(log, "ka@example.org"),
        "py": mail_subjects(log, "py@example.org"),
    }
    _print_side_by_side("mail subjects", subjects)
    states = ["BACKUP", "MASTER", "FAULT", "BACKUP", "MASTER"]
    assert subjects["py"] == [
        f"[py_lb2] VRRP Instance VI_1 - Entering {s} state" for s in states
    ] + ["[py_lb2] VRRP Instance VI_1 - Stopping"]
    assert [s.replace("ka_lb1", "py_lb2") for s in subjects["ka"][:5]] == subjects["py"][:5]


def _scenario(pair: Pair, fifos: dict[str, FifoReader]) -> None:
    work = pair.workdir

    def states(side: str) -> list[str]:
        return [ln.split()[2] for ln in fifos[side].lines()]

    def both(n: int, last: str) -> bool:
        return all(len(states(s)) >= n and states(s)[n - 1] == last for s in SIDES)

    # Start-up: BACKUP once the weight-0 script has reported, MASTER after
    # Master_Down_Interval (each is alone in its group).
    assert wait_for(lambda: both(2, "MASTER"), 12.0) is not None, {s: states(s) for s in SIDES}
    for side, (host, _, vip) in SIDES.items():
        assert has_vip(pair, host, vip), side
    # The weight-0 script fails: FAULT, VIPs removed.
    for side in SIDES:
        (work / f"{side}.flag").unlink()
    assert wait_for(lambda: both(3, "FAULT"), 5.0) is not None, {s: states(s) for s in SIDES}
    # It recovers: BACKUP, then MASTER after Master_Down_Interval.
    for side in SIDES:
        (work / f"{side}.flag").write_text("")
    assert wait_for(lambda: both(5, "MASTER"), 10.0) is not None, {s: states(s) for s in SIDES}
    # Let the hooks of the last transition finish before stopping.
    assert wait_for(lambda: all(len(read(work / f"{s}.calls")) == 10 for s in SIDES), 5.0)
    # A lower-priority advert from inj: each master answers and stays master,
    # running notify_master_rx_lower_pri and writing MASTER_RX_LOWER_PRI.
    send_raw(
        pair.ns("inj"),
        [
            build_ipv4(INJ, VRRP_GROUP, encode_advert(vrid, 50, [IPv4Address(vip)], 1, 0, b""))
            for _, vrid, vip in SIDES.values()
        ],
    )
    assert wait_for(lambda: both(6, "MASTER_RX_LOWER_PRI"), 3.0) is not None
    assert wait_for(lambda: all(len(read(work / f"{s}.calls")) == 11 for s in SIDES), 5.0)
    for side, (host, _, vip) in SIDES.items():
        assert has_vip(pair, host, vip), side
    # `pyvrrpd status --json` counts what the hooks did.
    out = subprocess.run(
        [sys.executable, "-m", "pyvrrpd", "status", "--json", "--control-socket", pair.sock("lb2")],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout
    counters = json.loads(out)["daemon"]["notify"]
    assert counters["scripts_started"] == 12  # 11 hooks and the fifo script
    assert counters["fifo_lines"] == 12 and counters["fifo_dropped"] == 0  # 6 lines, 2 FIFOs
    assert counters["scripts_failed"] == 0 and counters["disabled"] == {}
    for host, _, _ in SIDES.values():
        pair.signal(host, signal.SIGTERM)
    for host, _, _ in SIDES.values():
        pair.procs[host].wait(timeout=10)
    assert wait_for(lambda: both(7, "STOP"), 3.0) is not None, {s: states(s) for s in SIDES}
    time.sleep(0.2)  # the STOP scripts were given their second before exit


def _print_side_by_side(title: str, cols: dict[str, list[str]]) -> None:
    print(f"\n== {title}: keepalived 2.2.7 | pyvrrpd")
    ka, py = cols["ka"], cols["py"]
    for i in range(max(len(ka), len(py))):
        left = ka[i] if i < len(ka) else ""
        right = py[i] if i < len(py) else ""
        print(f"  {left:<45} | {right}")


def _start_sides(pair: Pair, *edits: tuple[str, str]) -> dict[str, FifoReader]:
    """keepalived on lb1 and pyvrrpd on lb2 with CONF (each `edits` pair
    replaced), a recorder and a plain FIFO reader script; their global FIFOs."""
    work = pair.workdir
    os.chmod(work, 0o755)
    (work / "rec.sh").write_text('#!/bin/sh\nout="$1"; shift\necho "$*" >> "$out"\n')
    (work / "rec.sh").chmod(0o755)
    (work / "fifo-reader.sh").write_text('#!/bin/sh\nexec cat "$2" >> "$1"\n')
    (work / "fifo-reader.sh").chmod(0o755)
    fifos: dict[str, FifoReader] = {}
    for side, (host, vrid, vip) in SIDES.items():
        fifos[side] = FifoReader(work / f"{side}-global.fifo")
        text = CONF.format(rid=side, work=work, side=side, vrid=vrid, vip=vip)
        for old, new in edits:
            text = text.replace(old, new)
        if side == "ka":
            pair.start_keepalived(host, 100, conf_text=text)
        else:
            pair.start(host, 100, conf_text=text)
    return fifos


def _stop_sides(pair: Pair) -> None:
    """SIGTERM both daemons and wait for them to exit."""
    for host, _, _ in SIDES.values():
        pair.signal(host, signal.SIGTERM)
    for host, _, _ in SIDES.values():
        pair.procs[host].wait(timeout=10)


def test_weight0_script_failing_at_startup_notifies_fault_like_keepalived(pair: Pair) -> None:
    """keepalived holds the instance silently until the weight-0 script first
    reports; a first failure is a FAULT notify (keepalived.md 2.4, last point)."""
    work = pair.workdir
    fifos = _start_sides(pair, ("  smtp_alert\n", ""))
    try:

        def got(n: int) -> bool:
            return all(len(fifos[s].lines()) >= n for s in SIDES)

        assert wait_for(lambda: got(1), 8.0) is not None, {s: fifos[s].lines() for s in SIDES}
        assert wait_for(lambda: got(2), 1.5) is None  # nothing more while the script fails
        _stop_sides(pair)
        assert wait_for(lambda: got(2), 3.0) is not None
        lines = {s: fifos[s].lines() for s in SIDES}
    finally:
        for f in fifos.values():
            f.close()
    calls = {side: read(work / f"{side}.calls") for side in SIDES}
    _print_side_by_side("start-up FAULT: notify_fifo lines", lines)
    _print_side_by_side("start-up FAULT: recorder argv", calls)
    assert lines["ka"] == ['INSTANCE "VI_1" FAULT 100', 'INSTANCE "VI_1" STOP 100']
    assert lines["py"] == lines["ka"]
    assert by_transition(calls["py"]) == by_transition(calls["ka"])


def test_priority_change_lines_like_keepalived(pair: Pair) -> None:
    """vrrp_notify_priority_changes: a weighted script failing writes
    BACKUP_PRIORITY with the new effective priority, and STOP carries it."""
    fifos = _start_sides(
        pair,
        ("  smtp_alert\n", "  vrrp_notify_priority_changes\n"),
        ("  weight 0\n", "  weight -20\n"),
    )
    try:

        def got(n: int) -> bool:
            return all(len(fifos[s].lines()) >= n for s in SIDES)

        assert wait_for(lambda: got(2), 3.0) is not None, {s: fifos[s].lines() for s in SIDES}
        _stop_sides(pair)
        assert wait_for(lambda: got(3), 3.0) is not None
        lines = {s: fifos[s].lines() for s in SIDES}
    finally:
        for f in fifos.values():
            f.close()
    _print_side_by_side("priority changes: notify_fifo lines", lines)
    assert lines["ka"] == [
        'INSTANCE "VI_1" BACKUP 100',
        'INSTANCE "VI_1" BACKUP_PRIORITY 80',
        'INSTANCE "VI_1" STOP 80',
    ]
    assert lines["py"] == lines["ka"]


CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def test_notify_conf_passes_both_checkers(pair: Pair) -> None:
    """conf/notify.conf: exit 0 from `pyvrrpd check-config` and the real `keepalived -t`.

    Its scripts are provided on a tmpfs over /etc/keepalived in a private mount
    namespace (the host's /etc is not touched); both run in lb1's namespace.
    """
    conf = CONF_DIR / "notify.conf"
    prepare = (
        "for f in check_haproxy.sh notify.sh fifo-reader.sh; do"
        " printf '#!/bin/sh\\nexit 0\\n' > /etc/keepalived/$f; chmod 755 /etc/keepalived/$f; done"
    )
    out = check_with_private_etc(pair, conf, prepare)
    assert "ka=0" in out.stdout and "py=0" in out.stdout, out.stdout + out.stderr
    assert "0 warnings" in out.stdout, out.stdout
