"""The lab's hosts and wires: network + PID + mount namespaces, two bridges, teardown.

Topology (the guide's figure, documentation addresses only)::

    client 192.0.2.100 --+                               +-- ecs1 198.51.100.21
    lb1 eth0 192.0.2.11 -+- [ext]  switch ns  [int] -+- lb1 eth1 198.51.100.11
    lb2 eth0 192.0.2.12 -+   (two bridges)          +- lb2 eth1 198.51.100.12
        VIP 192.0.2.10                               +-- ecs2 .22, ecs3 .23

Every host is a named network namespace ``<prefix><host>`` plus its own PID and
mount namespace, held by :mod:`pyvrrpd.lab.holder` (PID 1 there), so ``ps ax``,
``killall`` and psutil on one host see only that host. Commands run "on a host"
through ``nsenter -t <holder> -p -m -n``. The bridges live in a switch namespace,
so nothing is created in the root namespace.

This module owns: naming (a unique ``pvl<4 hex>-`` prefix per run), the lab
directory (``/run/pyvrrpd-lab-<prefix>``, root-owned, mode 0755 all the way up,
with a ``lab.json`` marker), building, running commands on hosts, and teardown
(kill holders, which kills their PID namespaces; delete namespaces; remove the
dir). It must not touch any namespace, link or process it did not create.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import IO

VIP = "192.0.2.10"
EXT_PREFIXLEN = 24
LAB_PARENT = Path("/run")
# Where a failed demo's logs are copied before teardown (survives it; /var/tmp: not tmpfs).
KEPT_LOGS_PARENT = Path("/var/tmp")
MARKER = "lab.json"
PREFIX_RE = re.compile(r"^(pvl[0-9a-f]{4}-)")
HOLDER = Path(__file__).with_name("holder.py")
REQUIRED_TOOLS = ("ip", "unshare", "nsenter", "haproxy", "killall", "ps", "mount")


@dataclass(frozen=True, slots=True)
class HostSpec:
    """One host of the lab: its name and addresses (``None`` = not on that net)."""

    name: str
    ext: str | None = None
    int: str | None = None
    role: str = "backend"  # "client" | "lb" | "backend"


HOSTS: tuple[HostSpec, ...] = (
    HostSpec("client", ext="192.0.2.100", role="client"),
    HostSpec("lb1", ext="192.0.2.11", int="198.51.100.11", role="lb"),
    HostSpec("lb2", ext="192.0.2.12", int="198.51.100.12", role="lb"),
    HostSpec("ecs1", int="198.51.100.21"),
    HostSpec("ecs2", int="198.51.100.22"),
    HostSpec("ecs3", int="198.51.100.23"),
)
LBS = ("lb1", "lb2")
BACKENDS = ("ecs1", "ecs2", "ecs3")
# lab config file per LB (package data in pyvrrpd/lab/files)
KEEPALIVED_CONF = {"lb1": "keepalived-primary.conf", "lb2": "keepalived-secondary.conf"}


class LabError(RuntimeError):
    """The lab could not be built or driven (a host problem, with a clear message)."""


def missing_tools(tools: Sequence[str] = REQUIRED_TOOLS) -> list[str]:
    """Return the required tools not found on PATH (or in /usr/sbin, /sbin)."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return [t for t in tools if shutil.which(t, path=path) is None]


