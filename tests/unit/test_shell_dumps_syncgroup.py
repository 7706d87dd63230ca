"""keepalived-format dumps of a vrrp_sync_group, held to keepalived 2.2.7's own.

tests/data/keepalived-2.2.7-dumps/syncgroup.{conf,data,json} (see its
README): two members, the group tracking a script reached through a symlink
(/bin/true), an interface, a file and a process, with notify scripts; a
member with a script of its own (/usr/bin/awk, a link to mawk) and one with
a notify script of its own. What is compared: the "VRRP Sync groups"
section, the members' "Sync group = G1" and own tracker lists, the
tracked objects' instance lists, the resolved script paths, and the JSON
(2.2.7 has no sync group field in it; an instance's notify scripts are).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from dataclasses import replace
from ipaddress import IPv4Address
from pathlib import Path
from types import SimpleNamespace

import pytest

from pyvrrpd.config import parse_text
from pyvrrpd.config.model import Config
from pyvrrpd.core.events import Started, TimerFired, TrackerChanged
from pyvrrpd.core.router import VirtualRouter
from pyvrrpd.core.state import State
from pyvrrpd.core.tracking import RiseFall
from pyvrrpd.shell.instance import router_config
from pyvrrpd.shell.ops.dumpformat import (
    GlobalView,
    InstanceView,
    NotifyView,
    ProcessView,
    ScriptView,
    Snapshot,
    SyncGroupView,
    TrackedScript,
    TrackFileView,
    VipView,
    render_data,
    render_json,
)
from pyvrrpd.shell.ops.dumps import keepalived_argv, snapshot_of
from pyvrrpd.shell.ops.notify import Notifier
from pyvrrpd.shell.scripttrack import prepare_script
from tests.unit import _exporter as exporter
from tests.unit.test_shell_dumps import FIX, sections, utc

__all__ = ["utc"]  # the autouse TZ=UTC fixture, for the epochs' local time

GOLDEN = (FIX / "syncgroup.data").read_text()
GOLDEN_JSON = (FIX / "syncgroup.json").read_text()
CONF = (FIX / "syncgroup.conf").read_text()
# The sections pyvrrpd writes as keepalived does (no socket pool: pyvrrpd's
# sockets are per interface; global definitions and interfaces are subsets).
SAME = (
    "VRRP Topology",
    "VRRP Sync groups",
    "VRRP Scripts",
    "VRRP Track files",
    "VRRP Track processes",
)


def topology(text: str) -> list[str]:
    """The VRRP Topology section without keepalived's socket fd lines."""
    return [line for line in sections(text)["VRRP Topology"] if not line.startswith("   fd_in ")]


def instance_epochs(text: str, name: str) -> tuple[float, float]:
    """(last transition, read timeout) of one instance in a data dump."""
    block = text.split(f" VRRP Instance = {name}\n", 1)[1]
    found = [
        float(re.search(rf"^   {label} = (\d+\.\d+) ", block, re.M).group(1))  # type: ignore[union-attr]
        for label in ("Last transition", "Read timeout")
    ]
    return found[0], found[1]


def golden_state() -> Snapshot:
    """The state keepalived dumped in syncgroup.data, by hand."""
    doc = json.loads(GOLDEN_JSON)
    insts = []
    for entry, vip, down_us, own in zip(
        doc,
        ("192.0.2.10", "192.0.2.20"),
        (3453125, 3648437),
        ((TrackedScript("chk_awk", 0),), ()),
        strict=True,
    ):
        d = entry["data"]
        last, timeout = instance_epochs(GOLDEN, d["iname"])
        insts.append(
            InstanceView(
                name=d["iname"],
                state="MASTER",
                vrid=d["vrid"],
                interface="eth0",
                priority=d["base_priority"],
                effective_priority=d["effective_priority"],
                advert_int=1.0,
                stats=entry["stats"],
                last_transition=d["last_transition"],
                read_timeout=timeout,
                master_down_usecs=down_us,
                src_ip="192.0.2.11",
                vips=(VipView(vip, "eth0", installed=True),),
                tracked_scripts=own,
                sync_group="G1",
                priority_changes=True,  # the group's notify_priority_changes
            )
        )
        assert abs(last - d["last_transition"]) < 1e-6
    insts[1] = replace(insts[1], notify=(NotifyView("backup", ("/usr/bin/true", "vi2")),))
    both = (TrackedScript("VI_1", 0), TrackedScript("VI_2", 0))
    scripts = (
        _script("chk", ("/usr/bin/true",), both),
        _script("chk_awk", ("/usr/bin/awk", "BEGIN{exit}"), both[:1]),
    )
    group = SyncGroupView(
        name="G1",
        state="MASTER",
        members=("VI_1", "VI_2"),
        tracking_weight=True,
        smtp_alert=True,
        priority_changes=True,
        tracked_interfaces=(TrackedScript("eth0", 0),),
        tracked_scripts=(TrackedScript("chk", 0),),
        tracked_files=(TrackedScript("tf_level", -5),),
        tracked_processes=(TrackedScript("proc_never", 0),),
        notify=tuple(
            NotifyView(hook, ("/usr/bin/true", *args))
            for hook, args in (
                ("backup", ("backup",)),
                ("master", ("master",)),
                ("fault", ("fault",)),
                ("stop", ("stop",)),
                ("generic", ()),
            )
        ),
    )
    tfile = TrackFileView(
        "tf_level",
        "/tmp/pvdk/level",
        2,
        -5,
        tracking=(TrackedScript("VI_1", -5), TrackedScript("VI_2", -5)),
    )
    proc = ProcessView(
        "proc_never", "pvdknever", quorum=0, quorum_max=0, have_quorum=True, tracking=both
    )
    return Snapshot(
        GlobalView(router_id="vm", script_security=True),
        tuple(insts),
        scripts,
        track_files=(tfile,),
        track_processes=(proc,),
        sync_groups=(group,),
    )


