"""keepalived-format dumps (USR1/USR2/SIGRTMIN+2): layout, names, safe writes.

The reference is what keepalived 2.2.7 itself wrote for the same state
(tests/data/keepalived-2.2.7-dumps, see its README), and the reader is a port
of keepalived-exporter's parser (tests/unit/_exporter.py): what operators and
the exporter scrape must read the same from pyvrrpd as from keepalived.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import time
from collections.abc import Iterator
from dataclasses import replace
from ipaddress import IPv4Address
from pathlib import Path
from types import SimpleNamespace

import pytest

from pyvrrpd.config import parse_text
from pyvrrpd.config.model import Config
from pyvrrpd.core.events import Started, TimerFired, TrackerChanged
from pyvrrpd.core.router import VirtualRouter
from pyvrrpd.shell.daemon import Daemon
from pyvrrpd.shell.instance import router_config
from pyvrrpd.shell.ops.dumpformat import (
    GlobalView,
    InstanceView,
    InterfaceView,
    ProcessView,
    ScriptView,
    Snapshot,
    TrackedScript,
    TrackFileView,
    VipView,
    render_data,
    render_json,
    render_stats,
)
from pyvrrpd.shell.ops.dumps import DumpPaths, data_file_name, snapshot_of, tmp_dir, write_atomic
from tests.unit import _exporter as exporter

FIX = Path(__file__).parents[1] / "data" / "keepalived-2.2.7-dumps"


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """keepalived prints local time; pin it so the dumps compare."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def sections(text: str) -> dict[str, list[str]]:
    """``------< NAME >------`` sections of a data dump, as lines."""
    out: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        m = re.fullmatch(r"------< (.+) >------", line)
        if m:
            current = m.group(1)
            out[current] = []
        else:
            out.setdefault(current, []).append(line)
    return out


def epoch_of(text: str, label: str) -> float:
    m = re.search(rf"^   {label} = (\d+\.\d+) ", text, re.M)
    assert m, label
    return float(m.group(1))


STATS_OF_FIXTURE = {"advert_rcvd": 0, "advert_sent": 4, "become_master": 1}


def fixture_state(which: str, stats: dict[str, int] | None = None) -> Snapshot:
    """The state keepalived dumped in tests/data/keepalived-2.2.7-dumps."""
    text = (FIX / f"{which}.data").read_text()
    master = which == "master"
    vips = (
        VipView("192.0.2.10", "eth0", installed=master),
        VipView("192.0.2.20/24", "eth0", label="eth0:1", installed=master),
    )
    inst = InstanceView(
        name="VI_1",
        state="MASTER" if master else "BACKUP",
        vrid=51,
        interface="eth0",
        priority=150 if master else 100,
        effective_priority=150 if master else 100,
        advert_int=1.0,
        stats=stats or STATS_OF_FIXTURE,
        master_ip=None if master else "192.0.2.11",
        master_priority=0 if master else 150,
        last_transition=epoch_of(text, "Last transition"),
        read_timeout=epoch_of(text, "Read timeout"),
        master_down_usecs=3414062 if master else 3609375,
        src_ip="192.0.2.11" if master else "192.0.2.12",
        auth_type="PASS",
        auth_pass=b"1111\0\0\0\0",
        vips=vips,
        excluded_vips=(VipView("198.51.100.5", "eth0", installed=master),),
        tracked_scripts=(TrackedScript("chk", 0),),
    )
    script = ScriptView(
        name="chk",
        argv=("/usr/bin/true",),
        interval=1.0,
        timeout=0.0,
        weight=0,
        reverse=False,
        rise=1,
        fall=1,
        result=1,
        good=True,
        tracking=(TrackedScript("VI_1", 0),),
    )
    iface = InterfaceView("eth0", 2, inst.src_ip, "76:63:b4:3f:37:f0", True, ("VI_1",))
    return Snapshot(GlobalView(router_id="vm", script_security=True), (inst,), (script,), (iface,))


