"""Fixtures for the guide lab tests (``test_guide_*.py``): a lab per test, always torn down.

``guide_lab`` builds the namespaces (client, lb1, lb2, ecs1..3, switch) and
removes them afterwards, even when the test fails; ``lab_services(kind)`` gives a
:class:`~pyvrrpd.lab.services.Services` for ``pyvrrpd`` or the real
``keepalived``. Both skip with a one-line reason when not root or a tool is
missing. On failure the daemon and holder logs are printed before teardown.
Fixtures here are only used by the guide tests; other netns tests are untouched.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pyvrrpd.lab.netns import Lab, cleanup_stale, missing_tools
from pyvrrpd.lab.services import DaemonKind, Services, daemon_missing
from tests.netns._pair import Pair, logged_pair_lan

LAB_TOOLS = ("haproxy", "ip", "unshare", "nsenter", "killall", "ps", "mount")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()  # type: ignore[attr-defined]
    if rep.when == "call":
        item.stash[_FAILED] = rep.failed


_FAILED = pytest.StashKey[bool]()


def lab_skip_reason() -> str | None:
    """Why the lab cannot run here (one line), or ``None``."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    missing = missing_tools(LAB_TOOLS)
    if missing:
        return f"missing tools: {', '.join(missing)}"
    return None


@pytest.fixture
def guide_lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    """A freshly built guide lab; torn down after the test whatever happens."""
    reason = lab_skip_reason()
    if reason:
        pytest.skip(reason)
    cleanup_stale()  # only labs whose owning process is gone (a crashed earlier run)
    lab = Lab()
    try:
        lab.build()
        yield lab
    finally:
        if request.node.stash.get(_FAILED, False):
            _dump_logs(lab)
        lab.close()


def _dump_logs(lab: Lab, most: int = 6) -> None:
    """The newest few daemon logs (a chaos run writes dozens; its violations
    carry their own log excerpts)."""
    logs = sorted((lab.root / "logs").glob("*.log")) if lab.root.exists() else []
    daemon_logs = [p for p in logs if p.name.startswith(("lb1-", "lb2-"))]
    daemon_logs.sort(key=lambda p: p.stat().st_mtime)
    if len(daemon_logs) > most:
        print(f"----- {len(daemon_logs) - most} older daemon logs not shown")
    for path in daemon_logs[-most:]:
        text = path.read_text(errors="replace")
        print(f"----- {path.name} (last 40 lines)")
        print("\n".join(text.splitlines()[-40:]))


@pytest.fixture
def lab_services(guide_lab: Lab) -> Callable[[DaemonKind], Services]:
    """Factory: ``lab_services("pyvrrpd")`` -> Services on the lab (skips if absent)."""

    def make(kind: DaemonKind) -> Services:
        reason = daemon_missing(kind)
        if reason:
            pytest.skip(reason)
        return Services(guide_lab, kind)

    return make


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    """lb1, lb2 and an injector on a bridge (tests/netns/_pair.py); logs printed after."""
    with logged_pair_lan(tmp_path) as p:
        yield p