def _script(name: str, argv: tuple[str, ...], tracking: tuple[TrackedScript, ...]) -> ScriptView:
    return ScriptView(
        name=name,
        argv=argv,
        interval=1.0,
        timeout=0.0,
        weight=0,
        reverse=False,
        rise=1,
        fall=1,
        result=1,
        good=True,
        tracking=tracking,
    )


# ------------------------------------------------------- the layouts


def test_sync_group_sections_are_keepalived_line_for_line() -> None:
    theirs = sections(GOLDEN)
    ours_text = render_data(golden_state())
    ours = sections(ours_text)
    assert topology(ours_text) == topology(GOLDEN)
    for name in SAME[1:]:
        assert ours[name] == theirs[name], name
    # After the topology (and keepalived's socket pool), before the scripts.
    assert list(ours) == [n for n in theirs if n in ours]
    assert ours["VRRP Sync groups"][:2] == [
        " VRRP Sync Group = G1, MASTER",
        "   Num member fault 0, num member init 0",
    ]


def test_member_lines_name_the_group_and_only_their_own_trackers() -> None:
    text = render_data(golden_state())
    assert text.count("   VRRP Version = 2\n   Sync group = G1\n   State = MASTER\n") == 2
    vi2 = text.split(" VRRP Instance = VI_2\n", 1)[1].split("------<", 1)[0]
    assert "Tracked" not in vi2  # every tracker of VI_2 is the group's
    assert vi2.endswith(
        "   Using smtp notification = no\n   Notify deleted = Fault\n"
        "   Backup state transition script = '/usr/bin/true' 'vi2', uid:gid 0:0\n"
        "   Notify priority changes = true\n"
    )


def test_sync_group_json_is_keepalived_json() -> None:
    """No sync group field in 2.2.7's JSON; VI_2's own notify_backup is script_backup."""
    assert render_json(golden_state()) == GOLDEN_JSON
    assert "G1" not in GOLDEN_JSON


def test_exporter_reads_sync_group_dumps_alike() -> None:
    theirs = exporter.parse_vrrp_data(GOLDEN)
    ours = exporter.parse_vrrp_data(render_data(golden_state()))
    assert ours == theirs and set(ours) == {"VI_1", "VI_2"}
    assert exporter.parse_vrrp_scripts(render_data(golden_state())) == [
        exporter.VRRPScript("chk", "GOOD", "idle"),
        exporter.VRRPScript("chk_awk", "GOOD", "idle"),
    ]


def test_group_without_options_prints_only_what_keepalived_prints() -> None:
    """No tracking weight line, no priority-changes line, no trackers: 3 lines."""
    group = SyncGroupView("G2", "BACKUP", ("VI_1",), member_faults=1)
    snap = replace(golden_state(), sync_groups=(group,))
    assert sections(render_data(snap))["VRRP Sync groups"] == [
        " VRRP Sync Group = G2, BACKUP",
        "   Num member fault 1, num member init 0",
        "   VRRP member instances :",
        "     VI_1",
        "   Using smtp notification = no",
    ]


# ------------------------------------------------- keepalived's argv[0]


def test_keepalived_argv_resolves_links_and_keeps_a_multicall_name(tmp_path: Path) -> None:
    """check_script_secure(): the real path, but the configured file name when
    that name is the same file in the real directory; else the real name."""
    tmp_path = tmp_path.resolve()  # realpath() would undo a link above it
    real = tmp_path / "usr" / "bin"
    real.mkdir(parents=True)
    (real / "mawk").write_text("#!/bin/sh\n")
    (tmp_path / "bin").symlink_to("usr/bin")
    (real / "awk").symlink_to("mawk")  # awk is mawk here too
    (tmp_path / "pidof").symlink_to(real / "mawk")  # no "pidof" beside mawk
    assert keepalived_argv(("x", "a b"), str(tmp_path / "bin" / "mawk")) == (
        str(real / "mawk"),
        "a b",
    )
    assert keepalived_argv(("awk", "-f"), str(tmp_path / "bin" / "awk")) == (
        str(real / "awk"),
        "-f",
    )
    assert keepalived_argv(("pidof",), str(tmp_path / "pidof")) == (str(real / "mawk"),)
    assert keepalived_argv(("</tmp/x",), "") == ("</tmp/x",)


