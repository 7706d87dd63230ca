"""A small bridged LAN of namespaces running `pyvrrpd run`, for daemon tests.

Hosts `lb1` (192.0.2.11), `lb2` (192.0.2.12) and `inj` (192.0.2.66, a packet
injector) each get a network namespace with `eth0` plugged into a bridge in a
switch namespace. Daemons are started with `ip netns exec` and tracked by the
Popen we made; teardown kills only those, then deletes the namespaces, even
when the test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyvrrpd.io.errors import HostError
from pyvrrpd.shell.ops.control import query

HOSTS = {"lb1": "192.0.2.11", "lb2": "192.0.2.12", "inj": "192.0.2.66"}
VIP = "192.0.2.10"
# The optional second LAN (`pair_lan(tmp, lans=2)`): `eth1` on bridge br1.
HOSTS2 = {"lb1": "198.51.100.11", "lb2": "198.51.100.12", "inj": "198.51.100.66"}
VIP2 = "198.51.100.10"

PLAIN_CONF = """\
vrrp_instance VI_1 {{
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority {prio}
  advert_int 1
{extra}
  authentication {{
    auth_type PASS
    auth_pass 1111
  }}
  virtual_ipaddress {{
    {vip}
  }}
}}
"""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True, timeout=10)


def wait_for(cond: Callable[[], bool], timeout: float, step: float = 0.01) -> float | None:
    """Seconds until `cond()` held, or None on timeout."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return time.monotonic() - t0
        time.sleep(step)
    return None


def first_time(
    cond: Callable[[], bool], t0: float, timeout: float, step: float = 0.01
) -> float | None:
    """Seconds from `t0` (monotonic) until `cond()` first held, or None after `timeout`."""
    while time.monotonic() - t0 < timeout:
        if cond():
            return time.monotonic() - t0
        time.sleep(step)
    return None


@dataclass
class Pair:
    tag: str
    workdir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def ns(self, host: str) -> str:
        return f"pvd{self.tag}-{host}"

    def has_vip(self, host: str) -> bool:
        out = ip("-n", self.ns(host), "-4", "-o", "addr", "show", "dev", "eth0").stdout
        return f" {VIP}/" in out

    def holders(self) -> list[str]:
        return [h for h in ("lb1", "lb2") if self.has_vip(h)]

    def conf(self, host: str, prio: int, extra: str = "") -> Path:
        path = self.workdir / f"{host}.conf"
        path.write_text(PLAIN_CONF.format(prio=prio, extra=extra, vip=VIP))
        return path

    def sock(self, host: str) -> str:
        return str(self.workdir / f"{host}.sock")

    def start(
        self,
        host: str,
        prio: int,
        extra: str = "",
        *,
        conf_text: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start `pyvrrpd run` on `host` (PLAIN_CONF, or `conf_text` verbatim)."""
        if conf_text is None:
            conf = self.conf(host, prio, extra)
        else:
            conf = self.workdir / f"{host}.conf"
            conf.write_text(conf_text)
        log = open(self.workdir / f"{host}.log", "ab")  # noqa: SIM115
        cmd = ["ip", "netns", "exec", self.ns(host), sys.executable, "-m", "pyvrrpd", "run"]
        cmd += ["-f", str(conf), "--control-socket", self.sock(host), "--log-format", "json"]
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=None if env is None else {**os.environ, **env},
        )
        self.procs[host] = proc
        return proc

    def start_keepalived(
        self,
        host: str,
        prio: int,
        extra: str = "",
        *,
        conf_text: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """The real keepalived (Debian package) as a peer, pid files kept in our workdir.

        `conf_text` (verbatim) replaces PLAIN_CONF, and `env` is added to the
        environment (``TMPDIR`` for its dumps), as in `start`.
        """
        if conf_text is None:
            conf = self.conf(host, prio, extra)
        else:
            conf = self.workdir / f"{host}.conf"
            conf.write_text(conf_text)
        log = open(self.workdir / f"{host}.log", "ab")  # noqa: SIM115
        cmd = ["ip", "netns", "exec", self.ns(host), "/usr/sbin/keepalived", "-n", "-l", "-D", "-G"]
        cmd += ["-P", "-f", str(conf), "-p", str(self.workdir / f"{host}-ka.pid")]
        cmd += ["-r", str(self.workdir / f"{host}-ka-vrrp.pid")]
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=None if env is None else {**os.environ, **env},
        )
        self.procs[host] = proc
        return proc

    def status_all(self, host: str) -> dict[str, Any]:
        """`pyvrrpd status --json` of the daemon on `host` (every section)."""
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "pyvrrpd",
                "status",
                "--json",
                "--control-socket",
                self.sock(host),
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        result: dict[str, Any] = json.loads(out)
        return result

    def status(self, host: str) -> dict[str, object]:
        """The first instance of `status_all`."""
        inst: dict[str, object] = self.status_all(host)["instances"][0]
        return inst

    def state(self, host: str) -> str | None:
        """The instance state, or None while the daemon is not answering yet."""
        try:
            return str(self.status(host)["state"])
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            return None

    def signal(self, host: str, sig: int) -> None:
        self.procs[host].send_signal(sig)

    def log(self, host: str) -> str:
        p = self.workdir / f"{host}.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def inst(self, host: str, name: str = "VI_1") -> dict[str, Any]:
        """Instance `name` of the daemon's status, asked in-process (fast
        enough to sample every 20 ms, unlike `status`)."""
        return next(i for i in query(self.sock(host))["instances"] if i["name"] == name)

    def fast_state(self, host: str, name: str = "VI_1") -> str | None:
        """`inst`'s state, or None while the daemon is not answering yet."""
        try:
            return str(self.inst(host, name)["state"])
        except (OSError, HostError, StopIteration, KeyError):
            return None

    def tracker(self, host: str, kind: str, name: str = "VI_1") -> dict[str, Any]:
        """The first tracker of `kind` (process, file, http, ...) of instance `name`."""
        t: dict[str, Any] = next(t for t in self.inst(host, name)["trackers"] if t["kind"] == kind)
        return t


