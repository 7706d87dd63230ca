"""pyvrrpd.wire stays sans-IO: no sockets, clock, asyncio, processes or I/O layer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pyvrrpd.wire

WIRE = Path(pyvrrpd.wire.__file__).parent
FORBIDDEN = {"socket", "time", "asyncio", "subprocess", "psutil", "pyroute2", "pyvrrpd.io"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(WIRE.glob("*.py")), ids=lambda p: p.name)
def test_no_io_imports(path: Path) -> None:
    for name in _imports(path):
        assert not any(name == f or name.startswith(f + ".") for f in FORBIDDEN), name
