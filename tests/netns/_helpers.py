"""Running both config checkers (`keepalived -t`, `pyvrrpd check-config`) in a test LAN.

Owns: the two ways the parity tests ask both checkers about one config file
in a host's network namespace (both check interfaces, so they must run where
eth0 exists): their exit codes, and a run whose /etc/keepalived is a fresh
tmpfs in a private mount namespace (the host's /etc is never touched).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.netns._pair import Pair

KEEPALIVED = "/usr/sbin/keepalived"


def _commands(conf: Path) -> tuple[list[str], list[str]]:
    return (
        [KEEPALIVED, "-t", "-f", str(conf)],
        [sys.executable, "-m", "pyvrrpd", "check-config", "-f", str(conf)],
    )


def checker_codes(pair: Pair, conf: Path, host: str = "lb1") -> tuple[int, int]:
    """Exit codes of keepalived -t and pyvrrpd check-config on `conf` in `host`'s netns."""
    ns = pair.ns(host)
    ka, py = (
        subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, timeout=30)
        for cmd in _commands(conf)
    )
    return ka.returncode, py.returncode


def check_with_private_etc(
    pair: Pair, conf: Path, prepare: str
) -> subprocess.CompletedProcess[str]:
    """Both checkers on `conf` in lb1's netns, after the shell commands
    `prepare` filled a fresh tmpfs /etc/keepalived (private mount namespace).

    Their exit codes are in the output as `ka=RC` and `py=RC`.
    """
    ns = pair.ns("lb1")
    ka, py = (" ".join(cmd) for cmd in _commands(conf))
    script = (
        "mkdir -p /etc/keepalived && mount -t tmpfs -o mode=755 none /etc/keepalived"
        f" && {prepare}"
        f" && ip netns exec {ns} {ka}; echo ka=$?"
        f" && ip netns exec {ns} {py}; echo py=$?"
    )
    return subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
    )
