"""A `vrrp_sync_group`: member virtual routers that move together.

Owns: the group's state and the rules that tie its members (keepalived
2.2.7 vrrp_sync.c and the sync handlers of vrrp_scheduler.c):

- any member with a fault of its own puts the whole group in FAULT: every
  member is held in FAULT (a MASTER resigns with priority 0) until no member
  has a fault of its own any more, then they all settle to BACKUP;
- a member whose Master_Down_Timer runs out becomes MASTER only when every
  other member wants MASTER too ("prefer backup to avoid thrashing"); until
  then it waits in BACKUP, wanting MASTER, for another Master_Down_Interval
  plus a per-box offset (VirtualRouter._group_offset(): two boxes with
  crossed priorities must not keep promoting and demoting in step);
- a member becoming MASTER takes the BACKUP members with it at once;
- a MASTER member stepping down to BACKUP takes the other MASTER members to
  BACKUP: without a priority-0 advert when it heard a higher-priority
  advert (the peer's members are taking over anyway), with one when it
  resigned itself (its interface was re-created, say), as keepalived's
  set_vrrp_backup() (keepalived_netlink.c) resigns every member on an
  address change: the peer's members then all take over within Skew_Time
  instead of the one that heard priority 0 waiting a Master_Down_Interval
  for the rest (its group holds it until they all want MASTER).

Like `VirtualRouter`, it is sans-IO: the shell feeds a member an event,
carries out its actions, then calls `after()` with them and carries out the
follow-up actions it returns for the other members. The members are named;
`bind()` gives the coordinator the current router of each name (the shell
may rebuild a router). Must not read a clock or do I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pyvrrpd.core.actions import Action, SendAdvert, StateChanged
from pyvrrpd.core.router import VirtualRouter
from pyvrrpd.core.state import State


@dataclass(frozen=True, slots=True)
class GroupStateChanged:
    """The group moved from `old` to `new` (None: stopped; keepalived's STOP)."""

    group: str
    old: State
    new: State | None
    reason: str


@dataclass(slots=True)
class GroupOutcome:
    """What `after()` decided: actions for other members, group transitions."""

    members: list[tuple[str, list[Action]]] = field(default_factory=list)
    changes: list[GroupStateChanged] = field(default_factory=list)


class SyncGroup:
    """The coordinator of one `vrrp_sync_group`."""

    def __init__(self, name: str, members: Sequence[str]) -> None:
        self.name = name
        self.member_names: tuple[str, ...] = tuple(members)
        self.state = State.INIT
        self.stopped = False
        self._routers: dict[str, VirtualRouter] = {}

    def bind(self, routers: Mapping[str, VirtualRouter]) -> None:
        """Use these routers for the members (call again after one is rebuilt)."""
        for name in self.member_names:
            router = routers[name]
            self._routers[name] = router
            router.master_gate = self._may_become_master
            if self.state is State.FAULT and router.group_fault is None:
                # A rebuilt router must stay in the group's FAULT.
                router.group_fault = self._fault_reason()

    def after(self, name: str, actions: Sequence[Action], now: float) -> GroupOutcome:
        """Member `name` handled an event and returned `actions`; sync the others."""
        out = GroupOutcome()
        router = self._routers.get(name)
        if router is None or self.stopped or not router.started:
            return out  # shutting down, or not ours
        if any(self.own_faults(r) for r in self._routers.values()):
            self._enter_fault(now, out)
            return out
        if self.state is State.FAULT or any(
            r.group_fault is not None for r in self._routers.values()
        ):
            self._leave_fault(now, out)
            return out
        changes = [a for a in actions if isinstance(a, StateChanged)]
        if router.state is State.MASTER and any(c.new is State.MASTER for c in changes):
            # keepalived vrrp_sync_master(): the others follow at once.
            for other, r in self._others(name):
                if r.state is State.BACKUP:
                    out.members.append((other, r.group_promote(now)))
            self._set(State.MASTER, f"{name} became MASTER", out)
        elif router.state is State.BACKUP and any(
            c.old is State.MASTER and c.new is State.BACKUP for c in changes
        ):
            # keepalived vrrp_sync_backup(): the other masters step down, and
            # resign too when this member resigned (sent priority 0).
            resigned = any(isinstance(a, SendAdvert) and a.priority == 0 for a in actions)
            for other, r in self._others(name):
                if r.state is State.MASTER:
                    out.members.append((other, r.group_demote(now, resign=resigned)))
            self._set(State.BACKUP, f"{name} left MASTER", out)
        elif self.state is State.INIT and all(
            r.state is State.BACKUP for r in self._routers.values()
        ):
            self._set(State.BACKUP, "all members started", out)
        return out

    def stop(self) -> list[GroupStateChanged]:
        """The daemon is stopping: the group's STOP transition (for its notifies)."""
        if self.stopped:
            return []
        self.stopped = True
        return [GroupStateChanged(self.name, self.state, None, "shutdown")]

    def own_faults(self, router: VirtualRouter) -> tuple[str, ...]:
        """A member's fault reasons, leaving out the group's hold on it (a member
        not started yet has none: its facts are not known)."""
        if not router.started:
            return ()
        return tuple(r for r in router.fault_reasons() if r != router.group_fault)

    def status(self) -> dict[str, object]:
        return {
            "name": self.name,
            "state": "STOP" if self.stopped else self.state.name,
            "members": list(self.member_names),
        }

    # -------------------------------------------------------------- internals

    def _others(self, name: str) -> list[tuple[str, VirtualRouter]]:
        return [(n, r) for n, r in self._routers.items() if n != name]

    def _may_become_master(self, router: VirtualRouter) -> bool:
        """keepalived vrrp_sync_can_goto_master(): every other member wants MASTER."""
        if self.state is State.MASTER:
            return True
        return all(r.wants_master for r in self._routers.values() if r is not router)

    def _fault_reason(self) -> str:
        culprits = [
            f"{n}: {'; '.join(self.own_faults(r))}"
            for n, r in self._routers.items()
            if self.own_faults(r)
        ]
        why = ", ".join(culprits) if culprits else "a member failed"
        return f"sync group {self.name} in FAULT ({why})"

    def _enter_fault(self, now: float, out: GroupOutcome) -> None:
        """keepalived vrrp_sync_fault(): every member goes (and stays) FAULT."""
        reason = self._fault_reason()
        first = self.state is not State.FAULT
        for n, r in self._routers.items():
            # The reason text is refreshed only on entering FAULT, so a member
            # already held does not re-settle on every event.
            if r.group_fault is None or first:
                out.members.append((n, r.set_group_fault(reason, now)))
        self._set(State.FAULT, reason, out)

    def _leave_fault(self, now: float, out: GroupOutcome) -> None:
        """No member has a fault of its own: all settle to BACKUP (vrrp_sync_backup())."""
        for n, r in self._routers.items():
            if r.group_fault is not None:
                out.members.append((n, r.set_group_fault(None, now)))
        started = all(r.started for r in self._routers.values())
        if started and all(r.state is State.BACKUP for r in self._routers.values()):
            self._set(State.BACKUP, "no member in FAULT", out)
        elif self.state is State.FAULT:
            self._set(State.INIT, "no member in FAULT", out)

    def _set(self, new: State, reason: str, out: GroupOutcome) -> None:
        if new is self.state:
            return
        old, self.state = self.state, new
        if new is not State.INIT:
            out.changes.append(GroupStateChanged(self.name, old, new, reason))
