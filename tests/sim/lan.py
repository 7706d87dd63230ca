"""An in-memory LAN of VirtualRouters: a heap of deliveries and deadlines.

Each router is driven exactly as the daemon drives it (events in, actions
out, one deadline per router), with adverts encoded and decoded through the
real wire codecs. Knobs: one-way latency and per-link packet loss.
"""

from __future__ import annotations

import heapq
import itertools
import random
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from pyvrrpd.core.actions import Action, AddVips, RemoveVips, SendAdvert, SendGarp, StateChanged
from pyvrrpd.core.events import (
    Event,
    PacketReceived,
    ShutdownRequested,
    Started,
    TimerFired,
    TrackerChanged,
)
from pyvrrpd.core.router import RouterConfig, VirtualRouter
from pyvrrpd.core.state import State
from pyvrrpd.wire.ipv4 import build_ipv4
from pyvrrpd.wire.vrrp import VRRP_GROUP, encode_advert


def advert(src: IPv4Address, cfg: RouterConfig, priority: int) -> bytes:
    """The IPv4 datagram of `cfg`'s advert at `priority`, as a router sends it."""
    payload = encode_advert(
        cfg.vrid, priority, cfg.vips, int(cfg.advert_int), cfg.auth_type, cfg.auth_data
    )
    return build_ipv4(src, VRRP_GROUP, payload)


class Clock:
    """Virtual time: a network steps from one delivery or deadline to the next."""

    now = 0.0

    def _next_time(self) -> float | None:
        raise NotImplementedError

    def _step(self) -> None:
        raise NotImplementedError

    def run_until(self, t: float) -> None:
        while True:
            nxt = self._next_time()
            if nxt is None or nxt > t:
                break
            self.now = nxt
            self._step()
        self.now = max(self.now, t)

    def run_for(self, dt: float) -> None:
        self.run_until(self.now + dt)


@dataclass
class Node:
    ip: IPv4Address
    router: VirtualRouter
    alive: bool = True
    has_vips: bool = False
    garps: int = 0
    log: list[tuple[float, Action]] = field(default_factory=list)


class Lan(Clock):
    def __init__(self, latency: float = 0.0005, loss: float = 0.0, seed: int = 0) -> None:
        self.now = 0.0
        self.latency = latency
        self.loss = loss
        self.rng = random.Random(seed)
        self.nodes: dict[str, Node] = {}
        self._heap: list[tuple[float, int, str, str, bytes]] = []
        self._seq = itertools.count()

    def add(self, name: str, ip: str, config: RouterConfig) -> Node:
        node = Node(IPv4Address(ip), VirtualRouter(config))
        self.nodes[name] = node
        return node

    # -- driving
    def start(self, name: str) -> None:
        node = self.nodes[name]
        node.alive = True
        node.router = VirtualRouter(node.router.config)
        self._feed(name, Started(node.ip))

    def stop(self, name: str) -> None:
        """Graceful stop (SIGTERM): priority 0 goes out."""
        self._feed(name, ShutdownRequested())
        self.nodes[name].alive = False

    def crash(self, name: str) -> None:
        """SIGKILL: nothing goes out; VIPs stay on the box (no VRRP any more)."""
        self.nodes[name].alive = False

    def tracker(self, name: str, tracker: str, ok: bool | None) -> None:
        self._feed(name, TrackerChanged(tracker, ok))

    # -- observing
    def masters(self) -> list[str]:
        return [n for n, x in self.nodes.items() if x.alive and x.router.state is State.MASTER]

    def vip_holders(self) -> list[str]:
        return [n for n, x in self.nodes.items() if x.has_vips]

    def state(self, name: str) -> State:
        return self.nodes[name].router.state

    # -- internals
    def _next_time(self) -> float | None:
        times = [self._heap[0][0]] if self._heap else []
        for node in self.nodes.values():
            d = node.router.next_deadline()
            if node.alive and d is not None:
                times.append(d)
        return min(times) if times else None

    def _step(self) -> None:
        while self._heap and self._heap[0][0] <= self.now:
            _, _, _kind, dst, data = heapq.heappop(self._heap)
            if self.nodes[dst].alive:
                self._feed(dst, PacketReceived(data))
        for name, node in self.nodes.items():
            d = node.router.next_deadline()
            if node.alive and d is not None and d <= self.now:
                self._feed(name, TimerFired())

    def _feed(self, name: str, event: Event) -> None:
        node = self.nodes[name]
        for action in node.router.handle(event, self.now):
            node.log.append((self.now, action))
            if isinstance(action, SendAdvert):
                self._broadcast(name, action.priority)
            elif isinstance(action, AddVips):
                node.has_vips = True
            elif isinstance(action, RemoveVips):
                node.has_vips = False
            elif isinstance(action, SendGarp):
                node.garps += action.repeat

    def _broadcast(self, src: str, priority: int) -> None:
        node = self.nodes[src]
        datagram = advert(node.ip, node.router.config, priority)
        for dst in self.nodes:
            if dst == src or self.rng.random() < self.loss:
                continue
            heapq.heappush(
                self._heap, (self.now + self.latency, next(self._seq), "pkt", dst, datagram)
            )

    def transitions(self, name: str) -> list[tuple[float, State, State]]:
        return [(t, a.old, a.new) for t, a in self.nodes[name].log if isinstance(a, StateChanged)]
