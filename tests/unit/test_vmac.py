"""use_vmac without root: reading the keywords, the naming and adoption plan, sysctls."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

import pytest

from pyvrrpd.config import parse_text
from pyvrrpd.config.model import Config, VrrpInstance
from pyvrrpd.io import vmac as io
from pyvrrpd.io.vmac import LinkEntry
from pyvrrpd.shell.host.vmac import VmacManager, Want, decide, wants

HEAD = "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n"
VRRP51 = bytes.fromhex("00005e000133")


def parse(body: str, before: str = "", vips: str = "192.0.2.10/24") -> Config:
    text = before + HEAD + body + f"\n  virtual_ipaddress {{\n    {vips}\n  }}\n}}\n"
    return parse_text(text, "k.conf")


def inst(body: str, before: str = "", vips: str = "192.0.2.10/24") -> VrrpInstance:
    return parse(body, before, vips).instances[0]


def warnings(cfg: Config) -> list[str]:
    return [w.message for w in cfg.warnings]


# ------------------------------------------------------------------- config


def test_no_use_vmac_is_off() -> None:
    v = inst("").vmac
    assert not v.enabled and v.name is None and v.mac is None and not v.xmit_base


@pytest.mark.parametrize(
    ("line", "name", "mac"),
    [
        ("use_vmac", None, None),
        ("use_vmac vrrp51", "vrrp51", None),
        ("use_vmac 02:11:22:33:44:55", None, bytes.fromhex("021122334455")),
        ("use_vmac 02:11:22:33:44:55 vr51", "vr51", bytes.fromhex("021122334455")),
        ("use_vmac vr51 02:11:22:33:44:55", "vr51", bytes.fromhex("021122334455")),
        # Five octets: keepalived puts the VRID in the sixth.
        ("use_vmac 02:11:22:33:44", None, bytes.fromhex("021122334433")),
        ("use_vmac 02:11:22:33:44:", None, bytes.fromhex("021122334433")),
    ],
)
def test_use_vmac_name_and_mac_in_either_order(line: str, name: str | None, mac: bytes) -> None:
    cfg = parse(line)
    v = cfg.instances[0].vmac
    assert (v.enabled, v.name, v.mac) == (True, name, mac)
    assert warnings(cfg) == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("use_vmac 01:00:5e:00:00:01", "is multicast"),
        ("use_vmac 00:00:5e:00:01:07", "RFC 5798 address"),
        ("use_vmac 00:00:5e:00:02:07", "RFC 5798 address"),
        ("use_vmac 00:zz:5e:00:01:07", "invalid MAC address"),
        ("use_vmac 0011:22:33:44:55", "invalid MAC address"),
        ("use_vmac averyveryverylongname", "too long or has invalid characters"),
        ("use_vmac vr51 vr52", "name already specified"),
        ("use_vmac vr51 02:11:22:33:44:55 extra", "'extra' ignored"),
    ],
)
def test_bad_use_vmac_words_warn_and_fall_back(line: str, message: str) -> None:
    cfg = parse(line)
    v = cfg.instances[0].vmac
    assert v.enabled
    assert any(message in w for w in warnings(cfg)), warnings(cfg)
    assert v.mac is None or v.mac == bytes.fromhex("021122334455")


def test_vmac_xmit_base_needs_use_vmac() -> None:
    cfg = parse("vmac_xmit_base")
    assert not cfg.instances[0].vmac.xmit_base
    assert any("vmac_xmit_base is only valid with a vmac" in w for w in warnings(cfg))
    assert inst("use_vmac\n  vmac_xmit_base").vmac.xmit_base


def test_unicast_with_use_vmac_forces_xmit_base() -> None:
    cfg = parse("use_vmac\n  unicast_src_ip 192.0.2.11\n  unicast_peer {\n    192.0.2.12\n  }")
    assert cfg.instances[0].vmac.xmit_base
    assert any("unicast with use_vmac requires vmac_xmit_base" in w for w in warnings(cfg))


def test_strict_mode_clears_the_mac_and_xmit_base() -> None:
    cfg = parse("use_vmac 02:11:22:33:44:55\n  vmac_xmit_base\n  strict_mode")
    v = cfg.instances[0].vmac
    assert v.enabled and v.mac is None and not v.xmit_base
    text = " ".join(warnings(cfg))
    assert "cannot specify MAC address with strict mode" in text
    assert "incompatible with strict mode" in text


def test_per_address_use_vmac_and_use_vmac_addr() -> None:
    cfg = parse("use_vmac_addr", vips="192.0.2.10/24 use_vmac\n    198.51.100.10 dev eth1")
    i = cfg.instances[0]
    assert [v.use_vmac for v in i.virtual_ipaddress] == [True, False]
    assert i.vmac.addr and not i.vmac.enabled
    # Redundant per-address use_vmac draws keepalived's message.
    cfg = parse("use_vmac", vips="192.0.2.10/24 use_vmac")
    assert any("use_vmac specified for VIP/eVIP 192.0.2.10/24" in w for w in warnings(cfg))


# --------------------------------------------------------------------- plan


def link(name: str, index: int, mac: str = "02:00:00:00:00:01", **kw: object) -> LinkEntry:
    fields: dict[str, object] = {"kind": None, "mode": None, "lower": None}
    fields.update(kw)
    return LinkEntry(name, index, bytes.fromhex(mac.replace(":", "")), **fields)  # type: ignore[arg-type]


ETH0 = link("eth0", 2)
WANT = Want("eth0", VRRP51, 51, "VI_1")


def test_default_name_is_vrrp_dot_vrid() -> None:
    assert decide([WANT], [ETH0])[WANT.key].name == "vrrp.51"
    assert decide([WANT], [ETH0])[WANT.key].action == "create"


def test_leftover_macvlan_with_our_mac_on_our_base_is_adopted_whatever_its_name() -> None:
    old = link("vmac-old", 7, "00:00:5e:00:01:33", kind="macvlan", mode="private", lower=2)
    dec = decide([Want("eth0", VRRP51, 51, "VI_1", "vr51")], [ETH0, old])[WANT.key]
    assert (dec.name, dec.action) == ("vmac-old", "adopt")
    assert any("Found matching interface vmac-old" in n for n in dec.notes)
    assert any("name mismatch" in n for n in dec.notes)


@pytest.mark.parametrize(
    "other",
    [
        link("vrrp.51", 7, "00:00:5e:00:01:33", kind="macvlan", mode="bridge", lower=2),
        link("vrrp.51", 7, "00:00:5e:00:01:33", kind="macvlan", mode="private", lower=9),
        link("vrrp.51", 7, "00:00:5e:00:01:34", kind="macvlan", mode="private", lower=2),
        link("vrrp.51", 7, kind="veth"),
    ],
)
def test_default_name_skips_interfaces_that_do_not_match(other: LinkEntry) -> None:
    dec = decide([WANT], [ETH0, other])[WANT.key]
    assert (dec.name, dec.action) == ("vrrp1.51", "create")


def test_configured_name_held_by_a_non_macvlan_is_ignored_not_deleted() -> None:
    want = Want("eth0", VRRP51, 51, "VI_1", "vr51")
    dec = decide([want], [ETH0, link("vr51", 7, kind="veth")])[want.key]
    assert (dec.name, dec.action) == ("vrrp.51", "create")
    assert any("already exists as a non VMAC interface" in n for n in dec.notes)


def test_configured_name_held_by_a_wrong_private_macvlan_is_replaced() -> None:
    want = Want("eth0", VRRP51, 51, "VI_1", "vr51")
    stale = link("vr51", 7, "00:00:5e:00:01:09", kind="macvlan", mode="private", lower=2)
    dec = decide([want], [ETH0, stale])[want.key]
    assert (dec.name, dec.action) == ("vr51", "replace")


def test_a_name_used_by_an_earlier_instance_is_ignored() -> None:
    a = Want("eth0", VRRP51, 51, "VI_1", "vr")
    b = Want("eth1", VRRP51, 51, "VI_2", "vr")
    out = decide([a, b], [ETH0, link("eth1", 3)])
    assert (out[a.key].name, out[b.key].name) == ("vr", "vrrp.51")
    assert any("VRRP instance VI_1 is already using vr" in n for n in out[b.key].notes)


def conf(body: str, vips: str, head: str = HEAD) -> Config:
    return parse_text(head + body + f"\n  virtual_ipaddress {{\n    {vips}\n  }}\n}}\n", "k.conf")


def test_manager_routes_sockets_and_vips() -> None:
    cfg = conf(
        "use_vmac",
        "192.0.2.10/24\n    192.0.2.20 dev eth0 use_vmac\n    198.51.100.10/24 dev eth1 use_vmac"
        "\n    203.0.113.1 dev eth2",
    )
    mgr = VmacManager(cfg)
    assert [(w.base, w.per_address) for w in mgr.wants] == [
        ("eth0", False),
        ("eth1", True),
    ]
    mgr.names = {k: d.name for k, d in decide(mgr.wants, [ETH0, link("eth1", 3)]).items()}
    mgr.owned = {mgr.names[w.key]: w for w in mgr.wants}
    i = cfg.instances[0]
    assert mgr.sock_interface(i) == "vrrp.51"
    devs = mgr.vip_devs(i)
    assert devs == {
        (IPv4Address("192.0.2.10"), None): "vrrp.51",
        (IPv4Address("192.0.2.20"), "eth0"): "vrrp.51",
        (IPv4Address("198.51.100.10"), "eth1"): "vrrp1.51",
    }
    assert mgr.source_base("vrrp.51") == "eth0" and mgr.source_base("vrrp1.51") is None
    assert sorted(mgr.riders("eth0")) == ["vrrp.51"]


def test_xmit_base_keeps_adverts_on_the_base_interface() -> None:
    cfg = conf("use_vmac\n  vmac_xmit_base", "192.0.2.10/24")
    mgr = VmacManager(cfg)
    mgr.names = {w.key: "vrrp.51" for w in mgr.wants}
    mgr.owned = {"vrrp.51": mgr.wants[0]}
    i = cfg.instances[0]
    assert mgr.sock_interface(i) == "eth0"
    assert mgr.vip_devs(i) == {(IPv4Address("192.0.2.10"), None): "vrrp.51"}
    assert wants(conf("", "192.0.2.10/24")) == []


def test_use_vmac_addr_covers_addresses_on_other_interfaces() -> None:
    cfg = conf("use_vmac_addr", "192.0.2.10/24\n    198.51.100.10/24 dev eth1")
    assert [(w.base, w.per_address) for w in wants(cfg)] == [("eth1", True)]


# ------------------------------------------------------------------ sysctls


@pytest.fixture
def proc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake /proc/sys/net with all, default, eth0, lo and the vmac."""
    for fam, ifname, key, value in [
        ("ipv4", "all", "rp_filter", 2),
        ("ipv4", "default", "rp_filter", 1),
        ("ipv4", "lo", "rp_filter", 0),
        ("ipv4", "eth0", "rp_filter", 2),
        ("ipv4", "eth0", "arp_ignore", 0),
        ("ipv4", "eth0", "arp_filter", 0),
        ("ipv6", "vrrp.51", "disable_ipv6", 0),
    ]:
        d = tmp_path / fam / "conf" / ifname
        d.mkdir(parents=True, exist_ok=True)
        (d / key).write_text(f"{value}\n")
    vmac = tmp_path / "ipv4" / "conf" / "vrrp.51"
    vmac.mkdir(parents=True)
    for key in ("arp_ignore", "accept_local", "rp_filter", "promote_secondaries"):
        (vmac / key).write_text("0\n")
    monkeypatch.setattr(io, "SYSCTL_ROOT", tmp_path)
    return tmp_path


