"""A reload and a stop meeting in the daemon (shell/daemon.py).

- A stop waits (bounded) for a reload under way, so no instance that reload
  adds starts after the stop told every instance to resign; the stop then
  goes on even if the reload hangs.
- A reload that arrives once the stop began is refused at once, and systemd
  hears nothing from it: a READY=1 after STOPPING=1 would make the unit read
  as running again.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from pyvrrpd.config.model import Config
from pyvrrpd.shell import daemon as daemon_mod
from pyvrrpd.shell.daemon import Daemon
from pyvrrpd.shell.ops import reloader, sdnotify


def _notes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    said: list[str] = []
    for name in ("ready", "reloading", "stopping"):
        monkeypatch.setattr(sdnotify, name, lambda name=name: said.append(name) or True)
    return said


def _bare_daemon() -> Daemon:
    d = Daemon(Config())
    d._loop = asyncio.get_running_loop()
    return d


def test_a_stop_waits_for_the_reload_under_way(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []

    async def slow_reload(d: Daemon) -> dict[str, Any]:
        events.append("reload begins")
        await asyncio.sleep(0.3)  # say, the removed instances releasing their VIPs
        events.append("reload ends")
        return {"ok": True}

    monkeypatch.setattr(reloader, "reload", slow_reload)
    _notes(monkeypatch)

    async def go() -> None:
        d = _bare_daemon()

        async def stop_notifier(prios: dict[str, int]) -> None:
            events.append("stop resigns the instances")

        monkeypatch.setattr(d.notifier, "stop", stop_notifier)
        task = asyncio.create_task(d.reload())
        await asyncio.sleep(0.05)
        d._stop.set()
        await d._shutdown()
        await task

    asyncio.run(go())
    assert events == ["reload begins", "reload ends", "stop resigns the instances"]


def test_a_hung_reload_holds_the_stop_only_so_long(monkeypatch: pytest.MonkeyPatch) -> None:
    async def hung_reload(d: Daemon) -> dict[str, Any]:
        await asyncio.sleep(3600)
        return {"ok": True}

    monkeypatch.setattr(reloader, "reload", hung_reload)
    monkeypatch.setattr(daemon_mod, "RELOAD_WAIT", 0.2)
    _notes(monkeypatch)

    async def go() -> float:
        d = _bare_daemon()
        task = asyncio.create_task(d.reload())
        await asyncio.sleep(0.05)
        d._stop.set()
        t0 = time.monotonic()
        await d._shutdown()
        task.cancel()
        return time.monotonic() - t0

    took = asyncio.run(go())
    assert 0.15 < took < 2.0, took


def test_a_reload_during_the_stop_is_refused_without_ready(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    said = _notes(monkeypatch)

    async def go() -> dict[str, Any]:
        d = _bare_daemon()
        d._srctrack = object()  # type: ignore[assignment]  # past start-up
        d._stop.set()
        await d._reload_lock.acquire()  # the stop holds it
        return await asyncio.wait_for(d.reload(), 1.0)

    verdict = asyncio.run(go())
    assert verdict == {"ok": False, "errors": ["the daemon is stopping"]}
    assert said == []
