"""Fault injection for tests: make netlink fail or hang, make event handling raise.

Owns: the rules a test switches on and the tiny Unix socket it sends them on.
A real kernel cannot be made to return ENOBUFS or hang on demand, and a
correct core never raises; the netns tests need both to show that a VIP that
cannot be installed makes the instance resign, that a hung netlink call times
out, and that an exception in one instance is contained.

Off and unreachable in normal runs: nothing here is created unless the daemon
starts with the environment variable ``PYVRRPD_FAULT_INJECTION`` set to the
path of a socket to create (mode 0600). Each line sent there is one JSON rule:

    {"op": "add_address", "mode": "error", "errno": 105, "count": 3}
    {"op": "remove_address", "mode": "hang", "count": 1}
    {"op": "handle", "mode": "raise", "instance": "VI_1", "event": "TimerFired", "count": 1}

``op`` is a netlink command (``link``, ``add_address``, ``remove_address``,
``has_address``) or ``handle`` (an instance's event handling); ``mode`` is
``error`` (HostError with ``errno``), ``hang`` (never answers; the netlink
deadline fires) or ``raise`` (RuntimeError); ``count`` how many calls it hits
(-1: until cleared with ``{"op": "clear"}``). The reply is one JSON line.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
from dataclasses import dataclass
from typing import Any

import structlog

from pyvrrpd.io.errors import HostError

ENV = "PYVRRPD_FAULT_INJECTION"
_OPS = {"link", "add_address", "remove_address", "has_address", "handle"}
_MODES = {"error", "hang", "raise"}

log = structlog.get_logger("pyvrrpd")


@dataclass(slots=True)
class Rule:
    op: str
    mode: str
    count: int = 1
    errno_code: int = errno.ENOBUFS
    instance: str | None = None
    event: str | None = None


class FaultInjector:
    """The active rules; consulted by the netlink seam and by event handling."""

    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self.hits = 0

    def _take(self, op: str, instance: str | None = None, event: str | None = None) -> Rule | None:
        for rule in self.rules:
            if rule.op != op:
                continue
            if rule.instance is not None and rule.instance != instance:
                continue
            if rule.event is not None and rule.event != event:
                continue
            if rule.count > 0:
                rule.count -= 1
                if rule.count == 0:
                    self.rules.remove(rule)
            self.hits += 1
            return rule
        return None

    async def netlink(self, op: str) -> None:
        """The `Netlink.inject` hook."""
        rule = self._take(op)
        if rule is None:
            return
        if rule.mode == "hang":
            await asyncio.Event().wait()  # never set: the caller's deadline fires
        raise HostError(
            f"injected fault: {os.strerror(rule.errno_code)}", errno_code=rule.errno_code
        )

    def handling(self, instance: str, event: str) -> None:
        """Called before an instance handles an event; may raise."""
        if self._take("handle", instance, event) is not None:
            raise RuntimeError(f"injected fault while {instance} handled {event}")

    def apply(self, spec: dict[str, Any]) -> dict[str, Any]:
        op = spec.get("op")
        if op == "clear":
            self.rules.clear()
            return {"ok": True}
        mode = spec.get("mode", "error")
        count = int(spec.get("count", 1))
        if op not in _OPS or mode not in _MODES or count == 0:
            return {"error": f"bad rule {spec!r}"}
        self.rules.append(
            Rule(
                op=str(op),
                mode=str(mode),
                count=count,
                errno_code=int(spec.get("errno", errno.ENOBUFS)),
                instance=spec.get("instance"),
                event=spec.get("event"),
            )
        )
        return {"ok": True, "rules": len(self.rules)}


class FaultSocket:
    """The test-only socket that feeds rules to a FaultInjector."""

    def __init__(self, path: str, injector: FaultInjector) -> None:
        self.path = path
        self.injector = injector
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._client, path=self.path)
        finally:
            os.umask(old)
        log.warning("fault_injection_enabled", socket=self.path)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=5)
            try:
                reply = self.injector.apply(json.loads(line))
            except (ValueError, TypeError, AttributeError) as exc:
                reply = {"error": str(exc)}
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
            with contextlib.suppress(OSError):
                os.unlink(self.path)


def from_environment() -> FaultSocket | None:
    """The fault socket if the test environment asked for one, else None."""
    path = os.environ.get(ENV)
    return FaultSocket(path, FaultInjector()) if path else None
