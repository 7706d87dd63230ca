"""PID 1 of one lab host: sets up the host's private mounts, then reaps orphans.

Started by :mod:`pyvrrpd.lab.netns` as
``ip netns exec NS unshare --pid --mount --fork --mount-proc --propagation private
python holder.py HOSTDIR``, so this process is PID 1 of the host's own PID
namespace, inside its own mount namespace and network namespace.

It owns: bind-mounting ``HOSTDIR/keepalived`` over ``/etc/keepalived`` and
``HOSTDIR/haproxy`` over ``/etc/haproxy`` (when those lab dirs exist), a private
tmpfs on ``/run`` (per-host pid files and control sockets), and reaping every
orphan (HAProxy's daemonised child ends up here; an unreaped zombie would still
show as ``[haproxy] <defunct>`` in ``ps ax`` and fool the guide's check script).

It must not: import anything outside the standard library (it runs as a plain
script), or carry the words of the programs under test on its command line
(the guide's check script greps ``ps ax``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

# lab dir name -> mount point in the host's mount namespace
BINDS = (("keepalived", "/etc/keepalived"), ("haproxy", "/etc/haproxy"))


def setup(hostdir: str) -> None:
    """Make this host's mounts: bind the per-host config dirs, tmpfs on /run."""
    for name, target in BINDS:
        source = os.path.join(hostdir, name)
        if not os.path.isdir(source):
            continue
        if not os.path.isdir(target):
            raise SystemExit(f"holder: {target} missing (install the Debian package)")
        subprocess.run(["mount", "--bind", source, target], check=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "mode=0755,size=16m", "pvl-run", "/run"], check=True
    )


def reap_forever() -> None:
    """Reap every child and orphan; wake on SIGCHLD (blocked, so none is lost)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    while True:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        signal.sigwaitinfo({signal.SIGCHLD})


def main() -> int:
    """Set up, say ``ready`` on stdout, then reap until killed."""
    setup(sys.argv[1])
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    os.close(1)
    reap_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
