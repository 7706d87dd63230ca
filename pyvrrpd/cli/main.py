"""Command line: `pyvrrpd run|status|check-config|demo` and the `keepalived` compat entry.

Owns: argument parsing, turning operator mistakes into one-line errors and
exit codes, and the human rendering of `status`. Must not contain protocol
logic.

Imports nothing heavy at module level (the config reader, asyncio, pyroute2
and the control socket are imported by the commands that use them):
`pyvrrpd release-vips` runs right after a daemon was killed and is
dispatched by main() before the parser is built (cli/release.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from pyvrrpd import __version__
from pyvrrpd.io.errors import HostError
from pyvrrpd.shell.ops.runrecord import DEFAULT_SOCKET

if TYPE_CHECKING:
    from pyvrrpd.cli.common import CheckResult
    from pyvrrpd.config.model import Config


DEFAULT_CONFIG = "/etc/keepalived/keepalived.conf"

# keepalived's exit codes for a normal run (keepalived.md 4.3); `-t`'s are in cli/common.py.
EXIT_OK = 0
EXIT_FATAL = 1
EXIT_CONFIG = 2
EXIT_USAGE = 2  # argparse's, as keepalived's for a bad option
EXIT_NO_PERMISSION = 4

# `pyvrrpd --help`'s epilog; README "Exit codes" has the same table.
EXIT_CODES_HELP = """\
exit codes:
  0  success
  1  fatal: a host error (interface, socket, netlink), no daemon answering
     (status), a rejected reload, release-vips refused (the daemon runs)
  2  usage error (bad option); `run`: config errors or no vrrp_instance
  4  `run`, `release-vips`: not root; `check-config`: the file cannot be read
  5  `check-config`: errors, as keepalived -t (the daemon would not start as written)
  6  `check-config`: scripts without enable_script_security (keepalived -t)
