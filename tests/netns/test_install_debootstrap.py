"""The README's commands on a fresh Debian 12, in a debootstrap root (slow, runs in CI).

Builds (or reuses, cached per day under /var/cache/pyvrrpd-test) a Debian 12
minbase root, copies the working tree in, and inside it as root runs, in this
order: the README's first command exactly as written (``./scripts/demo.sh``:
apt-get, the venv, then the lab of network namespaces), the test command's setup
step (``./scripts/setup.sh --test``) without the suite, the install command
(``pyvrrpd`` and ``keepalived`` on PATH, units in place, ``systemd-analyze
verify`` clean), ``--compat`` beside Debian's keepalived, and the uninstall (all
gone, config kept); then the same from a wheel alone, and the .deb from
scripts/build-deb.sh installed and purged with apt.

Isolation: the chroot runs in a network namespace this test makes (loopback
only; tests/netns/_egress.py lets apt and pip reach the package registries and
nothing else) and in its own mount and PID namespaces, so its /proc, /sys, /dev
mounts and every process it starts (HAProxy, the lab's daemons) go away with it,
even on failure. Phase timings are printed (``-s`` shows them).
"""

from __future__ import annotations

import datetime
import os
import secrets
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.netns._egress import EgressProxy, egress_proxy

pytestmark = [pytest.mark.slow, pytest.mark.netns]

REPO = Path(__file__).resolve().parents[2]
CACHE = Path("/var/cache/pyvrrpd-test")
MIRROR = "http://deb.debian.org/debian"
ALLOW = {
    "deb.debian.org": {80},
    "pypi.org": {443},
    "files.pythonhosted.org": {443},
}
IN_ROOT = "/root/pyvrrpd"  # where the checkout sits inside the root
# The host's CA bundle, given to pip in the root: where egress re-signs TLS (as
# on the machines this suite runs on), a fresh root's certifi would refuse PyPI.
HOST_CA = "/root/host-ca-bundle.crt"


def _run(cmd: list[str], timeout: float, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kw)  # type: ignore[call-overload, no-any-return]


def _tail(text: str, n: int = 40) -> str:
    return "\n".join(text.splitlines()[-n:])


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (debootstrap, chroot, network namespaces)"
    for tool in ("ip", "unshare", "chroot", "tar", "git"):
        if shutil.which(tool) is None:
            return f"missing tool: {tool}"
    return None


def _ensure_debootstrap() -> None:
    if shutil.which("debootstrap"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "update", "-qq"], 300, env=env)
    r = _run(["apt-get", "install", "-y", "-qq", "debootstrap"], 300, env=env)
    if r.returncode != 0 or not shutil.which("debootstrap"):
        pytest.skip(f"debootstrap not installable: {_tail(r.stderr, 1)}")


def _root_tarball(timings: dict[str, float]) -> Path:
    """Today's Debian 12 minbase root as a tarball, built once a day."""
    CACHE.mkdir(parents=True, exist_ok=True)
    tarball = CACHE / f"bookworm-minbase-{datetime.date.today():%Y%m%d}.tar"
    if tarball.exists():
        timings["debootstrap (cached)"] = 0.0
        return tarball
    for old in CACHE.glob("bookworm-minbase-*.tar"):
        old.unlink()
    _ensure_debootstrap()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="pyvrrpd-dbs-") as tmp:
        root = Path(tmp) / "root"
        r = _run(["debootstrap", "--variant=minbase", "bookworm", str(root), MIRROR], 900)
        assert r.returncode == 0, f"debootstrap failed:\n{_tail(r.stdout + r.stderr)}"
        # The usual chroot guard: packages installed in there must not start
        # their services (Debian starts haproxy, keepalived on install).
        rc = root / "usr/sbin/policy-rc.d"
        rc.write_text("#!/bin/sh\nexit 101\n")
        rc.chmod(0o755)
        part = tarball.with_suffix(".part")
        r = _run(["tar", "-C", str(root), "-cf", str(part), "."], 300)
        assert r.returncode == 0, f"tar failed: {_tail(r.stderr)}"
        part.rename(tarball)
    timings["debootstrap"] = time.monotonic() - t0
    return tarball


def _copy_tree(dest: Path) -> None:
    """The working tree as git sees it (tracked + untracked, not ignored)."""
    dest.mkdir(parents=True)
    files = _run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        60,
    )
    assert files.returncode == 0, files.stderr
    tar_out = subprocess.run(
        ["tar", "-C", str(REPO), "--null", "-T", "-", "--ignore-failed-read", "-cf", "-"],
        input=files.stdout.encode(),
        capture_output=True,
        timeout=120,
        check=True,
    ).stdout
    subprocess.run(["tar", "-C", str(dest), "-xf", "-"], input=tar_out, check=True, timeout=120)


