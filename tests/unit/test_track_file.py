"""The track_file tracker (trackers/file.py) and inotify (io/inotify.py), on real
files in tmp_path: writes, editors' rename into place, deletion and
re-creation are events (no polling); values read as keepalived's strtol."""

from __future__ import annotations

import asyncio
import os
import struct
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from pyvrrpd.config import parse_text
from pyvrrpd.config.model import TrackFile
from pyvrrpd.io import inotify
from pyvrrpd.trackers.file import FileTracker, file_source, parse_value, read_value, strtol

Report = tuple[str, bool | None, int | None]


# ----------------------------------------------------------------- decoding


def _event(wd: int, mask: int, cookie: int, name: bytes, pad: int) -> bytes:
    body = name + b"\0" * pad
    return struct.pack("=iIII", wd, mask, cookie, len(body)) + body


def test_parse_events_several_records_with_padding() -> None:
    buf = (
        _event(1, inotify.IN_CLOSE_WRITE, 0, b"tf", 14)
        + _event(1, inotify.IN_MOVED_TO, 77, b"state.value", 5)
        + _event(-1, inotify.IN_Q_OVERFLOW, 0, b"", 0)
    )
    assert inotify.parse_events(buf) == [
        inotify.InotifyEvent(1, inotify.IN_CLOSE_WRITE, 0, "tf"),
        inotify.InotifyEvent(1, inotify.IN_MOVED_TO, 77, "state.value"),
        inotify.InotifyEvent(-1, inotify.IN_Q_OVERFLOW, 0, ""),
    ]


def test_parse_events_drops_a_truncated_record() -> None:
    buf = _event(3, inotify.IN_DELETE, 0, b"x", 3) + _event(3, inotify.IN_DELETE, 0, b"y", 3)[:-2]
    assert inotify.parse_events(buf) == [inotify.InotifyEvent(3, inotify.IN_DELETE, 0, "x")]


# ------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b"5\n", 5),
        (b"  \t-3\n", -3),
        (b"+7", 7),
        (b"0x10", 16),
        (b"0X1f junk", 31),
        (b"010", 8),  # base 0: a leading 0 is octal
        (b"08", 0),  # octal 0, stops at 8
        (b"0x", 0),  # "0", stops at x
        (b"12abc", 12),
        (b"abc", 0),  # no digits: 0 (no error, as glibc)
        (b"-", 0),
        (b"\n", 0),
        (b"2147483648", 2**31),  # keepalived accepts INT32_MAX + 1
        (b"-2147483648", -(2**31)),
    ],
)
def test_values_as_keepalived_strtol(data: bytes, value: int) -> None:
    assert parse_value(data) == value


@pytest.mark.parametrize("data", [b"2147483649", b"-2147483649", b"99999999999999999999"])
def test_out_of_range_numbers_are_invalid(data: bytes) -> None:
    assert parse_value(data) is None


def test_only_the_first_127_bytes_count() -> None:
    assert parse_value(b" " * 126 + b"5") == 5
    assert parse_value(b" " * 127 + b"5") == 0
    assert strtol(b"1" * 30) == int("1" * 30)  # strtol itself does not range-check


def test_read_value_missing_and_empty(tmp_path: Path) -> None:
    value, error, _ = read_value(str(tmp_path / "nope"))
    assert (value, error) == (0, "No such file or directory")
    (tmp_path / "empty").write_bytes(b"")
    assert read_value(str(tmp_path / "empty"))[:2] == (0, None)


# ------------------------------------------------------------------ tracker


def block(path: Path, **kw: object) -> TrackFile:
    return TrackFile("tf", str(path), **kw)  # type: ignore[arg-type]


async def wait_for(pred: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.002)


def write(path: Path, text: str) -> None:
    with open(path, "w") as fh:  # one IN_CLOSE_WRITE at close
        fh.write(text)


class Harness:
    def __init__(self, *files: TrackFile, init: tuple[TrackFile, ...] = ()) -> None:
        self.reports: list[Report] = []
        self.tracker = FileTracker(files, self.on_change, init=init)

    def on_change(self, name: str, ok: bool | None, value: int | None) -> None:
        self.reports.append((name, ok, value))

    def values(self) -> list[int | None]:
        return [r[2] for r in self.reports]

    def run(self, scenario: Callable[[], Awaitable[None]] | None = None) -> None:
        """Start the tracker, run `scenario` (if any), stop the tracker."""

        async def go() -> None:
            await self.tracker.start()
            try:
                if scenario is not None:
                    await scenario()
            finally:
                self.tracker.stop()

        asyncio.run(go())


