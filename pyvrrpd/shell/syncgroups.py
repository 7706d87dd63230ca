"""The daemon's `vrrp_sync_group`s: the core's coordinators wired to the instances.

Owns: one `pyvrrpd.core.syncgroup.SyncGroup` per configured group, bound to
the current router of each member; after a member has handled an event (and
its actions were carried out) the group's follow-up actions for the other
members are carried out too, and each group transition is logged once and
notified (notify_master|backup|fault, `notify` with `GROUP NAME STATE 0`,
FIFO line, mail) through shell/ops/notify.py. The STOP notify at shutdown is
the notifier's (it sends STOP for every instance, then every group).
Must not: decide states (the core does) or do I/O itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog

from pyvrrpd.config.model import Config
from pyvrrpd.core.actions import Action
from pyvrrpd.core.syncgroup import SyncGroup
from pyvrrpd.shell.instance import Instance
from pyvrrpd.shell.ops.notify import Notifier

log = structlog.get_logger("pyvrrpd")


class SyncGroups:
    """Every sync group of the daemon."""

    def __init__(
        self,
        config: Config,
        instances: Mapping[str, Instance],
        carry_out: Callable[[Instance, Sequence[Action]], None],
        notifier: Notifier | None = None,
    ) -> None:
        self.groups = {g.name: SyncGroup(g.name, g.members) for g in config.sync_groups}
        self.group_of = {m: self.groups[g.name] for g in config.sync_groups for m in g.members}
        self._instances = instances  # the daemon's by_name dict, filled at setup
        self._carry_out = carry_out
        self.notifier = notifier
        # The group state the notifier sees: updated only after the members
        # have followed, as keepalived sets the group's state after the loop
        # over its members (so their own notifies still go out).
        self._shown: dict[str, str | None] = dict.fromkeys(self.groups)
        if notifier is not None and self.groups:
            # keepalived's notifies_sent rule: a member whose group is already
            # in the new state does not notify again (vrrp_notify.c).
            notifier.sync_state = self.state_of

    def bind(self) -> None:
        """Hook every group to its members' current routers (before they start)."""
        for group in self.groups.values():
            group.bind({n: self._instances[n].router for n in group.member_names})

    def after(self, inst: Instance, actions: Sequence[Action], now: float) -> None:
        """`inst` handled an event and `actions` were carried out: sync its group."""
        group = self.group_of.get(inst.name)
        if group is None:
            return
        # A router may have been rebuilt (internal error, disabled script).
        group.bind({n: self._instances[n].router for n in group.member_names})
        outcome = group.after(inst.name, actions, now)
        for name, more in outcome.members:
            self._carry_out(self._instances[name], more)
        for change in outcome.changes:
            new = change.new.name if change.new is not None else "STOP"
            self._shown[change.group] = new
            log.info(
                "sync_group_state",
                group=change.group,
                old=change.old.name,
                new=new,
                reason=change.reason,
                detail=f"VRRP_Group({change.group}) Syncing instances to {new} state",
            )
            if self.notifier is not None:
                self.notifier.group_state(change.group, new)

    def state_of(self, inst_name: str) -> str | None:
        """The state of the instance's group (None: not in a group, or starting)."""
        group = self.group_of.get(inst_name)
        return None if group is None else self._shown[group.name]

    def status(self) -> list[dict[str, Any]]:
        return [g.status() for g in self.groups.values()]
