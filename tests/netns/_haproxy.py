"""Real HAProxy in master-worker mode inside a pair host's own PID namespace.

For the pair LAN (tests/netns/_pair.py) with per-host PID namespaces
(tests/netns/_pidns.py): :func:`start_haproxy` runs ``haproxy -Ws -f CFG -p
PIDFILE -S MASTER_SOCK`` in the foreground, as Debian 12's haproxy.service
does, with a config shaped like the guide's (a ``listen stats`` on :8081 with
``monitor-uri /healthz``, a TCP frontend on the VIP, a backend on the inj
host). The VIP is bound before the host holds it thanks to
``net.ipv4.ip_nonlocal_bind=1`` in the host's netns. :class:`HAProxy` knows the
master's host PID and its workers and does what an operator does: reload
(SIGUSR2 to the master, systemd's ExecReload), kill the master or a worker.

What HAProxy 2.6.12 does (checked in a private PID + net namespace):
- SIGUSR2 to the master: the master re-executes itself (same PID, still
  named ``haproxy``), forks a new worker (``-sf OLD -x sockpair@N``) and the
  old worker soft-stops and exits (0) once its connections are done. So at
  least one process named ``haproxy`` exists at every instant.
- SIGKILL of the master: its worker exits about 1 ms later.
- Death of the (single) worker, by SIGKILL (code 137) or SIGTERM (143): the
  master logs "All workers exited. Exiting..." and exits within about 2 ms;
  it starts no replacement. ``master-worker no-exit-on-failure`` (in the
  config, with -W or -Ws) changes nothing on 2.6.12: after a SIGKILL the
  master still logs "exit-on-failure: killing every processes with SIGTERM",
  and with one worker (nbproc is gone since 2.5) none would be left anyway.
- The master also re-executes itself once right after the first worker is
  up (it prints its version banner a second time): same PID, same name.

Owns: the config text, starting/stopping these processes by the PIDs it
started (registered in ``pair.procs``; the holder's death ends the whole PID
namespace), an inj-side HTTP backend, and keepalived started in a host's
PID namespace. Must not: touch anything outside the pair's namespaces.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pyvrrpd.lab.vipwatch import AddrWatch
from tests.netns._pair import HOSTS, VIP, Pair, logged_pair_lan, wait_for
from tests.netns._pidns import children_of, nsenter, start_daemon, start_holder

HAPROXY = "/usr/sbin/haproxy"
KEEPALIVED = "/usr/sbin/keepalived"

# The guide's haproxy.cfg (seed-guide.md section 4), cut down to one frontend:
# `listen stats` with monitor-uri /healthz on :8081, a TCP frontend on the VIP,
# a backend on the inj host (its HTTP server: start_backend).
HAPROXY_CFG = """\
global
    log stdout format raw local0 notice
    stats socket {sock} mode 600 level admin expose-fd listeners
    stats timeout 30s
{global_extra}
defaults
    log global
    mode http
    option dontlognull
    timeout connect 5000
    timeout client 50000
    timeout server 50000

listen stats
    bind *:8081
    mode http
    stats enable
    stats refresh 30s
    stats uri /stats
    monitor-uri /healthz

frontend fe_80
    bind {vip}:80
    mode tcp
    default_backend be_80

backend be_80
    balance roundrobin
    mode tcp
    server inj {backend}:80 check
"""


def haproxy_missing() -> str | None:
    """One-line reason HAProxy can't run here, or None."""
    if os.geteuid() != 0:
        return "needs root (network and PID namespaces)"
    if not os.access(HAPROXY, os.X_OK):
        return f"{HAPROXY} not installed"
    if shutil.which("nsenter") is None or shutil.which("unshare") is None:
        return "nsenter/unshare (util-linux) missing"
    return None