def test_write_rename_delete_recreate(tmp_path: Path) -> None:
    path = tmp_path / "tf"
    write(path, "5\n")
    h = Harness(block(path))

    async def scenario() -> None:
        assert h.reports == [("file:tf", False, 5)]  # reported at start
        write(path, "7\n")
        await wait_for(lambda: h.values()[-1] == 7)
        # An editor's save: write a temp file, rename it over the tracked one.
        tmp = tmp_path / ".tf.swp"
        write(tmp, "-2\n")  # another name in the directory: not ours
        os.rename(tmp, path)
        await wait_for(lambda: h.values()[-1] == -2)
        assert h.values() == [5, 7, -2]
        path.unlink()
        await wait_for(lambda: h.values() == [5, 7, -2, 0])
        assert h.tracker.describe()["file:tf"]["read_error"] == "file removed"
        write(path, "0x10")
        await wait_for(lambda: h.values() == [5, 7, -2, 0, 16])
        write(path, "16\n")  # same value: nothing reported
        write(path, "0\n")
        await wait_for(lambda: h.values() == [5, 7, -2, 0, 16, 0])
        assert h.reports[-1] == ("file:tf", True, 0)
        # Moved away: gone, 0 (already 0: nothing); moved back: read again.
        write(path, "3")
        await wait_for(lambda: h.values()[-1] == 3)
        os.rename(path, tmp_path / "elsewhere")
        await wait_for(lambda: h.values()[-1] == 0)
        os.rename(tmp_path / "elsewhere", path)
        await wait_for(lambda: h.values()[-1] == 3)

    h.run(scenario)


def test_a_write_is_seen_when_the_file_is_closed(tmp_path: Path) -> None:
    path = tmp_path / "tf"
    write(path, "1")
    h = Harness(block(path))

    async def scenario() -> None:
        with open(path, "w") as fh:
            fh.write("9")
            fh.flush()
            # Still open: no IN_CLOSE_WRITE yet, and nothing polls (keepalived
            # does not see it either).
            await asyncio.sleep(0.2)
            assert h.values() == [1]
        await wait_for(lambda: h.values() == [1, 9])

    h.run(scenario)


def test_invalid_number_keeps_the_old_value(tmp_path: Path) -> None:
    path = tmp_path / "tf"
    write(path, "4")
    h = Harness(block(path))

    async def scenario() -> None:
        write(path, "99999999999")
        write(path, "6")  # the marker: events are handled in order
        await wait_for(lambda: h.values()[-1] == 6)
        assert h.values() == [4, 6]

    h.run(scenario)


def test_invalid_number_at_start_is_zero(tmp_path: Path) -> None:
    path = tmp_path / "tf"
    write(path, "-99999999999")
    h = Harness(block(path))
    h.run()
    assert h.reports == [("file:tf", True, 0)]


def test_missing_file_is_zero_then_created(tmp_path: Path) -> None:
    path = tmp_path / "tf"
    h = Harness(block(path))

    async def scenario() -> None:
        info = h.tracker.describe()["file:tf"]
        assert info == {
            "path": str(path),
            "value": 0,
            "read_error": "No such file or directory",
        }
        write(path, "12\n")
        await wait_for(lambda: h.values() == [0, 12])
        assert h.tracker.describe()["file:tf"] == {"path": str(path), "value": 12}

    h.run(scenario)


def test_symlink_is_followed_at_start(tmp_path: Path) -> None:
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    target = real_dir / "value"
    write(target, "2")
    link = tmp_path / "link"
    link.symlink_to(target)
    h = Harness(block(link))

    async def scenario() -> None:
        assert h.tracker.describe()["file:tf"]["path"] == str(target)
        write(target, "3")
        await wait_for(lambda: h.values() == [2, 3])

    h.run(scenario)


def test_missing_directory_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "nodir" / "tf"
    h = Harness(block(path))
    h.run()
    assert h.reports == [("file:tf", True, 0)]
    assert (
        h.tracker.describe()["file:tf"]["watch_error"]
        == "directory does not exist; read every second until it does"
    )