class Root:
    """A throw-away Debian root entered in fresh mount/PID namespaces in NETNS."""

    def __init__(self, path: Path, netns: str, proxy: EgressProxy) -> None:
        self.path, self.netns, self.proxy = path, netns, proxy

    def sh(self, script: str, timeout: float) -> subprocess.CompletedProcess[str]:
        """Runs SCRIPT with bash as root inside the root; all mounts and processes die with it."""
        p = shlex.quote(str(self.path))
        env = (
            "env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            f" HOME=/root LANG=C.UTF-8 TERM=dumb http_proxy={self.proxy.url}"
            f" https_proxy={self.proxy.url} PIP_CERT={HOST_CA}"
        )
        # pivot_root, not chroot: the lab enters its holders' mount namespaces
        # (nsenter -m), and setns(2) to a mount namespace resets the root to that
        # namespace's root, which must be the Debian root, not the host's.
        inner = (
            f"mount --bind {p} {p} && mount -t proc proc {p}/proc && mount -t sysfs sysfs {p}/sys"
            f" && mount --rbind /dev {p}/dev && mount -t tmpfs -o mode=0755 tmpfs {p}/run"
            f" && mount -t tmpfs -o mode=1777 tmpfs {p}/tmp"
            f" && mkdir -p {p}/.oldroot && cd {p} && pivot_root . .oldroot"
            f" && exec {env} /bin/bash -c"
            f" {shlex.quote('umount -l /.oldroot && rmdir /.oldroot && cd / && ' + script)}"
        )
        cmd = [
            "ip", "netns", "exec", self.netns,
            "unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child",
            "/bin/sh", "-c", inner,
        ]  # fmt: skip
        try:
            return _run(cmd, timeout)
        except subprocess.TimeoutExpired as e:
            raw = e.stdout or b""
            out = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
            pytest.fail(f"timed out after {timeout:.0f} s: {script}\n{_tail(out)}")


@pytest.fixture
def debian_root() -> Iterator[tuple[Root, dict[str, float]]]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    timings: dict[str, float] = {}
    tarball = _root_tarball(timings)
    netns = f"pvdbs-{secrets.token_hex(3)}"
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="pyvrrpd-root-") as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        t0 = time.monotonic()
        subprocess.run(["tar", "-C", str(root), "-xf", str(tarball)], check=True, timeout=300)
        _copy_tree(root / IN_ROOT.lstrip("/"))
        if Path("/etc/ssl/certs/ca-certificates.crt").exists():
            shutil.copy("/etc/ssl/certs/ca-certificates.crt", root / HOST_CA.lstrip("/"))
        timings["unpack + copy"] = time.monotonic() - t0
        subprocess.run(["ip", "netns", "add", netns], check=True, timeout=10)
        try:
            subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True, timeout=10)
            with egress_proxy(netns, ALLOW) as proxy:
                yield Root(root, netns, proxy), timings
        finally:
            subprocess.run(["ip", "netns", "del", netns], check=False, timeout=10)
        spent = ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
        print(f"\ndebootstrap test timings: {spent}")


