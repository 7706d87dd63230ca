"""`dynamic_interfaces [allow_if_changes]` (global_defs) and `track_src_ip` (vrrp_instance).

Owns: reading both keywords (keepalived 2.2.7: global_parser.c
`dynamic_interfaces_handler`, vrrp_parser.c `vrrp_track_srcip_handler`) and
resolving `track_src_ip`: keepalived clears it when the instance has no
configured source address (`unicast_src_ip` / `mcast_src_ip`; vrrp.c "Clear
track_saddr if no saddr specified"). Must not act on them: the daemon refuses
to start on a missing interface without `dynamic_interfaces`, and
pyvrrpd.trackers.srcip puts the instance in FAULT while its source address is
missing (from its interface with `track_src_ip`, else from every interface).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from .lexer import Stmt
from .model import VrrpInstance
from .values import Cursor, Reporter, extra_args, flag

if TYPE_CHECKING:
    from .instance import InstanceDraft

GLOBAL_KEYWORDS = frozenset({"dynamic_interfaces"})


def read_global(rep: Reporter, stmt: Stmt, values: dict[str, object]) -> None:
    """`dynamic_interfaces [allow_if_changes]` into `values` (GlobalDefs fields)."""
    values["dynamic_interfaces"] = True
    if len(stmt.tokens) > 1:
        extra_args(rep, stmt, 1)
        opt = stmt.tokens[1]
        if opt.text == "allow_if_changes":
            values["allow_if_changes"] = True
        else:
            rep.warn(opt, f"Unknown dynamic_interfaces option '{opt.text}'")


def read_track_src_ip(rep: Reporter, d: InstanceDraft, stmt: Stmt, body: Cursor) -> None:
    flag(rep, stmt)
    d.track_src_ip = True


INSTANCE_HANDLERS = {"track_src_ip": read_track_src_ip}


def resolve(inst: VrrpInstance) -> VrrpInstance:
    """`track_src_ip` stays only with a configured source address, as in keepalived."""
    if inst.track_src_ip and getattr(inst, "src_ip", None) is None:
        return replace(inst, track_src_ip=False)
    return inst
