"""Checking a config as `keepalived -t` does: shared by `pyvrrpd check-config` and `keepalived -t`.

Owns: keepalived 2.2.7's accept/reject decision and `-t` exit code for a
file (keepalived.md 4.3), and the host checks keepalived makes that change
what runs: interfaces that do not exist here, and every script (vrrp_script,
notify hooks, FIFO scripts) that is missing, not executable, or refused by
script security. Each finding is a located diagnostic; the ones keepalived
2.2.7 stays silent about are marked so and do not change the exit code.

Exit codes, checked against keepalived 2.2.7 (tests/netns/test_check_parity.py):
0 clean; 5 anything keepalived reports (unknown keyword, bad value, missing
interface, a vrrp_script missing or insecure), and every pyvrrpd error
(refused keywords included: pyvrrpd would not start); 6 scripts configured
without `enable_script_security` (wins over everything, as in keepalived).
4 when the file cannot be read (keepalived 2.2.7 exits 0 there: deliberate,
so that a missing file fails an ExecStartPre check).
Must not: start anything or touch the network beyond looking interfaces up.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, fields

from pyvrrpd.config import ConfigError, load_config
from pyvrrpd.config.model import Config, Diagnostic, Severity, SourceLoc, VrrpScript
from pyvrrpd.io.ifexist import interface_findings
from pyvrrpd.shell.ops.runrecord import KEEPALIVED_PID as KEEPALIVED_PID
from pyvrrpd.shell.ops.runrecord import control_socket_for as control_socket_for

CHK_OK = 0
CHK_FATAL = 4
CHK_ERRORS = 5
CHK_SECURITY = 6

SECURITY_VIOLATION = (
    "SECURITY VIOLATION - scripts are being executed but script_security not enabled."
)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of checking one file."""

    code: int  # keepalived -t's exit code
    config: Config | None  # None: pyvrrpd would not start (errors)
    diagnostics: tuple[Diagnostic, ...]  # the reader's, then the host checks'

    @property
    def errors(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity is Severity.ERROR)

    @property
    def warnings(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity is Severity.WARNING)


def check_config(path: str, config_id: str | None = None, *, host: bool = True) -> CheckResult:
    """Read `path` and, with `host`, make keepalived's host checks; never raises for bad input."""
    cfg: Config | None
    partial: Config | None
    try:
        cfg = partial = load_config(path, config_id=config_id)
        diagnostics = cfg.warnings
    except ConfigError as exc:
        cfg, diagnostics, partial = None, exc.diagnostics, exc.partial
        if any("cannot read config" in d.message for d in exc.errors):
            return CheckResult(CHK_FATAL, None, diagnostics)
    found: list[Diagnostic] = []
    security = False
    if host and partial is not None and partial.instances:
        found.extend(interface_findings(partial))
        script_found, security = script_findings(partial)
        found.extend(script_found)
    everything = (*diagnostics, *found)
    if security:
        code = CHK_SECURITY
    elif any(not d.keepalived_silent for d in everything):
        code = CHK_ERRORS
    else:
        code = CHK_OK
    return CheckResult(code, cfg, everything)


def _scripts(cfg: Config) -> Iterator[tuple[str, VrrpScript, bool]]:
    """(label, script, is_track_script) for every script the config would run."""
    for script in cfg.scripts:
        yield f"vrrp_script {script.name}", script, True
    holders: list[tuple[str, object]] = [(f"vrrp_instance {i.name}", i) for i in cfg.instances]
    holders += [
        (f"vrrp_sync_group {getattr(g, 'name', '?')}", g) for g in getattr(cfg, "sync_groups", ())
    ]
    for label, holder in holders:
        notify = getattr(holder, "notify", None)
        if notify is None:
            continue
        for f in fields(notify):
            hook = getattr(notify, f.name)
            argv = getattr(hook, "argv", None)
            if argv:
                yield (
                    f"{label} notify_{f.name}".replace("notify_generic", "notify"),
                    VrrpScript(
                        f.name,
                        tuple(argv),
                        user=getattr(hook, "user", None),
                        group=getattr(hook, "group", None),
                        loc=getattr(hook, "loc", None),
                    ),
                    False,
                )
    for key in ("notify_fifo", "vrrp_notify_fifo"):
        fifo = getattr(cfg.global_defs, key, None)
        hook = getattr(fifo, "script", None)
        argv = getattr(hook, "argv", None)
        if argv:
            yield (
                f"{key}_script",
                VrrpScript(
                    key,
                    tuple(argv),
                    user=getattr(hook, "user", None),
                    group=getattr(hook, "group", None),
                    loc=getattr(hook, "loc", None),
                ),
                False,
            )