def value(root: Path, path: str) -> int:
    return int((root / path).read_text())


def test_sysctls_set_like_keepalived_and_restored(proc: Path) -> None:
    mgr = VmacManager(conf("use_vmac", "192.0.2.10/24"))
    mgr._sysctls("vrrp.51", "eth0")
    v4 = "ipv4/conf/"
    assert value(proc, v4 + "all/rp_filter") == 0
    # Nothing ends up looser than before: default and lo raised to the old all value.
    assert value(proc, v4 + "default/rp_filter") == 2
    assert value(proc, v4 + "lo/rp_filter") == 2
    assert [
        value(proc, v4 + f"vrrp.51/{k}")
        for k in ("arp_ignore", "accept_local", "rp_filter", "promote_secondaries")
    ] == [1, 1, 0, 1]
    assert value(proc, "ipv6/conf/vrrp.51/disable_ipv6") == 1
    assert value(proc, v4 + "eth0/arp_ignore") == 1
    assert value(proc, v4 + "eth0/arp_filter") == 1

    mgr._restore_rp_filter()
    for base, saved in mgr._saved.base.items():
        for key, old in saved.items():
            io.write_sysctl(base, key, old)
    assert value(proc, v4 + "all/rp_filter") == 2
    assert value(proc, v4 + "default/rp_filter") == 1
    assert value(proc, v4 + "lo/rp_filter") == 0
    assert value(proc, v4 + "eth0/arp_ignore") == 0


