"""Private two-namespace topology for the pyvrrpd.io netns tests.

Creates ``pvio-<rand>-a`` and ``pvio-<rand>-b`` joined by one veth pair, with
addresses from 192.0.2.0/24 only, and removes everything on exit even when the
test fails. ``in_netns()`` moves the calling thread into a namespace for the
duration of a ``with`` block: sockets created inside stay in that namespace
after the block (a socket's namespace is fixed at creation).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True, timeout=10)


def ip_json(ns: str, *args: str) -> Any:
    return json.loads(ip("-n", ns, "-j", *args).stdout)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Run the block (this thread only) inside network namespace ``name``."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)


@dataclass(frozen=True)
class Topology:
    ns_a: str
    ns_b: str
    if_a: str
    if_b: str
    ip_a: str = "192.0.2.1"
    ip_b: str = "192.0.2.2"

    def mac(self, side: str) -> bytes:
        ns, ifname = (self.ns_a, self.if_a) if side == "a" else (self.ns_b, self.if_b)
        info = ip_json(ns, "link", "show", "dev", ifname)[0]
        return bytes.fromhex(info["address"].replace(":", ""))

    def ifindex(self, side: str) -> int:
        ns, ifname = (self.ns_a, self.if_a) if side == "a" else (self.ns_b, self.if_b)
        return int(ip_json(ns, "link", "show", "dev", ifname)[0]["ifindex"])


def _destroy(ns: str) -> None:
    # Only processes inside our private namespace can be listed here.
    pids = ip("netns", "pids", ns, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), 9)
    ip("netns", "del", ns, check=False)


@contextlib.contextmanager
def two_namespaces() -> Iterator[Topology]:
    tag = secrets.token_hex(3)
    topo = Topology(f"pvio-{tag}-a", f"pvio-{tag}-b", f"pv{tag}a", f"pv{tag}b")
    try:
        ip("netns", "add", topo.ns_a)
        ip("netns", "add", topo.ns_b)
        # Created directly inside the namespaces: never visible in the host's.
        ip(
            "-n", topo.ns_a, "link", "add", topo.if_a, "type", "veth",
            "peer", "name", topo.if_b, "netns", topo.ns_b,
        )  # fmt: skip
        for ns, ifname, addr in (
            (topo.ns_a, topo.if_a, topo.ip_a),
            (topo.ns_b, topo.if_b, topo.ip_b),
        ):
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "addr", "add", f"{addr}/24", "dev", ifname)
            ip("-n", ns, "link", "set", ifname, "up")
        yield topo
    finally:
        _destroy(topo.ns_a)
        _destroy(topo.ns_b)
        leftovers = [n for n in (topo.ns_a, topo.ns_b) if os.path.exists(f"/run/netns/{n}")]
        assert not leftovers, f"namespaces survived teardown: {leftovers}"
