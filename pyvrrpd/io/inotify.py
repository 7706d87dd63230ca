"""Linux inotify through ctypes: a non-blocking fd and its decoded events.

Owns: `inotify_init1(IN_NONBLOCK | IN_CLOEXEC)`, `inotify_add_watch` /
`inotify_rm_watch` (libc through ctypes; the stdlib has no binding), reading
the fd until EAGAIN and decoding `struct inotify_event` records with
`struct` (inotify(7): int wd; uint32 mask, cookie, len; then `len` bytes of
NUL-padded name). The caller registers `fd` with its event loop
(`loop.add_reader`) and calls `read_events` when it is readable: no polling.
Must not: know what a watched file means (pyvrrpd.trackers.file does).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import struct
from typing import NamedTuple

from .errors import HostError

# <sys/inotify.h>
IN_MODIFY = 0x00000002
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_MOVE = IN_MOVED_FROM | IN_MOVED_TO
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_UNMOUNT = 0x00002000
IN_Q_OVERFLOW = 0x00004000  # the kernel dropped events (wd is -1)
IN_IGNORED = 0x00008000  # the watch is gone (directory deleted, unmounted, rm_watch)
IN_ONLYDIR = 0x01000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

_HEADER = struct.Struct("=iIII")  # wd, mask, cookie, len
_READ_SIZE = 64 * 1024  # many events per read(2); one event is at most 16 + NAME_MAX + 1


class InotifyEvent(NamedTuple):
    """One decoded `struct inotify_event`."""

    wd: int
    mask: int
    cookie: int
    name: str  # the entry's name inside a watched directory ("" for the directory itself)


def parse_events(buf: bytes) -> list[InotifyEvent]:
    """Decode the records of one read(2) of an inotify fd.

    A truncated trailing record (which the kernel never produces) is dropped.
    Names are decoded with the file-system encoding, as os.listdir does.
    """
    out: list[InotifyEvent] = []
    pos = 0
    while pos + _HEADER.size <= len(buf):
        wd, mask, cookie, length = _HEADER.unpack_from(buf, pos)
        start = pos + _HEADER.size
        if start + length > len(buf):
            break
        raw = buf[start : start + length].split(b"\0", 1)[0]
        out.append(InotifyEvent(wd, mask, cookie, os.fsdecode(raw)))
        pos = start + length
    return out


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class Inotify:
    """One inotify instance. `fd` is non-blocking and close-on-exec."""

    def __init__(self) -> None:
        self._lib = _libc()
        fd = self._lib.inotify_init1(ctypes.c_int(IN_NONBLOCK | IN_CLOEXEC))
        if fd < 0:
            err = ctypes.get_errno()
            raise HostError(f"inotify_init1: {os.strerror(err)}")
        self.fd: int = fd

    def add_watch(self, path: str, mask: int) -> int:
        """Watch `path` for `mask`; the watch descriptor (the same for the same inode)."""
        wd = self._lib.inotify_add_watch(
            ctypes.c_int(self.fd), os.fsencode(path), ctypes.c_uint32(mask)
        )
        if wd < 0:
            err = ctypes.get_errno()
            raise HostError(f"inotify_add_watch {path}: {os.strerror(err)}")
        return int(wd)

    def rm_watch(self, wd: int) -> None:
        """Stop a watch (the kernel then queues IN_IGNORED for it); errors ignored."""
        self._lib.inotify_rm_watch(ctypes.c_int(self.fd), ctypes.c_int(wd))

    def read_events(self) -> list[InotifyEvent]:
        """Every event queued now; [] when none (EAGAIN)."""
        out: list[InotifyEvent] = []
        while True:
            try:
                buf = os.read(self.fd, _READ_SIZE)
            except BlockingIOError:
                return out
            except InterruptedError:  # pragma: no cover - PEP 475 retries already
                continue
            except OSError as exc:
                if exc.errno == errno.EAGAIN:
                    return out
                raise HostError(f"inotify read: {exc.strerror}") from exc
            if not buf:
                return out
            out.extend(parse_events(buf))

    def close(self) -> None:
        """Close the fd (every watch goes with it); idempotent."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


__all__ = [
    "IN_CLOSE_WRITE",
    "IN_CREATE",
    "IN_DELETE",
    "IN_IGNORED",
    "IN_ISDIR",
    "IN_MOVE",
    "IN_MOVED_FROM",
    "IN_MOVED_TO",
    "IN_ONLYDIR",
    "IN_Q_OVERFLOW",
    "Inotify",
    "InotifyEvent",
    "parse_events",
]
