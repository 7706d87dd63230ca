"""An in-memory network of boxes, each running a sync group of routers.

Every box has one member per LAN segment (member `k` sits on LAN `k`); an
advert reaches the members on the same LAN of the other boxes. Each box
drives its routers as the daemon does: event in, actions carried out, then
the box's `SyncGroup.after()` and its follow-ups for the other members.
Knobs: per-box link state per LAN, graceful stop and crash.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from pyvrrpd.core.actions import Action, AddVips, RemoveVips, SendAdvert
from pyvrrpd.core.events import (
    Event,
    LinkChanged,
    PacketReceived,
    ShutdownRequested,
    Started,
    TimerFired,
    TrackerChanged,
)
from pyvrrpd.core.router import RouterConfig, VirtualRouter
from pyvrrpd.core.state import State
from pyvrrpd.core.syncgroup import GroupStateChanged, SyncGroup
from tests.sim.lan import Clock, advert


@dataclass
class Box:
    name: str
    ips: tuple[IPv4Address, ...]  # one per LAN
    routers: dict[str, VirtualRouter]  # member name -> router, in LAN order
    group: SyncGroup
    alive: bool = True
    vips: set[str] = field(default_factory=set)  # members whose VIPs are installed
    log: list[tuple[float, str, Action]] = field(default_factory=list)
    group_log: list[tuple[float, GroupStateChanged]] = field(default_factory=list)
    link_up: list[bool] = field(default_factory=list)


class GroupNet(Clock):
    def __init__(self, latency: float = 0.0005) -> None:
        self.now = 0.0
        self.latency = latency
        self.boxes: dict[str, Box] = {}
        self._heap: list[tuple[float, int, str, int, bytes]] = []
        self._seq = itertools.count()

    def add(self, box: str, ips: list[str], configs: list[RouterConfig], group: str = "G") -> Box:
        routers = {c.name: VirtualRouter(c) for c in configs}
        sg = SyncGroup(group, list(routers))
        sg.bind(routers)
        b = Box(box, tuple(IPv4Address(i) for i in ips), routers, sg, link_up=[True] * len(ips))
        self.boxes[box] = b
        return b

    # -- driving
    def start(self, box: str) -> None:
        b = self.boxes[box]
        b.alive = True
        for lan, name in enumerate(b.routers):
            self._feed(b, name, Started(b.ips[lan], b.link_up[lan]))

    def restart(self, box: str) -> None:
        """Start a stopped box as a fresh process (new routers, new group)."""
        b = self.boxes[box]
        b.routers = {n: VirtualRouter(r.config) for n, r in b.routers.items()}
        b.group = SyncGroup(b.group.name, list(b.routers))
        b.group.bind(b.routers)
        self.start(box)

    def stop(self, box: str) -> None:
        b = self.boxes[box]
        for name in b.routers:
            self._feed(b, name, ShutdownRequested())
        b.group_log.extend((self.now, c) for c in b.group.stop())
        b.alive = False

    def crash(self, box: str) -> None:
        self.boxes[box].alive = False

    def link(self, box: str, lan: int, up: bool) -> None:
        b = self.boxes[box]
        b.link_up[lan] = up
        name = list(b.routers)[lan]
        self._feed(b, name, LinkChanged(up, b.ips[lan]))

    def tracker(self, box: str, member: str, tracker: str, ok: bool | None) -> None:
        b = self.boxes[box]
        self._feed(b, member, TrackerChanged(tracker, ok))

    # -- observing
    def states(self, box: str) -> list[State]:
        return [r.state for r in self.boxes[box].routers.values()]

    def holders(self, lan: int) -> list[str]:
        """Boxes holding the VIPs of the member on LAN `lan`."""
        return [b.name for b in self.boxes.values() if list(b.routers)[lan] in b.vips]

    def group_states(self, box: str) -> list[State | None]:
        return [c.new for _, c in self.boxes[box].group_log]

    # -- internals
    def _next_time(self) -> float | None:
        times = [self._heap[0][0]] if self._heap else []
        for b in self.boxes.values():
            if not b.alive:
                continue
            times.extend(d for r in b.routers.values() if (d := r.next_deadline()) is not None)
        return min(times) if times else None

    def _step(self) -> None:
        while self._heap and self._heap[0][0] <= self.now:
            _, _, dst, lan, data = heapq.heappop(self._heap)
            b = self.boxes[dst]
            if b.alive and b.link_up[lan]:
                self._feed(b, list(b.routers)[lan], PacketReceived(data))
        for b in self.boxes.values():
            for name, r in b.routers.items():
                d = r.next_deadline()
                if b.alive and d is not None and d <= self.now:
                    self._feed(b, name, TimerFired())

    def _feed(self, b: Box, name: str, event: Event) -> None:
        actions = b.routers[name].handle(event, self.now)
        self._carry_out(b, name, actions)
        outcome = b.group.after(name, actions, self.now)
        for other, more in outcome.members:
            self._carry_out(b, other, more)
        b.group_log.extend((self.now, c) for c in outcome.changes)

    def _carry_out(self, b: Box, name: str, actions: list[Action]) -> None:
        lan = list(b.routers).index(name)
        for action in actions:
            b.log.append((self.now, name, action))
            if isinstance(action, SendAdvert) and b.link_up[lan]:
                self._broadcast(b, lan, b.routers[name].config, action.priority)
            elif isinstance(action, AddVips):
                b.vips.add(name)
            elif isinstance(action, RemoveVips):
                b.vips.discard(name)

    def _broadcast(self, src: Box, lan: int, cfg: RouterConfig, priority: int) -> None:
        datagram = advert(src.ips[lan], cfg, priority)
        for dst in self.boxes.values():
            if dst is src or not dst.link_up[lan]:
                continue
            heapq.heappush(
                self._heap, (self.now + self.latency, next(self._seq), dst.name, lan, datagram)
            )