# ------------------------------------------------- the exporter port itself


def test_exporter_port_reads_keepalived_own_dumps() -> None:
    """The port agrees with what the exporter's own tests expect of 2.2.7 files."""
    data = (FIX / "master.data").read_text()
    [(vi, st)] = exporter.scrape_text(data, (FIX / "master.stats").read_text())
    assert (vi.iname, vi.state, vi.wantstate, vi.intf, vi.garp_delay, vi.vrid) == (
        "VI_1",
        2,
        2,
        "eth0",
        5,
        51,
    )
    assert vi.vips == [
        "192.0.2.10 dev eth0 scope global set",
        "192.0.2.20/24 dev eth0 scope global label eth0:1 set",
    ]
    assert vi.excluded_vips == ["198.51.100.5 dev eth0 scope global set"]
    assert st["advert_sent"] == 4 and st["become_master"] == 1 and len(st) == 14
    assert exporter.parse_vrrp_scripts(data) == [exporter.VRRPScript("chk", "GOOD", "idle")]
    assert exporter.parse_vrrp_data((FIX / "backup.data").read_text())["VI_1"].state == 1
    assert exporter.parse_json((FIX / "master.json").read_text())[0]["data"]["state"] == 2


def test_exporter_port_fails_where_the_exporter_fails() -> None:
    with pytest.raises(exporter.ExporterError):
        exporter.parse_vrrp_data(" VRRP Instance = X\n   State = RUNNING\n")
    with pytest.raises(exporter.ExporterError):
        exporter.parse_json('[{"data": {"garp_delay": 5.0}, "stats": {}}]')


# ------------------------------------------------------ same as keepalived


@pytest.mark.parametrize("which", ["master", "backup"])
def test_data_dump_is_keepalived_line_for_line(which: str) -> None:
    """The VRRP Topology and Scripts sections match 2.2.7's, line for line.

    keepalived's socket fd line has no counterpart (pyvrrpd's sockets are
    per interface, not per instance); everything else is identical.
    """
    theirs = sections((FIX / f"{which}.data").read_text())
    ours = sections(render_data(fixture_state(which)))
    assert ours["VRRP Topology"] == [
        line for line in theirs["VRRP Topology"] if not line.startswith("   fd_in ")
    ]
    if which == "master":
        assert ours["VRRP Scripts"] == theirs["VRRP Scripts"]
    # Global definitions: a subset, each line as keepalived writes it.
    assert set(ours["Global definitions"]) - set(theirs["Global definitions"]) == set()


def test_stats_dump_is_keepalived_text() -> None:
    theirs = (FIX / "master.stats").read_text()
    counts = exporter.parse_stats(theirs)["VI_1"]
    assert render_stats(fixture_state("master", counts)) == theirs


def test_json_dump_is_keepalived_json() -> None:
    theirs = (FIX / "master.json").read_text()
    doc = json.loads(theirs)
    snap = fixture_state("master", doc[0]["stats"])
    inst = snap.instances[0]
    snap = Snapshot(
        snap.globals,
        (
            InstanceView(
                **{
                    f: getattr(inst, f)
                    for f in InstanceView.__dataclass_fields__
                    if f != "last_transition"
                },
                last_transition=doc[0]["data"]["last_transition"],
            ),
        ),
        snap.scripts,
    )
    ours = render_json(snap)
    assert json.loads(ours) == doc
    # Same key order too, and byte for byte.
    assert list(json.loads(ours)[0]["data"]) == list(doc[0]["data"])
    assert ours == theirs


# ----------------------------------------- track_process / track_file (issue 8)


