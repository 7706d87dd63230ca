"""keepalived 2.2.7's wording for pyvrrpd's log events, in one place.

Owns: the mapping from a structured log event (`state_change`,
`sent_priority_0`, `script_failed` ...) to the line keepalived 2.2.7 logs for
the same thing (vrrp.c, vrrp_scheduler.c, main.c), so log alerts written
for keepalived (`grep "Entering MASTER STATE"`) keep firing. The text is
added to every event as its `msg` field by shell/ops/logsetup.py; the
`keepalived` compat command also puts it first on the line.
Also owns the lead-in events keepalived logs just before a state change
("Receive advertisement timeout", "Master received advert from ...").
Must not: decide what is logged or log anything itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pyvrrpd import __version__

# keepalived's syslog identifier for its VRRP process (vrrp_daemon.c).
KEEPALIVED_IDENT = "Keepalived_vrrp"

_STATE_WORD = {"MASTER": "MASTER", "BACKUP": "BACKUP", "FAULT": "FAULT"}


def _state_change(f: Mapping[str, Any]) -> str | None:
    new = _STATE_WORD.get(str(f.get("new")))
    if new is None:  # INIT at shutdown: keepalived logs no state line
        return None
    # vrrp_scheduler.c vrrp_init_state(): the state decided at start carries
    # "(init)", except MASTER (an address owner, vrrp_state_goto_master()).
    # An instance waiting for its first script result is silently FAULT in
    # keepalived and then logs the plain line, as we do when INIT ends later.
    first = f.get("old") == "INIT" and f.get("reason") == "startup"
    init = " (init)" if first and new != "MASTER" else ""
    return f"({f.get('instance')}) Entering {new} STATE{init}"


def _group_state(f: Mapping[str, Any]) -> str | None:
    # vrrp_sync.c: "VRRP_Group(G) Syncing instances to MASTER state"; none at STOP.
    new = _STATE_WORD.get(str(f.get("new")))
    return None if new is None else f"VRRP_Group({f.get('group')}) Syncing instances to {new} state"


def _script_exit(f: Mapping[str, Any]) -> str | None:
    # keepalived's last status starts at 0: a first run returning 0 is no news.
    if f.get("previous") is None and f.get("status") == 0:
        return None
    return f"Script `{f.get('script')}` now returning {f.get('status')}"


def _script_failed(f: Mapping[str, Any]) -> str:
    # vrrp_scheduler.c vrrp_script_child_thread(): "failed (exited with
    # status N)", "failed (due to signal N)", or plain "timed_out".
    why = str(f.get("why") or "")
    if why == "timed_out":
        return f"VRRP_Script({f.get('script')}) timed_out"
    return f"VRRP_Script({f.get('script')}) failed" + (f" ({why})" if why else "")


_TEXT: dict[str, Callable[[Mapping[str, Any]], str | None]] = {
    "started": lambda f: f"Starting pyvrrpd {__version__} (keepalived v2.2.7 compatible)",
    "stopping": lambda f: "Stopping",
    "stopped": lambda f: f"Stopped pyvrrpd {__version__}",
    "state_change": _state_change,
    "sync_group_state": _group_state,
    "reloading": lambda f: "Reloading",  # vrrp_daemon.c reload_vrrp_thread()
    "advert_timeout": lambda f: f"({f.get('instance')}) Receive advertisement timeout",
    "higher_priority_advert": lambda f: (
        f"({f.get('instance')}) Master received advert from {f.get('src')} "
        f"with higher priority {f.get('priority')}, ours {f.get('ours')}"
    ),
    "same_priority_advert": lambda f: (
        f"({f.get('instance')}) Master received advert from {f.get('src')} "
        f"with same priority {f.get('priority')} but higher IP address than ours"
    ),
    "lower_priority_advert": lambda f: (
        f"({f.get('instance')}) received lower priority ({f.get('priority')}) "
        f"advert from {f.get('src')} - discarding"
    ),
    "priority_0_advert": lambda f: (
        f"({f.get('instance')}) Backup received priority 0 advertisement"
    ),
    "sent_priority_0": lambda f: f"({f.get('instance')}) sent 0 priority",
    "setting_vips": lambda f: f"({f.get('instance')}) setting VIPs.",
    "removing_vips": lambda f: f"({f.get('instance')}) removing VIPs.",
    "priority_change": lambda f: (
        f"({f.get('instance')}) Changing effective priority from {f.get('old')} to {f.get('new')}"
    ),
    "script_exit_changed": _script_exit,
    "script_succeeded": lambda f: f"VRRP_Script({f.get('script')}) succeeded",
    "script_failed": _script_failed,
}


def keepalived_text(event: str, fields: Mapping[str, Any]) -> str | None:
    """The line keepalived 2.2.7 logs for `event` with `fields`, or None if it has none."""
    render = _TEXT.get(event)
    return render(fields) if render is not None else None


def lead_in(
    instance: str,
    old: str,
    new: str,
    reason: str,
    *,
    master: str | None,
    master_priority: int | None,
    ours: int,
) -> list[tuple[str, dict[str, Any]]]:
    """Events keepalived logs just before this state change, as (event, fields).

    keepalived 2.2.7 says why first: "Receive advertisement timeout" when the
    Master_Down_Timer fired (vrrp_scheduler.c), "Master received advert from
    X with higher priority P, ours Q" when a master yields (vrrp.c).
    """
    if reason == "master_down_timer" and new == "MASTER":
        return [("advert_timeout", {"instance": instance})]
    if old == "MASTER" and new == "BACKUP" and reason.startswith("higher priority advert"):
        # An equal priority wins on the higher address (RFC 3768 6.4.3).
        same = master_priority == ours
        return [
            (
                "same_priority_advert" if same else "higher_priority_advert",
                {"instance": instance, "src": master, "priority": master_priority, "ours": ours},
            )
        ]
    return []
