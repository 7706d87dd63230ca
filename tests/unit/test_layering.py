"""Architecture: pyvrrpd.core and pyvrrpd.wire stay sans-IO (design.md).

No sockets, clock, asyncio, processes, netlink, psutil or the I/O layer: the
core is driven by events that carry `now`, and returns actions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pyvrrpd

PKG = Path(pyvrrpd.__file__).parent
FORBIDDEN = {
    "socket",
    "time",
    "asyncio",
    "subprocess",
    "select",
    "selectors",
    "threading",
    "psutil",
    "pyroute2",
    "structlog",
    "logging",
    "pyvrrpd.io",
    "pyvrrpd.shell.daemon",
}
PURE = sorted([*PKG.joinpath("core").glob("*.py"), *PKG.joinpath("wire").glob("*.py")])


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_pure_layers_exist() -> None:
    names = {p.parent.name + "/" + p.name for p in PURE}
    assert {"core/router.py", "wire/check.py", "wire/vrrp.py"} <= names


@pytest.mark.parametrize("path", PURE, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_io_imports(path: Path) -> None:
    bad = {n for n in _imports(path) if any(n == f or n.startswith(f + ".") for f in FORBIDDEN)}
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_wire_does_not_depend_on_core() -> None:
    for path in PKG.joinpath("wire").glob("*.py"):
        assert not any(n.startswith("pyvrrpd.core") for n in _imports(path)), path.name


#: Which pyvrrpd packages each layer may import (design.md "The shape"):
#: cli -> shell -> trackers -> (core, io, config); core -> wire; io -> wire
#: (and config's frozen route models); config, wire and core never reach up.
ALLOWED = {
    "wire": {"wire"},
    "core": {"core", "wire"},
    "config": {"config"},
    "io": {"io", "wire", "config"},
    "trackers": {"trackers", "core", "io", "config"},
    "shell": {"shell", "trackers", "core", "io", "config", "wire", "_version"},
}


def _layer_imports(path: Path) -> set[str]:
    return {
        n.split(".")[1]
        for n in _imports(path)
        if n.startswith("pyvrrpd.") and len(n.split(".")) > 1
    }


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layers_only_import_below_them(layer: str) -> None:
    bad = {}
    for path in PKG.joinpath(layer).rglob("*.py"):
        extra = _layer_imports(path) - ALLOWED[layer]
        if extra:
            bad[str(path.relative_to(PKG))] = sorted(extra)
    assert not bad, bad


def test_shell_top_level_stays_small() -> None:
    # The brief: past a dozen top-level modules, the shell gets sub-packages.
    top = [p for p in PKG.joinpath("shell").glob("*.py") if p.name != "__init__.py"]
    assert len(top) <= 12, sorted(p.name for p in top)
