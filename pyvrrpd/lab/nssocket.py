"""A socket created inside a lab host's network namespace.

A socket keeps the namespace it was created in, so the lab's readers
(pyvrrpd.lab.vipwatch's netlink dumps, pyvrrpd.lab.advertcap's packet
capture) create theirs after ``setns(2)`` in a short-lived thread: only that
thread moves, and it ends right after, so no other code ever runs in the lab
host's namespace by accident and the caller's own namespace never changes.

Owns: that thread and the setns call. Must not: keep a thread or an fd other
than the socket it returns.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import threading
from collections.abc import Callable

_CLONE_NEWNET = 0x40000000


def socket_in_netns(path: str, make: Callable[[], socket.socket], what: str) -> socket.socket:
    """``make()`` run inside the network namespace at ``path`` (``/run/netns/NAME``).

    Any failure (setns, or ``make``'s own) is raised in the caller's thread as
    ``OSError(EIO, "cannot {what} in {path}: ...")``."""
    box: dict[str, socket.socket | BaseException] = {}

    def work() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns {path}: {os.strerror(err)}")
            finally:
                os.close(fd)
            box["sock"] = make()
        except BaseException as exc:  # handed to the caller's thread
            box["err"] = exc

    t = threading.Thread(target=work, name="lab-setns")
    t.start()
    t.join()
    got = box.get("sock", box.get("err"))
    if isinstance(got, socket.socket):
        return got
    raise OSError(errno.EIO, f"cannot {what} in {path}: {got}")


__all__ = ["socket_in_netns"]