with --json, an error is one JSON object on stdout: {"error": "...", "exit_code": N}
"""


def _err(msg: str) -> None:
    print(f"pyvrrpd: {msg}", file=sys.stderr)


def fail(message: str, code: int, *, json_out: bool = False) -> int:
    """Report a command's error and return its exit code (never 0).

    With `json_out` (the command's --json), the error is one JSON object on
    stdout, {"error": ..., "exit_code": N}, so a script reading stdout always
    gets JSON; otherwise a one-line "pyvrrpd: ..." on stderr.
    """
    assert code != EXIT_OK
    if json_out:
        print(json.dumps({"error": message, "exit_code": code}))
    else:
        _err(message)
    return code


def _load(path: str, config_id: str | None = None) -> Config | None:
    """Load a config, printing every diagnostic; None when it has errors."""
    from pyvrrpd.config import ConfigError, load_config

    try:
        cfg = load_config(path, config_id=config_id)
    except ConfigError as exc:
        for d in exc.diagnostics:
            print(d.format(), file=sys.stderr)
        n = len(exc.errors)
        _err(f"{path}: {n} error{'s' if n != 1 else ''}; not started")
        return None
    for w in cfg.warnings:
        print(w.format(), file=sys.stderr)
    return cfg


def preflight(config_path: str, config_id: str | None = None) -> tuple[Config | None, int]:
    """Load and vet a config for running: (config, 0) or (None, exit code).

    `config_id` is keepalived's -i: which `@id` lines apply.
    """
    cfg = _load(config_path, config_id)
    if cfg is None:
        return None, EXIT_CONFIG
    if not cfg.instances:
        _err(f"{config_path}: no vrrp_instance configured; nothing to do")
        return None, EXIT_CONFIG
    if os.geteuid() != 0:
        _err("must run as root (needs CAP_NET_RAW and CAP_NET_ADMIN)")
        return None, EXIT_NO_PERMISSION
    return cfg, EXIT_OK


def run_daemon(
    config_path: str,
    *,
    control_socket: str | None,
    pid_files: Sequence[str] = (),
    log_json: bool | None = None,
    log_level: str = "info",
    syslog: bool = False,
    release_on_stop: bool = True,
    config: Config | None = None,
    namespace: str | None = None,
    keepalived: bool = False,
    config_id: str | None = None,
) -> int:
    """Run the daemon in the foreground (loading the config unless given); an exit code."""
    import asyncio

    from pyvrrpd.shell.daemon import Daemon
    from pyvrrpd.shell.ops import logsetup
    from pyvrrpd.shell.signals import block_fault_signals

    # `keepalived`: the compat command's log look (Keepalived_vrrp, keepalived's lines).
    logsetup.configure(json=log_json, level=log_level, syslog=syslog, keepalived=keepalived)
    if config is None:
        config, rc = preflight(config_path)
        if config is None:
            return rc
    daemon = Daemon(
        config,
        control_socket=control_socket,
        pid_files=pid_files,
        release_on_stop=release_on_stop,
        namespace=namespace,
    )
    # keepalived -i ID: a reload re-reads the file with the same `@ID` lines.
    daemon.config_id = config_id
    # Before asyncio starts any thread: they inherit the mask (shell/signals.py).
    block_fault_signals()
    try:
        return asyncio.run(daemon.run())
    except HostError as exc:
        _err(str(exc))
        if syslog:  # daemonised: stderr may be /dev/null
            logsetup.get_logger().error("startup_failed", error=str(exc))
        return EXIT_FATAL
    except KeyboardInterrupt:
        return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    return run_daemon(
        args.file,
        control_socket=args.control_socket,
        pid_files=[args.pid_file] if args.pid_file else [],
        log_json=True
        if args.log_format == "json"
        else False
        if args.log_format == "console"
        else None,
        log_level=args.log_level,
    )


def _cmd_status(args: argparse.Namespace) -> int:
    from pyvrrpd.shell.ops.control import query

    path = args.control_socket
    if path is None:
        from pyvrrpd.cli.common import control_socket_for

        # A `keepalived` compat daemon's socket follows its -p pid file.
        path = control_socket_for(args.pid_file) if args.pid_file else DEFAULT_SOCKET
    try:
        reply = query(path)
    except HostError as exc:
        return fail(str(exc), EXIT_FATAL, json_out=args.json)
    if "error" in reply:
        return fail(str(reply["error"]), EXIT_FATAL, json_out=args.json)
    if args.json:
        # Everything the daemon reports: instances, interfaces, daemon counters.
        print(json.dumps(reply, indent=2))
    else:
        print(render_status(reply))
    return EXIT_OK


def _cmd_reload(args: argparse.Namespace) -> int:
    """Ask the daemon to reload its config file and wait for its verdict
    (systemd's ExecReload: a rejected config fails `systemctl reload`)."""
    from pyvrrpd.shell.ops.control import query

    path = args.control_socket
    if path is None:
        from pyvrrpd.cli.common import control_socket_for

        path = control_socket_for(args.pid_file) if args.pid_file else DEFAULT_SOCKET
    try:
        reply = query(path, "reload", timeout=args.timeout)
    except HostError as exc:
        reply = {"ok": False, "errors": [str(exc)]}
    if "error" in reply:  # an old daemon, or a busy one
        reply = {"ok": False, "errors": [str(reply["error"])]}
    ok = bool(reply.get("ok"))
    if args.json:
        if not ok:  # the CLI's JSON error keys (fail()), the daemon's verdict kept
            errors = "; ".join(str(e) for e in reply.get("errors", []))
            reply = {"error": f"reload rejected: {errors}", "exit_code": EXIT_FATAL, **reply}
        print(json.dumps(reply, indent=2))
    elif ok:
        restart = reply.get("restart_needed") or []
        for line in restart:
            _err(f"warning: {line}")
        print("reloaded" + (f" ({len(restart)} change(s) need a restart)" if restart else ""))
    else:
        for line in reply.get("errors", []):
            print(line, file=sys.stderr)
        _err("reload rejected; the running config is unchanged")
    return EXIT_OK if ok else EXIT_FATAL


def _tracker_line(t: dict[str, Any]) -> str:
    """`NAME STATUS (weight W[, reverse]) [value V][, changed TIME] [errors]`.

    The time is the last change of status or value (a process count moving
    during an HAProxy reload is a change)."""
    line = f"{t['name']} {t['status']} (weight {t['weight']}{', reverse' if t['reverse'] else ''})"
    if t.get("value") is not None:
        line += f" value {t['value']}"
    if t.get("last_change") is not None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t["last_change"]))
        line += f", changed {stamp}"
    errors = [f"{k} {t[k]}" for k in ("scan_error", "watch_error", "read_error") if t.get(k)]
    if errors:
        line += f" [{'; '.join(errors)}]"
    return line


