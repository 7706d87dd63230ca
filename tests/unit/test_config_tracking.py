"""track_interface, dont_track_primary and keepalived's advert/timer keywords
(config/tracking.py), the startup delay arithmetic and the interface tracker."""

from __future__ import annotations

import asyncio
import errno
from dataclasses import dataclass
from pathlib import Path

import pytest

from pyvrrpd.config import ConfigError, parse_text
from pyvrrpd.config.model import Config, GlobalDefs, TrackInterface, VrrpInstance
from pyvrrpd.config.tracking import startup_delay
from pyvrrpd.core.tracking import TrackerSpec
from pyvrrpd.io.errors import HostError
from pyvrrpd.io.uptime import boot_uptime
from pyvrrpd.shell.ops.dumpformat import InstanceView, TrackedScript, _instance_lines, _json_data
from pyvrrpd.trackers.base import tracker_kind
from pyvrrpd.trackers.interface import InterfaceTracker, interface_specs

HEAD = "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n"
VIPS = "  virtual_ipaddress {\n    192.0.2.10\n  }\n"


def parse(body: str, globals_: str = "") -> Config:
    before = f"global_defs {{\n{globals_}}}\n" if globals_ else ""
    return parse_text(before + HEAD + VIPS + body + "\n}\n", "k.conf")


def inst(body: str, globals_: str = "") -> VrrpInstance:
    return parse(body, globals_).instances[0]


def errors(body: str, globals_: str = "") -> list[str]:
    with pytest.raises(ConfigError) as ei:
        parse(body, globals_)
    return [f"{d.loc.line}:{d.loc.col}: {d.message}" for d in ei.value.errors]


def warnings(cfg: Config) -> list[str]:
    return [f"{w.loc.line}:{w.loc.col}: {w.message}" for w in cfg.warnings]


def test_track_interface_entries() -> None:
    vi = inst("  track_interface {\n    eth1\n    eth2 weight -20\n    eth3 weight 10 reverse\n  }")
    assert vi.track_interface == (
        TrackInterface("eth1"),
        TrackInterface("eth2", -20),
        TrackInterface("eth3", 10, True),
    )
    assert interface_specs(vi) == (
        TrackerSpec("interface:eth1", 0, False),
        TrackerSpec("interface:eth2", -20, False),
        TrackerSpec("interface:eth3", 10, True),
    )
    assert [tracker_kind(s.name) for s in interface_specs(vi)] == ["interface"] * 3
    assert tracker_kind("chk_haproxy") == "script"


def test_track_interface_weight_coerced_and_duplicates_dropped() -> None:
    cfg = parse("  track_interface {\n    eth1 weight 254\n    eth1\n    eth2 weight -254 rev\n  }")
    assert cfg.instances[0].track_interface == (
        TrackInterface("eth1", 253),
        TrackInterface("eth2", -253),
    )
    assert warnings(cfg) == [
        "8:17: track_interface weight 254 is out of range; using 253",
        "9:5: duplicate track_interface eth1; ignored",
        "10:17: track_interface weight -254 is out of range; using -253",
        "10:22: expected 'reverse' after the weight, got 'rev'; ignored",
    ]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        # keepalived drops such an entry, silently untracking the interface.
        ("eth1 wieght -20", "8:10: track_interface eth1: expected 'weight W', got 'wieght'"),
        ("eth1 weight", "8:10: track_interface eth1: weight needs a value -253..253"),
        ("eth1 weight 300", "8:17: track_interface weight must be an integer -254..254, got '300'"),
        ("eth1 weight x", "8:17: track_interface weight must be an integer -254..254, got 'x'"),
    ],
)
def test_track_interface_bad_entries_are_errors(entry: str, message: str) -> None:
    assert errors(f"  track_interface {{\n    {entry}\n  }}") == [message]


