"""`track_file` / `vrrp_track_file` in the config reader (pyvrrpd/config/trackfile.py).

Checked against keepalived 2.2.7 `keepalived -t` by hand: `init_file 300`
and an unknown init option are warnings, `noreverse` in the block is an
unknown weight option; in a sync group without sync_group_tracking_weight a
member's weight-1 file becomes weight 0 ("specify weight 0") and other
weights are dropped; a reference to an undefined track_file makes 2.2.7
crash (exit 139), which pyvrrpd refuses as an error.
"""

from __future__ import annotations

from pyvrrpd.config import parse_text
from pyvrrpd.config.model import Config, TrackFile, TrackFileRef
from pyvrrpd.trackers.file import file_specs
from tests.unit import _confdiag as confdiag
from tests.unit._confdiag import warnings


def inst(name: str, vrid: int, extra: str = "", prio: int = 100) -> str:
    return (
        f"vrrp_instance {name} {{\n  interface eth0\n  virtual_router_id {vrid}\n"
        f"  priority {prio}\n  virtual_ipaddress {{\n    192.0.2.{vrid}\n  }}\n{extra}}}\n"
    )


TF = 'track_file tf {\n  file "/run/pyvrrpd/tf"\n}\n'
SOURCE = "keepalived.conf"  # named in some messages (first defined at ...)


def parse(text: str) -> Config:
    return confdiag.parse(text, SOURCE)


def errors(text: str) -> list[str]:
    return confdiag.errors(text, SOURCE)


def test_block_defaults() -> None:
    cfg = parse(TF + inst("VI_1", 51, "  track_file {\n    tf\n  }\n"))
    assert cfg.track_files == (TrackFile("tf", "/run/pyvrrpd/tf", loc=cfg.track_files[0].loc),)
    assert cfg.track_files[0].weight == 1  # keepalived's default
    assert cfg.instances[0].track_file == (TrackFileRef("tf", 1, False),)
    (spec,) = file_specs(cfg.instances[0], cfg)
    assert (spec.name, spec.weight, spec.reverse, spec.scaled) == ("file:tf", 1, False, True)
    assert warnings(cfg) == []


def test_block_all_options() -> None:
    text = (
        "track_file tf {\n  file /run/tf\n  weight -10 reverse\n  init_file 5 overwrite\n}\n"
        + inst("VI_1", 51, "  track_file {\n    tf weight 3 noreverse\n  }\n")
    )
    cfg = parse(text)
    (tf,) = cfg.track_files
    assert (tf.weight, tf.reverse, tf.init_file, tf.init_value, tf.overwrite) == (
        -10,
        True,
        True,
        5,
        True,
    )
    assert cfg.instances[0].track_file == (TrackFileRef("tf", 3, False),)


def test_reference_weight_without_reverse_keeps_the_blocks_reverse() -> None:
    # keepalived vrrp_alloc_track_file(): reverse starts as the block's.
    text = "track_file tf {\n  file /run/tf\n  weight 2 reverse\n}\n" + inst(
        "VI_1", 51, "  track_file {\n    tf weight 5\n  }\n"
    )
    assert parse(text).instances[0].track_file == (TrackFileRef("tf", 5, True),)


def test_init_file_without_value_is_zero() -> None:
    cfg = parse("track_file tf {\n  file /run/tf\n  init_file\n}\n")
    (tf,) = cfg.track_files
    assert (tf.init_file, tf.init_value, tf.overwrite) == (True, 0, False)


def test_vrrp_track_file_is_a_deprecated_alias() -> None:
    cfg = parse(
        'vrrp_track_file tf {\n  file "/run/tf"\n}\n' + inst("V", 51, "  track_file { tf }\n")
    )
    assert cfg.track_files[0].name == "tf"
    assert cfg.instances[0].track_file == (TrackFileRef("tf", 1, False),)
    # keepalived only logs the deprecation: not counted by `keepalived -t`.
    assert warnings(cfg, silent=True) == [
        '1:1: "vrrp_track_file" is deprecated, please use "track_file"'
    ]


def test_block_warnings_as_keepalived() -> None:
    text = (
        "track_file tf {\n  file /run/tf\n  file /run/other\n  weight 1 noreverse\n"
        "  init_file 300 junk\n  interval 3\n}\n"
    )
    got = warnings(parse(text))
    assert got[0].startswith("3:8: file already set for track_file tf (keepalived.conf:2:8)")
    assert got[1:] == [
        "4:12: track_file tf: unknown weight option 'noreverse'; ignored",
        "5:13: track_file tf: init_file value 300 is outside the sensible range -254..254",
        "5:17: unknown init_file option 'junk'; ignored",
        "6:3: unknown keyword 'interval' in track_file",
    ]


def test_block_errors_with_line_and_column() -> None:
    text = (
        "track_file a {\n  weight 2\n}\n"
        "track_file b {\n  file /run/b\n  weight 255\n}\n"
        "track_file c {\n  file /run/c\n  init_file 0x5\n}\n"
        "track_file d {\n  file /run/dir/\n}\n"
        "track_file b {\n  file /run/b2\n}\n"
    )
    assert errors(text) == [
        "1:12: track_file a has no 'file'",
        "6:10: track_file b: weight must be an integer -254..254, got '255'",
        "10:13: track_file c: init_file value '0x5' is invalid",
        "12:12: track_file d has no 'file'",
        "13:8: track_file d: '/run/dir/' names no file",
        "15:12: duplicate track_file 'b' (first defined at keepalived.conf:4:12)",
    ]


