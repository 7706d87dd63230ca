"""What a reload (SIGHUP, `pyvrrpd reload`) changes: the pure diff of two configs.

Owns: matching the running config's instances with the new one's (by name,
then VRID and interface, as keepalived's `vrrp_exist()`; keepalived.md 4.4),
deciding per instance whether the change is applied in place, needs the
instance replaced (removed with priority 0, added as at startup), or cannot
be applied without a restart (then the instance keeps running as it was and
the plan says why); which VIPs come and go; which `vrrp_script` trackers are
kept with their state and counters; which tracker sources (process, file,
http) are built again; which global settings need a restart.
The daemon carries the plan out (shell/ops/reloader.py). No I/O here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace
from typing import Any

from pyvrrpd.config.model import Config, SyncGroup, VirtualIP, VrrpInstance
from pyvrrpd.config.strict import needs_firewall
from pyvrrpd.trackers import registry

#: Instance settings whose change makes a new router: the VRRP socket, the
#: advert's destination or its authentication change under it. Removing and
#: adding the instance is the simplest correct way (a MASTER resigns with
#: priority 0; the peer takes over after Skew_Time; the new one starts in INIT).
REPLACE_FIELDS = frozenset(
    {
        "interface",
        "virtual_router_id",
        "auth_type",
        "src_ip",
        "unicast_peer",
        "unicast_ttl",
        "check_unicast_src",
        "unicast_fault",
    }
)
#: Settings the running daemon cannot change in place (interfaces it made,
#: firewall rules, trackers watched by netlink, notify hooks checked at start):
#: the instance keeps running with its old definition and a restart is needed.
RESTART_FIELDS = frozenset(
    {
        "vmac",
        "accept",
        "strict_mode",
        "virtual_routes",
        "virtual_rules",
        "track_interface",
        "track_src_ip",
        "notify",
        "mcast_dst_ip",  # the socket joined the old group
    }
)
#: global_defs applied on reload: they only feed values the routers are given
#: (config.instance resolved them into each instance already).
LIVE_GLOBALS = frozenset({"fifo_write_vrrp_states_on_reload"})


@dataclass(frozen=True, slots=True)
class InstanceChange:
    """One instance present before and after, changed in place."""

    name: str
    new: VrrpInstance
    added_vips: tuple[VirtualIP, ...]
    removed_vips: tuple[VirtualIP, ...]
    changed: tuple[str, ...]  # field names, for the log


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    """What to do; `config` is what runs afterwards (held instances as they were)."""

    config: Config
    changed: tuple[InstanceChange, ...] = ()
    unchanged: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()  # old names, removed (also the old half of replaced)
    added: tuple[str, ...] = ()  # new names, added (also the new half of replaced)
    replaced: tuple[str, ...] = ()
    #: vrrp_script names whose tracker keeps its state and counters
    scripts_kept: tuple[str, ...] = ()
    #: tracker kinds (registry.KINDS keywords) whose source is built again
    #: from `config`; the other kinds' sources keep running untouched
    sources_rebuilt: tuple[str, ...] = ()
    #: one line each: what was not applied and needs a restart
    restart_needed: tuple[str, ...] = ()

    @property
    def noop(self) -> bool:
        return not (self.changed or self.removed or self.added)


def plain(value: Any) -> Any:
    """`value` with source locations stripped, for comparing configs whose
    lines moved (a comment added above an instance changes nothing)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (
            type(value).__name__,
            tuple(
                (f.name, plain(getattr(value, f.name)))
                for f in dataclasses.fields(value)
                if f.name != "loc"
            ),
        )
    if isinstance(value, (tuple, list)):
        return tuple(plain(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, plain(v)) for k, v in value.items()))
    return value


def _differs(a: object, b: object) -> tuple[str, ...]:
    assert dataclasses.is_dataclass(a) and dataclasses.is_dataclass(b)
    return tuple(
        f.name
        for f in dataclasses.fields(a)
        if f.name != "loc" and plain(getattr(a, f.name)) != plain(getattr(b, f.name))
    )


def _key(vip: VirtualIP) -> Any:
    return plain(vip)


def _group_of(config: Config) -> dict[str, SyncGroup]:
    return {m: g for g in config.sync_groups for m in g.members}