def test_defaults() -> None:
    vi = inst("")
    assert (vi.track_interface, vi.dont_track_primary) == ((), False)
    assert (vi.lower_prio_no_advert, vi.higher_prio_send_advert, vi.down_timer_adverts) == (
        False,
        False,
        3,
    )
    gd = parse("").global_defs
    assert (gd.vrrp_startup_delay, gd.vrrp_delay_after_boot) == (0.0, 0.0)


def test_instance_keywords() -> None:
    vi = inst(
        "  dont_track_primary\n  lower_prio_no_advert\n  higher_prio_send_advert true\n"
        "  down_timer_adverts 7"
    )
    assert vi.dont_track_primary
    assert (vi.lower_prio_no_advert, vi.higher_prio_send_advert, vi.down_timer_adverts) == (
        True,
        True,
        7,
    )


def test_global_defaults_and_instance_override() -> None:
    g = (
        "  vrrp_lower_prio_no_advert\n  vrrp_higher_prio_send_advert yes\n"
        "  vrrp_down_timer_adverts 5\n"
    )
    vi = inst("", g)
    assert (vi.lower_prio_no_advert, vi.higher_prio_send_advert, vi.down_timer_adverts) == (
        True,
        True,
        5,
    )
    vi = inst(
        "  lower_prio_no_advert false\n  higher_prio_send_advert off\n  down_timer_adverts 2", g
    )
    assert (vi.lower_prio_no_advert, vi.higher_prio_send_advert, vi.down_timer_adverts) == (
        False,
        False,
        2,
    )


@pytest.mark.parametrize(
    ("body", "globals_", "message"),
    [
        ("  down_timer_adverts 0", "", "down_timer_adverts must be an integer 1..100, got '0'"),
        ("  down_timer_adverts 101", "", "down_timer_adverts must be an integer 1..100, got '101'"),
        ("", "  vrrp_down_timer_adverts x\n", "vrrp_down_timer_adverts must be an integer 1..100"),
        (
            "  lower_prio_no_advert maybe",
            "",
            "lower_prio_no_advert must be on|off|true|false|yes|no",
        ),
        (
            "",
            "  vrrp_startup_delay 0\n",
            "vrrp_startup_delay must be a number 0.001..4294 (seconds)",
        ),
        ("", "  vrrp_delay_after_boot -1\n", "vrrp_delay_after_boot must be a number 0.001..4294"),
    ],
)
def test_bad_values_are_errors(body: str, globals_: str, message: str) -> None:
    (got,) = errors(body, globals_)
    assert message in got


def test_startup_delays() -> None:
    gd = parse("", "  vrrp_startup_delay 5\n  vrrp_startup_delay 2.5\n").global_defs
    assert gd.vrrp_startup_delay == 5.0  # keepalived keeps the largest
    cfg = parse("", "  vrrp_startup_delay 2.5\n  vrrp_delay_after_boot 300\n")
    assert warnings(cfg) == [
        "3:3: vrrp_delay_after_boot is new in keepalived 2.4: keepalived 2.2.7 does not"
        " know it (a 2.2.7 peer starts without the delay)"
    ]
    gd = cfg.global_defs
    assert (gd.vrrp_startup_delay, gd.vrrp_delay_after_boot) == (2.5, 300.0)
    # Boot delay: what is left of it at start, if longer than the plain delay.
    assert startup_delay(gd, uptime=100.0) == 200.0
    assert startup_delay(gd, uptime=299.0) == 2.5
    assert startup_delay(gd, uptime=1000.0) == 2.5
    assert startup_delay(gd, uptime=None) == 2.5  # /proc/uptime unreadable: ignored
    assert startup_delay(GlobalDefs(), uptime=5.0) == 0.0


def test_boot_uptime(tmp_path: Path) -> None:
    f = tmp_path / "uptime"
    f.write_text("12345.67 54321.00\n")
    assert boot_uptime(str(f)) == 12345.67
    assert boot_uptime(str(tmp_path / "missing")) is None
    f.write_text("garbage\n")
    assert boot_uptime(str(f)) is None


# ------------------------------------------------------------ the tracker


@dataclass
class FakeLink:
    up: bool