def tracker_state() -> Snapshot:
    """The state keepalived dumped in trackers.data (trackers.conf, see the README)."""
    text = (FIX / "trackers.data").read_text()
    base = fixture_state("master")
    inst = replace(
        base.instances[0],
        effective_priority=125,  # 150 - 20 (proc_down) + 5 (proc_never) - 2 x 5 (tf_level)
        last_transition=epoch_of(text, "Last transition"),
        read_timeout=epoch_of(text, "Read timeout"),
        master_down_usecs=3511718,
        vips=(VipView("192.0.2.10", "eth0", installed=True),),
        excluded_vips=(),
        tracked_files=(TrackedScript("tf_level", -5),),
        tracked_processes=(
            TrackedScript("proc_down", -20),
            TrackedScript("proc_args", 5, True),
            TrackedScript("proc_never", 5),
        ),
    )
    vi = (TrackedScript("VI_1", w, r) for w, r in ((-20, False), (5, True), (5, False)))
    processes = (
        ProcessView("proc_down", "pvdkabsent", weight=-20, tracking=(next(vi),)),
        ProcessView(
            "proc_args",
            "/usr/sbin/pvdkabsent",
            params=("-f", "/etc/pvdk.cfg"),
            param_match="partial",
            quorum=2,
            quorum_max=3,
            weight=10,
            reverse=True,
            terminate_delay=2.5,
            fork_delay=1.0,
            full_command=True,
            tracking=(next(vi),),
        ),
        ProcessView(
            "proc_never",
            "pvdknever",
            quorum=0,
            quorum_max=0,
            have_quorum=True,
            weight=5,
            tracking=(next(vi),),
        ),
        ProcessView("proc_unused", "pvdkunused"),  # listed, though no instance uses it
    )
    tfile = TrackFileView(
        "tf_level", "/tmp/pvdk/level", 2, -5, tracking=(TrackedScript("VI_1", -5),)
    )
    return Snapshot(base.globals, (inst,), base.scripts, base.interfaces, (tfile,), processes)


def test_tracker_sections_are_keepalived_line_for_line() -> None:
    theirs = sections((FIX / "trackers.data").read_text())
    ours = sections(render_data(tracker_state()))
    assert ours["VRRP Topology"] == [
        line for line in theirs["VRRP Topology"] if not line.startswith("   fd_in ")
    ]
    for name in ("VRRP Scripts", "VRRP Track files", "VRRP Track processes"):
        assert ours[name] == theirs[name], name
    # In keepalived's order: scripts, files, processes, then the interfaces.
    order = [n for n in theirs if n in ours]
    assert list(ours) == order


def test_tracker_json_is_keepalived_json() -> None:
    """2.2.7's JSON has no track_process/track_file fields: same bytes as without."""
    theirs = (FIX / "trackers.json").read_text()
    doc = json.loads(theirs)
    snap = tracker_state()
    inst = replace(
        snap.instances[0], last_transition=doc[0]["data"]["last_transition"], stats=doc[0]["stats"]
    )
    snap = replace(snap, instances=(inst,))
    assert render_json(snap) == theirs


def test_exporter_reads_dumps_with_trackers() -> None:
    """keepalived-exporter reads keepalived's file and ours alike."""
    theirs = exporter.parse_vrrp_data((FIX / "trackers.data").read_text())["VI_1"]
    ours = exporter.parse_vrrp_data(render_data(tracker_state()))["VI_1"]
    assert ours == theirs
    assert exporter.parse_vrrp_scripts(render_data(tracker_state())) == [
        exporter.VRRPScript("chk", "GOOD", "idle")
    ]


# ------------------------------------------------- what the exporter reads


def _states_snapshot() -> Snapshot:
    base = fixture_state("master")
    insts = []
    for i, state in enumerate(("MASTER", "BACKUP", "FAULT", "INIT")):
        v = base.instances[0]
        insts.append(
            InstanceView(
                name=f"VI_{state}",
                state=state,
                vrid=51 + i,
                interface="eth0",
                priority=100,
                effective_priority=100,
                advert_int=1.0,
                stats={"advert_rcvd": i, "pri_zero_sent": 7},
                wantstate="BACKUP" if state == "INIT" else None,
                master_ip="192.0.2.12" if state == "BACKUP" else None,
                master_priority=120,
                vips=v.vips if state == "MASTER" else (VipView("192.0.2.30", "eth0"),),
                garp_delay=3.0,
            )
        )
    return Snapshot(base.globals, tuple(insts), base.scripts, base.interfaces)


