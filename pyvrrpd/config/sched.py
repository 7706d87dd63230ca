"""global_defs keywords for the daemon's own scheduling (keepalived.md 1.3).

Owns: reading and checking `vrrp_priority`, `vrrp_rt_priority`,
`vrrp_rlimit_rttime` (and its deprecated spelling `vrrp_rlimit_rtime`),
`vrrp_no_swap`, `max_auto_priority` and `min_auto_priority_delay` into the
`GlobalDefs` fields of the same names, with keepalived 2.2.7's ranges
(core/global_parser.c). keepalived clamps an out-of-range realtime priority
and reports a config error; here every bad value is an error at its token,
like the other keywords. Must not: apply anything (pyvrrpd.shell.priority
does, at daemon start).
"""

from __future__ import annotations

from .lexer import Stmt, Token
from .values import Reporter, flag, int_value

# sched_get_priority_min/max(SCHED_RR) on Linux.
RT_PRIORITY_MIN = 1
RT_PRIORITY_MAX = 99
RLIMIT_RTTIME_MAX = 2**32 - 1  # keepalived reads an unsigned 32-bit value
AUTO_DELAY_MAX = 10_000_000  # µs (10 s), keepalived's bound

DEPRECATED = {"vrrp_rlimit_rtime": "vrrp_rlimit_rttime"}  # keepalived: deprecated 2020-02-02
KEYWORDS = frozenset(
    {
        "vrrp_priority",
        "vrrp_rt_priority",
        "vrrp_rlimit_rttime",
        "vrrp_no_swap",
        "max_auto_priority",
        "min_auto_priority_delay",
        *DEPRECATED,
    }
)


def read(rep: Reporter, stmt: Stmt, values: dict[str, object], where: dict[str, Token]) -> None:
    """One statement whose keyword is in KEYWORDS into `values` (GlobalDefs field names).

    `where` records the keyword token of each field set, for `check`.
    """
    kw = stmt.keyword
    word = DEPRECATED.get(kw.text, kw.text)
    if word != kw.text:
        rep.warn(kw, f"keyword '{kw.text}' is deprecated; use '{word}'")
    value: object = None
    if word == "vrrp_priority":
        # A nice value: negative runs the daemon ahead of ordinary processes.
        value = int_value(rep, stmt, -20, 19, what="vrrp_priority (a nice value)")
    elif word == "vrrp_rt_priority":
        value = int_value(rep, stmt, RT_PRIORITY_MIN, RT_PRIORITY_MAX)
    elif word == "vrrp_rlimit_rttime":
        value = int_value(rep, stmt, 1, RLIMIT_RTTIME_MAX, what="vrrp_rlimit_rttime (microseconds)")
        # keepalived: the soft limit is half of it and must not be 0.
        if value == 1:
            value = 2
    elif word == "vrrp_no_swap":
        value = flag(rep, stmt)
    elif word == "max_auto_priority":
        value = _max_auto_priority(rep, stmt)
    elif word == "min_auto_priority_delay":
        value = int_value(
            rep, stmt, 1, AUTO_DELAY_MAX, what="min_auto_priority_delay (microseconds)"
        )
    if value is not None:
        values[word] = value
        where[word] = kw


def _max_auto_priority(rep: Reporter, stmt: Stmt) -> int | None:
    # keepalived: no value means the highest SCHED_RR priority; -1 means "off,
    # and do not suggest it at start" (pyvrrpd never suggests it: both read as 0).
    if len(stmt.tokens) == 1:
        return RT_PRIORITY_MAX
    value = int_value(rep, stmt, -1, RT_PRIORITY_MAX)
    if value == -1:
        return 0
    return value


def check(rep: Reporter, values: dict[str, object], where: dict[str, Token]) -> None:
    """Warn about settings that keepalived accepts but that have no effect together."""
    realtime = "vrrp_rt_priority" in values or bool(values.get("max_auto_priority"))
    if "vrrp_priority" in where and "vrrp_rt_priority" in values:
        # keepalived sets the nice value only when it does not go realtime.
        rep.warn(
            where["vrrp_priority"],
            "vrrp_priority has no effect with vrrp_rt_priority (realtime scheduling"
            " ignores nice values; keepalived skips it too)",
        )
    if "vrrp_rlimit_rttime" in where and not realtime:
        rep.warn(
            where["vrrp_rlimit_rttime"],
            "vrrp_rlimit_rttime applies only under realtime scheduling"
            " (vrrp_rt_priority or max_auto_priority); ignored",
        )
    elif "vrrp_rlimit_rttime" in where:
        # keepalived's parent restarts a VRRP child the kernel kills at this
        # limit; pyvrrpd has no parent, and a killed master keeps its VIPs.
        # Measured: 10000 (keepalived's default) killed it under a 250k
        # packets/s flood. Unset, pyvrrpd sets no hard limit (shell/priority.py).
        rep.warn(
            where["vrrp_rlimit_rttime"],
            "vrrp_rlimit_rttime is a hard limit: the kernel SIGKILLs the daemon"
            " after that much realtime CPU without a pause (a flood can do it),"
            " leaving its VIPs in place; leave it unset for no hard limit",
        )
    if "min_auto_priority_delay" in where and not values.get("max_auto_priority"):
        rep.warn(
            where["min_auto_priority_delay"],
            "min_auto_priority_delay has no effect without max_auto_priority; ignored",
        )


__all__ = ["KEYWORDS", "check", "read"]