def nonlocal_bind(pair: Pair, host: str) -> None:
    """net.ipv4.ip_nonlocal_bind=1 in ``host``'s netns (per-netns sysctl):
    HAProxy binds the VIP on a box that does not hold it (the usual setup)."""
    subprocess.run(
        ["ip", "netns", "exec", pair.ns(host), "sysctl", "-qw", "net.ipv4.ip_nonlocal_bind=1"],
        check=True,
        timeout=10,
    )


def start_backend(pair: Pair) -> None:
    """A tiny HTTP server on inj:80 (the backend of every HAProxy here)."""
    log = open(pair.workdir / "inj-backend.log", "ab")  # noqa: SIM115
    cmd = ["ip", "netns", "exec", pair.ns("inj"), sys.executable, "-m", "http.server"]
    cmd += ["80", "--bind", HOSTS["inj"], "--directory", str(pair.workdir)]
    pair.procs["inj-backend"] = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
    )


@dataclass
class HAProxy:
    """One HAProxy master-worker tree on a pair host (host PIDs throughout)."""

    pair: Pair
    host: str
    holder: int
    cfg: Path
    log: Path
    key: str
    master: int = 0
    starts: int = field(default=0)

    # -------------------------------------------------------------- inspection
    def workers(self) -> list[int]:
        """The master's live children (its workers), host PIDs."""
        return children_of(self.master) if self.master_alive() else []

    def master_alive(self) -> bool:
        try:
            stat = Path(f"/proc/{self.master}/stat").read_text()
        except OSError:
            return False
        return stat.rsplit(")", 1)[1].split()[0] != "Z"

    def alive(self) -> bool:
        return self.master_alive() and bool(self.workers())

    def loaded(self) -> int:
        """How many times the master logged a successful (re)load."""
        return self.log_text().count("Loading success.")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    # -------------------------------------------------------------- actions
    def start(self, timeout: float = 5.0) -> None:
        """``haproxy -Ws`` (foreground, as systemd runs it) in the host's namespaces."""
        self.starts += 1
        before = self.loaded()
        run = self.pair.workdir
        argv = [HAPROXY, "-Ws", "-f", str(self.cfg), "-p", str(run / f"{self.host}-haproxy.pid")]
        argv += ["-S", str(run / f"{self.host}-haproxy-master.sock")]
        logf = open(self.log, "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            [*nsenter(self.holder), *argv],
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
        )
        self.pair.procs[f"{self.key}-{self.starts}"] = proc
        assert wait_for(lambda: bool(children_of(proc.pid)), timeout) is not None
        self.master = children_of(proc.pid)[0]
        ok = wait_for(lambda: self.loaded() > before and bool(self.workers()), timeout)
        assert ok is not None, f"{self.host}: haproxy did not start:\n{self.log_text()[-2000:]}"

    def reload(self, timeout: float = 5.0) -> int:
        """SIGUSR2 to the master (systemd's ExecReload); waits until a new
        worker runs and the old ones left. Returns the new worker's PID."""
        old = set(self.workers())
        before = self.loaded()
        os.kill(self.master, signal.SIGUSR2)

        def done() -> bool:
            now = set(self.workers())
            return self.loaded() > before and bool(now - old) and not (now & old)

        assert wait_for(done, timeout) is not None, f"reload stuck:\n{self.log_text()[-2000:]}"
        return (set(self.workers()) - old).pop()

    def kill_master(self) -> float:
        """SIGKILL the master; returns time.monotonic() of the kill."""
        t = time.monotonic()
        os.kill(self.master, signal.SIGKILL)
        return t

    def kill_worker(self, sig: int = signal.SIGKILL) -> tuple[int, float]:
        """Send ``sig`` to the (first) worker; returns its PID and the monotonic time."""
        worker = self.workers()[0]
        t = time.monotonic()
        os.kill(worker, sig)
        return worker, t

    def wait_gone(self, timeout: float = 2.0) -> None:
        """Until no process of this tree is left (master reaped by nsenter)."""
        pids = [self.master, *children_of(self.master)]

        def gone() -> bool:
            return (
                not any(Path(f"/proc/{p}").exists() for p in pids[1:]) and not self.master_alive()
            )

        assert wait_for(gone, timeout) is not None, f"{self.host}: haproxy still running"


