"""Private PID namespaces for the pair LAN's hosts (tests/netns/_pair.py).

A plain ``ip netns exec`` shares the host's PID namespace and /proc, so
``pidof haproxy`` on lb1 would also see lb2's stand-in (or another test's
HAProxy). :func:`start_holder` gives a host its own PID and mount namespace
(``unshare --pid --fork --mount-proc``, as pyvrrpd/lab does) with a sleeping
PID 1; :func:`nsenter` builds the command that runs a program inside it.
Everything started here is registered in ``pair.procs`` so the pair's
teardown kills it; the holder dying takes its whole PID namespace with it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from pyvrrpd.lab.vipwatch import AddrWatch
from tests.netns._pair import VIP, Pair, logged_pair_lan, wait_for


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (host PIDs)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def start_holder(pair: Pair, host: str, *, own_proc: bool = True) -> int:
    """Give ``host`` its own PID namespace; returns the host PID of its PID 1.

    ``own_proc=False``: no --mount-proc, the host's /proc stays (a hand-made
    container's view: its PIDs listed as the parent namespace numbers them)."""
    cmd = ["ip", "netns", "exec", pair.ns(host), "unshare", "--pid", "--fork"]
    cmd += ["--mount-proc"] if own_proc else []
    cmd += ["--kill-child", "sleep", "3600"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    pair.procs[f"{host}-holder"] = proc
    assert wait_for(lambda: bool(children_of(proc.pid)), timeout=5.0) is not None
    return children_of(proc.pid)[0]


def nsenter(holder: int) -> list[str]:
    """Command prefix running a program in the holder's net, PID and mount namespaces."""
    return ["nsenter", "-t", str(holder), "-n", "-p", "-m", f"--wd={os.getcwd()}", "--"]


def start_daemon(pair: Pair, host: str, holder: int, conf: Path) -> subprocess.Popen[bytes]:
    """`pyvrrpd run` inside the host's PID namespace, logging to the pair's log file."""
    log = open(pair.workdir / f"{host}.log", "ab")  # noqa: SIM115
    cmd = [*nsenter(holder), sys.executable, "-m", "pyvrrpd", "run", "-f", str(conf)]
    cmd += ["--control-socket", pair.sock(host), "--log-format", "json"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    pair.procs[host] = proc
    return proc


def start_in(pair: Pair, key: str, holder: int, argv: list[str]) -> int:
    """Run ``argv`` in the holder's namespaces; returns its host PID."""
    proc = subprocess.Popen([*nsenter(holder), *argv], stdin=subprocess.DEVNULL)
    pair.procs[key] = proc
    assert wait_for(lambda: bool(children_of(proc.pid)), timeout=5.0) is not None
    return children_of(proc.pid)[0]


#: vrrp_track_process of a stand-in `haproxy` (weight 0), for ``conf.format(prio=, vip=)``
STANDIN_CONF = """\
vrrp_track_process chk_haproxy {{
  process haproxy
  weight 0
}}
vrrp_instance VI_1 {{
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority {prio}
  advert_int 1
  virtual_ipaddress {{
    {vip}
  }}
  track_process {{
    chk_haproxy
  }}
}}
"""


@dataclass
class StandinLab:
    """lb1 and lb2 in their own PID namespaces, each able to run a stand-in
    `haproxy` (/bin/sleep reached through a symlink named haproxy, so its
    /proc/PID/comm is `haproxy`), and a watch on who holds which address."""

    pair: Pair
    holders: dict[str, int]
    exe: Path
    watch: AddrWatch

    def standin(self, host: str, key: str = "haproxy") -> int:
        """A stand-in HAProxy on `host`; its host PID."""
        return start_in(self.pair, f"{host}-{key}", self.holders[host], [str(self.exe), "3600"])

    def start_daemons(self, conf: str = STANDIN_CONF) -> None:
        """pyvrrpd on lb1 (priority 100) until MASTER, then on lb2 (90) until
        BACKUP; the VIP on lb1 only."""
        for host, prio in (("lb1", 100), ("lb2", 90)):
            path = self.pair.workdir / f"{host}.conf"
            path.write_text(conf.format(prio=prio, vip=VIP))
            start_daemon(self.pair, host, self.holders[host], path)
            want = "MASTER" if host == "lb1" else "BACKUP"
            ok = wait_for(partial(_is_state, self.pair, host, want), 10.0, 0.05)
            assert ok is not None, f"{host} never {want}:\n{self.pair.log(host)[-3000:]}"
        assert set(self.watch.holders(VIP)) == {"lb1"}


def _is_state(pair: Pair, host: str, want: str) -> bool:
    return pair.fast_state(host) == want


@contextlib.contextmanager
def standin_lab(tmp: Path, *, own_proc: bool = True) -> Iterator[StandinLab]:
    """The pair LAN (logged_pair_lan: skipped unless root) as a StandinLab;
    `own_proc` as for start_holder."""
    with logged_pair_lan(tmp) as pair:
        bindir = tmp / "bin"
        bindir.mkdir()
        (bindir / "haproxy").symlink_to("/bin/sleep")
        holders = {h: start_holder(pair, h, own_proc=own_proc) for h in ("lb1", "lb2")}
        watch = AddrWatch({h: pair.ns(h) for h in ("lb1", "lb2")})
        try:
            yield StandinLab(pair, holders, bindir / "haproxy", watch)
        finally:
            watch.close()


def kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