def render_status(reply: dict[str, Any]) -> str:
    """Human-readable status, one block per instance."""
    lines: list[str] = []
    for inst in reply.get("instances", []):
        eff = inst["effective_priority"]
        prio = f"priority {inst['priority']}"
        if eff != inst["priority"]:
            prio += f" (effective {eff})"
        lines.append(
            f"{inst['name']}: {inst['state']}  vrid {inst['vrid']} on {inst['interface']}, {prio}"
        )
        master = inst.get("master")
        if inst["state"] == "MASTER":
            lines.append("  master:   this host")
        elif master:
            lines.append(f"  master:   {master['address']} (priority {master['priority']})")
        else:
            lines.append("  master:   none seen")
        lines.append(f"  vips:     {', '.join(inst['vips']) or '-'}")
        for t in inst.get("trackers", []):
            lines.append(f"  tracker:  {_tracker_line(t)}")
        for t in inst.get("disabled_trackers", []):
            lines.append(f"  tracker:  {t['name']} DISABLED: {t['reason']}")
        if inst.get("fault_reasons"):
            lines.append(f"  fault:    {'; '.join(inst['fault_reasons'])}")
        st = inst["stats"]
        errors = {
            k: v
            for k, v in st.items()
            if v
            and k
            not in (
                "advert_rcvd",
                "advert_sent",
                "become_master",
                "release_master",
                "pri_zero_rcvd",
                "pri_zero_sent",
            )
        }
        lines.append(
            f"  adverts:  received {st['advert_rcvd']}, sent {st['advert_sent']}; "
            f"became master {st['become_master']}, released {st['release_master']}; "
            f"priority 0 rcvd {st['pri_zero_rcvd']} sent {st['pri_zero_sent']}"
        )
        err_txt = ", ".join(f"{k} {v}" for k, v in sorted(errors.items())) or "none"
        lines.append(f"  dropped:  {err_txt}")
    return "\n".join(lines) if lines else "no instances"


def _cmd_check(args: argparse.Namespace) -> int:
    """keepalived -t's decision and exit code (cli/common.py), pyvrrpd's summary line."""
    from pyvrrpd.cli.common import check_config

    result = check_config(args.file, args.config_id, host=not args.syntax_only)
    if args.json:
        return _check_json(args.file, result)
    for d in result.diagnostics:
        print(d.format(), file=sys.stderr)
    cfg = result.config
    if cfg is None or result.errors:
        n = result.errors
        _err(f"{args.file}: {n} error{'s' if n != 1 else ''}; would not start")
        return result.code
    n = len(cfg.instances)
    w = result.warnings
    summary = (
        f"{n} instance{'s' if n != 1 else ''}, "
        f"{len(cfg.scripts)} script{'s' if len(cfg.scripts) != 1 else ''}, "
        f"{w} warning{'s' if w != 1 else ''}"
    )
    if result.code == 0:
        print(f"{args.file}: OK, {summary}")
    else:
        print(f"{args.file}: runs, {summary} (exit {result.code}, as keepalived -t)")
    return result.code


def _cmd_release(args: argparse.Namespace) -> int:
    """Undo what a dead daemon installed (cli/release.py)."""
    from pyvrrpd.cli.release import command

    return command(args.control_socket, args.pid_file, args.state_file)


def _check_json(path: str, result: CheckResult) -> int:
    """`check-config --json`: the verdict and every diagnostic as one JSON object on stdout."""
    out: dict[str, Any] = {
        "file": path,
        "exit_code": result.code,
        "errors": result.errors,
        "warnings": result.warnings,
        "instances": len(result.config.instances) if result.config else None,
        "diagnostics": [
            {
                "severity": d.severity.value,
                "file": d.loc.file,
                "line": d.loc.line,
                "col": d.loc.col,
                "message": d.message,
                "keepalived_silent": d.keepalived_silent,
            }
            for d in result.diagnostics
        ],
    }
    if result.config is None or result.errors:
        n = result.errors
        out = {"error": f"{path}: {n} error{'s' if n != 1 else ''}; would not start", **out}
    print(json.dumps(out, indent=2))
    return result.code


