"""vrrp_track_process blocks and track_process references (config/trackprocess.py):
keepalived's syntax, defaults, ranges, errors at line:col, sync-group merging."""

from __future__ import annotations

from pyvrrpd.config.model import TrackProcessRef, VrrpTrackProcess
from pyvrrpd.core.tracking import TrackerSpec
from pyvrrpd.trackers.process import process_specs
from tests.unit._confdiag import errors, parse, warnings

INST = (
    "vrrp_instance {name} {{\n  interface eth0\n  virtual_router_id {vrid}\n"
    "  priority {prio}\n  virtual_ipaddress {{\n    192.0.2.{vrid}\n  }}\n{body}}}\n"
)


def inst(body: str = "", name: str = "VI_1", vrid: int = 51, prio: int = 100) -> str:
    return INST.format(name=name, vrid=vrid, prio=prio, body=body)


def block(body: str, name: str = "chk_haproxy") -> str:
    return f"vrrp_track_process {name} {{\n{body}}}\n"


def test_defaults_are_keepalived_s() -> None:
    cfg = parse(block("  process haproxy\n") + inst("  track_process {\n    chk_haproxy\n  }\n"))
    assert cfg.track_processes == (
        VrrpTrackProcess("chk_haproxy", "haproxy", loc=cfg.track_processes[0].loc),
    )
    p = cfg.track_processes[0]
    assert (p.weight, p.weight_reverse, p.quorum, p.quorum_max) == (0, False, 1, None)
    assert (p.fork_delay, p.terminate_delay, p.full_command, p.param_match) == (0, 0, False, None)
    assert (p.loc.line, p.loc.col) == (1, 20)  # type: ignore[union-attr]
    vi = cfg.instances[0]
    assert vi.track_process == (TrackProcessRef("chk_haproxy"),)
    assert process_specs(vi, cfg) == (TrackerSpec("process:chk_haproxy", 0, False),)
    assert cfg.warnings == ()


def test_every_keyword() -> None:
    text = block(
        "  process /usr/sbin/haproxy -Ws -f\n  param_match partial\n  weight -20 reverse\n"
        "  quorum 2\n  quorum_max 4\n  fork_delay 0.5\n  terminate_delay 1.25\n"
    )
    p = parse(text).track_processes[0]
    assert p.process == "/usr/sbin/haproxy"
    assert p.params == ("-Ws", "-f")
    assert (p.param_match, p.full_command) == ("partial", True)
    assert (p.weight, p.weight_reverse) == (-20, True)
    assert (p.quorum, p.quorum_max) == (2, 4)
    assert (p.fork_delay, p.terminate_delay) == (0.5, 1.25)


def test_params_imply_exact_match_of_the_command_line() -> None:
    p = parse(block("  process haproxy -W\n")).track_processes[0]
    assert (p.params, p.param_match, p.full_command) == (("-W",), "exact", True)
    # Bare param_match: the command must have no parameters at all.
    p = parse(block("  process haproxy\n  param_match\n")).track_processes[0]
    assert (p.params, p.param_match, p.full_command) == ((), "exact", True)
    # A quoted name with a space is one word (man5).
    p = parse(block('  process "/tmp/a b" p1 "p 2"\n')).track_processes[0]
    assert (p.process, p.params) == ("/tmp/a b", ("p1", "p 2"))


def test_full_command_and_delay() -> None:
    p = parse(block("  process /usr/sbin/haproxy\n  full_command\n  delay 2\n")).track_processes[0]
    assert (p.full_command, p.param_match, p.fork_delay, p.terminate_delay) == (True, None, 2, 2)


def test_quorum_max_zero_means_must_not_run() -> None:
    p = parse(block("  process telnetd\n  quorum_max 0\n")).track_processes[0]
    assert (p.quorum, p.quorum_max) == (0, 0)


def test_bad_values_are_errors_at_their_token() -> None:
    text = block(
        "  process haproxy\n  weight 255\n  quorum 0\n  quorum_max 70000\n"
        "  delay 0\n  fork_delay 3601\n  param_match whole\n  weight 5 sideways\n"
    )
    assert errors(text) == [
        "3:10: Weight (255) for vrrp_track_process chk_haproxy must be between [-254..254]"
        " inclusive",
        "4:10: Quorum (0) for vrrp_track_process chk_haproxy must be between [1..65535] inclusive",
        "5:14: quorum_max (70000) for vrrp_track_process chk_haproxy must be between"
        " [0..65535] inclusive",
        "6:9: delay (0) for vrrp_track_process chk_haproxy must be between [0.000001..3600]"
        " inclusive",
        "7:14: fork_delay (3601) for vrrp_track_process chk_haproxy must be between"
        " [0.000001..3600] inclusive",
        "8:15: Invalid param_match type whole (initial|partial)",
        "9:12: vrrp_track_process chk_haproxy unknown weight option sideways",
    ]


