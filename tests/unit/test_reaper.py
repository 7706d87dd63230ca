"""The orphan reaper (issue 5 item 10): orphans of scripts reaped, no exit status stolen.

Each case runs in a child Python process that makes itself a subreaper (no
root needed), so the orphans of its scripts are reparented to it and pytest
itself is left alone. Every script orphans two grandchildren and exits 3: a
stolen status would show as 255 (asyncio's "unknown child") instead.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

PROGRAM = """
import asyncio, json, sys
from pyvrrpd.io import children
from pyvrrpd.io.scripts import run_script
from pyvrrpd.shell.reaper import Reaper

sweep = sys.argv[1] == "sweep"

async def main():
    loop = asyncio.get_running_loop()
    reaper = Reaper(loop, interval=0.2, grace=0.1)
    if sweep:
        reaper.start()
    elif children.become_subreaper() is not None:
        raise SystemExit("no subreaper")
    statuses, most = [], 0
    for _ in range(10):
        batch = await asyncio.gather(*(
            run_script(["/bin/sh", "-c", "sleep 0.05 & sleep 0.1 & exit 3"], 5)
            for _ in range(4)
        ))
        statuses += [r.exit_status for r in batch]
        most = max(most, len(children.zombie_children()))
        await asyncio.sleep(0.1)
    for _ in range(50):  # until the last orphans died and were (or were not) reaped
        await asyncio.sleep(0.1)
        zombies = len(children.zombie_children())
        if (zombies == 0 and reaper.reaped >= 80) if sweep else zombies >= 80:
            break
    await asyncio.sleep(0.3)
    reaper.close()
    print(json.dumps({
        "statuses": statuses,
        "most": most,
        "left": len(children.zombie_children()),
        "reaped": reaper.reaped,
    }))

asyncio.run(main())
"""


def _run(mode: str) -> tuple[dict[str, Any], str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1]), proc.stderr


def test_orphans_reaped_and_script_statuses_intact() -> None:
    out, stderr = _run("sweep")
    assert out["statuses"] == [3] * 40  # never 255: no status stolen from asyncio
    assert out["left"] == 0
    assert out["reaped"] == 80  # two orphans per script run
    assert out["most"] <= 40, out  # a few sweeps' worth at most, never all 80
    assert "Unknown child process" not in stderr
    assert "Traceback" not in stderr


def test_without_sweeps_orphans_pile_up() -> None:
    """The control case: a subreaper that never sweeps keeps every zombie."""
    out, _ = _run("no-sweep")
    assert out["statuses"] == [3] * 40
    assert out["left"] == 80
