"""Notify keywords: per-instance hooks and the global FIFO / mail switches.

Owns: reading `notify_master|backup|fault|stop|deleted`, `notify`,
`notify_master_rx_lower_pri`, `notify_priority_changes` and `smtp_alert` in a
vrrp_instance (and, through the same functions, a vrrp_sync_group), and the
global_defs `notify_fifo`, `notify_fifo_script`, `vrrp_notify_fifo`,
`vrrp_notify_fifo_script`, `vrrp_notify_priority_changes`, `smtp_alert_vrrp`,
`no_email_faults` and `fifo_write_vrrp_states_on_reload` (keepalived.md 1.3, 1.8, 3.1, 3.2).

keepalived's form, kept here: the first argument is the whole command
(usually quoted), split again shell-like; the next two are the user and
group the hook runs as. A second occurrence of a hook keeps the first and
says so (vrrp_parser.c "script already specified - ignoring").
Must not: check whether a script exists or is secure (the shell does that at
start-up, like keepalived's check_notify_script_secure()).
"""

from __future__ import annotations

import pwd
import shlex
from dataclasses import replace
from typing import Protocol

from .lexer import Stmt
from .model import NotifyConfig, NotifyFifo, NotifyScript
from .values import Cursor, Reporter, bool_value, extra_args, flag, need_arg

# keyword -> NotifyConfig field
SCRIPT_FIELDS = {
    "notify_master": "master",
    "notify_backup": "backup",
    "notify_fault": "fault",
    "notify_stop": "stop",
    "notify": "generic",
    "notify_master_rx_lower_pri": "master_rx_lower_pri",
}
INSTANCE_KEYWORDS = frozenset(
    {*SCRIPT_FIELDS, "notify_deleted", "notify_priority_changes", "smtp_alert"}
)
GLOBAL_KEYWORDS = frozenset(
    {
        "notify_fifo",
        "notify_fifo_script",
        "vrrp_notify_fifo",
        "vrrp_notify_fifo_script",
        "vrrp_notify_priority_changes",
        "smtp_alert_vrrp",
        "no_email_faults",
        "fifo_write_vrrp_states_on_reload",
    }
)


class HasNotify(Protocol):
    """A draft (instance or sync group) carrying a NotifyConfig being built."""

    notify: NotifyConfig


def read_script(rep: Reporter, stmt: Stmt) -> NotifyScript | None:
    """`KEYWORD "cmd args" [user [group]]` into a NotifyScript (None: error reported)."""
    tok = need_arg(rep, stmt, 1, "a command")
    if tok is None:
        return None
    extra_args(rep, stmt, 3)
    try:
        argv = tuple(shlex.split(tok.text, posix=True))
    except ValueError as exc:
        rep.error(tok, f"cannot split {stmt.keyword.text} command: {exc}")
        return None
    if not argv:
        rep.error(tok, f"{stmt.keyword.text} needs a command, got an empty string")
        return None
    user = group = None
    if len(stmt.tokens) > 2:
        user = stmt.tokens[2].text
        if len(stmt.tokens) > 3:
            group = stmt.tokens[3].text.removeprefix(":")
        user, _, inline = user.partition(":")
        group = group or inline or None
        try:
            pwd.getpwnam(user)
        except KeyError:
            # keepalived: "Invalid user/group for notify script X - ignoring";
            # a log line, not a config error, so `-t` still passes.
            rep.warn(
                stmt.tokens[2],
                f"invalid user '{user}' for {stmt.keyword.text} script {argv[0]}; ignored",
            )
            return None
    return NotifyScript(argv, user, group, tok.loc)


def read_instance_keyword(rep: Reporter, d: HasNotify, stmt: Stmt, body: Cursor) -> None:
    """Handler for every INSTANCE_KEYWORDS entry (also usable for sync groups)."""
    word = stmt.keyword.text
    field = SCRIPT_FIELDS.get(word)
    if field is not None:
        if getattr(d.notify, field) is not None:
            rep.warn(stmt.keyword, f"{word} script already specified - ignoring")
            return
        script = read_script(rep, stmt)
        if script is not None:
            d.notify = replace(d.notify, **{field: script})  # type: ignore[arg-type]
    elif word == "notify_deleted":
        # `notify_deleted` alone switches the DELETED state on (sent instead
        # of FAULT when a reload removes the instance); with an argument it
        # is also the script to run.
        if d.notify.notify_deleted:
            rep.warn(stmt.keyword, "notify_deleted already specified - ignoring")
            return
        script = read_script(rep, stmt) if len(stmt.tokens) > 1 else None
        d.notify = replace(d.notify, notify_deleted=True, deleted=script)
    elif word == "notify_priority_changes":
        value = bool_value(rep, stmt)
        if value is not None:
            d.notify = replace(d.notify, priority_changes=value)
    elif word == "smtp_alert":
        value = bool_value(rep, stmt)
        if value is not None:
            d.notify = replace(d.notify, smtp_alert=value)


def read_global_keyword(rep: Reporter, stmt: Stmt, g: dict[str, object]) -> None:
    """Handler for every GLOBAL_KEYWORDS entry; stores into the GlobalDefs fields dict."""
    word = stmt.keyword.text
    if word in ("vrrp_notify_priority_changes", "smtp_alert_vrrp"):
        value = bool_value(rep, stmt)
        if value is not None:
            g[word] = value
    elif word in ("no_email_faults", "fifo_write_vrrp_states_on_reload"):
        g[word] = flag(rep, stmt)
    elif word in ("notify_fifo", "vrrp_notify_fifo"):
        _fifo(rep, stmt, g, word)
    else:  # *_notify_fifo_script
        key = word.removesuffix("_script")
        fifo = g.get(key, NotifyFifo())
        assert isinstance(fifo, NotifyFifo)
        if fifo.script is not None:
            rep.warn(stmt.keyword, f"{word} already specified - ignoring")
            return
        script = read_script(rep, stmt)
        if script is not None:
            g[key] = replace(fifo, script=script)


def _fifo(rep: Reporter, stmt: Stmt, g: dict[str, object], word: str) -> None:
    tok = need_arg(rep, stmt, 1, "a FIFO path")
    if tok is None:
        return
    extra_args(rep, stmt, 3)
    fifo = g.get(word, NotifyFifo())
    assert isinstance(fifo, NotifyFifo)
    if fifo.path is not None:
        rep.warn(stmt.keyword, f"{word} already specified - ignoring {tok.text}")
        return
    user = group = None
    if len(stmt.tokens) > 2:
        user, _, group_inline = stmt.tokens[2].text.partition(":")
        group = stmt.tokens[3].text.removeprefix(":") if len(stmt.tokens) > 3 else None
        group = group or group_inline or None
        try:
            pwd.getpwnam(user)
        except KeyError:
            rep.warn(stmt.tokens[2], f"invalid user '{user}' for {word} {tok.text}; ignored")
            return
    g[word] = replace(fifo, path=tok.text, user=user, group=group)


__all__ = [
    "GLOBAL_KEYWORDS",
    "INSTANCE_KEYWORDS",
    "read_global_keyword",
    "read_instance_keyword",
    "read_script",
]