def test_readme_commands_on_fresh_debian12(debian_root: tuple[Root, dict[str, float]]) -> None:
    root, timings = debian_root
    cd = f"cd {IN_ROOT} && "

    def phase(name: str, script: str, timeout: float) -> str:
        t0 = time.monotonic()
        r = root.sh(script, timeout)
        timings[name] = time.monotonic() - t0
        out = r.stdout + r.stderr
        assert r.returncode == 0, f"{name} exited {r.returncode}:\n{_tail(out)}"
        return out

    # Nothing of ours is there yet: no sudo, no git, no pip, no venv module.
    bare = root.sh("command -v sudo git pip3 || python3 -c 'import ensurepip'", 30)
    assert bare.returncode != 0 and bare.stdout == "", bare.stdout

    # The README's first command, exactly as written.
    out = phase("demo", cd + "./scripts/demo.sh", 900)
    assert "step 4" in out and "VIP: lb1" in out, _tail(out)
    assert ".venv/bin" in out or "pyvrrpd" in out

    # The test command's setup step, without running the suite.
    out = phase("setup --test", cd + "./scripts/setup.sh --test", 900)
    assert "setup: ready" in out, _tail(out)
    phase("test tools", cd + ".venv/bin/pytest --version && .venv/bin/ruff --version", 60)

    # A real host has systemd: give the root its tools (systemctl, systemd-analyze).
    phase(
        "apt systemd",
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd"
        " >/dev/null",
        600,
    )

    # The install command. setup --test installed Debian's keepalived (a test
    # peer), so the install leaves the keepalived command and unit to it.
    out = phase("install", cd + "./scripts/install.sh", 600)
    assert "Debian's keepalived package is installed" in out, out
    out = phase(
        "check install",
        "set -e; command -v pyvrrpd; command -v keepalived; pyvrrpd --help >/dev/null;"
        " ls /etc/systemd/system; readlink /usr/local/sbin/pyvrrpd;"
        " test -L /etc/systemd/system/multi-user.target.wants/pyvrrpd.service && echo enabled;"
        ' v=$(systemd-analyze verify /etc/systemd/system/pyvrrpd.service 2>&1); echo "verify[$v]"',
        120,
    )
    assert "/usr/local/sbin/pyvrrpd\n/usr/sbin/keepalived\n" in out, out
    assert "/opt/pyvrrpd/bin/pyvrrpd" in out and "enabled" in out, out
    assert "verify[]" in out, out  # no warning either
    assert "keepalived.service" not in out.split("readlink")[0], out

    # --compat: our keepalived ahead of Debian's on root's PATH, Debian's untouched.
    phase("install --compat", cd + "./scripts/install.sh --compat", 300)
    out = phase(
        "check compat",
        "set -e; command -v keepalived; keepalived --version 2>&1 | head -n1;"
        " ls -l /usr/sbin/keepalived; dpkg -V keepalived && echo dpkg-intact;"
        " v=$(systemd-analyze verify /etc/systemd/system/pyvrrpd.service"
        ' /etc/systemd/system/keepalived.service 2>&1); echo "verify[$v]"',
        120,
    )
    assert out.startswith("/usr/local/sbin/keepalived\n"), out
    assert "dpkg-intact" in out and "verify[]" in out, out

    # A config of the operator's, which uninstall must leave alone.
    phase(
        "uninstall",
        "mkdir -p /etc/keepalived && cp " + IN_ROOT + "/conf/guide-primary.conf"
        " /etc/keepalived/keepalived.conf && " + cd + "./scripts/uninstall.sh",
        120,
    )
    out = phase(
        "check uninstall",
        "ls /opt/pyvrrpd /usr/local/sbin/pyvrrpd /usr/local/sbin/keepalived"
        " /etc/systemd/system/pyvrrpd.service /etc/systemd/system/keepalived.service"
        " /etc/systemd/system/multi-user.target.wants/pyvrrpd.service 2>&1 | grep -c 'No such';"
        f" cmp /etc/keepalived/keepalived.conf {IN_ROOT}/conf/guide-primary.conf && echo conf-kept;"
        " dpkg -V keepalived && echo dpkg-intact",
        60,
    )
    assert out.startswith("6\n"), out
    assert "conf-kept" in out and "dpkg-intact" in out, out

    # The same from a wheel alone: it carries the installer and the units.
    phase(
        "wheel install",
        cd + ".venv/bin/pip wheel -q --no-deps -w /tmp/whl . && python3 -m venv /opt/pyvrrpd"
        " && /opt/pyvrrpd/bin/pip install -q /tmp/whl/pyvrrpd-*.whl"
        " && cd / && bash /opt/pyvrrpd/share/pyvrrpd/install.sh",
        300,
    )
    out = phase(
        "check wheel install",
        "set -e; command -v pyvrrpd; readlink /usr/local/sbin/pyvrrpd;"
        " systemd-analyze verify /etc/systemd/system/pyvrrpd.service && echo verify-ok;"
        " bash /opt/pyvrrpd/share/pyvrrpd/uninstall.sh; ls /opt/pyvrrpd 2>&1 || true",
        120,
    )
    assert "/usr/local/sbin/pyvrrpd\n/opt/pyvrrpd/bin/pyvrrpd\n" in out, out
    assert "verify-ok" in out and "No such file" in out, out

    # The .deb: built from the checkout, installed and purged with apt.
    phase(
        "deb install",
        cd + "./scripts/build-deb.sh /tmp/deb && DEBIAN_FRONTEND=noninteractive"
        " apt-get install -y -qq /tmp/deb/pyvrrpd_*.deb",
        300,
    )
    out = phase(
        "check deb",
        "set -e; command -v pyvrrpd; pyvrrpd --help >/dev/null; dpkg -s pyvrrpd | grep Status;"
        " test -L /etc/systemd/system/multi-user.target.wants/pyvrrpd.service && echo enabled;"
        ' v=$(systemd-analyze verify /lib/systemd/system/pyvrrpd.service 2>&1); echo "verify[$v]";'
        " DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq pyvrrpd >/dev/null;"
        " ls /opt/pyvrrpd /usr/sbin/pyvrrpd /lib/systemd/system/pyvrrpd.service"
        " /etc/systemd/system/multi-user.target.wants/pyvrrpd.service 2>&1 | grep -c 'No such'"
        " || true",
        300,
    )
    assert out.startswith("/usr/sbin/pyvrrpd\nStatus: install ok installed\nenabled\n"), out
    assert "verify[]" in out and out.rstrip().endswith("\n4"), out
    assert not root.proxy.denied, root.proxy.denied
