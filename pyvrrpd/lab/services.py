"""The programs on the lab hosts: backends, HAProxy, and the pluggable VRRP daemon.

``--daemon pyvrrpd`` (default) runs our keepalived-compatible entry point
``<dir of sys.executable>/keepalived -n -l -f /etc/keepalived/keepalived.conf``;
``--daemon keepalived`` runs the real ``/usr/sbin/keepalived -n -l -D -f ...``.

This module owns starting, stopping and signalling those processes *by the PIDs
it started* (HAProxy: the PID in the host's own ``/var/run/haproxy.pid``, as the
guide's ``systemctl stop haproxy`` would). It never kills anything by name; the
guide's check script does ``killall keepalived`` inside its host, which is the
product behaviour under test.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

from pyvrrpd.lab.netns import BACKENDS, LBS, Lab, LabError, descendants_of, wait_for

DaemonKind = Literal["pyvrrpd", "keepalived"]
DAEMONS: tuple[DaemonKind, ...] = ("pyvrrpd", "keepalived")
KEEPALIVED_BIN = "/usr/sbin/keepalived"
CONF = "/etc/keepalived/keepalived.conf"
HAPROXY_CFG = "/etc/haproxy/haproxy.cfg"
HAPROXY_PIDFILE = "/var/run/haproxy.pid"
BACKEND_PY = Path(__file__).with_name("backend.py")


def bindir() -> Path:
    """Directory of the running interpreter, where our console scripts live."""
    return Path(sys.executable).parent


def daemon_argv(kind: DaemonKind) -> list[str]:
    """The command line that starts the VRRP daemon on a load balancer."""
    if kind == "pyvrrpd":
        return [str(bindir() / "keepalived"), "-n", "-l", "-f", CONF]
    if kind == "keepalived":
        # -G: without a syslog daemon keepalived copies every line to the console.
        return [KEEPALIVED_BIN, "-n", "-l", "-D", "-G", "-f", CONF]
    raise ValueError(f"unknown daemon {kind!r}")


def daemon_missing(kind: DaemonKind) -> str | None:
    """A one-line reason why ``kind`` cannot run here, or ``None``."""
    exe = daemon_argv(kind)[0]
    if not os.access(exe, os.X_OK):
        return f"{exe} not found (daemon {kind})"
    return None


class Services:
    """Start/stop the lab's programs; one instance per lab and daemon kind."""

    def __init__(self, lab: Lab, daemon: DaemonKind = "pyvrrpd", stamp_logs: bool = False) -> None:
        self.lab = lab
        self.kind: DaemonKind = daemon
        # daemon output lines prefixed with their arrival time (Lab.spawn(stamp=True))
        self.stamp_logs = stamp_logs
        self.daemons: dict[str, subprocess.Popen[bytes]] = {}
        self._starts: dict[str, int] = {}

    # ---------------------------------------------------------------- backends
    def start_backends(self, timeout: float = 10.0) -> None:
        """Start ecs1..3 (HTTP :80 answering the name, TCP :443) and wait until ready."""
        for name in BACKENDS:
            self.lab.spawn(name, [sys.executable, "-I", str(BACKEND_PY), name], f"{name}-backend")
        for name in BACKENDS:
            log = self.lab.log_path(f"{name}-backend")
            ok, _ = wait_for(lambda log=log: b"ready" in log.read_bytes(), timeout)  # type: ignore[misc]
            if not ok:
                raise LabError(f"backend {name} did not start (see {log})")

    # ---------------------------------------------------------------- haproxy
    def check_haproxy_config(self, host: str) -> str:
        """``haproxy -f /etc/haproxy/haproxy.cfg -c`` on ``host``; raises if invalid."""
        return self.lab.run(host, ["haproxy", "-f", HAPROXY_CFG, "-c"]).stdout.strip()

    def haproxy_pid(self, host: str) -> int | None:
        """The live PID (host namespace) from the host's /var/run/haproxy.pid, if any."""
        try:
            pid = int(self.lab.host_path(host, HAPROXY_PIDFILE).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if self.lab.host_path(host, f"/proc/{pid}").exists() else None

    def haproxy_running(self, host: str) -> bool:
        """True if the pidfile's HAProxy is alive on ``host``."""
        return self.haproxy_pid(host) is not None

    def start_haproxy(self, host: str, timeout: float = 5.0, master_worker: bool = False) -> None:
        """Run ``haproxy -f /etc/haproxy/haproxy.cfg`` (it daemonises) and wait for it.

        ``master_worker``: add ``-W`` (what systemd's ``-Ws`` unit runs): a master
        process, whose PID is in the pidfile, and a worker it forks.
        """
        mw = ["-W"] if master_worker else []
        self.lab.run(host, ["haproxy", *mw, "-f", HAPROXY_CFG], timeout=timeout)
        ok, _ = wait_for(lambda: self.haproxy_running(host), timeout)
        if not ok:
            raise LabError(f"{host}: haproxy did not start")

    def stop_haproxy(self, host: str, timeout: float = 5.0) -> None:
        """SIGTERM the pidfile's HAProxy (the guide's ``systemctl stop haproxy``)."""
        pid = self.haproxy_pid(host)
        if pid is None:
            return
        self.lab.run(host, ["kill", "-TERM", str(pid)], check=False)
        ok, _ = wait_for(lambda: not self.lab.host_path(host, f"/proc/{pid}").exists(), timeout)
        if not ok:
            raise LabError(f"{host}: haproxy {pid} did not stop")

    # ---------------------------------------------------------------- VRRP daemon
    def start_daemon(self, host: str) -> subprocess.Popen[bytes]:
        """Start the VRRP daemon on ``host`` (the guide's ``systemctl start keepalived``)."""
        if self.daemon_running(host):
            raise LabError(f"{host}: daemon already running")
        n = self._starts[host] = self._starts.get(host, 0) + 1
        proc = self.lab.spawn(
            host, daemon_argv(self.kind), f"{host}-{self.kind}-{n}", stamp=self.stamp_logs
        )
        self.daemons[host] = proc
        return proc

    def write_daemon_conf(self, host: str, text: str) -> None:
        """Replace ``host``'s /etc/keepalived/keepalived.conf (before starting its daemon)."""
        (self.lab.hosts[host].dir / "keepalived" / "keepalived.conf").write_text(text)

    def daemon_running(self, host: str) -> bool:
        """True while the daemon we started on ``host`` has not exited."""
        proc = self.daemons.get(host)
        return proc is not None and proc.poll() is None

    def daemon_pids(self, host: str) -> list[int]:
        """Global PIDs of the daemon process tree on ``host`` (main process first)."""
        proc = self.daemons.get(host)
        if proc is None or proc.poll() is not None:
            return []
        return descendants_of(proc.pid)  # nsenter -> daemon -> its children

    def signal_daemon(self, host: str, sig: signal.Signals) -> None:
        """Send ``sig`` to the daemon on ``host``.

        SIGKILL goes to the whole daemon tree (keepalived's VRRP child would
        otherwise notice its parent's death and resign gracefully); other
        signals go to the main process, as ``systemctl stop`` does.
        """
        pids = self.daemon_pids(host)
        if not pids:
            raise LabError(f"{host}: no daemon running")
        targets = list(reversed(pids)) if sig == signal.SIGKILL else pids[:1]
        for pid in targets:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def wait_daemon_exit(self, host: str, timeout: float) -> bool:
        """Wait until the daemon on ``host`` has exited; True if it did."""
        ok, _ = wait_for(lambda: not self.daemon_running(host), timeout)
        return ok

    def stop_daemon(self, host: str, timeout: float = 5.0) -> None:
        """SIGTERM the daemon and wait; SIGKILL the tree if it does not exit."""
        if not self.daemon_running(host):
            return
        self.signal_daemon(host, signal.SIGTERM)
        if not self.wait_daemon_exit(host, timeout):
            with contextlib.suppress(LabError):
                self.signal_daemon(host, signal.SIGKILL)
            self.wait_daemon_exit(host, 2.0)

    def daemon_ready(self, host: str) -> bool:
        """True once the daemon on ``host`` has entered BACKUP or MASTER.

        pyvrrpd: ``pyvrrpd status --json``; keepalived: its "Entering ... STATE" log line.
        """
        if not self.daemon_running(host):
            return False
        if self.kind == "pyvrrpd":
            status = self.daemon_status(host)
            insts = status.get("instances", []) if status else []
            return any(
                isinstance(i, dict) and i.get("state") in ("BACKUP", "MASTER") for i in insts
            )
        log = self.daemon_log(host)
        return "Entering BACKUP STATE" in log or "Entering MASTER STATE" in log

    def wait_daemon_ready(self, host: str, timeout: float = 10.0) -> bool:
        """Wait until :meth:`daemon_ready`; True if it became ready in time."""
        ok, _ = wait_for(lambda: self.daemon_ready(host), timeout, 0.05)
        return ok

    def daemon_log(self, host: str) -> str:
        """The output of the latest daemon started on ``host``."""
        n = self._starts.get(host, 0)
        path = self.lab.log_path(f"{host}-{self.kind}-{n}")
        return path.read_text(errors="replace") if n and path.exists() else ""

    def daemon_status(self, host: str) -> dict[str, Any] | None:
        """``pyvrrpd status --json`` on ``host`` (pyvrrpd only); ``None`` if unavailable."""
        if self.kind != "pyvrrpd":
            return None
        proc = self.lab.run(host, [str(bindir() / "pyvrrpd"), "status", "--json"], check=False)
        if proc.returncode != 0:
            return None
        try:
            data = json.loads(proc.stdout)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def vrrp_state(self, host: str) -> str:
        """VRRP state of VI_1 on ``host``: from ``pyvrrpd status``, else from ``ip a``."""
        if not self.daemon_running(host):
            return "down"
        status = self.daemon_status(host)
        if status:
            for inst in status.get("instances", []):
                if isinstance(inst, dict) and inst.get("name") == "VI_1":
                    return str(inst.get("state", "?"))
        return "MASTER" if self.lab.has_vip(host) else "BACKUP"

    def start_all(self) -> None:
        """The guide up to 6.1: backends, HAProxy on both LBs, daemon on lb1 then lb2."""
        self.start_backends()
        for lb in LBS:
            self.check_haproxy_config(lb)
            self.start_haproxy(lb)
        for lb in LBS:
            self.start_daemon(lb)
            self.wait_daemon_ready(lb)
