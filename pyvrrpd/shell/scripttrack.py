"""Running `vrrp_script` checks on their interval and turning results into tracker events.

Owns: when each script runs (on the daemon's one timer heap), skipping a run
while the previous one is still going, the keepalived rise/fall counter per
script, and deciding at start-up whether a script may run at all (found,
executable, secure, runnable as its user). Running the process is
`pyvrrpd.io.scripts`; what a result means for priorities is `pyvrrpd.core`.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import os
import pwd
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from pyvrrpd.config.model import GlobalDefs, VrrpScript
from pyvrrpd.core.tracking import RiseFall
from pyvrrpd.io.scripts import (
    ScriptCommand,
    ScriptResult,
    insecure_reason,
    run_script,
    script_command,
)
from pyvrrpd.shell.timerheap import TimerHeap

log = structlog.get_logger("pyvrrpd.script")


@dataclass(frozen=True, slots=True)
class ScriptIdentity:
    """Who a script runs as; None user means "as the daemon" (root)."""

    user: str | None
    group: str | None

    def ids(self) -> tuple[int, int]:
        """(uid, gid) the script will run with; unknown names give the daemon's."""
        uid, gid = os.geteuid(), os.getegid()
        if self.user is not None:
            try:
                pw = pwd.getpwnam(self.user)
            except KeyError:
                return uid, gid
            uid, gid = pw.pw_uid, pw.pw_gid
        if self.group is not None:
            with contextlib.suppress(KeyError):
                gid = int(self.group) if self.group.isdigit() else grp.getgrnam(self.group).gr_gid
        return uid, gid

    @property
    def is_root(self) -> bool:
        """Runs with uid 0 or gid 0: keepalived's script security applies."""
        if self.user is None:
            return os.geteuid() == 0 or (self.group is None and os.getegid() == 0)
        try:
            pw = pwd.getpwnam(self.user)
        except KeyError:
            return False
        gid = pw.pw_gid
        if self.group is not None:
            try:
                gid = int(self.group) if self.group.isdigit() else grp.getgrnam(self.group).gr_gid
            except KeyError:
                return pw.pw_uid == 0
        return pw.pw_uid == 0 or gid == 0


def script_identity(script: VrrpScript, gdefs: GlobalDefs) -> tuple[ScriptIdentity | None, str]:
    """Resolve the user a script runs as, following keepalived.md 3.4.

    Returns (identity, "") or (None, reason) when the script must be disabled.
    """
    if script.user:
        user, group = script.user, script.group
    elif gdefs.script_user:
        user, group = gdefs.script_user, gdefs.script_group
    else:
        # keepalived's default user is keepalived_script when it exists; with
        # script security on there is no fallback to root.
        try:
            pwd.getpwnam("keepalived_script")
            user, group = "keepalived_script", None
        except KeyError:
            if gdefs.enable_script_security:
                return None, (
                    "no script_user set and default user 'keepalived_script' does not exist"
                )
            user, group = None, None
    if user is not None:
        try:
            pwd.getpwnam(user)
        except KeyError:
            return None, f"script user '{user}' does not exist"
    if user is not None and os.geteuid() != 0:
        # Only root can switch user; running unprivileged (tests) keeps ours.
        user = group = None
    elif user is not None and pwd.getpwnam(user).pw_uid == os.geteuid() and group is None:
        user = None
    return ScriptIdentity(user, group), ""


class ScriptTracker:
    """One `vrrp_script`: runs it every `interval` and reports status changes."""

    def __init__(
        self,
        script: VrrpScript,
        command: ScriptCommand,
        identity: ScriptIdentity,
        timers: TimerHeap,
        on_change: Callable[[str, bool | None], None],
    ) -> None:
        self.script = script
        #: argv exactly as configured; argv[0] is not replaced by a path.
        self.argv = command.argv
        #: The file execve() runs (PATH search result).
        self.executable = command.executable
        self.identity = identity
        self.counter = RiseFall(script.rise, script.fall, script.init_fail)
        self.last_exit: int | None = None
        self.last_result: ScriptResult | None = None
        self.runs = 0
        self._timers = timers
        self._on_change = on_change
        self._task: asyncio.Task[None] | None = None
        self._key = ("script", script.name)
        timers.register(self._key, self._due)

    @property
    def ok(self) -> bool | None:
        return self.counter.ok

    def start(self, now: float) -> None:
        """First run right away, like keepalived at start-up."""
        if self.counter.ok is False:
            # init_fail: the instances start with this tracker failed.
            self._on_change(self.script.name, False)
        self._timers.set(self._key, now)

    def stop(self) -> None:
        self._timers.unregister(self._key)
        if self._task is not None:
            self._task.cancel()

    def _due(self, now: float) -> None:
        self._timers.set(self._key, now + self.script.interval)
        if self._task is not None and not self._task.done():
            log.warning("script_still_running", script=self.script.name, action="skipping run")
            return
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            await self._run_once()
        except Exception as exc:  # a bug here must not stop the other checks
            log.error("script_tracker_error", script=self.script.name, error=repr(exc))

    async def _run_once(self) -> None:
        result = await run_script(
            self.argv,
            self.script.effective_timeout,
            user=self.identity.user,
            group=self.identity.group,
            executable=self.executable,
        )
        self.runs += 1
        self.last_result = result
        code = result.exit_status if result.exit_status is not None else -1
        if code != self.last_exit:
            log.info(
                "script_exit_changed", script=self.script.name, status=code, previous=self.last_exit
            )
            self.last_exit = code
        changed = self.counter.record(result.ok)
        if changed is None:
            return
        if changed:
            log.info("script_succeeded", script=self.script.name)
        else:
            log.warning(
                "script_failed",
                script=self.script.name,
                why=_why(result),
            )
        self._on_change(self.script.name, changed)


def _why(result: ScriptResult) -> str:
    if result.timed_out:
        return "timed_out"
    if result.error:
        return result.error
    if result.signal is not None:
        return f"due to signal {result.signal}"
    return f"exited with status {result.exit_status}"


def prepare_script(
    script: VrrpScript, gdefs: GlobalDefs
) -> tuple[ScriptCommand, ScriptIdentity] | str:
    """Check a script may run; return (command, identity) or the reason it is disabled.

    The command keeps the configured argv (argv[0] included) and names the
    file to execute; PATH search and the executable test are done for the
    user the script runs as, like keepalived's find_path(). Script security
    checks the file found, every symlink leading to it and their directories.
    """
    if not script.argv:
        return "empty script"
    identity, why = script_identity(script, gdefs)
    if identity is None:
        return why
    uid, gid = identity.ids()
    command = script_command(script.argv, uid, gid)
    if command is None:
        return f"script '{script.argv[0]}' not found or not executable"
    if gdefs.enable_script_security and identity.is_root:
        reason = insecure_reason(command.executable)
        if reason is not None:
            return f"unsafe permissions: {reason}"
    return command, identity