def start_haproxy(
    pair: Pair, host: str, holder: int, *, global_extra: str = "", backend: str | None = None
) -> HAProxy:
    """Write the guide-shaped config and start HAProxy -Ws on ``host``."""
    run = pair.workdir
    cfg = run / f"{host}-haproxy.cfg"
    cfg.write_text(
        HAPROXY_CFG.format(
            sock=run / f"{host}-haproxy.sock",
            global_extra=global_extra,
            vip=VIP,
            backend=backend or HOSTS["inj"],
        )
    )
    nonlocal_bind(pair, host)
    hap = HAProxy(pair, host, holder, cfg, run / f"{host}-haproxy.log", f"{host}-haproxy")
    hap.start()
    return hap


def start_keepalived_in(pair: Pair, host: str, holder: int, conf: Path) -> subprocess.Popen[bytes]:
    """The real keepalived 2.2.7 in ``host``'s net + PID namespaces (foreground,
    console log into ``<host>.log``, pid files in the pair's workdir)."""
    run = pair.workdir
    log = open(run / f"{host}.log", "ab")  # noqa: SIM115
    cmd = [*nsenter(holder), KEEPALIVED, "-n", "-l", "-D", "-G", "-f", str(conf)]
    cmd += ["-p", str(run / f"{host}-ka.pid"), "-r", str(run / f"{host}-ka-vrrp.pid")]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    pair.procs[host] = proc
    return proc


def stop(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """SIGTERM a process we started and wait for it (SIGKILL after ``timeout``)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)


@dataclass
class HaproxyLab:
    """lb1 and lb2 in their own PID namespaces, each running HAProxy -Ws
    (the guide's config), an inj backend, and a watch on the addresses.
    A test's Lab subclasses it and sets `kind` (its tracker kind)."""

    pair: Pair
    holders: dict[str, int]
    haproxy: dict[str, HAProxy]
    watch: AddrWatch
    kind: ClassVar[str] = ""

    def start(self, host: str, conf: str) -> None:
        """pyvrrpd on `host` in its PID namespace, with config text `conf`."""
        path = self.pair.workdir / f"{host}.conf"
        path.write_text(conf)
        start_daemon(self.pair, host, self.holders[host], path)

    def vip_holders(self, vip: str = VIP) -> set[str]:
        return set(self.watch.holders(vip))

    def inst(self, host: str, name: str = "VI_1") -> dict[str, Any]:
        return self.pair.inst(host, name)

    def state(self, host: str, name: str = "VI_1") -> str | None:
        return self.pair.fast_state(host, name)

    def tracker(self, host: str, inst: str = "VI_1") -> dict[str, Any]:
        return self.pair.tracker(host, self.kind, inst)


_L = TypeVar("_L", bound=HaproxyLab)


@contextlib.contextmanager
def haproxy_lab(tmp: Path, cls: type[_L]) -> Iterator[_L]:
    """The pair LAN as `cls`: skipped without root or HAProxy. Afterwards every
    HAProxy process is continued (a SIGSTOPped one would ignore the
    teardown's SIGKILL; ours, by PID) and the HAProxy logs printed."""
    import pytest

    reason = haproxy_missing()
    if reason:
        pytest.skip(reason)
    with logged_pair_lan(tmp) as pair:
        start_backend(pair)
        holders = {h: start_holder(pair, h) for h in ("lb1", "lb2")}
        haproxy = {h: start_haproxy(pair, h, holders[h]) for h in holders}
        watch = AddrWatch({h: pair.ns(h) for h in ("lb1", "lb2")})
        try:
            yield cls(pair, holders, haproxy, watch)
        finally:
            watch.close()
            for h, hap in haproxy.items():
                for pid in [hap.master, *children_of(hap.master)]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGCONT)
                print(f"--- {h} haproxy log ---\n{hap.log_text()[-1500:]}")
