"""`track_file`: the integer in a file, watched with inotify, as a scaled tracker.

Owns (keepalived trackers/track_file.c, keepalived.md 1.6): the tracker names
(``file:NAME``) and the TrackerSpecs (``scaled=True``) an instance's
`track_file` references become; `init_file` (writing VALUE, default 0, when
the file is missing, at start and on each reload, or with `overwrite` at
start only; never in a config check); resolving the path as keepalived does (the
file's real path if it exists, else its directory's); one inotify watch per
directory with IN_CLOSE_WRITE | IN_DELETE | IN_MOVE, so a write, an editor's
rename into place and a deletion are all seen; reading the value.

Reading follows keepalived's `process_track_file()`: at most 127 bytes, C
`strtol(buf, NULL, 0)` (leading white space, sign, 0x hex, 0 octal, junk after
the number ignored, no digits = 0); a missing, unreadable or empty file is 0;
a number outside what keepalived accepts (beyond a C long, or outside
-2^31..2^31) is logged and ignored, keeping the old value. A deleted or
moved-away file is 0.
Unwatched files are the one exception to "no polling": when inotify is
unavailable (inotify_init1 EMFILE: fs.inotify.max_user_instances, 128 per
user) or a file's directory is missing or was removed, the file is read
every UNWATCHED_POLL seconds, and its directory watched again once it
exists, so such a tracker follows the file late rather than never.
Must not: do the arithmetic (value x weight, clamping, FAULT: pyvrrpd.core.tracking)
or poll a watched file: every change of those comes from an inotify event.
"""

from __future__ import annotations

import asyncio
import os
import stat
import time
from dataclasses import dataclass

import structlog

from pyvrrpd.config.model import Config, TrackFile, VrrpInstance
from pyvrrpd.core.tracking import TrackerSpec
from pyvrrpd.io import inotify
from pyvrrpd.io.errors import HostError
from pyvrrpd.trackers.base import OnChange, ref_specs

log = structlog.get_logger("pyvrrpd.track")

PREFIX = "file:"
READ_MAX = 127  # keepalived: char buf[128], read(fd, buf, sizeof(buf) - 1)
WATCH_MASK = inotify.IN_CLOSE_WRITE | inotify.IN_DELETE | inotify.IN_MOVE
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1  # strtol on 64-bit Linux: ERANGE beyond
# keepalived: "Invalid number ... - ignoring" outside INT32_MIN..INT32_MAX + 1
VALUE_MIN, VALUE_MAX = -(2**31), 2**31
UNWATCHED_POLL = 1.0  # seconds between reads of a file inotify does not watch


def tracker_name(name: str) -> str:
    """The tracker name a track_file block has in the core and in `pyvrrpd status`."""
    return PREFIX + name


def file_specs(inst: VrrpInstance, config: Config) -> tuple[TrackerSpec, ...]:
    """The instance's `track_file` references as scaled core trackers."""
    blocks = {f.name: (f.weight, f.reverse) for f in config.track_files}
    return ref_specs(inst.track_file, blocks, PREFIX, scaled=True)


def file_source(config: Config, on_change: OnChange, reloading: bool = False) -> FileTracker | None:
    """The source watching every track_file an instance uses (None: none is used,
    and no block has `init_file`)."""
    used = {ref.name for inst in config.instances for ref in inst.track_file}
    watched = tuple(f for f in config.track_files if f.name in used)
    if not watched and not any(f.init_file for f in config.track_files):
        return None
    return FileTracker(watched, on_change, init=config.track_files, reloading=reloading)


# ----------------------------------------------------------------- the value


_SPACE = b" \t\n\v\f\r"


def strtol(data: bytes) -> int:
    """C `strtol(data, NULL, 0)` without the range check: the number at the start.

    Leading white space and a sign are skipped; ``0x``/``0X`` followed by a
    hex digit means hex, another leading ``0`` octal, else decimal; parsing
    stops at the first character that is not a digit of the base. No digits
    at all gives 0.
    """
    s = data.lstrip(_SPACE)
    neg = False
    if s[:1] in (b"+", b"-"):
        neg = s[:1] == b"-"
        s = s[1:]
    base = 10
    if s[:2].lower() == b"0x" and s[2:3] and s[2:3].lower() in b"0123456789abcdef":
        base, s = 16, s[2:]
    elif s[:1] == b"0":
        base = 8
    digits = "0123456789abcdef"[:base]
    text = s.decode("latin-1").lower()
    n = 0
    while n < len(text) and text[n] in digits:
        n += 1
    value = int(text[:n], base) if n else 0
    return -value if neg else value


