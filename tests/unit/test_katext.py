"""keepalived 2.2.7's wording for our log events (shell/ops/katext.py), the compat line layout."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
from pathlib import Path

import structlog

from pyvrrpd.shell.ops import logsetup
from pyvrrpd.shell.ops.katext import keepalived_text, lead_in


def test_state_lines() -> None:
    def text(old: str, new: str, reason: str = "startup") -> str | None:
        fields = {"instance": "VI_1", "old": old, "new": new, "reason": reason}
        return keepalived_text("state_change", fields)

    assert text("INIT", "BACKUP") == "(VI_1) Entering BACKUP STATE (init)"
    assert text("INIT", "FAULT") == "(VI_1) Entering FAULT STATE (init)"
    assert text("INIT", "MASTER") == "(VI_1) Entering MASTER STATE"  # an address owner
    assert text("BACKUP", "MASTER") == "(VI_1) Entering MASTER STATE"
    assert text("MASTER", "BACKUP") == "(VI_1) Entering BACKUP STATE"
    assert text("BACKUP", "FAULT") == "(VI_1) Entering FAULT STATE"
    assert text("MASTER", "INIT") is None  # shutdown: keepalived has no state line
    # Waiting for a first script result: keepalived logs no "(init)" when it ends.
    assert text("INIT", "BACKUP", "tracker chk succeeded") == "(VI_1) Entering BACKUP STATE"


def test_script_and_daemon_lines() -> None:
    assert keepalived_text("script_succeeded", {"script": "chk"}) == "VRRP_Script(chk) succeeded"
    failed = {"script": "chk", "why": "exited with status 1"}
    assert keepalived_text("script_failed", failed) == (
        "VRRP_Script(chk) failed (exited with status 1)"
    )
    timed_out = {"script": "chk", "why": "timed_out"}
    assert keepalived_text("script_failed", timed_out) == "VRRP_Script(chk) timed_out"
    assert keepalived_text("script_exit_changed", {"script": "chk", "status": 1}) == (
        "Script `chk` now returning 1"
    )
    # keepalived's last status starts at 0: a first 0 is not news, a later one is.
    assert keepalived_text("script_exit_changed", {"script": "chk", "status": 0}) is None
    back = {"script": "chk", "status": 0, "previous": 1}
    assert keepalived_text("script_exit_changed", back) == "Script `chk` now returning 0"
    assert keepalived_text("stopping", {}) == "Stopping"
    assert (keepalived_text("stopped", {}) or "").startswith("Stopped ")
    assert keepalived_text("sent_priority_0", {"instance": "VI_1"}) == "(VI_1) sent 0 priority"
    assert keepalived_text("vips_set", {}) is None  # no keepalived twin
    group = {"group": "G1", "old": "BACKUP", "new": "MASTER"}
    assert keepalived_text("sync_group_state", group) == (
        "VRRP_Group(G1) Syncing instances to MASTER state"
    )
    assert keepalived_text("sync_group_state", {"group": "G1", "new": "STOP"}) is None
    assert keepalived_text("reloading", {"file": "x"}) == "Reloading"


def test_lead_in_says_why_first() -> None:
    timeout = lead_in("VI_1", "BACKUP", "MASTER", "master_down_timer", master=None,
                      master_priority=None, ours=100)  # fmt: skip
    assert [keepalived_text(e, f) for e, f in timeout] == ["(VI_1) Receive advertisement timeout"]
    higher = lead_in("VI_1", "MASTER", "BACKUP", "higher priority advert from 192.0.2.12",
                     master="192.0.2.12", master_priority=150, ours=100)  # fmt: skip
    assert [keepalived_text(e, f) for e, f in higher] == [
        "(VI_1) Master received advert from 192.0.2.12 with higher priority 150, ours 100"
    ]
    same = lead_in("VI_1", "MASTER", "BACKUP", "higher priority advert from 192.0.2.12",
                   master="192.0.2.12", master_priority=100, ours=100)  # fmt: skip
    assert [keepalived_text(e, f) for e, f in same] == [
        "(VI_1) Master received advert from 192.0.2.12 with same priority 100 "
        "but higher IP address than ours"
    ]
    assert lead_in("VI_1", "INIT", "BACKUP", "startup", master=None, master_priority=None,
                   ours=100) == []  # fmt: skip


def test_msg_field_is_added_to_json_events() -> None:
    ed = logsetup.add_keepalived_text(
        None,
        "info",
        {"event": "state_change", "instance": "VI_1", "old": "BACKUP", "new": "MASTER"},
    )
    assert ed["msg"] == "(VI_1) Entering MASTER STATE"


def test_compat_line_starts_with_keepalived_text_then_json() -> None:
    ed = {"event": "stopping", "signal": "SIGTERM", "msg": "Stopping"}
    line = logsetup.render_compat(dict(ed), ctime=True)
    assert re.match(r"^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}: Stopping \{", line)
    assert json.loads(line[line.index("{") :]) == ed
    plain = logsetup.render_compat({"event": "vips_set"}, ctime=False)
    assert json.loads(plain) == {"event": "vips_set"}


def test_configure_compat_console(capsys: object) -> None:
    logsetup.configure(keepalived=True)
    try:
        structlog.get_logger("pyvrrpd").info("stopping", signal="SIGTERM")
        err = capsys.readouterr().err  # type: ignore[attr-defined]
        assert ": Stopping {" in err and '"signal": "SIGTERM"' in err
    finally:
        structlog.reset_defaults()


def test_syslog_identifier_is_keepalived_vrrp(tmp_path: Path) -> None:
    """A real syslog listener (a unix datagram socket, as /dev/log) sees keepalived's ident."""
    path = str(tmp_path / "log")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(path)
    listener.settimeout(5)
    root = logging.getLogger()
    saved = root.handlers[:]
    try:
        logsetup.configure(syslog=True, keepalived=True, syslog_address=path)
        structlog.get_logger("pyvrrpd").info(
            "state_change", instance="VI_1", old="BACKUP", new="MASTER", reason="master_down_timer"
        )
        data = listener.recv(4096).decode()
    finally:
        for h in root.handlers:
            h.close()
        root.handlers[:] = saved
        structlog.reset_defaults()
        listener.close()
    # "<PRI>Keepalived_vrrp[PID]: text {json}": journald's SYSLOG_IDENTIFIER is the ident.
    m = re.match(
        r"^<\d+>Keepalived_vrrp\[(\d+)\]: \(VI_1\) Entering MASTER STATE (\{.*\})\x00?$", data
    )
    assert m, data
    assert int(m.group(1)) == os.getpid()
    assert json.loads(m.group(2))["event"] == "state_change"
