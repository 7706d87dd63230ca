"""Config -> core translation: lower-priority GARP values and the MTU cap on advertised VIPs."""

from __future__ import annotations

from pyvrrpd.config import parse_text
from pyvrrpd.shell.instance import router_config

HEAD = "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n"


def vips(n: int) -> str:
    lines = "".join(f"    198.51.100.{i + 1}\n" for i in range(n))
    return "  virtual_ipaddress {\n" + lines + "  }\n"


def test_lower_prio_garp_values_reach_the_core() -> None:
    glob = "global_defs {\n  vrrp_garp_lower_prio_delay 9\n}\n"
    cfg = parse_text(glob + HEAD + "  garp_lower_prio_repeat 2\n" + vips(1) + "}\n")
    rc = router_config(cfg.instances[0], cfg, mtu=1500)
    assert (rc.garp_lower_prio_repeat, rc.garp_lower_prio_delay) == (2, 9.0)
    assert (rc.garp_master_repeat, rc.garp_master_delay) == (5, 5.0)


def test_small_mtu_caps_the_advertised_vips_and_keeps_them_installed() -> None:
    cfg = parse_text(HEAD + vips(100) + "}\n")
    inst = cfg.instances[0]
    # (200 - 14 - 20 - 8 - 8) / 4 = 37 addresses fit, as keepalived computes.
    rc = router_config(inst, cfg, mtu=200)
    assert len(rc.vips) == 37
    assert rc.vips == tuple(v.address for v in inst.virtual_ipaddress[:37])
    assert len(inst.virtual_ipaddress) == 100  # Instance.addresses still installs all
    assert len(router_config(inst, cfg, mtu=1500).vips) == 100