def script_findings(cfg: Config) -> tuple[list[Diagnostic], bool]:
    """Scripts that will not run, as keepalived decides at start; and the security violation.

    keepalived (vrrp.c check_vrrp_script_security): a vrrp_script that is
    missing or insecure is disabled with a config error (exit 5), one that is
    not executable is disabled silently (exit 0); notify and FIFO scripts are
    dropped silently in all three cases. Any script that exists while
    `enable_script_security` is off is a SECURITY VIOLATION (exit 6).
    pyvrrpd disables the same scripts at start (logged once as an error).
    """
    from pyvrrpd.shell.scripttrack import prepare_script

    gdefs = cfg.global_defs
    out: list[Diagnostic] = []
    first_found: SourceLoc | None = None
    any_found = False
    for label, script, tracked in _scripts(cfg):
        prepared = prepare_script(script, gdefs)
        exists = _exists(script.argv[0]) if script.argv else False
        if exists:
            any_found = True
            first_found = first_found or script.loc
        if not isinstance(prepared, str):
            continue
        if "not found or not executable" in prepared:
            # keepalived: "Disabling track script X since not found/accessible"
            # (exit 5); a file without an x bit is dropped silently (exit 0).
            state = "is not executable" if exists else "not found"
            why, silent = f"script '{script.argv[0]}' {state}", exists or not tracked
        else:
            # keepalived drops a notify hook silently, but not a script whose
            # user cannot be set ("Unable to set default user ...": exit 5).
            why, silent = prepared, not tracked and "user" not in prepared
        effect = (
            "disabled at start: instances run as if it were not tracked"
            if tracked
            else "disabled at start: the hook never runs"
        )
        out.append(_diag(script.loc, f"{label}: {why}; {effect}", silent=silent))
    security = any_found and not gdefs.enable_script_security
    if security:
        out.append(_diag(first_found, SECURITY_VIOLATION))
    return out, security


def _exists(argv0: str) -> bool:
    """Whether a regular file of that name exists (anywhere on PATH for a bare name)."""
    from pyvrrpd.io.scripts import search_path

    if "/" in argv0:
        return os.path.isfile(argv0)
    return any(os.path.isfile(os.path.join(d or ".", argv0)) for d in search_path().split(":"))


def _diag(
    loc: SourceLoc | None,
    message: str,
    *,
    silent: bool = False,
    severity: Severity = Severity.WARNING,
) -> Diagnostic:
    return Diagnostic(
        severity, loc or SourceLoc("<config>", 0, 0), message, keepalived_silent=silent
    )


# -- where a `keepalived` compat daemon keeps its pid files and control socket --

KEEPALIVED_VRRP_PID = "/run/keepalived_vrrp.pid"
KEEPALIVED_PID_DIR = "/run/keepalived"


def keepalived_pid_files(
    main: str | None, vrrp: str | None, namespace: str | None, instance: str | None
) -> tuple[str, str]:
    """keepalived 2.2.7's pid file names (core/main.c, core/namespaces.c).

    -p/-r win. Otherwise, with a network namespace (-s) or an `instance NAME`,
    keepalived uses /run/keepalived[/NAMESPACE]/keepalived[_INSTANCE].pid and
    .../vrrp[_INSTANCE].pid; else /run/keepalived.pid and /run/keepalived_vrrp.pid.
    """
    if namespace or instance:
        base = f"{KEEPALIVED_PID_DIR}/{namespace}" if namespace else KEEPALIVED_PID_DIR
        suffix = f"_{instance}" if instance else ""
        return (
            main or f"{base}/keepalived{suffix}.pid",
            vrrp or f"{base}/vrrp{suffix}.pid",
        )
    return main or KEEPALIVED_PID, vrrp or KEEPALIVED_VRRP_PID


def enter_netns(name: str) -> None:
    """Move this (still single-threaded) process into network namespace `name` (keepalived -s).

    Raises HostError (keepalived: "Unable to set network namespace NAME - exiting").
    """
    import ctypes

    from pyvrrpd.io.errors import HostError

    clone_newnet = 0x40000000
    path = name if "/" in name else f"/run/netns/{name}"
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise HostError(f"unable to set network namespace {name}: {exc.strerror}") from exc
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, clone_newnet) != 0:
            err = ctypes.get_errno()
            raise HostError(f"unable to set network namespace {name}: {os.strerror(err)}")
    finally:
        os.close(fd)
