"""A second daemon must refuse to start and must not break the running one."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from pyvrrpd.io.errors import HostError
from pyvrrpd.shell.ops.control import ControlServer, query
from pyvrrpd.shell.ops.pidfile import PidFiles


def test_pid_file_of_a_live_process_is_refused_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "keepalived.pid"
    path.write_text(f"{os.getppid()}\n")  # a live process that is not us
    with pytest.raises(HostError, match="already running"):
        PidFiles([str(path)]).acquire()
    assert path.read_text() == f"{os.getppid()}\n"


def test_stale_pid_file_is_taken_over_and_removed_on_release(tmp_path: Path) -> None:
    path = tmp_path / "p.pid"
    path.write_text("999999999\n")
    files = PidFiles([str(path)])
    files.acquire()
    assert path.read_text() == f"{os.getpid()}\n"
    files.release()
    assert not path.exists()


def test_second_control_server_refused_without_removing_the_first(tmp_path: Path) -> None:
    sock = str(tmp_path / "ctl.sock")

    async def scenario() -> None:
        first = ControlServer(sock, lambda: {"instances": [{"name": "VI_1"}]})
        await first.start()
        assert oct(os.stat(sock).st_mode & 0o777) == "0o600"
        second = ControlServer(sock, lambda: {"instances": []})
        with pytest.raises(HostError, match="another daemon"):
            await second.start()
        await second.close()
        assert os.path.exists(sock)
        reply = await asyncio.to_thread(query, sock)
        assert reply == {"instances": [{"name": "VI_1"}]}
        await first.close()
        assert not os.path.exists(sock)

    asyncio.run(scenario())


def test_status_failure_is_reported_not_hung_up(tmp_path: Path) -> None:
    sock = str(tmp_path / "ctl.sock")

    def broken() -> dict[str, object]:
        raise RuntimeError("boom")

    async def scenario() -> None:
        server = ControlServer(sock, broken)
        await server.start()
        reply = await asyncio.to_thread(query, sock)
        await server.close()
        assert "status failed" in str(reply["error"])

    asyncio.run(scenario())