def parse_value(data: bytes) -> int | None:
    """The value keepalived takes from a file's first bytes; None: invalid, ignored."""
    value = strtol(data[:READ_MAX])
    if not LONG_MIN <= value <= LONG_MAX:  # strtol's ERANGE
        return None
    if not VALUE_MIN <= value <= VALUE_MAX:
        return None
    return value


def read_value(path: str) -> tuple[int | None, str | None, bytes]:
    """(value, read error, bytes read) for the file at `path`.

    Missing, unreadable or empty: 0, with the error when there was one.
    An invalid number: None (the caller keeps the old value).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        return 0, exc.strerror or str(exc), b""
    try:
        data = os.read(fd, READ_MAX)
    except OSError as exc:
        return 0, exc.strerror or str(exc), b""
    finally:
        os.close(fd)
    if not data:
        return 0, None, data
    return parse_value(data), None, data


# ------------------------------------------------------------------ watching


@dataclass(slots=True)
class _Watched:
    block: TrackFile
    path: str  # resolved, absolute
    directory: str
    entry: str  # the file's name in `directory`
    wd: int | None = None
    value: int | None = None
    watch_error: str | None = None  # why the directory is not watched
    read_error: str | None = None  # why the last read found nothing (the value is then 0)
    reported: bool = False
    polled: tuple[bytes, str | None] | None = None  # what the last read found


def resolve_path(path: str) -> tuple[str, str, str] | None:
    """(path, directory, name) as keepalived's init_track_files() resolves them:
    the real path when the file exists, else the real path of its directory
    plus the name. None: the directory does not exist."""
    if os.path.exists(path):
        real = os.path.realpath(path)
        return real, os.path.dirname(real), os.path.basename(real)
    directory = os.path.realpath(os.path.dirname(path) or ".")
    if not os.path.isdir(directory):
        return None
    name = os.path.basename(path)
    return os.path.join(directory, name), directory, name


def write_init(block: TrackFile, reloading: bool = False) -> None:
    """keepalived's init_file: write VALUE when the file is missing, or always
    with `overwrite` (a regular file only) but not on a reload: the value an
    operator wrote since the start stays (keepalived's track_file_end_handler
    skips the overwrite on reload too). Errors are logged, never raised."""
    try:
        st = os.stat(block.path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        log.error("track_file_init", track_file=block.name, path=block.path, error=exc.strerror)
        return
    if st is not None and (not block.overwrite or reloading):
        return
    if st is not None and not stat.S_ISREG(st.st_mode):
        log.error(
            "track_file_init",
            track_file=block.name,
            path=block.path,
            error="not a regular file; not initialised",
        )
        return
    try:
        # Write then close: watchers (ours included) see one IN_CLOSE_WRITE.
        with open(block.path, "w", encoding="ascii") as fh:
            fh.write(f"{block.init_value}\n")
    except OSError as exc:
        log.error("track_file_init", track_file=block.name, path=block.path, error=exc.strerror)


class FileTracker:
    """Every used track_file, one inotify fd; reports ``file:NAME`` with its value."""

    def __init__(
        self,
        files: tuple[TrackFile, ...],
        on_change: OnChange,
        *,
        init: tuple[TrackFile, ...] = (),
        reloading: bool = False,
    ) -> None:
        self._files = files
        self._init = init
        self._reloading = reloading
        self._on_change = on_change
        self._watched: list[_Watched] = []
        self._ino: inotify.Inotify | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._poll_task: asyncio.Task[None] | None = None
        self.changed_at: dict[str, float] = {}  # tracker name -> wall clock of the last change

    async def start(self) -> None:
        """Write init files, watch the directories, report every value once."""
        for block in self._init:
            if block.init_file:
                write_init(block, self._reloading)
        if not self._files:
            return
        self._loop = asyncio.get_running_loop()
        try:
            self._ino = inotify.Inotify()
        except HostError as exc:
            log.error("track_file_unwatched", error=str(exc))
        for block in self._files:
            self._watched.append(self._watch(block))
        if self._ino is not None:
            self._loop.add_reader(self._ino.fd, self._on_readable)
        for w in self._watched:
            self._read(w)
        self._poll_task = self._loop.create_task(self._poll_unwatched())

    async def _poll_unwatched(self) -> None:
        """Read the files inotify does not watch; watch their directory once it exists."""
        while True:
            await asyncio.sleep(UNWATCHED_POLL)
            for w in self._watched:
                if w.wd is None:
                    self._rewatch(w)
                    # Only a change is handled (an invalid number is logged
                    # once, not every second).
                    _value, error, data = read_value(w.path)
                    if w.wd is None and (data, error) == w.polled:
                        continue
                    self._read(w)

    def _rewatch(self, w: _Watched) -> None:
        if self._ino is None:
            return
        where = resolve_path(w.block.path)
        if where is None:
            return
        try:
            wd = self._ino.add_watch(where[1], WATCH_MASK)
        except HostError:
            return
        w.path, w.directory, w.entry = where
        w.wd, w.watch_error = wd, None
        log.info("track_file_watched", track_file=w.block.name, path=w.path)

    def _watch(self, block: TrackFile) -> _Watched:
        where = resolve_path(block.path)
        if where is None:
            # keepalived drops the tracker ("Track file directory for X does
            # not exist - removing"); pyvrrpd keeps it at the missing file's
            # value, 0, says so, and watches it once the directory exists.
            w = _Watched(block, block.path, os.path.dirname(block.path), "")
            w.watch_error = "directory does not exist; read every second until it does"
            log.error(
                "track_file_unwatched", track_file=block.name, path=block.path, error=w.watch_error
            )
            return w
        path, directory, entry = where
        w = _Watched(block, path, directory, entry)
        if self._ino is None:
            w.watch_error = "inotify unavailable; read every second"
            return w
        try:
            w.wd = self._ino.add_watch(directory, WATCH_MASK)
        except HostError as exc:
            w.watch_error = f"not watched ({exc}); read every second"
            log.error("track_file_unwatched", track_file=block.name, path=path, error=str(exc))
        return w

    def stop(self) -> None:
        """Stop watching and close the inotify fd."""
        if self._poll_task is not None:
            self._poll_task.cancel()
            self._poll_task = None
        if self._ino is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._ino.fd)
            self._ino.close()
            self._ino = None

    def describe(self) -> dict[str, dict[str, object]]:
        """Per tracker: the path, the value and the last problem, if any."""
        out: dict[str, dict[str, object]] = {}
        for w in self._watched:
            info: dict[str, object] = {"path": w.path, "value": w.value}
            if w.read_error is not None:
                info["read_error"] = w.read_error
            if w.watch_error is not None:
                info["watch_error"] = w.watch_error
            out[tracker_name(w.block.name)] = info
        return out

    # -- events ---------------------------------------------------------------

    def _on_readable(self) -> None:
        assert self._ino is not None
        try:
            events = self._ino.read_events()
        except HostError as exc:
            log.error("track_file_inotify", error=str(exc))
            return
        for ev in events:
            self._event(ev)

    def _event(self, ev: inotify.InotifyEvent) -> None:
        if ev.mask & inotify.IN_Q_OVERFLOW:
            # Events were lost: read every file again.
            log.warning("track_file_inotify", error="event queue overflow; re-reading")
            for w in self._watched:
                self._read(w)
            return
        if ev.mask & inotify.IN_IGNORED:
            # The directory went away (deleted, unmounted): so did the file.
            for w in self._watched:
                if w.wd == ev.wd:
                    w.wd = None
                    w.watch_error = "directory removed; read every second until it is back"
                    log.error("track_file_unwatched", track_file=w.block.name, error=w.watch_error)
                    w.read_error = "directory removed"
                    self._set(w, 0)
            return
        if ev.mask & inotify.IN_ISDIR:
            return
        for w in self._watched:
            if w.wd != ev.wd or w.entry != ev.name:
                continue
            if ev.mask & (inotify.IN_MOVED_FROM | inotify.IN_DELETE):
                w.read_error = "file removed"
                self._set(w, 0)  # keepalived: a file that disappeared reads as 0
            elif ev.mask & (inotify.IN_MOVED_TO | inotify.IN_CLOSE_WRITE):
                self._read(w)

    def _read(self, w: _Watched) -> None:
        value, w.read_error, data = read_value(w.path)
        w.polled = (data, w.read_error)
        if value is None:
            log.warning(
                "track_file_invalid",
                track_file=w.block.name,
                path=w.path,
                read=data.decode("ascii", "replace").strip(),
                detail="invalid number; ignored",
            )
            if w.reported:
                return
            value = 0  # nothing read before: keepalived's initial status is 0
        self._set(w, value)

    def _set(self, w: _Watched, value: int) -> None:
        if w.reported and w.value == value:
            return
        old, w.value, w.reported = w.value, value, True
        name = tracker_name(w.block.name)
        self.changed_at[name] = time.time()
        log.info("track_file", track_file=w.block.name, old=old, new=value)
        # "ok" is informative only: a scaled tracker's effect comes from the value.
        self._on_change(name, value == 0, value)


__all__ = [
    "PREFIX",
    "FileTracker",
    "file_source",
    "file_specs",
    "parse_value",
    "read_value",
    "strtol",
    "tracker_name",
]
