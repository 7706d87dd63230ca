"""A minimal asyncio SMTP client for keepalived-style alert mails.

Owns: one mail per call over a fresh connection, keepalived's dialogue
(core/smtp.c): greeting 220, `HELO name` 250, `MAIL FROM:<from>` 250, one
`RCPT TO:<addr>` 250 per recipient, `DATA` 354, the message 250, `QUIT` 221;
the message in keepalived's form (`Date`, `From`, `Subject`,
`X-Mailer: Keepalived`, `To` with every recipient comma-separated, a blank
line, the body). `timeout` bounds the connect and every reply, like
keepalived's smtp_connect_timeout; a relay given by name is resolved in a
daemon thread of its own (:func:`_resolve`), never in the loop's default
executor. No TLS and no AUTH: keepalived has neither, and alert relays are
local.
Must not: log, retry, or be awaited on a path that delays VRRP (callers run
it as a task).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import ipaddress
import socket
import threading
from dataclasses import dataclass

__all__ = ["Mail", "SmtpError", "format_message", "send_mail"]

X_MAILER = "Keepalived"  # what keepalived puts there; mail filters match on it


class SmtpError(Exception):
    """The mail was not accepted; the message is one line for the log."""


@dataclass(frozen=True, slots=True)
class Mail:
    sender: str
    recipients: tuple[str, ...]
    subject: str
    body: str


def format_message(mail: Mail, date: str | None = None) -> bytes:
    """The DATA payload, dot-stuffed, ending with CRLF.CRLF."""
    date = date or email.utils.formatdate(localtime=True)
    head = (
        f"Date: {date}\r\nFrom: {mail.sender}\r\nSubject: {mail.subject}\r\n"
        f"X-Mailer: {X_MAILER}\r\nTo: {', '.join(mail.recipients)}\r\n\r\n"
    )
    lines = f"{head}{mail.body}\r\n".split("\r\n")
    # RFC 5321 4.5.2: a line starting with "." gets another one.
    stuffed = "\r\n".join("." + ln if ln.startswith(".") else ln for ln in lines)
    return (stuffed + "\r\n.\r\n").encode("utf-8", "replace")


async def _reply(reader: asyncio.StreamReader, timeout: float) -> tuple[int, str]:
    """Read one (possibly multi-line) reply: its code and last text line."""
    while True:
        line = await asyncio.wait_for(reader.readline(), timeout)
        if not line:
            raise SmtpError("connection closed by the server")
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        if len(text) < 3 or not text[:3].isdigit():
            raise SmtpError(f"bad reply {text[:80]!r}")
        if len(text) == 3 or text[3] != "-":
            return int(text[:3]), text[4:]


async def _step(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    command: bytes | None,
    expect: int,
    what: str,
    timeout: float,
) -> None:
    if command is not None:
        writer.write(command)
        await asyncio.wait_for(writer.drain(), timeout)
    code, text = await _reply(reader, timeout)
    if code != expect:
        # keepalived: "Error processing %s cmd on SMTP server %s. SMTP status code = %d"
        raise SmtpError(f"error processing {what} cmd: SMTP status code = {code} {text}".strip())


async def _resolve(host: str, port: int) -> list[str]:
    """The addresses of `host` (an address literal as is).

    getaddrinfo blocks in libc until the resolver gives up (30 s and more
    with a dead DNS server). asyncio.open_connection would run it in the
    loop's default executor, whose threads asyncio.run joins at exit: a
    daemon stopping with a mail pending would hang there. A daemon thread is
    neither joined by asyncio.run nor at interpreter exit, and cancelling
    our await (the caller's timeout, the notifier's stop) leaves it to
    finish on its own.
    """
    with contextlib.suppress(ValueError):
        return [str(ipaddress.ip_address(host))]
    loop = asyncio.get_running_loop()
    done: asyncio.Future[list[str]] = loop.create_future()

    def deliver(result: list[str] | BaseException) -> None:
        if done.done():
            return  # the caller gave up
        if isinstance(result, BaseException):
            done.set_exception(result)
        else:
            done.set_result(result)

    def lookup() -> None:
        result: list[str] | BaseException
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            result = list(dict.fromkeys(str(info[4][0]) for info in infos))
        except OSError as exc:
            result = exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(deliver, result)

    threading.Thread(target=lookup, name=f"smtp-resolve {host}", daemon=True).start()
    return await done


async def _connect(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Resolve `host` and connect to its first address that answers."""
    addrs = await _resolve(host, port)
    if not addrs:
        raise SmtpError(f"{host}: no address")
    error: OSError | None = None
    for addr in addrs:
        try:
            return await asyncio.open_connection(addr, port)
        except OSError as exc:
            error = exc
    assert error is not None
    raise error


async def send_mail(
    host: str,
    port: int,
    helo: str,
    mail: Mail,
    timeout: float,
) -> None:
    """Deliver `mail` to the relay at host:port; raises SmtpError or OSError."""
    try:
        # One bound for resolving and connecting: smtp_connect_timeout.
        reader, writer = await asyncio.wait_for(_connect(host, port), timeout)
    except TimeoutError as exc:
        raise SmtpError(f"timeout connecting to {host}:{port}") from exc
    except socket.gaierror as exc:
        raise SmtpError(f"cannot resolve {host}: {exc.strerror or exc}") from exc
    try:
        await _step(reader, writer, None, 220, "connect", timeout)
        await _step(reader, writer, f"HELO {helo}\r\n".encode(), 250, "HELO", timeout)
        await _step(reader, writer, f"MAIL FROM:<{mail.sender}>\r\n".encode(), 250, "MAIL", timeout)
        for rcpt in mail.recipients:
            await _step(reader, writer, f"RCPT TO:<{rcpt}>\r\n".encode(), 250, "RCPT", timeout)
        await _step(reader, writer, b"DATA\r\n", 354, "DATA", timeout)
        await _step(reader, writer, format_message(mail), 250, "BODY", timeout)
        with contextlib.suppress(SmtpError, TimeoutError, OSError):
            await _step(reader, writer, b"QUIT\r\n", 221, "QUIT", timeout)
    except TimeoutError as exc:
        raise SmtpError(f"timeout waiting for {host}:{port}") from exc
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)