def test_directory_removed(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    path = d / "tf"
    write(path, "5")
    h = Harness(block(path))

    async def scenario() -> None:
        path.unlink()
        d.rmdir()
        await wait_for(lambda: "watch_error" in h.tracker.describe()["file:tf"])

    h.run(scenario)
    assert h.values() == [5, 0]


def test_two_blocks_one_directory(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write(a, "1")
    write(b, "2")
    h = Harness(TrackFile("a", str(a)), TrackFile("b", str(b)))

    async def scenario() -> None:
        write(b, "20")
        await wait_for(lambda: len(h.reports) == 3)
        write(a, "10")
        await wait_for(lambda: len(h.reports) == 4)

    h.run(scenario)
    assert h.reports == [
        ("file:a", False, 1),
        ("file:b", False, 2),
        ("file:b", False, 20),
        ("file:a", False, 10),
    ]


def test_queue_overflow_rereads_every_file(tmp_path: Path) -> None:
    path = tmp_path / "tf"
    write(path, "1")
    h = Harness(block(path))

    async def scenario() -> None:
        ino = h.tracker._ino
        assert ino is not None
        asyncio.get_running_loop().remove_reader(ino.fd)
        write(path, "2")
        await asyncio.sleep(0.05)
        ino.read_events()  # lost, as when the kernel's queue overflows
        assert h.values() == [1]
        h.tracker._event(inotify.InotifyEvent(-1, inotify.IN_Q_OVERFLOW, 0, ""))
        assert h.values() == [1, 2]

    h.run(scenario)


def test_stop_closes_the_fd(tmp_path: Path) -> None:
    h = Harness(block(tmp_path / "tf"))

    async def scenario() -> int:
        await h.tracker.start()
        ino = h.tracker._ino
        assert ino is not None
        fd = ino.fd
        h.tracker.stop()
        return fd

    fd = asyncio.run(scenario())
    with pytest.raises(OSError):
        os.fstat(fd)


# ---------------------------------------------------------------- init_file


def test_init_file_creates_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "tf"
    h = Harness(block(path), init=(block(path, init_file=True, init_value=-5),))
    h.run()
    assert path.read_text() == "-5\n"
    assert h.reports == [("file:tf", False, -5)]


def test_init_file_leaves_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "tf"
    write(path, "9")
    h = Harness(block(path), init=(block(path, init_file=True),))
    h.run()
    assert path.read_text() == "9"


def test_init_file_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "tf"
    write(path, "9")
    h = Harness(block(path), init=(block(path, init_file=True, overwrite=True),))
    h.run()
    assert path.read_text() == "0\n"
    assert h.reports == [("file:tf", True, 0)]


def test_init_file_overwrite_leaves_an_existing_file_on_reload(tmp_path: Path) -> None:
    # keepalived skips the overwrite on reload: a value an operator wrote
    # (say 1, to drain this box) survives `systemctl reload`; a missing file
    # is still created.
    path, gone = tmp_path / "tf", tmp_path / "gone"
    write(path, "1")
    init = (
        block(path, init_file=True, overwrite=True),
        block(gone, init_file=True, overwrite=True),
    )
    tracker = FileTracker((block(path),), lambda *a: None, init=init, reloading=True)

    async def go() -> None:
        await tracker.start()
        tracker.stop()

    asyncio.run(go())
    assert path.read_text() == "1"
    assert gone.read_text() == "0\n"


def test_init_file_overwrite_refuses_a_non_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "tf"
    path.mkdir()
    tracker = FileTracker((), lambda *a: None, init=(block(path, init_file=True, overwrite=True),))
    asyncio.run(tracker.start())
    assert path.is_dir()


def test_source_from_config(tmp_path: Path) -> None:
    used, unused = tmp_path / "used", tmp_path / "unused"
    text = (
        f"track_file used {{\n  file {used}\n}}\n"
        f"track_file unused {{\n  file {unused}\n  init_file 3\n}}\n"
        "vrrp_instance V {\n  interface eth0\n  virtual_router_id 1\n"
        "  virtual_ipaddress { 192.0.2.10 }\n  track_file { used weight -5 }\n}\n"
    )
    cfg = parse_text(text)
    reports: list[Report] = []
    source = file_source(cfg, lambda *a: reports.append(a))
    assert source is not None
    asyncio.run(source.start())
    source.stop()
    # keepalived writes init_file for every block; only used ones are watched.
    assert unused.read_text() == "3\n"
    assert reports == [("file:used", True, 0)]
    assert list(source.describe()) == ["file:used"]
    # Nothing used and nothing to initialise: no source at all.
    bare = text.replace("track_file { used weight -5 }", "").replace("init_file 3", "")
    assert file_source(parse_text(bare), print) is None