def wait_for(
    cond: Callable[[], bool], timeout: float, interval: float = 0.02
) -> tuple[bool, float]:
    """Poll ``cond`` every ``interval`` until true or ``timeout``; return (ok, elapsed)."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        if cond():
            return True, time.monotonic() - start
        now = time.monotonic()
        if now >= deadline:
            return False, now - start
        time.sleep(min(interval, deadline - now))


def _run(argv: Sequence[str], timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise LabError(f"{' '.join(argv)}: exit {proc.returncode}: {proc.stderr.strip()}")
    return proc


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (global PIDs), via /proc/PID/task/*/children."""
    kids: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tasks:
        with contextlib.suppress(OSError):
            kids += [int(x) for x in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
    return kids


def descendants_of(pid: int) -> list[int]:
    """All descendants of ``pid``, children before grandchildren."""
    out: list[int] = []
    todo = children_of(pid)
    while todo:
        p = todo.pop(0)
        out.append(p)
        todo += children_of(p)
    return out


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _stamp_copy(src: IO[bytes], dest: IO[bytes]) -> None:
    """Copy ``src`` to ``dest`` line by line, each prefixed ``@<arrival time.time()> ``."""
    with contextlib.suppress(OSError, ValueError):  # ValueError: log closed at teardown
        for line in iter(src.readline, b""):
            dest.write(b"@%.6f " % time.time() + line)
            dest.flush()


def stamped_lines(text: str) -> list[tuple[float, str]]:
    """``(arrival time.time(), line)`` of a log written by ``spawn(..., stamp=True)``."""
    out: list[tuple[float, str]] = []
    for line in text.splitlines():
        head, _, rest = line.partition(" ")
        if head.startswith("@"):
            with contextlib.suppress(ValueError):
                out.append((float(head[1:]), rest))
    return out


def _list_netns() -> list[str]:
    out = _run(["ip", "netns", "list"]).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def cleanup_stale() -> list[str]:
    """Remove namespaces left by a crashed lab run; return the prefixes cleaned.

    Only namespaces named ``pvl<4 hex>-*`` whose lab dir marker exists and whose
    owning process is gone are touched; a parallel live run is left alone.
    """
    cleaned: list[str] = []
    prefixes = sorted({m.group(1) for n in _list_netns() if (m := PREFIX_RE.match(n))})
    for prefix in prefixes:
        root = LAB_PARENT / f"pyvrrpd-lab-{prefix.rstrip('-')}"
        marker = root / MARKER
        try:
            info = json.loads(marker.read_text())
        except (OSError, ValueError):
            continue
        if pid_alive(int(info.get("owner", 0))):
            continue
        for pid in info.get("holders", []):
            with contextlib.suppress(OSError):
                if "holder.py" in Path(f"/proc/{pid}/cmdline").read_text():
                    os.kill(int(pid), signal.SIGKILL)
        for ns in _list_netns():
            if ns.startswith(prefix):
                subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)
        cleaned.append(prefix)
    return cleaned


@dataclass(slots=True)
class Host:
    """A running lab host."""

    spec: HostSpec
    netns: str
    dir: Path
    unshare: subprocess.Popen[bytes] | None = None
    holder_pid: int = 0