class FakeNetlink:
    def __init__(self, links: dict[str, bool]) -> None:
        self.links = links

    async def link(self, name: str) -> FakeLink:
        if name not in self.links:
            raise HostError(f"interface {name!r} not found", errno_code=errno.ENODEV)
        return FakeLink(self.links[name])


def tracker_for(
    entries: str, globals_: str = ""
) -> tuple[InterfaceTracker, list[tuple[str, object]], Config]:
    cfg = parse(f"  track_interface {{\n{entries}\n  }}", globals_)
    seen: list[tuple[str, object]] = []
    return InterfaceTracker(cfg.instances, lambda n, ok: seen.append((n, ok))), seen, cfg


def test_tracker_reads_links_at_start_then_follows_events() -> None:
    tr, seen, _cfg = tracker_for("    eth1\n    eth2 weight -10")
    nl = FakeNetlink({"eth1": True, "eth2": False})
    asyncio.run(tr.start(nl))  # type: ignore[arg-type]
    assert seen == [("interface:eth1", True), ("interface:eth2", False)]
    tr.observe("eth1", True)  # no change: nothing
    tr.observe("eth0", False)  # not tracked: nothing
    tr.observe("eth1", False)
    tr.observe("eth2", True)
    assert seen[2:] == [("interface:eth1", False), ("interface:eth2", True)]
    # After a monitor resync a vanished link is down.
    del nl.links["eth2"]
    asyncio.run(tr.sync(nl))  # type: ignore[arg-type]
    assert seen[4:] == [("interface:eth1", True), ("interface:eth2", False)]


def test_tracked_interface_missing_at_start_is_down_until_it_appears() -> None:
    # keepalived 2.2.7 refuses to start here unless dynamic_interfaces is set;
    # pyvrrpd always starts and tracks the missing link as down (README).
    tr, seen, _ = tracker_for("    eth1\n    eth9")
    asyncio.run(tr.start(FakeNetlink({"eth1": True})))  # type: ignore[arg-type]
    assert sorted(seen) == [("interface:eth1", True), ("interface:eth9", False)]
    tr.observe("eth9", True)  # created later
    assert seen[2:] == [("interface:eth9", True)]


# ------------------------------------------------------------- the dumps


def test_dumps_show_tracked_interfaces_and_keywords() -> None:
    view = InstanceView(
        name="VI_1",
        state="BACKUP",
        vrid=51,
        interface="eth0",
        priority=100,
        effective_priority=80,
        advert_int=1.0,
        stats={},
        tracked_interfaces=(TrackedScript("eth1", 0, False), TrackedScript("eth2", -20, True)),
        dont_track_primary=True,
        higher_prio_send_advert=True,
        down_timer_adverts=5,
    )
    lines = _instance_lines(view)
    # keepalived 2.2.7 dump_vrrp() / dump_track_if() wording.
    assert "   VRRP interface tracking disabled" in lines
    assert "   Down timer adverts = 5" in lines
    assert "   Send advert after receive higher priority advert = true" in lines
    i = lines.index("   Tracked interfaces :")
    assert lines[i + 1 : i + 3] == ["     eth1 weight 0", "     eth2 weight -20 reverse"]
    data = _json_data(view, ())
    assert data["track_ifp"] == ["eth1", "eth2"]
    assert (data["dont_track_primary"], data["higher_prio_send_advert"]) == (1, 1)


def test_tracked_interface_unreadable_at_start_is_a_startup_error() -> None:
    class Broken(FakeNetlink):
        async def link(self, name: str) -> FakeLink:
            raise HostError("cannot query interface 'eth1': timed out", errno_code=errno.ETIMEDOUT)

    tr, seen, _cfg = tracker_for("    eth1")
    with pytest.raises(HostError, match="timed out"):
        asyncio.run(tr.start(Broken({})))  # type: ignore[arg-type]
    # Later (after a monitor resync) a failed query is skipped, not fatal.
    asyncio.run(tr.sync(Broken({})))  # type: ignore[arg-type]
    assert seen == []
