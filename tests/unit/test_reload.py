"""Reload: the config diff (shell/ops/reload.py) and VirtualRouter.reconfigure (RFC 3768 timers)."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

import pytest

from pyvrrpd.config import load_config
from pyvrrpd.config.model import Config
from pyvrrpd.core.actions import PriorityChanged, SendAdvert, StateChanged
from pyvrrpd.core.events import Started, TimerFired
from pyvrrpd.core.router import RouterConfig, VirtualRouter
from pyvrrpd.core.state import State
from pyvrrpd.core.tracking import TrackerSpec
from pyvrrpd.shell.ops.reload import plan

ME = IPv4Address("192.0.2.11")
BASE = """
vrrp_script chk {{ script "/bin/true" interval 1 {script_extra} }}
vrrp_instance VI_1 {{
    interface {iface}
    virtual_router_id {vrid}
    priority {prio}
    advert_int 1
    virtual_ipaddress {{
{vips}
    }}
    track_script {{ chk }}
}}
{extra}
"""


def conf(
    tmp_path: Path,
    *,
    vips: tuple[str, ...] = ("192.0.2.10/24",),
    prio: int = 100,
    vrid: int = 51,
    iface: str = "lo",
    extra: str = "",
    script_extra: str = "",
    name: str = "a.conf",
) -> Config:
    text = BASE.format(
        vips="\n".join(f"        {v}" for v in vips),
        prio=prio,
        vrid=vrid,
        iface=iface,
        extra=extra,
        script_extra=script_extra,
    )
    path = tmp_path / name
    path.write_text(text)
    return load_config(str(path))


def test_unchanged_config_is_a_noop_even_when_lines_move(tmp_path: Path) -> None:
    old = conf(tmp_path)
    path = tmp_path / "b.conf"
    path.write_text("# a comment moves every line\n\n" + (tmp_path / "a.conf").read_text())
    p = plan(old, load_config(str(path)))
    assert p.noop and p.unchanged == ("VI_1",) and p.scripts_kept == ("chk",)
    assert not p.restart_needed


def test_vips_added_and_removed_are_the_only_ones_touched(tmp_path: Path) -> None:
    old = conf(tmp_path, vips=("192.0.2.10/24", "192.0.2.20/24"))
    new = conf(tmp_path, vips=("192.0.2.10/24", "192.0.2.30/24"), prio=150, name="b.conf")
    p = plan(old, new)
    (ch,) = p.changed
    assert [str(v.address) for v in ch.added_vips] == ["192.0.2.30"]
    assert [str(v.address) for v in ch.removed_vips] == ["192.0.2.20"]
    assert set(ch.changed) == {"virtual_ipaddress", "priority"}
    assert not p.removed and not p.added


def test_changed_vrid_or_interface_is_remove_plus_add(tmp_path: Path) -> None:
    old = conf(tmp_path)
    p = plan(old, conf(tmp_path, vrid=52, name="b.conf"))
    assert p.replaced == ("VI_1",) and p.removed == ("VI_1",) and p.added == ("VI_1",)


def test_removed_and_new_instances(tmp_path: Path) -> None:
    second = (
        "vrrp_instance VI_2 {\n interface lo\n virtual_router_id 52\n"
        " virtual_ipaddress {\n 192.0.2.40/24\n }\n}\n"
    )
    old = conf(tmp_path, extra=second)
    p = plan(old, conf(tmp_path, name="b.conf"))
    assert p.removed == ("VI_2",) and not p.added
    assert [i.name for i in p.config.instances] == ["VI_1"]
    p = plan(conf(tmp_path, name="c.conf"), old)
    assert p.added == ("VI_2",) and not p.removed


def test_changed_script_starts_fresh_and_global_change_needs_restart(tmp_path: Path) -> None:
    old = conf(tmp_path)
    new = conf(
        tmp_path,
        script_extra="fall 3",
        extra="global_defs {\n router_id other\n fifo_write_vrrp_states_on_reload\n}\n",
        name="b.conf",
    )
    p = plan(old, new)
    assert p.scripts_kept == ()
    assert p.restart_needed == ("global_defs router_id changed: restart needed",)
    # The live global is taken, the other one stays as running.
    assert p.config.global_defs.fifo_write_vrrp_states_on_reload
    assert p.config.global_defs.router_id == old.global_defs.router_id


def test_hard_settings_keep_the_instance_as_it_was(tmp_path: Path) -> None:
    old = conf(tmp_path)
    new_path = tmp_path / "b.conf"
    new_path.write_text(
        (tmp_path / "a.conf")
        .read_text()
        .replace("advert_int 1", "advert_int 1\n track_interface {\n lo\n }")
    )
    p = plan(old, load_config(str(new_path)))
    assert p.unchanged == () and p.changed == ()
    assert p.config.instances == old.instances
    assert "track_interface" in p.restart_needed[0]


# ------------------------------------------------------- router.reconfigure


def rcfg(**kw: object) -> RouterConfig:
    base: dict[str, object] = {"name": "VI_1", "vrid": 51, "vips": (IPv4Address("192.0.2.10"),)}
    base.update(kw)
    return RouterConfig(**base)  # type: ignore[arg-type]


def master(config: RouterConfig) -> VirtualRouter:
    vr = VirtualRouter(config)
    vr.handle(Started(ME), 0.0)
    now = vr.next_deadline()
    assert now is not None
    vr.handle(TimerFired(), now)
    assert vr.state is State.MASTER
    return vr


def test_master_keeps_state_and_advert_phase() -> None:
    vr = master(rcfg())
    due = vr.next_deadline()
    actions = vr.reconfigure(rcfg(priority=50, vips=(IPv4Address("192.0.2.30"),)), 4.0)
    # A lower priority: still MASTER (RFC 3768 6.4.3: until a higher advert arrives).
    assert vr.state is State.MASTER and vr.effective_priority == 50
    assert actions == [PriorityChanged(100, 50)]
    assert vr.next_deadline() == due  # no advert missed, none early
    out = vr.handle(TimerFired(), due or 0.0)
    assert SendAdvert(50) in out


def test_shorter_advert_int_pulls_the_master_advert_in() -> None:
    vr = master(rcfg(advert_int=3.0))
    vr.reconfigure(rcfg(advert_int=1.0), 12.0)
    assert vr.next_deadline() is not None and vr.next_deadline() <= 13.0  # type: ignore[operator]


def test_backup_master_down_interval_recomputed() -> None:
    vr = VirtualRouter(rcfg())
    vr.handle(Started(ME), 0.0)
    assert vr.next_deadline() == 3 + (256 - 100) / 256
    vr.reconfigure(rcfg(priority=200), 1.0)
    # Skew_Time shrinks with the higher priority; the running timer shifts with it.
    assert vr.next_deadline() == 3 + (256 - 200) / 256
    vr.reconfigure(rcfg(priority=200, advert_int=2.0), 2.0)
    assert vr.next_deadline() == 2.0 + 3 * 2 + (256 - 200) / 256


def test_tracker_state_kept_and_removed_failing_tracker_ends_fault() -> None:
    t = TrackerSpec("chk", 0, False)
    vr = VirtualRouter(rcfg(trackers=(t,)))
    vr.tracker_status["chk"] = False
    vr.handle(Started(ME), 0.0)
    assert vr.state is State.FAULT
    kept = vr.reconfigure(rcfg(trackers=(t,), priority=110), 1.0)
    assert vr.state is State.FAULT and vr.tracker_status == {"chk": False}
    assert not any(isinstance(a, StateChanged) for a in kept)
    actions = vr.reconfigure(rcfg(), 2.0)
    assert vr.status().state is State.BACKUP
    assert any(isinstance(a, StateChanged) for a in actions)


# ------------------------------------------------- control socket and CLI


def test_control_socket_reload_waits_for_the_verdict(tmp_path: Path) -> None:
    import asyncio

    from pyvrrpd.shell.ops.control import ControlServer, query

    path = str(tmp_path / "c.sock")

    async def verdict() -> dict[str, object]:
        await asyncio.sleep(0.2)  # the daemon applies the config meanwhile
        return {"ok": False, "errors": ["a.conf:3:5: error: bad"]}

    async def main() -> dict[str, object]:
        srv = ControlServer(path, lambda: {}, reload=verdict)
        await srv.start()
        try:
            return await asyncio.to_thread(query, path, "reload")
        finally:
            await srv.close()

    assert asyncio.run(main()) == {"ok": False, "errors": ["a.conf:3:5: error: bad"]}


def test_reload_cli_without_daemon_fails_with_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from pyvrrpd.cli.main import main

    sock = str(tmp_path / "none.sock")
    assert main(["reload", "--control-socket", sock, "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and "does not exist" in out["errors"][0]
    assert main(["reload", "--control-socket", sock]) == 1
    assert "reload rejected" in capsys.readouterr().err


def test_vips_of_an_accept_off_instance_need_a_restart(tmp_path: Path) -> None:
    old = conf(tmp_path, extra="")
    text = (tmp_path / "a.conf").read_text().replace("advert_int 1", "advert_int 1\n no_accept")
    (tmp_path / "b.conf").write_text(text)
    off = load_config(str(tmp_path / "b.conf"))
    p = plan(old, off)  # accept mode switched off: the drop rules would be new
    assert p.config.instances == old.instances and p.restart_needed
    (tmp_path / "c.conf").write_text(text.replace("192.0.2.10/24", "192.0.2.10/24\n 192.0.2.20/24"))
    p = plan(off, load_config(str(tmp_path / "c.conf")))
    assert p.config.instances == off.instances and "accept mode off" in p.restart_needed[0]


def test_reload_refuses_a_vrid_that_collides_once_interfaces_are_resolved(
    tmp_path: Path,
) -> None:
    """One instance names the interface, the other finds it from unicast_src_ip:
    same VRID on one socket, so the reload is refused and the old config kept."""
    import socket
    from types import SimpleNamespace

    from pyvrrpd.shell.ops.reloader import read_new_config

    names = [n for _, n in socket.if_nameindex() if n != "lo"]
    if not names:
        pytest.skip("no non-loopback interface on this host to resolve onto")
    ifname = names[0]
    path = tmp_path / "k.conf"
    path.write_text(
        f"""
