"""The chaos test's seeded fault sequence: which fault, on which box, how long, what gap.

Pure (no clock, no I/O): the same seed always gives the same sequence, so a
CI failure is replayed with ``python -m bench.chaos --seeds 1 --first-seed S``.
Targets are roles (``master``/``backup``) resolved when the fault is applied;
what the kernel and the daemons do in between is not deterministic.

Owns the fault kinds and their random parameters (issue 5 item 12):
daemon SIGKILL / SIGTERM / SIGSTOP-then-SIGCONT (0.5-5 s), HAProxy killed and
restarted, link down/up (the box's eth0 or its bridge port), interface
re-created (new MAC), primary address removed and re-added, floods,
USR1 / USR2 / HUP to the daemon; 0.2-4 s between faults.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterator
from dataclasses import dataclass

#: kind -> relative weight once every kind has been drawn once.
WEIGHTS: dict[str, float] = {
    "kill": 2.0,
    "term": 2.0,
    "stop": 2.0,
    "haproxy": 2.0,
    "link": 2.0,
    "recreate": 1.5,
    "addr": 1.5,
    "flood": 1.5,
    "usr1": 1.0,
    "usr2": 1.0,
    "hup": 1.0,
}
KINDS = tuple(WEIGHTS)
#: Faults that last (the box is busy until their recovery).
LASTING = frozenset({"stop", "haproxy", "link", "recreate", "addr", "flood"})
#: Faults that need a running daemon to signal.
SIGNALS = frozenset({"kill", "term", "stop", "usr1", "usr2", "hup"})
#: Flood mixes (pyvrrpd.lab.flood kinds). "hostile" has no valid advert;
#: the others carry valid lower-priority adverts (see chaos_rules).
FLOOD_MIXES: dict[str, str] = {
    "hostile": "wrong_pass=1,unknown_vrid=1,bad_checksum=1,truncated=1,version3=1,garbage=1",
    "all": "all",
    "lower_prio": "lower_prio=1",
}
GAP = (0.2, 4.0)
STOP_HOLD = (0.5, 5.0)
HAPROXY_HOLD = (0.5, 6.0)
LINK_HOLD = (0.5, 5.0)
RECREATE_PAUSE = (0.0, 1.5)
ADDR_HOLD = (0.5, 5.0)
FLOOD_SECONDS = (1.0, 6.0)  # past Master_Down_Interval (3.65 s) at times


@dataclass(frozen=True, slots=True)
class Fault:
    """One planned fault."""

    index: int
    kind: str
    target: str  # "master" | "backup" | "lan" (floods)
    hold: float  # seconds until the recovery (0: none)
    gap: float  # seconds from this fault to the next one
    variant: str = ""  # link: eth0|port; haproxy: KILL|TERM; flood: a FLOOD_MIXES key

    def describe(self) -> str:
        v = f" {self.variant}" if self.variant else ""
        hold = f" for {self.hold:.2f} s" if self.hold else ""
        return f"#{self.index} {self.kind}{v} on {self.target}{hold}"


def _one(rng: random.Random, index: int, kind: str) -> Fault:
    def u(lo_hi: tuple[float, float]) -> float:
        return round(rng.uniform(*lo_hi), 2)

    target = "master" if rng.random() < 0.6 else "backup"
    hold, variant = 0.0, ""
    if kind == "stop":
        hold = u(STOP_HOLD)
    elif kind == "haproxy":
        hold, variant = u(HAPROXY_HOLD), rng.choice(("KILL", "TERM"))
    elif kind == "link":
        hold, variant = u(LINK_HOLD), rng.choice(("eth0", "port"))
    elif kind == "recreate":
        hold = u(RECREATE_PAUSE)
    elif kind == "addr":
        hold = u(ADDR_HOLD)
    elif kind == "flood":
        target = "lan"
        hold, variant = u(FLOOD_SECONDS), rng.choices(list(FLOOD_MIXES), (4, 4, 2))[0]
    return Fault(index, kind, target, hold, u(GAP), variant)


def faults(seed: int, without: Collection[str] = ()) -> Iterator[Fault]:
    """An endless seeded sequence: every kind once (shuffled), then weighted draws.

    ``without`` leaves kinds out (bench runs that look for one class of bug).
    """
    rng = random.Random(seed)
    kinds = [k for k in KINDS if k not in without]
    if not kinds:
        raise ValueError("no fault kinds left")
    weights = [WEIGHTS[k] for k in kinds]
    first = list(kinds)
    rng.shuffle(first)
    index = 0
    while True:
        kind = first[index] if index < len(first) else rng.choices(kinds, weights)[0]
        index += 1
        yield _one(rng, index, kind)
