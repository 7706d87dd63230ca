"""smtp_server given by name: a resolver that hangs must not hang the daemon's exit.

asyncio.open_connection resolves in the loop's default executor and
asyncio.run joins that executor's threads at exit, so a mail pending at
stop made the process wait for libc's resolver (30 s and more with a dead
DNS server). Each test runs a fresh interpreter whose getaddrinfo sleeps.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from pyvrrpd.io.smtp import Mail, SmtpError, send_mail

HANG = 6.0

PROGRAM = f"""
import asyncio, socket, time
def slow(*a, **k):
    time.sleep({HANG})
    raise socket.gaierror(-3, "Temporary failure in name resolution")
socket.getaddrinfo = slow
from pyvrrpd.io.smtp import Mail, SmtpError, send_mail
async def main():
    mail = Mail("a@example.com", ("b@example.com",), "s", "b")
    try:
        await send_mail("relay.invalid", 25, "lb1", mail, 0.3)
    except SmtpError as exc:
        print("error:", exc)
asyncio.run(main())
"""


def test_exit_does_not_wait_for_a_hanging_resolver() -> None:
    t0 = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=30
    )
    took = time.monotonic() - t0
    assert run.returncode == 0, run.stderr
    assert "timeout connecting to relay.invalid:25" in run.stdout
    assert took < HANG - 2, f"exit took {took:.1f} s: it waited for the resolver"


def test_an_unresolvable_relay_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def fail(*_a: object, **_k: object) -> object:
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    mail = Mail("a@example.com", ("b@example.com",), "s", "b")
    with pytest.raises(
        SmtpError, match=r"cannot resolve relay\.invalid: Name or service not known"
    ):
        asyncio.run(send_mail("relay.invalid", 25, "lb1", mail, 2.0))
