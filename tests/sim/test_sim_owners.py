"""Two address owners (priority 255) on one VRID, in the in-memory LAN: one master in the end."""

from __future__ import annotations

from ipaddress import IPv4Address

from pyvrrpd.core.events import Event, PacketReceived
from pyvrrpd.core.router import RouterConfig
from pyvrrpd.core.state import State
from tests.sim.lan import Lan

VIP = IPv4Address("192.0.2.10")


class DeafLan(Lan):
    """Nodes in `deaf` drop every advert, as RFC 3768 7.1 has an owner do."""

    def __init__(self, deaf: set[str], **kw: float) -> None:
        super().__init__(**kw)
        self.deaf = deaf

    def _feed(self, name: str, event: Event) -> None:
        if name in self.deaf and isinstance(event, PacketReceived):
            return
        super()._feed(name, event)


def owner_cfg() -> RouterConfig:
    return RouterConfig(name="VI_1", vrid=51, priority=255, initial_master=True, vips=(VIP,))


def test_two_keepalived_style_owners_settle_on_the_higher_address() -> None:
    lan = Lan()
    lan.add("a", "192.0.2.11", owner_cfg())
    lan.add("b", "192.0.2.12", owner_cfg())
    lan.start("a")
    lan.start("b")
    lan.run_for(10.0)
    assert lan.masters() == ["b"] and lan.vip_holders() == ["b"]
    # The lower address yielded by the tie-break and kept its priority.
    assert lan.nodes["a"].router.effective_priority == 255


def test_an_owner_that_ignores_adverts_makes_ours_back_off_to_254() -> None:
    # "low" behaves as RFC 3768 7.1 says: it drops every advert and stays
    # MASTER. The tie-break would make it yield, but it never hears us, so
    # ours ("high") must back off (keepalived's rogue-owner handling).
    lan = DeafLan({"low"})
    lan.add("low", "192.0.2.5", owner_cfg())
    lan.add("high", "192.0.2.12", owner_cfg())
    lan.start("low")
    lan.start("high")
    lan.run_for(2.0)
    assert sorted(lan.masters()) == ["high", "low"]  # the conflict, before the back-off
    lan.run_for(5.0)
    assert lan.masters() == ["low"] and lan.vip_holders() == ["low"]
    assert lan.nodes["high"].router.effective_priority == 254
    assert lan.state("high") is State.BACKUP
    # The deaf owner dies: ours takes over (at 254, as keepalived) and holds the VIP.
    lan.crash("low")
    lan.nodes["low"].has_vips = False
    lan.run_for(5.0)
    assert lan.masters() == ["high"] and lan.vip_holders() == ["high"]