def test_exporter_reads_every_state_from_our_files() -> None:
    snap = _states_snapshot()
    rows = exporter.scrape_text(render_data(snap), render_stats(snap))
    got = {d.iname: (d.state, d.wantstate, d.intf, d.garp_delay, d.vrid) for d, _ in rows}
    assert got == {
        "VI_MASTER": (2, 2, "eth0", 3, 51),
        "VI_BACKUP": (1, 1, "eth0", 3, 52),
        "VI_FAULT": (3, 3, "eth0", 3, 53),
        "VI_INIT": (0, 1, "eth0", 3, 54),
    }
    stats = {d.iname: s for d, s in rows}
    assert stats["VI_FAULT"]["advert_rcvd"] == 2 and stats["VI_FAULT"]["pri_zero_sent"] == 7
    vips = {d.iname: [exporter.parse_vip(v) for v in d.vips] for d, _ in rows}
    assert vips["VI_MASTER"] == [("192.0.2.10", "eth0"), ("192.0.2.20/24", "eth0")]
    assert vips["VI_BACKUP"] == [("192.0.2.30", "eth0")]
    doc = exporter.parse_json(render_json(snap))
    assert [(e["data"]["iname"], e["data"]["state"]) for e in doc] == [
        ("VI_MASTER", 2),
        ("VI_BACKUP", 1),
        ("VI_FAULT", 3),
        ("VI_INIT", 0),
    ]


def test_lines_operators_scrape() -> None:
    """``grep 'State = '`` and friends: the exact lines people rely on."""
    text = render_data(_states_snapshot())
    assert "   State = MASTER\n" in text and "   State = FAULT\n" in text
    assert " VRRP Instance = VI_BACKUP\n   VRRP Version = 2\n   State = BACKUP\n" in text
    assert "   Master router = 192.0.2.12\n   Master priority = 120\n" in text
    assert "     192.0.2.10 dev eth0 scope global set\n" in text
    assert "     192.0.2.30 dev eth0 scope global\n" in text  # not installed: no "set"


# ------------------------------------------------ taken from a daemon's state

CONF = (FIX / "lb1.conf").read_text()


def fake_daemon(config: Config) -> SimpleNamespace:
    """What snapshot_of reads, around a real core router that became MASTER."""
    inst_cfg = config.instances[0]
    router = VirtualRouter(router_config(inst_cfg, config))
    link = SimpleNamespace(
        primary_ip=IPv4Address("192.0.2.11"),
        index=2,
        mac=bytes.fromhex("02aabbccddee"),
        up=True,
    )
    loop_now = asyncio.get_running_loop().time()
    router.handle(Started(link.primary_ip, True), loop_now)
    router.handle(TrackerChanged("chk", True), loop_now)
    deadline = router.next_deadline()
    assert deadline is not None
    router.handle(TimerFired(), deadline)
    inst = SimpleNamespace(
        name=inst_cfg.name, cfg=inst_cfg, router=router, iface=SimpleNamespace(link=link)
    )

    def status() -> dict[str, object]:
        d = router.status().as_dict()
        d["vips_present"] = ["192.0.2.10/32"]  # one of the three is in the kernel
        d["last_transition"] = 1_700_000_000.5
        return {"instances": [d]}

    return SimpleNamespace(
        config=config,
        instances=[inst],
        scripts={},
        disabled_scripts={},
        interfaces={"eth0": SimpleNamespace(link=link)},
        status=status,
    )