class Lab:
    """The namespaces, bridges and hosts of one lab run; a context manager.

    ``Lab().build()`` creates everything; ``close()`` (idempotent) removes it all.
    """

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix or f"pvl{secrets.token_hex(2)}-"
        if not PREFIX_RE.match(self.prefix):
            raise ValueError(f"lab prefix must look like pvl1a2b-: {self.prefix!r}")
        self.root = LAB_PARENT / f"pyvrrpd-lab-{self.prefix.rstrip('-')}"
        self.switch_ns = f"{self.prefix}sw"
        self.hosts: dict[str, Host] = {}
        self._netns: list[str] = []
        self._procs: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []
        self._made_dirs: list[Path] = []
        self._closed = False

    # ---------------------------------------------------------------- lifecycle
    def __enter__(self) -> Lab:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _write_marker(self) -> None:
        info = {
            "owner": os.getpid(),
            "prefix": self.prefix,
            "netns": self._netns,
            "holders": [h.holder_pid for h in self.hosts.values() if h.holder_pid],
        }
        tmp = self.root / (MARKER + ".tmp")
        tmp.write_text(json.dumps(info))
        tmp.replace(self.root / MARKER)

    def _check_root_dir(self) -> None:
        # keepalived's enable_script_security refuses scripts under a writable dir
        for p in [self.root, *self.root.parents]:
            st = p.stat()
            if st.st_uid != 0 or st.st_mode & 0o022:
                raise LabError(f"{p} must be root-owned and not group/world-writable")

    def build(self) -> Lab:
        """Create the lab dir, namespaces, bridges, links and host holders."""
        if os.geteuid() != 0:
            raise LabError("the lab needs root")
        self.root.mkdir(mode=0o755)
        os.chmod(self.root, 0o755)
        self._check_root_dir()
        (self.root / "logs").mkdir(mode=0o755)
        self._write_marker()
        self._make_mount_points()
        self._add_netns(self.switch_ns)
        for bridge in ("ext", "int"):
            _run(
                ["ip", "-n", self.switch_ns, "link", "add", "name", bridge, "type", "bridge",
                 "stp_state", "0", "forward_delay", "0", "mcast_snooping", "0"]
            )  # fmt: skip
            _run(["ip", "-n", self.switch_ns, "link", "set", bridge, "up"])
        for spec in HOSTS:
            self._add_host(spec)
        self._write_marker()
        return self

    def _make_mount_points(self) -> None:
        """Hosts bind their config dirs over /etc/keepalived and /etc/haproxy.

        On a host without the keepalived (or haproxy) package those mount
        points do not exist: create them empty and remove them at teardown.
        """
        for target in (Path("/etc/keepalived"), Path("/etc/haproxy")):
            if not target.exists():
                target.mkdir(mode=0o755)
                self._made_dirs.append(target)

    def _add_netns(self, name: str) -> None:
        _run(["ip", "netns", "add", name])
        self._netns.append(name)
        self._write_marker()
        # no IPv6: the lab sends nothing but its own IPv4 documentation traffic
        _run(
            ["ip", "netns", "exec", name, "sysctl", "-qw",
             "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]
        )  # fmt: skip
        _run(["ip", "-n", name, "link", "set", "lo", "up"])

    def _add_host(self, spec: HostSpec) -> None:
        ns = f"{self.prefix}{spec.name}"
        hdir = self.root / "hosts" / spec.name
        hdir.mkdir(mode=0o755, parents=True)
        host = Host(spec=spec, netns=ns, dir=hdir)
        self.hosts[spec.name] = host
        self._add_netns(ns)
        links: list[tuple[str, str, str]] = []  # (bridge, inner ifname, address)
        if spec.role == "lb":
            assert spec.ext and spec.int
            links = [("ext", "eth0", spec.ext), ("int", "eth1", spec.int)]
        elif spec.ext:
            links = [("ext", "eth0", spec.ext)]
        elif spec.int:
            links = [("int", "eth0", spec.int)]
        for bridge, ifname, addr in links:
            port = f"{spec.name}-{bridge[0]}"
            _run(
                ["ip", "-n", self.switch_ns, "link", "add", port, "type", "veth",
                 "peer", "name", ifname, "netns", ns]
            )  # fmt: skip
            _run(["ip", "-n", self.switch_ns, "link", "set", port, "master", bridge, "up"])
            _run(["ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", ifname])
            _run(["ip", "-n", ns, "link", "set", ifname, "up"])
        if spec.role == "lb":
            self._write_lb_files(host)
        self._start_holder(host)

    def _write_lb_files(self, host: Host) -> None:
        files = resources.files("pyvrrpd.lab") / "files"
        kdir = host.dir / "keepalived"
        hdir = host.dir / "haproxy"
        for d in (kdir, hdir):
            d.mkdir(mode=0o755)
        (kdir / "keepalived.conf").write_text((files / KEEPALIVED_CONF[host.spec.name]).read_text())
        script = kdir / "check_haproxy.sh"
        script.write_text((files / "check_haproxy.sh").read_text())
        os.chmod(script, 0o755)
        (hdir / "haproxy.cfg").write_text((files / "haproxy.cfg").read_text())
        # HAProxy's chroot; the Debian package creates it, a fresh host may not have it
        Path("/var/lib/haproxy").mkdir(mode=0o755, parents=True, exist_ok=True)

    def _start_holder(self, host: Host) -> None:
        err = self.open_log(f"{host.spec.name}-holder")
        proc = subprocess.Popen(
            ["ip", "netns", "exec", host.netns,
             "unshare", "--pid", "--mount", "--fork", "--mount-proc", "--propagation", "private",
             sys.executable, "-I", str(HOLDER), str(host.dir)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
        )  # fmt: skip
        host.unshare = proc
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 10.0)
        line = proc.stdout.readline() if ready else b""
        if line.strip() != b"ready":
            raise LabError(f"host {host.spec.name}: holder did not start (see {err.name})")
        ok, _ = wait_for(lambda: bool(children_of(proc.pid)), 5.0)
        if not ok:
            raise LabError(f"host {host.spec.name}: holder pid not found")
        host.holder_pid = children_of(proc.pid)[0]
        self._write_marker()

    def close(self) -> None:
        """Tear everything down: holders (and so every host process), netns, lab dir."""
        if self._closed:
            return
        self._closed = True
        for host in self.hosts.values():
            if host.holder_pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(host.holder_pid, signal.SIGKILL)
        procs = [*(h.unshare for h in self.hosts.values() if h.unshare), *self._procs]
        for proc in procs:  # nsenter wrappers, and the probe (net namespace only)
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        for proc in procs:
            try:
                proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=2.0)
            if proc.stdout:
                proc.stdout.close()
        for ns in reversed(self._netns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        for f in self._logs:
            f.close()
        shutil.rmtree(self.root, ignore_errors=True)
        for d in self._made_dirs:
            with contextlib.suppress(OSError):
                d.rmdir()  # only if still empty

    # ---------------------------------------------------------------- hosts
    def open_log(self, name: str) -> IO[bytes]:
        """Open (append) ``logs/<name>.log`` in the lab dir; closed at teardown."""
        f = open(self.root / "logs" / f"{name}.log", "ab")  # noqa: SIM115
        self._logs.append(f)
        return f

    def log_path(self, name: str) -> Path:
        """Path of ``logs/<name>.log``."""
        return self.root / "logs" / f"{name}.log"

    def log_tails(self, lines: int = 12) -> list[tuple[str, str]]:
        """(name, last ``lines`` lines) of every non-empty log, for a failure report."""
        out: list[tuple[str, str]] = []
        for f in self._logs:
            f.flush()
        for path in sorted((self.root / "logs").glob("*.log")):
            with contextlib.suppress(OSError):
                text = path.read_text(errors="replace").rstrip("\n")
                if text:
                    out.append((path.stem, "\n".join(text.splitlines()[-lines:])))
        return out

    def keep_logs(self) -> Path | None:
        """Copy ``logs/`` out of the lab dir (teardown deletes it); the copy's path."""
        src = self.root / "logs"
        if not src.is_dir():
            return None
        dest = KEPT_LOGS_PARENT / f"pyvrrpd-lab-{self.prefix.rstrip('-')}-logs"
        try:
            shutil.copytree(src, dest, dirs_exist_ok=True)
        except OSError:
            return None
        return dest

    def nsenter(self, host: str) -> list[str]:
        """The ``nsenter`` prefix that runs a command on ``host`` (net, mount, pid)."""
        return ["nsenter", "-t", str(self.hosts[host].holder_pid), "-p", "-m", "-n", "--"]

    def run(
        self, host: str, argv: Sequence[str], timeout: float = 10.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` on ``host`` and wait; raise :class:`LabError` on failure if ``check``."""
        proc = subprocess.run(
            [*self.nsenter(host), *argv], capture_output=True, text=True, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise LabError(
                f"{host}: {' '.join(argv)}: exit {proc.returncode}: {proc.stderr.strip()}"
            )
        return proc

    def spawn(
        self, host: str, argv: Sequence[str], log: str, net_only: bool = False, stamp: bool = False
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` on ``host`` in the background, output to ``logs/<log>.log``.

        The process is registered for teardown. With ``net_only`` the command
        enters only the network namespace and the returned Popen *is* the command.
        With ``stamp`` each output line is prefixed with its arrival time
        (``@<time.time()> ``, see :func:`stamped_lines`): keepalived's console
        lines carry whole seconds only, the benchmark needs milliseconds.
        """
        out = self.open_log(log)
        prefix = (
            ["nsenter", "-t", str(self.hosts[host].holder_pid), "-n", "--"]
            if net_only
            else self.nsenter(host)
        )
        proc = subprocess.Popen(
            [*prefix, *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stamp else out,
            stderr=subprocess.STDOUT,
        )
        self._procs.append(proc)
        if stamp:
            assert proc.stdout is not None
            threading.Thread(
                target=_stamp_copy, args=(proc.stdout, out), name=f"stamp-{log}", daemon=True
            ).start()
        return proc

    def global_pid(self, host: str, pid: int) -> int | None:
        """The PID in our namespace of ``host``'s process ``pid`` (its own PID namespace).

        Found through /proc/*/status ``NSpid`` (outermost first, innermost last)
        among the processes sharing the host holder's PID namespace.
        """
        try:
            want = os.readlink(f"/proc/{self.hosts[host].holder_pid}/ns/pid")
        except OSError:
            return None
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{name}/ns/pid") != want:
                    continue
                for line in Path(f"/proc/{name}/status").read_text().splitlines():
                    if line.startswith("NSpid:"):
                        if int(line.split()[-1]) == pid:
                            return int(name)
                        break
        return None

    def host_path(self, host: str, path: str) -> Path:
        """``path`` as seen by ``host`` (through /proc/<holder>/root).

        Absolute symlinks under /proc/PID/root resolve in *our* root, so the
        Debian ``/var/run -> /run`` link is followed by hand.
        """
        if path.startswith("/var/run/"):
            path = path[len("/var") :]
        return Path(f"/proc/{self.hosts[host].holder_pid}/root") / path.lstrip("/")

    def host_pids(self, host: str) -> list[int]:
        """PIDs (in the host's own PID namespace) of the processes on ``host``."""
        proc = self.host_path(host, "/proc")
        return sorted(int(p) for p in os.listdir(proc) if p.isdigit())

    def host_cmdlines(self, host: str) -> dict[int, str]:
        """``{pid: command line}`` of the processes on ``host`` (like ``ps ax``)."""
        out: dict[int, str] = {}
        for pid in self.host_pids(host):
            with contextlib.suppress(OSError):
                raw = self.host_path(host, f"/proc/{pid}/cmdline").read_bytes()
                out[pid] = raw.replace(b"\0", b" ").decode(errors="replace").strip()
        return out

    def addresses(self, host: str, dev: str = "eth0") -> list[str]:
        """IPv4 addresses on ``dev`` of ``host`` (the guide's ``ip a``)."""
        proc = subprocess.run(
            ["ip", "-n", self.hosts[host].netns, "-4", "-o", "addr", "show", "dev", dev],
            capture_output=True, text=True, timeout=5.0, check=False,
        )  # fmt: skip
        addrs = []
        for line in proc.stdout.splitlines():
            parts = line.split()
            if "inet" in parts:
                addrs.append(parts[parts.index("inet") + 1].split("/")[0])
        return addrs

    def has_vip(self, host: str) -> bool:
        """True if ``host`` has the VIP on eth0."""
        return VIP in self.addresses(host)

    def vip_holders(self) -> list[str]:
        """The load balancers that have the VIP on eth0 right now."""
        return [lb for lb in LBS if self.has_vip(lb)]

    def describe(self) -> str:
        """Human help: how to get a shell on each host."""
        lines = [f"lab dir {self.root}"]
        for name, host in self.hosts.items():
            lines.append(f"  {name:7s} nsenter -t {host.holder_pid} -p -m -n -- bash")
        return "\n".join(lines)
