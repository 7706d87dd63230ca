"""VRRP instance states and the table of allowed transitions.

Owns: the `State` enum and the one checked setter every transition goes
through. The table is data so the docs can draw the state diagram from it.
"""

from __future__ import annotations

from enum import Enum


class State(Enum):
    """keepalived's states; the JSON dump numbers them 0..3 in this order."""

    INIT = 0
    BACKUP = 1
    MASTER = 2
    FAULT = 3  # keepalived-specific: not in RFC 3768, entered on tracker/link faults


# RFC 3768 6.4 plus keepalived's FAULT. INIT is also where Shutdown leads.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.INIT: frozenset({State.BACKUP, State.MASTER, State.FAULT}),
    State.BACKUP: frozenset({State.MASTER, State.FAULT, State.INIT}),
    State.MASTER: frozenset({State.BACKUP, State.FAULT, State.INIT}),
    State.FAULT: frozenset({State.BACKUP, State.INIT}),
}


class IllegalTransition(RuntimeError):
    """A bug in the core: the router tried a move the table forbids."""


def check_transition(old: State, new: State) -> State:
    """Return `new` if `old -> new` is in the table, else raise IllegalTransition."""
    if new not in TRANSITIONS[old]:
        raise IllegalTransition(f"{old.name} -> {new.name}")
    return new


def mermaid_diagram() -> str:
    """The transition table as a Mermaid state diagram (for the docs)."""
    lines = ["stateDiagram-v2"]
    for old, news in TRANSITIONS.items():
        lines.extend(
            f"    {old.name} --> {new.name}" for new in sorted(news, key=lambda s: s.value)
        )
    return "\n".join(lines)
