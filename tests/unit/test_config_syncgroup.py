"""`vrrp_sync_group` in the config reader (pyvrrpd/config/syncgroup.py).

The keepalived 2.2.7 behaviours checked against `keepalived -t` by hand:
an instance in two groups, an unknown member and an empty group are config
errors; a one-member group is a warning; weights on members' trackers are
dropped unless sync_group_tracking_weight; the group's trackers go to every
member.
"""

from __future__ import annotations

import pytest

from pyvrrpd.config import ConfigError, parse_text
from pyvrrpd.config.model import Config, TrackInterface, TrackScriptRef
from pyvrrpd.shell.instance import router_config

SCRIPTS = """
vrrp_script chk_w {
  script "/bin/true"
  weight 10
}
vrrp_script chk_0 {
  script "/bin/true"
}
"""


def inst(name: str, vrid: int, ifname: str, extra: str = "", prio: int = 100) -> str:
    return (
        f"vrrp_instance {name} {{\n  interface {ifname}\n  virtual_router_id {vrid}\n"
        f"  priority {prio}\n  virtual_ipaddress {{\n    192.0.2.{vrid}\n  }}\n{extra}}}\n"
    )


TWO = inst("VI_1", 51, "eth0") + inst("VI_2", 52, "eth1")


def parse(text: str) -> Config:
    return parse_text(text, "keepalived.conf")


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as ei:
        parse(text)
    return [f"{d.loc.line}: {d.message}" for d in ei.value.errors]


def warnings(cfg: Config) -> list[str]:
    return [d.message for d in cfg.warnings]


def member(cfg: Config, name: str) -> object:
    return next(i for i in cfg.instances if i.name == name)


def test_group_with_trackers_and_notifies() -> None:
    cfg = parse(
        SCRIPTS
        + TWO
        + """vrrp_sync_group G {
  group {
    VI_1 VI_2
  }
  track_script {
    chk_w weight 20
  }
  track_interface {
    eth2
  }
  notify "/usr/local/bin/notify.sh --group"
  notify_fault "/bin/logger fault"
  smtp_alert
}
"""
    )
    (g,) = cfg.sync_groups
    assert g.name == "G" and g.members == ("VI_1", "VI_2")
    assert g.notify.generic is not None
    assert g.notify.generic.argv == ("/usr/local/bin/notify.sh", "--group")
    assert g.notify.fault is not None and g.notify.smtp_alert is True
    for name in ("VI_1", "VI_2"):
        i = next(i for i in cfg.instances if i.name == name)
        # Group trackers apply to each member with the group's weight.
        assert i.track_script == (TrackScriptRef("chk_w", 20, None),)
        assert i.track_interface == (TrackInterface("eth2", 0, False),)


def test_member_weights_are_ignored_without_sync_group_tracking_weight() -> None:
    extra = (
        "  track_script {\n    chk_w\n    chk_0\n  }\n  track_interface {\n    eth9 weight 5\n  }\n"
    )
    text = SCRIPTS + inst("VI_1", 51, "eth0", extra) + inst("VI_2", 52, "eth1")
    cfg = parse(text + "vrrp_sync_group G {\n  group {\n    VI_1\n    VI_2\n  }\n}\n")
    i = next(i for i in cfg.instances if i.name == "VI_1")
    assert [r.name for r in i.track_script] == ["chk_0"]
    assert i.track_interface == (TrackInterface("eth9", 0, False),)
    assert "(VI_1) ignoring tracked script chk_w with weights due to SYNC group" in warnings(cfg)
    assert "(VI_1) ignoring eth9 tracked interface weight due to SYNC group" in warnings(cfg)
    # With sync_group_tracking_weight (or the deprecated global_tracking) they stay.
    for word in ("sync_group_tracking_weight", "global_tracking"):
        cfg = parse(text + f"vrrp_sync_group G {{\n  group {{\n    VI_1 VI_2\n  }}\n  {word}\n}}\n")
        i = next(i for i in cfg.instances if i.name == "VI_1")
        assert [r.name for r in i.track_script] == ["chk_w", "chk_0"]
        assert i.track_interface == (TrackInterface("eth9", 5, False),)
        assert any("deprecated" in w for w in warnings(cfg)) == (word == "global_tracking")


def test_instance_in_two_groups_unknown_member_and_empty_group_are_errors() -> None:
    two = "vrrp_sync_group G {\n  group {\n    VI_1 VI_2\n  }\n}\n"
    text = TWO + two + "vrrp_sync_group H {\n  group {\n    VI_1\n    VI_3\n  }\n}\n"
    got = errors(text)
    assert any("VI_1 cannot exist in more than one sync group (already in G)" in e for e in got)
    assert any("VI_3 specified in sync group H doesn't exist" in e for e in got)
    assert any("sync group H has no virtual router(s)" in e for e in got)
    assert any("vrrp sync group G already defined" in e for e in errors(TWO + two + two))
    assert any("has no virtual router(s)" in e for e in errors(TWO + "vrrp_sync_group E {\n}\n"))


def test_one_member_group_warns() -> None:
    cfg = parse(TWO + "vrrp_sync_group G {\n  group {\n    VI_1\n  }\n}\n")
    assert cfg.sync_groups[0].members == ("VI_1",)
    assert any("has only 1 virtual router(s)" in w for w in warnings(cfg))


@pytest.mark.parametrize("word", ["track_bfd"])
def test_unimplemented_group_trackers_are_refused(word: str) -> None:
    text = (
        TWO
        + f"vrrp_sync_group G {{\n  group {{\n    VI_1 VI_2\n  }}\n  {word} {{\n    x\n  }}\n}}\n"
    )
    (e,) = errors(text)
    assert e.startswith("21: ") and f"'{word}' is not supported by pyvrrpd" in e


def test_group_notify_priority_changes_overrides_members() -> None:
    text = (
        TWO + "vrrp_sync_group G {\n  group {\n    VI_1 VI_2\n  }\n  notify_priority_changes\n}\n"
    )
    cfg = parse(text)
    assert all(i.notify.priority_changes is True for i in cfg.instances)


def test_owner_member_clears_group_weights() -> None:
    text = (
        SCRIPTS
        + inst("VI_1", 51, "eth0", prio=255)
        + inst("VI_2", 52, "eth1")
        + "vrrp_sync_group G {\n  group {\n    VI_1 VI_2\n  }\n"
        "  track_script {\n    chk_w\n  }\n}\n"
    )
    cfg = parse(text)
    assert cfg.instances[1].track_script == (TrackScriptRef("chk_w", 0, None),)
    assert any("cannot have weighted track script 'chk_w'" in w for w in warnings(cfg))


def test_group_trackers_reach_every_members_router() -> None:
    """What the daemon builds: each member's core trackers include the group's."""
    cfg = parse(
        SCRIPTS + TWO + "vrrp_sync_group G {\n  group {\n    VI_1 VI_2\n  }\n"
        "  track_script {\n    chk_0\n  }\n  track_interface {\n    eth2 weight -20\n  }\n"
        "  sync_group_tracking_weight\n}\n"
    )
    for inst in cfg.instances:
        names = {(t.name, t.weight) for t in router_config(inst, cfg, mtu=1500).trackers}
        assert ("chk_0", 0) in names and ("interface:eth2", -20) in names, names