def test_quorum_consistency_and_repeats() -> None:
    assert errors(block("  process a\n  quorum_max 2\n  quorum 3\n")) == [
        "4:10: Quorum is greater than quorum_max"
    ]
    assert errors(block("  process a\n  quorum 3\n  quorum_max 2\n")) == [
        "4:14: quorum_max is less than quorum"
    ]
    assert errors(block("  process a\n  process b\n")) == [
        "3:11: Process already set for track process chk_haproxy - ignoring b"
    ]
    assert errors(block("  weight 2\n")) == [
        "1:20: track process 'chk_haproxy' process name not specified"
    ]
    assert errors(block("  process a\n") + block("  process b\n")) == [
        "4:20: duplicate vrrp_track_process 'chk_haproxy' (first defined at k.conf:1:20)"
    ]


def test_long_comm_name_and_unknown_keyword_warn() -> None:
    cfg = parse(block("  process a_very_long_process_name\n  quorom 2\n"))
    assert warnings(cfg) == [
        "1:20: vrrp_track_process chk_haproxy: process name 'a_very_long_process_name' is longer"
        " than 15 characters; matched against /proc/PID/comm, which keeps only the first 15"
        " (keepalived never matches it; consider full_command)",
        "3:3: unknown keyword 'quorom' in vrrp_track_process (did you mean 'quorum'?)",
    ]


def test_instance_entries_weights_and_unknown_names() -> None:
    body = (
        "  track_process {\n    chk_haproxy weight -30\n    chk_web weight 10 noreverse\n"
        "    nosuch\n    chk_haproxy\n  }\n"
    )
    cfg = parse(
        block("  process haproxy\n  weight 5 reverse\n")
        + block("  process nginx\n  weight 4 reverse\n", "chk_web")
        + inst(body)
    )
    vi = cfg.instances[0]
    assert vi.track_process == (
        TrackProcessRef("chk_haproxy", -30, None),
        TrackProcessRef("chk_web", 10, False),
    )
    assert process_specs(vi, cfg) == (
        TrackerSpec("process:chk_haproxy", -30, True),
        TrackerSpec("process:chk_web", 10, False),
    )
    assert warnings(cfg) == [
        "19:5: (VI_1) track process nosuch not found (no vrrp_track_process of that name); ignored",
        "20:5: duplicate track_process chk_haproxy; ignored",
    ]


def test_instance_entry_errors() -> None:
    text = block("  process a\n") + inst(
        "  track_process {\n    chk_haproxy weight\n    chk_haproxy weight 300\n"
        "    chk_haproxy prio 3\n  }\n"
    )
    assert errors(text) == [
        "12:17: track_process chk_haproxy: weight needs a value -254..254",
        "13:24: weight for track process chk_haproxy must be in [-254..254] inclusive, got '300'",
        "14:17: track_process chk_haproxy: expected 'weight W', got 'prio'",
    ]


def test_block_may_follow_the_instance() -> None:
    cfg = parse(inst("  track_process {\n    chk_haproxy\n  }\n") + block("  process haproxy\n"))
    assert cfg.instances[0].track_process == (TrackProcessRef("chk_haproxy"),)


SYNC = "vrrp_sync_group G {{\n  group {{\n    VI_1\n    VI_2\n  }}\n{body}}}\n"


def test_sync_group_entries_reach_every_member() -> None:
    cfg = parse(
        block("  process haproxy\n")
        + inst()
        + inst(name="VI_2", vrid=52)
        + SYNC.format(body="  track_process {\n    chk_haproxy\n  }\n")
    )
    assert [i.track_process for i in cfg.instances] == [(TrackProcessRef("chk_haproxy"),)] * 2
    assert cfg.sync_groups[0].track_process == (TrackProcessRef("chk_haproxy"),)
    assert cfg.warnings == ()


def test_sync_group_drops_members_weighted_entries() -> None:
    cfg = parse(
        block("  process haproxy\n")
        + block("  process nginx\n", "chk_web")
        + inst("  track_process {\n    chk_web weight -10\n    chk_haproxy\n  }\n")
        + inst(name="VI_2", vrid=52)
        + SYNC.format(body="  track_process {\n    chk_haproxy\n  }\n")
    )
    assert cfg.instances[0].track_process == (TrackProcessRef("chk_haproxy"),)
    msgs = [w.message for w in cfg.warnings]
    assert "(VI_1) ignoring tracked process chk_web with weights due to SYNC group" in msgs
    assert any("configured on VRRP instance and sync group" in m for m in msgs)
    # sync_group_tracking_weight keeps them.
    cfg = parse(
        block("  process nginx\n", "chk_web")
        + inst("  track_process {\n    chk_web weight -10\n  }\n")
        + inst(name="VI_2", vrid=52)
        + SYNC.format(body="  sync_group_tracking_weight\n")
    )
    assert cfg.instances[0].track_process == (TrackProcessRef("chk_web", -10, None),)


def test_sync_group_with_an_address_owner_clears_weights() -> None:
    cfg = parse(
        block("  process haproxy\n  weight 10\n")
        + inst(prio=255)
        + inst(name="VI_2", vrid=52)
        + SYNC.format(body="  track_process {\n    chk_haproxy\n  }\n")
    )
    assert cfg.sync_groups[0].track_process == (TrackProcessRef("chk_haproxy", 0, None),)
    assert [w.message for w in cfg.warnings] == [
        "(G) Cannot have weighted track process 'chk_haproxy' with member having priority 255"
        " - setting weight 0"
    ]