def _plug(sw: str, bridge: str, port: str, ns: str, ifname: str, addr: str) -> None:
    """A veth from `bridge` (switch namespace `sw`) to `ifname` in `ns`, addressed and up."""
    ip("-n", sw, "link", "add", port, "type", "veth", "peer", "name", ifname, "netns", ns)
    ip("-n", sw, "link", "set", port, "master", bridge, "up")
    ip("-n", ns, "addr", "add", f"{addr}/24", "dev", ifname)
    ip("-n", ns, "link", "set", ifname, "up")


@contextlib.contextmanager
def pair_lan(tmp: Path, lans: int = 1) -> Iterator[Pair]:
    """lb1, lb2 and inj on one bridged LAN (eth0); with `lans=2` also on a
    second one (eth1, 198.51.100.0/24, bridge br1 in the switch namespace)."""
    pair = Pair(secrets.token_hex(2), tmp)
    sw = f"pvd{pair.tag}-sw"
    made: list[str] = []
    try:
        ip("netns", "add", sw)
        made.append(sw)
        for lan, (hosts, port) in enumerate(((HOSTS, "p"), (HOSTS2, "q"))[:lans]):
            bridge = f"br{lan}"
            ip("-n", sw, "link", "add", bridge, "type", "bridge")
            ip("-n", sw, "link", "set", bridge, "up")
            for i, (host, addr) in enumerate(hosts.items()):
                ns = pair.ns(host)
                if lan == 0:
                    ip("netns", "add", ns)
                    made.append(ns)
                    ip("-n", ns, "link", "set", "lo", "up")
                _plug(sw, bridge, f"{port}{i}", ns, f"eth{lan}", addr)
        yield pair
    finally:
        for proc in pair.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
        for ns in reversed(made):
            # Children our daemons forked (keepalived's VRRP child, scripts) live
            # only in our private namespaces: end them too.
            for pid in ip("netns", "pids", ns, check=False).stdout.split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            ip("netns", "del", ns, check=False)
        leftovers = [n for n in made if os.path.exists(f"/run/netns/{n}")]
        assert not leftovers, f"namespaces survived teardown: {leftovers}"


@contextlib.contextmanager
def logged_pair_lan(tmp: Path, lans: int = 1, tail: int = 3000) -> Iterator[Pair]:
    """`pair_lan` for a fixture: skipped unless root; the last `tail`
    characters of lb1's and lb2's logs printed afterwards (shown on failure)."""
    import pytest  # here: bench/flood.py uses this module without pytest

    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    with pair_lan(tmp, lans) as p:
        try:
            yield p
        finally:
            for host in ("lb1", "lb2"):
                print(f"--- {host} log ---\n{p.log(host)[-tail:]}")
