"""The guide's two configs (seed-guide 5.3/5.4) parse cleanly into the expected model."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

import pytest

from pyvrrpd.config import load_config
from pyvrrpd.config.model import TrackScriptRef, VirtualIP

DATA = Path(__file__).resolve().parents[1] / "data"
CONF = Path(__file__).resolve().parents[2] / "conf"


@pytest.mark.parametrize(("name", "priority"), [("primary", 100), ("secondary", 90)])
def test_guide_config_parses_with_zero_warnings(name: str, priority: int) -> None:
    cfg = load_config(DATA / f"guide-{name}.conf")

    assert cfg.warnings == ()
    assert cfg.files == (str(DATA / f"guide-{name}.conf"),)
    assert cfg.global_defs.script_user == "root"
    assert cfg.global_defs.script_group is None
    assert cfg.global_defs.enable_script_security is True

    (script,) = cfg.scripts
    assert script.name == "check_haproxy"
    assert script.argv == ("/etc/keepalived/check_haproxy.sh",)
    assert script.interval == 2
    assert script.effective_timeout == 2
    assert (script.weight, script.rise, script.fall) == (0, 1, 1)

    (vi,) = cfg.instances
    assert vi.name == "VI_1"
    assert vi.state == "BACKUP"
    assert vi.interface == "eth0"
    assert vi.virtual_router_id == 51
    assert vi.priority == priority
    assert vi.advert_int == 1
    assert vi.nopreempt is True
    assert vi.auth_type == "PASS"
    assert vi.auth_pass == b"1111\0\0\0\0"
    assert vi.virtual_ipaddress == (VirtualIP(IPv4Address("10.0.0.10"), 32),)
    assert str(vi.virtual_ipaddress[0]) == "10.0.0.10/32"
    assert vi.track_script == (TrackScriptRef("check_haproxy"),)
    # Global garp defaults resolved into the instance.
    assert (vi.garp_master_delay, vi.garp_master_repeat) == (5, 5)


@pytest.mark.parametrize(
    "name", ["guide-primary.conf", "guide-secondary.conf", "example-full.conf"]
)
def test_shipped_example_configs_parse(name: str) -> None:
    cfg = load_config(CONF / name)
    if name.startswith("guide"):
        assert cfg.warnings == ()
        assert cfg.instances[0].virtual_ipaddress[0].address == IPv4Address("192.0.2.10")
    assert cfg.instances
