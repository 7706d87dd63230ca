"""Notify hooks: config keywords, argv and order, FIFO lines, mail, disabling, STOP."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pyvrrpd.config.model import GlobalDefs, NotifyConfig, NotifyFifo, NotifyScript
from pyvrrpd.config.parser import parse_text
from pyvrrpd.io.fifo import NotifyFifoWriter
from pyvrrpd.io.smtp import Mail, SmtpError, format_message, send_mail
from pyvrrpd.shell.ops.notify import Notifier

CONF = """
global_defs {
    router_id lb1
    notify_fifo /run/n.fifo
    vrrp_notify_fifo /run/v.fifo root
    vrrp_notify_fifo_script "/bin/reader --x"
    vrrp_notify_priority_changes
    smtp_alert_vrrp off
    no_email_faults
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress { 192.0.2.10 }
    notify_master "/etc/k/m.sh extra1 'two words'"
    notify_backup /etc/k/b.sh
    notify_fault "/etc/k/f.sh" root root
    notify_stop /etc/k/s.sh
    notify "/etc/k/all.sh x"
    notify_master_rx_lower_pri /etc/k/lower.sh
    notify_deleted
    notify_priority_changes false
    smtp_alert
}
"""


def test_config_reads_every_notify_keyword() -> None:
    cfg = parse_text(CONF)
    n = cfg.instances[0].notify
    assert n.master == NotifyScript(("/etc/k/m.sh", "extra1", "two words"), loc=n.master.loc)  # type: ignore[union-attr]
    assert n.backup is not None and n.backup.argv == ("/etc/k/b.sh",)
    assert n.fault is not None and (n.fault.user, n.fault.group) == ("root", "root")
    assert n.stop is not None and n.generic is not None and n.generic.argv == ("/etc/k/all.sh", "x")
    assert n.master_rx_lower_pri is not None
    assert n.notify_deleted and n.deleted is None
    assert n.priority_changes is False and n.smtp_alert is True
    g = cfg.global_defs
    assert g.notify_fifo == NotifyFifo("/run/n.fifo")
    assert g.vrrp_notify_fifo.path == "/run/v.fifo" and g.vrrp_notify_fifo.user == "root"
    assert g.vrrp_notify_fifo.script is not None
    assert g.vrrp_notify_fifo.script.argv == ("/bin/reader", "--x")
    assert g.vrrp_notify_priority_changes and g.smtp_alert_vrrp is False and g.no_email_faults
    assert not [w for w in cfg.warnings if "notify" in w.message or "smtp" in w.message]


def test_second_hook_is_ignored_with_a_warning_and_unknown_user_drops_it() -> None:
    text = CONF.replace(
        "notify_stop /etc/k/s.sh",
        "notify_stop /etc/k/s.sh\n    notify_stop /other\n    notify_backup /b2 nosuchuser_x",
    )
    cfg = parse_text(text)
    assert cfg.instances[0].notify.stop is not None
    assert cfg.instances[0].notify.stop.argv == ("/etc/k/s.sh",)
    messages = [w.message for w in cfg.warnings]
    assert any("notify_stop script already specified" in m for m in messages)
    assert any("notify_backup script already specified" in m for m in messages)


# --- running hooks -------------------------------------------------------------------


def recorder(tmp_path: Path, name: str, out: Path, extra: str = "") -> str:
    """A script that appends its name and argv (one line) to `out`."""
    path = tmp_path / name
    path.write_text(f'#!/bin/sh\n{extra}\necho "{name} $*" >> {out}\n')
    path.chmod(0o755)
    return str(path)


async def wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def read_fifo(fd: int) -> list[str]:
    try:
        data = os.read(fd, 65536)
    except BlockingIOError:
        return []
    return data.decode().splitlines()


def test_specific_then_generic_argv_and_fifo_lines(tmp_path: Path) -> None:
    out = tmp_path / "calls"
    fifo = tmp_path / "n.fifo"
    cfg = NotifyConfig(
        master=NotifyScript((recorder(tmp_path, "master", out), "a", "b c")),
        backup=NotifyScript((recorder(tmp_path, "backup", out),)),
        generic=NotifyScript((recorder(tmp_path, "generic", out), "g")),
        master_rx_lower_pri=NotifyScript((recorder(tmp_path, "lower", out),)),
        priority_changes=True,
    )
    gdefs = GlobalDefs(notify_fifo=NotifyFifo(str(fifo)))

    async def scenario() -> list[str]:
        n = Notifier(gdefs, {"VI_1": cfg})
        n.start()
        assert stat.S_ISFIFO(os.stat(fifo).st_mode)
        rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        n.instance_state("VI_1", "BACKUP", 100)
        await wait_for(lambda: len(lines(out)) == 2)
        n.instance_state("VI_1", "MASTER", 100)
        await wait_for(lambda: len(lines(out)) == 4)
        n.priority_changed("VI_1", "MASTER", 90)
        n.master_rx_lower_pri("VI_1", 90)
        await wait_for(lambda: len(lines(out)) == 5)
        n.instance_state("VI_1", "FAULT", 90)  # no notify_fault: generic only
        await wait_for(lambda: len(lines(out)) == 6)
        await n.stop({"VI_1": 90})
        got = read_fifo(rfd)
        os.close(rfd)
        assert not fifo.exists()  # we created it: unlinked at stop
        assert n.status()["fifo_lines"] == 6
        return got

    fifo_lines = asyncio.run(scenario())
    calls = lines(out)
    # Specific and generic hooks are launched in that order but run concurrently
    # (keepalived forks both and waits for neither): compare per transition as sets.
    assert set(calls[0:2]) == {"backup ", "generic g INSTANCE VI_1 BACKUP 100"}
    assert set(calls[2:4]) == {"master a b c", "generic g INSTANCE VI_1 MASTER 100"}
    assert calls[4] == "lower "
    assert calls[5] == "generic g INSTANCE VI_1 FAULT 90"
    assert calls[6:] == ["generic g INSTANCE VI_1 STOP 90"]
    assert fifo_lines == [
        'INSTANCE "VI_1" BACKUP 100',
        'INSTANCE "VI_1" MASTER 100',
        'INSTANCE "VI_1" MASTER_PRIORITY 90',
        'INSTANCE "VI_1" MASTER_RX_LOWER_PRI 90',
        'INSTANCE "VI_1" FAULT 90',
        'INSTANCE "VI_1" STOP 90',
    ]


def test_group_notifies_carry_group_and_priority_zero(tmp_path: Path) -> None:
    out = tmp_path / "calls"
    fifo = tmp_path / "g.fifo"
    group = NotifyConfig(generic=NotifyScript((recorder(tmp_path, "gen", out),)))
    gdefs = GlobalDefs(vrrp_notify_fifo=NotifyFifo(str(fifo)))

    async def scenario() -> list[str]:
        n = Notifier(gdefs, {}, {"G1": group})
        n.start()
        rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        n.group_state("G1", "MASTER")
        await wait_for(lambda: len(lines(out)) == 1)
        await n.stop({})
        got = read_fifo(rfd)
        os.close(rfd)
        return got

    assert asyncio.run(scenario()) == ['GROUP "G1" MASTER 0', 'GROUP "G1" STOP 0']
    assert lines(out) == ["gen GROUP G1 MASTER 0", "gen GROUP G1 STOP 0"]


def test_sync_group_state_suppresses_repeated_instance_notifies(tmp_path: Path) -> None:
    out = tmp_path / "calls"
    cfg = NotifyConfig(generic=NotifyScript((recorder(tmp_path, "gen", out),)))

    async def scenario() -> None:
        n = Notifier(GlobalDefs(), {"VI_1": cfg})
        n.sync_state = lambda name: "MASTER"
        n.start()
        n.instance_state("VI_1", "BACKUP", 100)  # first notify always goes out
        n.instance_state("VI_1", "MASTER", 100)  # the group is already MASTER: quiet
        await wait_for(lambda: len(lines(out)) == 1)
        await asyncio.sleep(0.2)
        n.close()

    asyncio.run(scenario())
    assert lines(out) == ["gen INSTANCE VI_1 BACKUP 100"]


def test_missing_or_insecure_script_is_disabled_and_others_still_run(tmp_path: Path) -> None:
    out = tmp_path / "calls"
    cfg = NotifyConfig(
        master=NotifyScript((str(tmp_path / "missing.sh"),)),
        generic=NotifyScript((recorder(tmp_path, "gen", out),)),
    )

    async def scenario() -> dict[str, object]:
        n = Notifier(GlobalDefs(), {"VI_1": cfg})
        n.start()
        n.instance_state("VI_1", "MASTER", 100)
        await wait_for(lambda: len(lines(out)) == 1)
        status = n.status()
        n.close()
        return status

    status = asyncio.run(scenario())
    assert list(status["disabled"]) == ["VI_1 notify_master"]  # type: ignore[call-overload]
    assert lines(out) == ["gen INSTANCE VI_1 MASTER 100"]


@pytest.mark.skipif(os.geteuid() != 0, reason="script security applies to root-run scripts")
def test_script_security_disables_a_world_writable_hook(tmp_path: Path) -> None:
    out = tmp_path / "calls"
    path = recorder(tmp_path, "m", out)
    os.chmod(path, 0o777)
    cfg = NotifyConfig(master=NotifyScript((path,)))
    n = Notifier(GlobalDefs(enable_script_security=True, script_user="root"), {"VI_1": cfg})
    n.start()
    assert "world-writable" in n.disabled["VI_1 notify_master"]


def test_failing_hook_is_counted_and_its_stderr_kept(tmp_path: Path) -> None:
    out = tmp_path / "calls"
    cfg = NotifyConfig(fault=NotifyScript((recorder(tmp_path, "f", out, "echo oops >&2; exit 3"),)))

    async def scenario() -> dict[str, object]:
        n = Notifier(GlobalDefs(), {"VI_1": cfg})
        n.start()
        n.instance_state("VI_1", "FAULT", 100)
        await wait_for(lambda: n.counters.scripts_failed == 1)
        status = n.status()
        n.close()
        return status

    assert asyncio.run(scenario())["scripts_failed"] == 1


def test_stop_waits_one_second_for_stop_scripts_then_kills_them(tmp_path: Path) -> None:
    out = tmp_path / "calls"
    slow = NotifyScript((recorder(tmp_path, "stop", out, "sleep 30"),))
    quick = NotifyScript((recorder(tmp_path, "quick", out),))

    async def scenario() -> float:
        n = Notifier(
            GlobalDefs(), {"VI_1": NotifyConfig(stop=slow), "VI_2": NotifyConfig(stop=quick)}
        )
        n.start()
        t0 = time.monotonic()
        await n.stop({"VI_1": 100, "VI_2": 50})
        return time.monotonic() - t0

    took = asyncio.run(scenario())
    assert 0.9 <= took < 3.0
    assert lines(out) == ["quick "]  # the slow one was killed before echoing


def test_fifo_script_gets_the_fifo_path_and_is_terminated_at_stop(tmp_path: Path) -> None:
    out = tmp_path / "calls"
    fifo = tmp_path / "v.fifo"
    reader = tmp_path / "reader.sh"
    reader.write_text(
        f'#!/bin/sh\necho "reader $*" >> {out}\nexec cat "$2" >> {tmp_path / "seen"}\n'
    )
    reader.chmod(0o755)
    gdefs = GlobalDefs(
        vrrp_notify_fifo=NotifyFifo(str(fifo), script=NotifyScript((str(reader), "--opt")))
    )

    async def scenario() -> None:
        n = Notifier(gdefs, {"VI_1": NotifyConfig()})
        n.start()
        await wait_for(lambda: len(lines(out)) == 1)
        n.instance_state("VI_1", "MASTER", 100)
        await wait_for(lambda: lines(tmp_path / "seen") == ['INSTANCE "VI_1" MASTER 100'])
        await n.stop({"VI_1": 100})
        assert all(t.done() for t in n._fifo_scripts)

    asyncio.run(scenario())
    assert lines(out) == [f"reader --opt {fifo}"]


def test_fifo_writer_drops_and_counts_when_full(tmp_path: Path) -> None:
    w = NotifyFifoWriter(str(tmp_path / "f"))
    assert w.open() is None
    line = 'INSTANCE "VI_1" MASTER 100\n'
    for _ in range(70000 // len(line)):
        w.write(line)
    assert w.dropped > 0 and w.lines > 0
    w.close()
    assert not (tmp_path / "f").exists()


def test_fifo_writer_refuses_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    w = NotifyFifoWriter(str(tmp_path / "f"))
    assert "not a FIFO" in (w.open() or "")
    assert (tmp_path / "f").exists()


# --- mail ------------------------------------------------------------------------------


class FakeRelay:
    """A tiny SMTP server on loopback recording each dialogue."""

    def __init__(self, codes: dict[str, int] | None = None) -> None:
        self.codes = codes or {}
        self.sessions: list[list[str]] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        got: list[str] = []
        self.sessions.append(got)
        w.write(b"220 relay\r\n")
        in_data = False
        while line := await r.readline():
            text = line.decode().rstrip("\r\n")
            got.append(text)
            if in_data:
                if text == ".":
                    in_data = False
                    w.write(b"250 queued\r\n")
                continue
            verb = text.split(" ")[0].split(":")[0]
            if verb == "DATA":
                in_data = True
                w.write(b"354 go\r\n")
            elif verb == "QUIT":
                w.write(b"221 bye\r\n")
                await w.drain()
                break
            else:
                w.write(f"{self.codes.get(verb, 250)} ok\r\n".encode())
            await w.drain()
        w.close()


def test_mail_in_keepalived_form_one_per_state(tmp_path: Path) -> None:
    async def scenario() -> FakeRelay:
        relay = FakeRelay()
        await relay.start()
        gdefs = GlobalDefs(
            router_id="lb1",
            notification_email=("a@example.org", "b@example.org"),
            notification_email_from="k@example.org",
            smtp_server="127.0.0.1",
            smtp_port=relay.port,
            smtp_helo_name="lb1.example.org",
            smtp_alert=True,
            no_email_faults=True,
        )
        n = Notifier(gdefs, {"VI_1": NotifyConfig()})
        n.start()
        n.instance_state("VI_1", "BACKUP", 100)
        n.instance_state("VI_1", "BACKUP", 100)  # same state again: no second mail
        n.instance_state("VI_1", "FAULT", 100)  # no_email_faults
        n.instance_state("VI_1", "MASTER", 100)
        await wait_for(lambda: n.counters.mails_sent == 2)
        await n.stop({"VI_1": 100})
        assert n.counters.mails_sent == 3
        return relay

    relay = asyncio.run(scenario())
    first = relay.sessions[0]
    assert first[:4] == [
        "HELO lb1.example.org",
        "MAIL FROM:<k@example.org>",
        "RCPT TO:<a@example.org>",
        "RCPT TO:<b@example.org>",
    ]
    assert "Subject: [lb1] VRRP Instance VI_1 - Entering BACKUP state" in first
    assert "To: a@example.org, b@example.org" in first
    assert "X-Mailer: Keepalived" in first
    assert "=> VRRP Instance is no longer owning VRRP VIPs <=" in first
    subjects = sorted(ln for s in relay.sessions for ln in s if ln.startswith("Subject:"))
    assert subjects == [
        "Subject: [lb1] VRRP Instance VI_1 - Entering BACKUP state",
        "Subject: [lb1] VRRP Instance VI_1 - Entering MASTER state",
        "Subject: [lb1] VRRP Instance VI_1 - Stopping",
    ]


def test_mail_errors_are_smtp_errors() -> None:
    async def scenario() -> None:
        relay = FakeRelay({"RCPT": 550})
        await relay.start()
        mail = Mail("k@x", ("a@x",), "s", "b")
        with pytest.raises(SmtpError, match="RCPT"):
            await send_mail("127.0.0.1", relay.port, "h", mail, 2.0)

    asyncio.run(scenario())


def test_a_dead_relay_never_delays_a_notify(tmp_path: Path) -> None:
    async def scenario() -> tuple[float, int]:
        # A listening socket that never answers: the mail waits for its timeout.
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        gdefs = GlobalDefs(
            notification_email=("a@x",),
            smtp_server="127.0.0.1",
            smtp_port=port,
            smtp_connect_timeout=1,
            smtp_alert=True,
        )
        n = Notifier(gdefs, {"VI_1": NotifyConfig()})
        n.start()
        t0 = time.monotonic()
        n.instance_state("VI_1", "MASTER", 100)
        took = time.monotonic() - t0
        await wait_for(lambda: n.counters.mails_failed == 1, 5.0)
        n.close()
        server.close()
        return took, n.counters.mails_failed

    took, failed = asyncio.run(scenario())
    assert took < 0.2 and failed == 1  # the notify returned at once; the mail failed later


def test_message_is_dot_stuffed() -> None:
    data = format_message(Mail("f@x", ("t@x",), "s", ".hidden"), date="D")
    assert b"\r\n..hidden\r\n\r\n.\r\n" in data
    assert data.startswith(
        b"Date: D\r\nFrom: f@x\r\nSubject: s\r\nX-Mailer: Keepalived\r\nTo: t@x\r\n\r\n"
    )