def test_igmp_ruleset_moves_reports_to_the_base() -> None:
    text = io.igmp_ruleset([("vrrp.51", "eth0")])
    assert 'oifname "vrrp.51" ip protocol igmp dup to ip daddr device "eth0" drop' in text
    assert text.startswith(f"table ip {io.NFT_TABLE} {{}}\ndelete table ip {io.NFT_TABLE}\n")
    assert io.vrrp_mac(51) == VRRP51


def test_vmac_prefix_names_default_interfaces() -> None:
    before = "global_defs {\n  vmac_prefix vm\n  vmac_addr_prefix va\n  vmac_prefix x\n}\n"
    cfg = conf("use_vmac", "192.0.2.10/24\n    198.51.100.10 dev eth1 use_vmac", before + HEAD)
    assert (cfg.global_defs.vmac_prefix, cfg.global_defs.vmac_addr_prefix) == ("vm", "va")
    assert any("vmac prefix has already been specified - ignoring x" in w for w in warnings(cfg))
    out = decide(wants(cfg), [ETH0, link("eth1", 3), link("vm.51", 9, kind="veth")])
    assert sorted(d.name for d in out.values()) == ["va.51", "vm1.51"]


def test_default_names_are_cut_to_fit_ifnamsiz() -> None:
    want = Want("eth0", VRRP51, 51, "VI_1", prefix="averyverylongprefix")
    assert decide([want], [ETH0])[want.key].name == "averyverylon.51"


def test_dont_release_leaves_vmacs_but_drops_the_igmp_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """keepalived -V (--dont-release-vrrp): shutdown_vrrp_instances() is skipped, so the
    vmacs (with their VIPs) and sysctls stay; its firewall_fini() still runs."""
    import asyncio

    scripts: list[str] = []

    async def fake_nft(script: str, nft: str = "nft") -> None:
        scripts.append(script)

    async def no_delete(*args: object) -> bool:
        raise AssertionError("a vmac was deleted")

    monkeypatch.setattr(io, "run_nft", fake_nft)
    monkeypatch.setattr(io, "delete_link", no_delete)
    mgr = VmacManager(conf("use_vmac", "192.0.2.10/24"))
    mgr.owned = {"vrrp.51": mgr.wants[0]}
    asyncio.run(mgr.stop(None, release=False))  # type: ignore[arg-type]
    assert scripts == [io.igmp_teardown()]
    assert mgr.owned  # still ours, still there