def test_reference_errors() -> None:
    body = (
        "  track_file {\n    nosuch\n    tf wieght 2\n    tf weight\n    tf weight x\n"
        "    tf weight 3 sideways\n  }\n"
    )
    assert errors(TF + inst("VI_1", 51, body)) == [
        "12:5: (VI_1) track_file 'nosuch' is not defined",
        "13:8: track_file tf: expected 'weight W', got 'wieght'",
        "14:8: track_file tf: weight needs a value -254..254",
        "15:15: track_file tf: weight must be an integer -254..254, got 'x'",
        "16:17: track_file tf: expected 'reverse' or 'noreverse' after the weight, got 'sideways'",
    ]


def test_duplicate_reference_warns() -> None:
    cfg = parse(TF + inst("VI_1", 51, "  track_file {\n    tf\n    tf weight 3\n  }\n"))
    assert cfg.instances[0].track_file == (TrackFileRef("tf", 1, False),)
    assert warnings(cfg) == ["13:5: duplicate track_file tf; ignored"]


def test_weights_254_are_kept_for_files() -> None:
    # Unlike track_script (coerced to 253), a file's weight is -254..254; the
    # core clamps value x weight to -254..253.
    cfg = parse(TF + inst("VI_1", 51, "  track_file {\n    tf weight -254\n  }\n"))
    assert cfg.instances[0].track_file == (TrackFileRef("tf", -254, False),)


def test_forward_reference_is_taken_with_a_warning() -> None:
    cfg = parse(inst("VI_1", 51, "  track_file { tf }\n") + TF)
    assert cfg.instances[0].track_file == (TrackFileRef("tf", 1, False),)
    assert warnings(cfg) == [
        "8:16: (VI_1) track_file 'tf' is defined later (keepalived.conf:10:12);"
        " keepalived ignores such a reference ('track file not found')"
    ]


def test_relative_path_resolved_against_the_config_directory() -> None:
    cfg = parse_text("track_file tf {\n  file state/tf\n}\n", "/etc/keepalived/keepalived.conf")
    assert cfg.track_files[0].path == "/etc/keepalived/state/tf"
    assert [d.message for d in cfg.warnings if d.keepalived_silent] == [
        "track_file tf: relative path 'state/tf' is taken as /etc/keepalived/state/tf;"
        " write an absolute path"
    ]


def test_sync_group_member_weights_as_keepalived() -> None:
    text = (
        "track_file tfa {\n  file /run/a\n  weight 2\n}\n"
        "track_file tfb {\n  file /run/b\n}\n"
        + inst("B", 52, "  track_file {\n    tfa\n    tfb\n  }\n")
        + inst("C", 53, "  track_file {\n    tfa weight 0 reverse\n  }\n")
        + "vrrp_sync_group G {\n  group { B C }\n  track_file {\n    tfb weight 7\n  }\n}\n"
    )
    cfg = parse(text)
    by = {i.name: i for i in cfg.instances}
    # B: tfa (weight 2) dropped, tfb (weight 1) made 0 and kept over the group's.
    assert by["B"].track_file == (TrackFileRef("tfb", 0, False),)
    # C: its own weight-0 entry stays, the group's file is added with its weight.
    assert by["C"].track_file == (TrackFileRef("tfa", 0, True), TrackFileRef("tfb", 7, False))
    assert cfg.sync_groups[0].track_file == (TrackFileRef("tfb", 7, False),)
    msgs = [w.split(": ", 1)[1] for w in warnings(cfg, silent=False)]
    assert msgs == [
        "(B) ignoring tracked file tfa with weight 2 due to SYNC group",
        "(B) ignoring weight from tracked file tfb due to SYNC group. specify weight 0",
    ]
    assert [w.split(": ", 1)[1] for w in warnings(cfg, silent=True)] == [
        "(B) track_file tfb is configured on VRRP instance and sync group."
        " Remove vrrp instance config"
    ]


def test_sync_group_tracking_weight_keeps_member_weights() -> None:
    text = (
        TF
        + inst("B", 52, "  track_file {\n    tf weight 5\n  }\n")
        + inst("C", 53)
        + "vrrp_sync_group G {\n  group { B C }\n  sync_group_tracking_weight\n}\n"
    )
    cfg = parse(text)
    assert cfg.instances[0].track_file == (TrackFileRef("tf", 5, False),)
    assert warnings(cfg) == []


def test_address_owner_in_group_clears_group_weight() -> None:
    text = (
        TF
        + inst("B", 52, prio=255)
        + inst("C", 53)
        + "vrrp_sync_group G {\n  group { B C }\n  track_file {\n    tf weight -20\n  }\n}\n"
    )
    cfg = parse(text)
    for i in cfg.instances:
        assert i.track_file == (TrackFileRef("tf", 0, False),)
    assert any(
        "(G) cannot have weighted track file 'tf' with a member having priority 255"
        " - setting weight 0" in w
        for w in warnings(cfg)
    )


def test_address_owner_alone_drops_weights() -> None:
    cfg = parse(TF + inst("O", 52, "  track_file {\n    tf\n  }\n", prio=255))
    assert cfg.instances[0].track_file == (TrackFileRef("tf", 0, False),)
    assert warnings(cfg)[-1].endswith(
        "(O) ignoring weight from tracked file tf due to address_owner. specify weight 0"
    )


def test_unused_block_is_kept() -> None:
    cfg = parse("track_file tf {\n  file /run/tf\n  init_file\n}\n")
    assert [f.name for f in cfg.track_files] == ["tf"]