# ------------------------------------------- taken from a daemon's state


def merged_usr() -> bool:
    return (
        os.path.realpath("/bin/true") == "/usr/bin/true"
        and os.path.realpath("/usr/bin/awk") != "/usr/bin/awk"
    )


def fake_daemon(config: Config, notifier: Notifier) -> SimpleNamespace:
    """What snapshot_of reads: real core routers (MASTER), the real notifier,
    the scripts as prepare_script() resolves them, the group in MASTER."""
    link = SimpleNamespace(primary_ip=IPv4Address("192.0.2.11"), index=3, mac=bytes(6), up=True)
    loop_now = asyncio.get_running_loop().time()
    insts = []
    for cfg in config.instances:
        router = VirtualRouter(router_config(cfg, config))
        router.handle(Started(link.primary_ip, True), loop_now)
        for spec in router.config.trackers:
            router.handle(
                TrackerChanged(spec.name, True, 2 if "file:" in spec.name else 1), loop_now
            )
        deadline = router.next_deadline()
        assert deadline is not None
        router.handle(TimerFired(), deadline)
        insts.append(
            SimpleNamespace(name=cfg.name, cfg=cfg, router=router, iface=SimpleNamespace(link=link))
        )
    scripts = {}
    for script in config.scripts:
        prepared = prepare_script(script, config.global_defs)
        assert not isinstance(prepared, str), prepared
        counter = RiseFall(script.rise, script.fall, script.init_fail)
        counter.record(True)
        scripts[script.name] = SimpleNamespace(
            argv=prepared[0].argv, executable=prepared[0].executable, counter=counter
        )
    by_name = {i.name: i for i in insts}

    def status() -> dict[str, object]:
        out = []
        for inst in insts:
            d = inst.router.status().as_dict()
            d["vips_present"] = [str(v) for v in inst.cfg.virtual_ipaddress]
            d["trackers"] = [
                {"name": "file:tf_level", "status": "up", "value": 2, "path": "/tmp/pvdk/level"},
                {"name": "process:proc_never", "status": "up", "count": 0},
            ]
            out.append(d)
        return {"instances": out}

    group = SimpleNamespace(state=State.MASTER, own_faults=lambda router: ())
    return SimpleNamespace(
        config=config,
        instances=insts,
        by_name=by_name,
        scripts=scripts,
        disabled_scripts={},
        interfaces={},
        status=status,
        notifier=notifier,
        syncgroups=SimpleNamespace(groups={"G1": group}),
    )


@pytest.mark.skipif(not merged_usr(), reason="needs /bin -> /usr/bin and awk -> mawk, as Debian 12")
def test_snapshot_of_a_sync_group_daemon_reads_as_keepalived() -> None:
    """Group trackers merged into the members by the config reader are listed
    under the group, not the members; paths resolved as keepalived does."""
    config = parse_text(CONF)
    notifier = Notifier(
        config.global_defs,
        {i.name: i.notify for i in config.instances},
        {g.name: g.notify for g in config.sync_groups},
    )

    async def take() -> Snapshot:
        notifier.start()
        return snapshot_of(fake_daemon(config, notifier), started_at=0.0)  # type: ignore[arg-type]

    try:
        snap = asyncio.run(take())
    finally:
        notifier.close()
    ours, theirs = sections(render_data(snap)), sections(GOLDEN)
    ids = f"uid:gid {os.geteuid()}:{os.getegid()}"  # root (script_user root) when run as root
    for name in SAME[1:]:
        want = [line.replace("uid:gid 0:0", ids) for line in theirs[name]]
        if name == "VRRP Scripts":
            want = [line.replace("uid:gid = 0:0", ids.replace(" ", " = ")) for line in want]
        assert ours[name] == want, name
    drop = re.compile(r"   (Last transition|Read timeout|Master down timer|fd_in) ")
    want_topo = [
        line.replace("uid:gid 0:0", ids) for line in theirs["VRRP Topology"] if not drop.match(line)
    ]
    assert [line for line in ours["VRRP Topology"] if not drop.match(line)] == want_topo
    # The JSON too, but for the times and counters.
    doc, gold = json.loads(render_json(snap)), json.loads(GOLDEN_JSON)
    for mine, kas in zip(doc, gold, strict=True):
        del mine["data"]["last_transition"], kas["data"]["last_transition"]
        assert mine["data"] == kas["data"]
