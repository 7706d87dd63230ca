"""Suite-wide test configuration: which tests must run alone.

Owns: the `serial` marker. scripts/test.sh runs the suite in two passes: every
test not marked `serial` on two pytest-xdist workers, then the `serial` ones
one at a time. A test is serial when it loads the machine enough to disturb
another test's timing bounds (packet floods, the chaos run, realtime
scheduling), so it is listed here by file rather than marked in each file.
"""

from __future__ import annotations

import pytest

# Files whose tests flood the CPU or the network, or change scheduling.
SERIAL_FILES = frozenset(
    {
        "test_chaos.py",
        "test_daemon_flood.py",
        "test_daemon_sched.py",
        "test_ah_flood.py",
        "test_install_debootstrap.py",
    }
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "serial: run alone (scripts/test.sh runs these after the parallel pass)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in SERIAL_FILES:
            item.add_marker(pytest.mark.serial)