def test_snapshot_from_a_running_router_reads_as_keepalived() -> None:
    async def take() -> Snapshot:
        return snapshot_of(fake_daemon(parse_text(CONF)), started_at=0.0)  # type: ignore[arg-type]

    snap = asyncio.run(take())
    text = render_data(snap)
    [(d, s)] = exporter.scrape_text(text, render_stats(snap))
    assert (d.iname, d.state, d.vrid, d.intf) == ("VI_1", 2, 51, "eth0")
    assert d.vips == [
        "192.0.2.10 dev eth0 scope global set",
        "192.0.2.20/24 dev eth0 scope global label eth0:1",
    ]
    assert s["become_master"] == 1
    assert "   Last transition = 1700000000.500000 (Tue Nov 14 22:13:20.500000 2023)\n" in text
    assert "   Password = 1111\n" in text
    assert "   Master down timer = 3414062 usecs\n" in text
    assert exporter.parse_json(render_json(snap))[0]["data"]["vipset"] is True


TRACKERS_CONF = (FIX / "trackers.conf").read_text()
HTTP = "vrrp_track_http hap {\n  url http://127.0.0.1:8081/healthz\n  weight -7\n}\n"


def test_snapshot_with_trackers_reads_the_daemon_status(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counts, quorum, file values and pending delays come from the daemon's
    status() tracker entries; a block no instance uses is counted on the spot;
    vrrp_track_http (pyvrrpd-only) is in neither dump."""
    conf = HTTP + TRACKERS_CONF.replace(
        "  track_file {", "  track_http {\n    hap\n  }\n  track_file {"
    )
    config = parse_text(conf)
    monkeypatch.setattr("pyvrrpd.shell.ops.dumps.count_now", lambda block: 4)

    async def take() -> Snapshot:
        daemon = fake_daemon(config)
        plain = daemon.status

        def status() -> dict[str, object]:
            out = plain()
            out["instances"][0]["trackers"] = [  # type: ignore[index]
                {"name": "chk", "kind": "script", "status": "up"},
                {"name": "process:proc_down", "status": "up", "count": 2, "pids": [7, 8]},
                {
                    "name": "process:proc_args",
                    "status": "down",
                    "count": 2,
                    "delay_pending": "fork",
                },
                {"name": "process:proc_never", "status": "up", "count": 0},
                {"name": "file:tf_level", "status": "up", "value": 3, "path": "/run/level"},
                {"name": "http:hap", "kind": "http", "status": "down", "value": None},
            ]
            return out

        daemon.status = status
        return snapshot_of(daemon, started_at=0.0)  # type: ignore[arg-type]

    snap = asyncio.run(take())
    text = render_data(snap)
    got = sections(text)
    topo = got["VRRP Topology"]
    at = topo.index("   Tracked files :")
    assert topo[at : at + 6] == [
        "   Tracked files :",
        "     tf_level, weight -5",
        "   Tracked processes :",
        "     proc_down, weight -20",
        "     proc_args, weight 5 reverse",
        "     proc_never, weight 5",
    ]
    assert got["VRRP Track files"] == [
        " Track file = tf_level",
        "   File = /run/level",  # the path the tracker resolved
        "   Status = 3",
        "   Weight = -5",
        "   Tracking instances :",
        "     VI_1, weight -5",
    ]
    procs = "\n".join(got["VRRP Track processes"])
    down = "proc_down\n   Process = pvdkabsent\n   Min processes = 1\n   Current processes = 2\n"
    assert down + "   Have quorum = true\n" in procs
    assert "   Current processes = 2\n   Have quorum = false\n" in procs  # proc_args, held
    assert "   Fork delay timer running\n   Terminate delay timer not running\n" in procs
    # proc_unused: counted now (4 processes), quorum 1 met, no instance.
    assert procs.endswith(
        " VRRP Track process = proc_unused\n   Process = pvdkunused\n   Min processes = 1\n"
        "   Current processes = 4\n   Have quorum = true\n   Weight = 0\n"
        "   Terminate delay = 0.000000s\n   Fork delay = 0.000000s\n"
        "   Fork delay timer not running\n   Terminate delay timer not running\n"
        "   Full command = false"
    )
    assert "hap" not in text and "http" not in text
    js = render_json(snap)
    assert "hap" not in js and "track_file" not in js and "track_process" not in js


def test_clear_stats_subtracts_what_was_written() -> None:
    daemon = Daemon(Config())
    router = SimpleNamespace(stats={"advert_rcvd": 9, "advert_sent": 3})
    daemon.instances = [SimpleNamespace(name="VI_1", router=router)]  # type: ignore[list-item]
    daemon.clear_stats({"VI_1": {"advert_rcvd": 7, "advert_sent": 3}})
    assert router.stats == {"advert_rcvd": 2, "advert_sent": 0}  # 2 came after the dump
    daemon.clear_stats()
    assert router.stats == {"advert_rcvd": 0, "advert_sent": 0}


# ------------------------------------------------------------------ names


@pytest.mark.parametrize(
    ("use", "instance", "namespace", "name"),
    [
        # Measured with keepalived 2.2.7 (instance = top-level `instance foo`).
        (False, None, None, "keepalived.data"),
        (False, "foo", "ns1", "keepalived.data"),
        (True, None, None, "keepalived.data"),
        (True, "foo", None, "keepalived.foo.data"),
        (True, None, "ns1", "keepalived.ns1.data"),
        (True, "foo", "ns1", "keepalived.ns1_foo.data"),
    ],
)
def test_data_file_names(use: bool, instance: str | None, namespace: str | None, name: str) -> None:
    got = data_file_name(
        "keepalived.data", use_instance=use, instance=instance, namespace=namespace
    )
    assert got == name


def test_dump_paths_follow_tmpdir() -> None:
    assert tmp_dir({}) == "/tmp"
    assert tmp_dir({"TMPDIR": "relative/dir"}) == "/tmp"  # keepalived wants an absolute path
    assert tmp_dir({"TMPDIR": "/var/tmp/x"}) == "/var/tmp/x"
    paths = DumpPaths.for_daemon(
        use_instance=True, instance="foo", namespace="ns1", environ={"TMPDIR": "/w"}
    )
    assert paths == DumpPaths(
        data="/w/keepalived.ns1_foo.data",
        parent_data="/w/keepalived_parent.ns1_foo.data",
        stats="/w/keepalived.stats",  # 2.2.7 never adds the instance to these two
        json="/w/keepalived.json",
    )


# ------------------------------------------------------------- safe writes


def test_write_atomic_mode_and_no_leftovers(tmp_path: Path) -> None:
    target = tmp_path / "keepalived.data"
    old_umask = os.umask(0)  # the umask must not widen (or narrow) the mode
    try:
        write_atomic(str(target), b"one\n")
        write_atomic(str(target), b"two\n")
    finally:
        os.umask(old_umask)
    assert target.read_bytes() == b"two\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keepalived.data"]


def test_write_atomic_never_follows_a_planted_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "passwd"
    victim.write_text("root:x:0:0\n")
    target = tmp_path / "keepalived.stats"
    target.symlink_to(victim)
    write_atomic(str(target), b"VRRP Instance: VI_1\n")
    assert victim.read_text() == "root:x:0:0\n"
    assert not target.is_symlink() and target.read_bytes() == b"VRRP Instance: VI_1\n"


def test_write_atomic_failure_raises_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        write_atomic(str(tmp_path / "missing" / "keepalived.json"), b"[]")
    (tmp_path / "keepalived.json").mkdir()  # rename over a directory fails
    with pytest.raises(OSError):
        write_atomic(str(tmp_path / "keepalived.json"), b"[]")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keepalived.json"]