vrrp_instance A {{
  interface {ifname}
  virtual_router_id 51
  virtual_ipaddress {{
    192.0.2.10
  }}
}}
vrrp_instance B {{
  virtual_router_id 51
  unicast_src_ip 192.0.2.11
  unicast_peer {{
    192.0.2.12
  }}
  virtual_ipaddress {{
    192.0.2.20
  }}
}}
"""
    )
    monitor = SimpleNamespace(has_address=lambda n, a: n == ifname and str(a) == "192.0.2.11")
    d = SimpleNamespace(config=load_config(path), config_id=None, _monitor=monitor)
    new, errors = read_new_config(d)  # type: ignore[arg-type]
    assert new is None
    assert any("virtual_router_id 51" in e and "A and B" in e for e in errors), errors


PROC = "vrrp_track_process chk_haproxy {{\n process haproxy\n weight 0\n quorum {quorum}\n}}\n"


def test_a_changed_tracker_block_rebuilds_its_kind_only(tmp_path: Path) -> None:
    # keepalived re-reads every tracker on reload (keepalived.md 4.4): the
    # process source is built again from the new block; file and http are
    # untouched, and nothing needs a restart.
    ref = "advert_int 1\n track_process {\n chk_haproxy\n }"
    a = tmp_path / "a.conf"
    old = conf(tmp_path, extra=PROC.format(quorum=1))
    a.write_text(a.read_text().replace("advert_int 1", ref))
    old = load_config(str(a))
    b = tmp_path / "b.conf"
    b.write_text(a.read_text().replace("quorum 1", "quorum 2"))
    p = plan(old, load_config(str(b)))
    assert not p.restart_needed
    assert p.sources_rebuilt == ("vrrp_track_process",)
    assert p.config.track_processes[0].quorum == 2
    assert p.changed == () and p.unchanged == ("VI_1",)  # the reference did not change
    # The same file again (lines moved): nothing is rebuilt.
    b.write_text("# moved\n" + a.read_text())
    assert plan(old, load_config(str(b))).sources_rebuilt == ()


def test_tracker_blocks_moved_around_the_file_rebuild_nothing(tmp_path: Path) -> None:
    # A rebuild drops a process watcher's pending fork/terminate delays: two
    # blocks swapped in the file change nothing and must not cause one.
    two = PROC.format(quorum=1) + PROC.format(quorum=1).replace("chk_haproxy", "chk_b")
    old = conf(tmp_path, extra=two)
    swapped = PROC.format(quorum=1).replace("chk_haproxy", "chk_b") + PROC.format(quorum=1)
    new = conf(tmp_path, extra=swapped, name="b.conf")
    assert [b.name for b in new.track_processes] == ["chk_b", "chk_haproxy"]
    assert plan(old, new).sources_rebuilt == ()


def test_track_process_references_apply_on_reload(tmp_path: Path) -> None:
    old = conf(tmp_path, extra=PROC.format(quorum=1))
    new_path = tmp_path / "b.conf"
    new_path.write_text(
        (tmp_path / "a.conf")
        .read_text()
        .replace("advert_int 1", "advert_int 1\n track_process {\n chk_haproxy\n }")
    )
    p = plan(old, load_config(str(new_path)))
    assert not p.restart_needed
    assert [c.name for c in p.changed] == ["VI_1"] and "track_process" in p.changed[0].changed
    # The block was unused before: its source is new.
    assert p.sources_rebuilt == ("vrrp_track_process",)
    added = new_path.read_text() + (
        "vrrp_instance VI_2 {\n interface lo\n virtual_router_id 52\n"
        " virtual_ipaddress {\n 192.0.2.20/24\n }\n track_process {\n chk_haproxy\n }\n}\n"
    )
    new_path.write_text(added)
    p = plan(old, load_config(str(new_path)))
    assert not p.restart_needed and "VI_2" in p.added


def test_a_held_instance_keeps_a_tracker_block_the_new_file_dropped(tmp_path: Path) -> None:
    # VI_1 is held at its running definition (its track_interface changed);
    # the new file renamed the process block it references: the old block
    # stays in the running config, so VI_1 keeps tracking it.
    ref = "advert_int 1\n track_process {\n chk_haproxy\n }"
    a = tmp_path / "a.conf"
    conf(tmp_path, extra=PROC.format(quorum=1))
    a.write_text(a.read_text().replace("advert_int 1", ref))
    old = load_config(str(a))
    b = tmp_path / "b.conf"
    b.write_text(
        a.read_text()
        .replace("chk_haproxy", "chk_other")
        .replace("advert_int 1", "advert_int 1\n track_interface {\n lo\n }")
    )
    p = plan(old, load_config(str(b)))
    assert any("track_interface" in line for line in p.restart_needed)
    assert {b.name for b in p.config.track_processes} == {"chk_other", "chk_haproxy"}
    assert p.config.instances[0].track_process[0].name == "chk_haproxy"
    # The block list changed (chk_other is new): the source is rebuilt, and
    # watches the blocks instances use (chk_haproxy).
    assert p.sources_rebuilt == ("vrrp_track_process",)
