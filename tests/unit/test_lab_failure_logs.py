"""A failing demo shows its logs before teardown deletes them (no root: the lab is faked)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyvrrpd.lab import demo, netns
from pyvrrpd.lab.netns import Lab, LabError


def test_failed_lab_prints_log_tails_and_keeps_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "lab"
    kept_parent = tmp_path / "kept"
    kept_parent.mkdir()

    class FailingLab(Lab):
        def build(self) -> Lab:
            self.root = root
            (root / "logs").mkdir(parents=True)
            log = self.open_log("lb1-pyvrrpd-1")
            log.write(b"".join(b"line %d\n" % i for i in range(40)))
            log.write(b"pyvrrpd: eth0: no such interface\n")
            raise LabError("lb1: daemon did not start (see its log)")

    monkeypatch.setattr(demo, "Lab", FailingLab)
    monkeypatch.setattr(demo, "preflight", lambda kind: None)
    monkeypatch.setattr(demo, "cleanup_stale", lambda: [])
    monkeypatch.setattr(netns, "KEPT_LOGS_PARENT", kept_parent)

    rc = demo.main([])
    err = capsys.readouterr().err
    assert rc == 2
    assert "lb1: daemon did not start" in err
    # The tail (not the whole log) of each log, with its name, while the lab still exists.
    assert "--- lb1-pyvrrpd-1" in err
    assert "pyvrrpd: eth0: no such interface" in err
    assert "line 39" in err and "line 5\n" not in err
    # Teardown removed the lab directory; the copy it points to survives.
    assert not root.exists()
    kept = [
        line.split("logs kept in ", 1)[1] for line in err.splitlines() if "logs kept in" in line
    ]
    assert kept, err
    copy = Path(kept[0]) / "lb1-pyvrrpd-1.log"
    assert "no such interface" in copy.read_text()


def test_chaos_reads_compat_log_lines(tmp_path: Path) -> None:
    """The compat command's lines ("ctime: text {json}") and plain JSON lines both parse."""
    from pyvrrpd.lab.chaos import _records

    log = tmp_path / "lb1.log"
    log.write_text(
        'Wed Nov 25 01:37:33 2026: (VI_1) Entering MASTER STATE {"event": "state_change", '
        '"level": "info", "timestamp": "2026-11-25T01:37:33.267000"}\n'
        '{"event": "vips_set", "level": "info", "timestamp": "2026-11-25T01:37:33.276618"}\n'
        "Traceback (most recent call last):\n"
    )
    assert [rec["event"] for _, rec in _records(str(log))] == ["state_change", "vips_set"]