def build_parser() -> argparse.ArgumentParser:
    """The `pyvrrpd` parser; every option has help text (tests/unit/test_cli_help.py).

    A new subcommand: `sub.add_parser(NAME, help=...)` before the loop at
    the end (which gives it a description and the exit-code epilog; usage
    errors are JSON when --json is on the command line), help= on each
    option, and `fail(message, code, json_out=args.json)` for its errors so
    a --json caller always reads JSON on stdout.
    """
    p = _Parser(
        prog="pyvrrpd",
        description="A VRRPv2 daemon for HAProxy pairs.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"pyvrrpd {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="run the daemon in the foreground")
    r.add_argument("-f", "--file", default=DEFAULT_CONFIG, help="keepalived.conf to use")
    r.add_argument(
        "--control-socket",
        default=DEFAULT_SOCKET,
        help="unix socket answering `pyvrrpd status` (default: %(default)s)",
    )
    r.add_argument("--pid-file", default=None, help="write the daemon's pid to this file")
    r.add_argument(
        "--log-format",
        choices=("auto", "console", "json"),
        default="auto",
        help="console (key=value) or JSON lines; auto: console on a terminal, JSON otherwise",
    )
    r.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="least severe level logged (default: %(default)s; debug adds dropped packets)",
    )
    r.set_defaults(func=_cmd_run)

    s = sub.add_parser("status", help="show each instance's state")
    s.add_argument("--control-socket", default=None, help=f"default: {DEFAULT_SOCKET}")
    s.add_argument(
        "--pid-file",
        default=None,
        help="address the `keepalived` compat daemon started with -p PID_FILE "
        "(its socket follows the pid file: /run/ka1.pid -> /run/ka1.pyvrrpd.sock)",
    )
    s.add_argument(
        "--json",
        action="store_true",
        help='machine-readable output; errors too, as {"error": ..., "exit_code": N}',
    )
    s.set_defaults(func=_cmd_status)

    rl = sub.add_parser(
        "reload",
        help="make the running daemon re-read its config; waits for the verdict "
        "(exit 0 applied, 1 rejected: the errors are printed, the old config keeps running)",
    )
    rl.add_argument("--control-socket", default=None, help=f"default: {DEFAULT_SOCKET}")
    rl.add_argument(
        "--pid-file",
        default=None,
        help="address the `keepalived` compat daemon started with -p PID_FILE",
    )
    rl.add_argument("--json", action="store_true", help="the daemon's verdict as JSON")
    rl.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for the verdict (default 30)"
    )
    rl.set_defaults(func=_cmd_reload)

    c = sub.add_parser("check-config", help="parse a config and report problems")
    c.add_argument(
        "-f",
        "--file",
        default=DEFAULT_CONFIG,
        help="keepalived.conf to check (default: %(default)s)",
    )
    c.add_argument("-i", "--config-id", default=None, help="which @ID lines apply (keepalived -i)")
    c.add_argument(
        "--syntax-only",
        action="store_true",
        help="skip the host checks (interfaces present, scripts runnable and secure)",
    )
    c.add_argument(
        "--json",
        action="store_true",
        help="the verdict and diagnostics as one JSON object on stdout "
        '(with an "error" key when the daemon would not start)',
    )
    c.set_defaults(func=_cmd_check)

    rv = sub.add_parser(
        "release-vips",
        help="after a crash: remove the VIPs, vmacs and nftables table a dead daemon "
        "left, sending priority 0 (refuses while it runs)",
    )
    rv.add_argument(
        "--control-socket", default=None, help="the daemon's socket (its record sits beside it)"
    )
    rv.add_argument("--pid-file", default=None, help="the `keepalived` compat daemon's -p PID_FILE")
    rv.add_argument(
        "--state-file",
        default=None,
        help="the record itself (default: beside the control socket, /run/pyvrrpd/pyvrrpd.state)",
    )
    rv.set_defaults(func=_cmd_release)

    from pyvrrpd.lab.demo import add_arguments as demo_arguments

    d = sub.add_parser(
        "demo",
        help="run the guide's two-load-balancer lab in network namespaces (root)",
        epilog="exit codes: 0 every step as the guide shows, 1 a step differed, "
        "2 cannot run here, 130 interrupted",
    )
    demo_arguments(d)
    d.set_defaults(func=_cmd_demo)

    # Every subcommand's --help: its one-line help as description, the exit codes.
    for choice in sub._choices_actions:
        sp = sub.choices[choice.dest]
        sp.description = sp.description or choice.help
        if sp.epilog is None:
            sp.epilog = EXIT_CODES_HELP
        sp.formatter_class = argparse.RawDescriptionHelpFormatter
    return p


def _cmd_demo(args: argparse.Namespace) -> int:
    from pyvrrpd.lab.demo import run

    return run(args)


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors as JSON on stdout when --json was given."""

    json_errors = False

    def error(self, message: str) -> NoReturn:
        if _Parser.json_errors:
            fail(f"{self.prog}: {message}", EXIT_USAGE, json_out=True)
            sys.exit(EXIT_USAGE)
        super().error(message)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["release-vips"]:
        # The daemon just died: no parser (it imports the demo lab), straight
        # to the adverts and VIPs. Anything unusual (--help, a typo) goes
        # through argparse below, exactly as before.
        from pyvrrpd.cli.release import command, fast_args

        opts = fast_args(argv[1:])
        if opts is not None:
            return command(opts["--control-socket"], opts["--pid-file"], opts["--state-file"])
    _Parser.json_errors = "--json" in argv
    args = build_parser().parse_args(argv)
    rc: int = args.func(args)
    return rc


def keepalived_main(argv: list[str] | None = None) -> int:
    """`keepalived` drop-in: keepalived's common flags, process named keepalived."""
    from pyvrrpd.cli.keepalived import keepalived_entry

    return keepalived_entry(sys.argv[1:] if argv is None else argv)
