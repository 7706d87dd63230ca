"""The notify FIFO: created if missing, held open non-blocking, written one line at a time.

Owns: keepalived's FIFO handling (lib/notify.c fifo_open()/fifo_close(),
keepalived.md 3.2): `mkfifo` with mode 0644 when the path does not exist
(chowned to the configured user/group), then an `O_RDWR | O_NONBLOCK |
O_NOFOLLOW` open. Opening read-write means the open never waits for a
reader and a write never fails with EPIPE/ENXIO while none is attached: lines
wait in the pipe (64 KiB) until a reader comes, and a reader that goes away
and comes back just picks up where the pipe is, so there is nothing to
reopen. A full pipe (EAGAIN) drops the line and counts it, as keepalived
silently does. On close a FIFO we created is unlinked first, so a reader
looping on open() cannot reattach to a dead daemon.
Must not: block, raise for a write failure, or decide what to write.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import os
import pwd
import stat

__all__ = ["NotifyFifoWriter"]


class NotifyFifoWriter:
    """One notify FIFO; `write()` never blocks and never raises."""

    def __init__(self, path: str, user: str | None = None, group: str | None = None) -> None:
        self.path = path
        self.user = user
        self.group = group
        self.fd: int | None = None
        self.created = False
        self.lines = 0  # written whole
        self.dropped = 0  # EAGAIN (pipe full) or another write error
        self.last_error: str | None = None

    def open(self) -> str | None:
        """Create (if missing) and open the FIFO; the one-line reason on failure."""
        try:
            os.mkfifo(self.path, 0o644)
            self.created = True
            # mkfifo honours the umask; keepalived's FIFO is rw-r--r--.
            os.chmod(self.path, 0o644)
            self._chown()
        except FileExistsError:
            pass
        except OSError as exc:
            return f"cannot create notify FIFO {self.path}: {os.strerror(exc.errno or 0)}"
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            self._unlink()
            return f"cannot open notify FIFO {self.path}: {os.strerror(exc.errno or 0)}"
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            # keepalived writes to whatever it opened; a regular file would
            # grow forever, so refuse it.
            os.close(fd)
            return f"notify FIFO {self.path} exists and is not a FIFO"
        self.fd = fd
        return None

    def _chown(self) -> None:
        if self.user is None and self.group is None:
            return
        uid = gid = -1
        with contextlib.suppress(KeyError):
            if self.user is not None:
                pw = pwd.getpwnam(self.user)
                uid, gid = pw.pw_uid, pw.pw_gid
            if self.group is not None:
                gid = int(self.group) if self.group.isdigit() else grp.getgrnam(self.group).gr_gid
        if uid == os.geteuid():
            uid = -1
        with contextlib.suppress(OSError):
            os.chown(self.path, uid, gid)

    def write(self, line: str) -> bool:
        """Write one whole line (<= PIPE_BUF, so atomic); False if it was dropped."""
        if self.fd is None:
            return False
        data = line.encode()
        try:
            written = os.write(self.fd, data)
        except OSError as exc:
            self.dropped += 1
            if exc.errno != errno.EAGAIN:
                self.last_error = os.strerror(exc.errno or 0)
            return False
        if written != len(data):  # pragma: no cover - lines are far below PIPE_BUF
            self.dropped += 1
            return False
        self.lines += 1
        return True

    def close(self) -> None:
        self._unlink()
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None

    def _unlink(self) -> None:
        if self.created:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            self.created = False