def plan(old: Config, new: Config) -> ReloadPlan:
    """Compare the running config with a freshly parsed one (both valid)."""
    restart: list[str] = []
    gdiff = [f for f in _differs(old.global_defs, new.global_defs) if f not in LIVE_GLOBALS]
    gdefs = replace(
        old.global_defs,
        **{f: getattr(new.global_defs, f) for f in LIVE_GLOBALS},
    )
    if gdiff:
        restart.append(f"global_defs {', '.join(sorted(gdiff))} changed: restart needed")
    for field in ("static_ipaddress", "static_routes", "static_rules"):
        if plain(getattr(old, field)) != plain(getattr(new, field)):
            restart.append(f"{field} changed: restart needed")
    # Sync groups: a member's group changed (membership, trackers, notify):
    # it keeps running as it was; keepalived too needs care here (man8).
    old_groups, new_groups = _group_of(old), _group_of(new)
    old_by, new_by = {i.name: i for i in old.instances}, {i.name: i for i in new.instances}
    held_group: set[str] = set()
    firewall = any(needs_firewall(i) for i in old.instances)  # shell/host/firewall.py exists
    for name in set(old_by) | set(new_by):
        og, ng = old_groups.get(name), new_groups.get(name)
        if plain(og) != plain(ng):
            held_group.add(name)
    if held_group:
        restart.append(
            f"vrrp_sync_group of {', '.join(sorted(held_group))} changed: restart needed"
            " (those instances keep their running definition)"
        )

    changed: list[InstanceChange] = []
    unchanged: list[str] = []
    removed: list[str] = []
    added: list[str] = []
    replaced: list[str] = []
    result: list[VrrpInstance] = []
    for o in old.instances:
        n = new_by.get(o.name)
        if o.name in held_group:
            result.append(o)
            continue
        if n is None:
            if o.vmac.enabled:
                restart.append(f"use_vmac instance {o.name} removed: restart needed")
                result.append(o)
            else:
                removed.append(o.name)
            continue
        diff = _differs(o, n)
        held = sorted(set(diff) & RESTART_FIELDS)
        if _firewall_changes(o, n, firewall):
            held.append("VIPs or priority 255 with accept mode off")
        if o.vmac.enabled and set(diff) & REPLACE_FIELDS:
            held.extend(sorted(set(diff) & REPLACE_FIELDS))
        if held:
            restart.append(f"{o.name}: {', '.join(held)} changed: restart needed")
            result.append(o)
            continue
        if set(diff) & REPLACE_FIELDS:
            if n.track_src_ip:
                # Its tracker (trackers/srcip.py) follows the old source address.
                restart.append(f"{o.name}: {', '.join(diff)} changed with track_src_ip: restart")
                result.append(o)
                continue
            replaced.append(o.name)
            removed.append(o.name)
            added.append(n.name)
            result.append(n)
            continue
        if not diff:
            unchanged.append(o.name)
            result.append(o)
            continue
        old_vips = {_key(v): v for v in o.virtual_ipaddress + o.virtual_ipaddress_excluded}
        new_vips = {_key(v): v for v in n.virtual_ipaddress + n.virtual_ipaddress_excluded}
        changed.append(
            InstanceChange(
                name=n.name,
                new=n,
                added_vips=tuple(v for k, v in new_vips.items() if k not in old_vips),
                removed_vips=tuple(v for k, v in old_vips.items() if k not in new_vips),
                changed=diff,
            )
        )
        result.append(n)
    old_names = set(old_by)
    for n in new.instances:
        if n.name in old_names or n.name in held_group:
            continue
        if _firewall_changes(None, n, firewall):
            restart.append(f"instance {n.name} added with accept mode off: restart needed")
            continue
        if n.vmac.enabled or n.track_interface or n.track_src_ip:
            # Their interfaces and trackers are set up once, at start.
            what = "use_vmac" if n.vmac.enabled else "track_interface/track_src_ip"
            restart.append(f"{what} instance {n.name} added: restart needed")
            continue
        added.append(n.name)
        result.append(n)

    # Trackers: a script whose definition is the same keeps its state and
    # counters (keepalived: "considered successful on reload" keeps the
    # result); a changed or new one starts afresh.
    new_scripts = {s.name: s for s in new.scripts}
    kept_scripts = tuple(
        s.name
        for s in old.scripts
        if s.name in new_scripts and plain(s) == plain(new_scripts[s.name])
    )
    config = replace(
        new,
        global_defs=gdefs,
        instances=tuple(result),
        static_ipaddress=old.static_ipaddress,
        static_routes=old.static_routes,
        static_rules=old.static_rules,
        sync_groups=old.sync_groups if held_group else new.sync_groups,
        scripts=_scripts(old, new, tuple(result)),
        **_blocks(old, new, tuple(result)),
    )
    # Tracker sources (process, file, http): a kind whose blocks or uses
    # changed gets a new source built from the new config (keepalived
    # re-reads them all on reload, keepalived.md 4.4); an unchanged kind's
    # source keeps running, with its watches, counters and pending delays.
    rebuilt = tuple(
        kind.keyword
        for kind in registry.KINDS
        if plain(registry.built_from(old, kind)) != plain(registry.built_from(config, kind))
    )
    return ReloadPlan(
        config=config,
        changed=tuple(changed),
        unchanged=tuple(unchanged),
        removed=tuple(removed),
        added=tuple(added),
        replaced=tuple(replaced),
        scripts_kept=kept_scripts,
        sources_rebuilt=rebuilt,
        restart_needed=tuple(restart),
    )


def _firewall_changes(o: VrrpInstance | None, n: VrrpInstance, firewall: bool) -> bool:
    """Whether accept mode's drop rules (shell/host/firewall.py: made at start, for
    the VIPs of then) would have to change; `firewall`: the daemon has them."""
    if o is None:  # a new instance: it gets drop rules only if the firewall is there
        return needs_firewall(n) and not firewall
    if needs_firewall(o) != needs_firewall(n):
        return True
    return needs_firewall(n) and plain(_all_vips(o)) != plain(_all_vips(n))


def _all_vips(inst: VrrpInstance) -> tuple[VirtualIP, ...]:
    return inst.virtual_ipaddress + inst.virtual_ipaddress_excluded


def _blocks(old: Config, new: Config, instances: tuple[VrrpInstance, ...]) -> dict[str, Any]:
    """Per tracker kind, the new blocks plus old ones only a held instance
    (kept at its running definition) still references."""
    out: dict[str, Any] = {}
    for kind in registry.KINDS:
        blocks = getattr(new, kind.blocks)
        have = {b.name for b in blocks}
        used = {r.name for i in instances for r in getattr(i, kind.refs)}
        extra = tuple(b for b in getattr(old, kind.blocks) if b.name not in have and b.name in used)
        out[kind.blocks] = (*blocks, *extra)
    return out


def _scripts(old: Config, new: Config, instances: tuple[VrrpInstance, ...]) -> tuple[Any, ...]:
    """The new scripts, plus old ones only a held instance still tracks."""
    have = {s.name for s in new.scripts}
    used = {r.name for i in instances for r in i.track_script}
    extra = tuple(s for s in old.scripts if s.name not in have and s.name in used)
    return (*new.scripts, *extra)
