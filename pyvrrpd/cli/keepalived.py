"""The `keepalived` command: keepalived's common flags, running pyvrrpd.

Owns: mapping keepalived's command line (keepalived.md 4.3) onto pyvrrpd,
its `-t` exit codes, `--signum` answers, daemonising without `-n`, and naming
the process `keepalived` so `pidof keepalived` and the guide's `killall
keepalived` find it, keepalived's pid file names (-p/-r, -s NAMESPACE,
`instance NAME`) with a control socket that follows the main pid file, so
two compat daemons can share /run. `-s NAME` enters that network namespace,
as keepalived does. Flags for subsystems pyvrrpd does not have are accepted
and ignored.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from pyvrrpd import __version__
from pyvrrpd.cli.common import (
    check_config,
    control_socket_for,
    enter_netns,
    keepalived_pid_files,
)
from pyvrrpd.cli.main import EXIT_FATAL, EXIT_OK, preflight, run_daemon
from pyvrrpd.shell.ops.control import DEFAULT_SOCKET


class _Signum(argparse.Action):
    """`--signum=NAME`: print the signal number and exit, as keepalived 2.2.7 does.

    keepalived acts on it while reading the options (a `-v` before it wins,
    anything after it is never looked at), prints "Unknown sigfunc NAME" and
    exits 1 for a name it does not know (names are case-sensitive; TDUMP
    exists only in debug builds, not in Debian's).
    """

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        if getattr(namespace, "version", False):
            return  # `-v --signum=X`: keepalived prints its version
        from pyvrrpd.shell.signals import SIGNUM

        if not values:
            print("Missing parameter for option --signum", file=sys.stderr)
            sys.exit(1)
        name = str(values)
        if name not in SIGNUM:
            print(f"Unknown sigfunc {name}", file=sys.stderr)
            sys.exit(1)
        print(SIGNUM[name])
        sys.exit(EXIT_OK)


KEEPALIVED_EXIT_HELP = """\
exit codes (keepalived's):
  0  success
  1  fatal: a host error (interface, socket, netlink, -s namespace)
  2  configuration errors or no vrrp_instance; also a bad option
  4  not root
  -t: 0 ok, 4 file unreadable, 5 errors, 6 scripts without enable_script_security
logs: syslog identifier Keepalived_vrrp; lines start with keepalived 2.2.7's text
("(VI_1) Entering MASTER STATE"), then the event's JSON fields
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="keepalived",
        description="pyvrrpd's keepalived-compatible entry point (VRRP only).",
        add_help=True,
        epilog=KEEPALIVED_EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "-f",
        "--use-file",
        default="/etc/keepalived/keepalived.conf",
        help="configuration file (default: %(default)s)",
    )
    p.add_argument("-n", "--dont-fork", action="store_true", help="stay in the foreground")
    p.add_argument(
        "-l", "--log-console", action="store_true", help="log to the console instead of syslog"
    )
    p.add_argument(
        "-D", "--log-detail", action="store_true", help="detailed logs (pyvrrpd always logs them)"
    )
    p.add_argument("-P", "--vrrp", action="store_true", help="VRRP only (pyvrrpd always is)")
    p.add_argument(
        "-C", "--check", action="store_true", help="accepted and ignored (no health checker)"
    )
    p.add_argument("-B", "--no_bfd", action="store_true", help="accepted and ignored (no BFD)")
    p.add_argument("--all", action="store_true", help="accepted and ignored")
    p.add_argument("-S", "--log-facility", help="accepted and ignored (pyvrrpd logs as daemon)")
    p.add_argument(
        "-g",
        "--log-file",
        nargs="?",
        const="/tmp/keepalived.log",
        help="accepted and ignored (logs go to syslog or the console)",
    )
    p.add_argument(
        "-G",
        "--no-syslog",
        action="store_true",
        help="with -n: log to the console instead of syslog",
    )
    p.add_argument(
        "-X", "--release-vips", action="store_true", help="accepted (VIPs are always released)"
    )
    p.add_argument(
        "-V",
        "--dont-release-vrrp",
        action="store_true",
        help="at stop, leave the VIPs in place and send no priority 0 advert",
    )
    p.add_argument(
        "-R", "--dont-respawn", action="store_true", help="accepted and ignored (no children)"
    )
    p.add_argument("-d", "--dump-conf", action="store_true", help="accepted and ignored")
    # Defaults follow keepalived's naming (cli/common.py keepalived_pid_files).
    p.add_argument(
        "-p",
        "--pid",
        default=None,
        help="main pid file (default: /run/keepalived.pid, or under /run/keepalived/ with -s)",
    )
    p.add_argument(
        "-r",
        "--vrrp_pid",
        default=None,
        help="VRRP pid file (default: /run/keepalived_vrrp.pid; same pid as -p here)",
    )
    p.add_argument("-c", "--checkers_pid", help="accepted and ignored (no health checker)")
    p.add_argument("-b", "--bfd_pid", help="accepted and ignored (no BFD)")
    p.add_argument("-a", "--address-monitoring", action="store_true", help="accepted and ignored")
    p.add_argument("-s", "--namespace", help="run (and -t check) in network namespace NAME")
    p.add_argument("-i", "--config-id", help="which @ID configuration lines apply")
    p.add_argument("-x", "--snmp", action="store_true", help="accepted and ignored (no SNMP)")
    p.add_argument("-m", "--core-dump", action="store_true", help="accepted and ignored")
    p.add_argument(
        "-t",
        "--config-test",
        nargs="?",
        const="-",
        default=None,
        metavar="LOG_FILE",
        help="check the configuration and exit with keepalived's code "
        "(0 ok, 4 unreadable, 5 errors, 6 script security); diagnostics to "
        "stderr or LOG_FILE",
    )
    p.add_argument("-v", "--version", action="store_true", help="print the version and exit")
    p.add_argument(
        "--signum",
        action=_Signum,
        nargs="?",
        metavar="SIGFUNC",
        help="print the number of the signal for SIGFUNC (STOP, RELOAD, DATA, STATS, JSON ...)",
    )
    p.add_argument(
        "--control-socket",
        default=None,
        help="pyvrrpd: status socket (default: follows the -p pid file, e.g. "
        f"/run/ka1.pid -> /run/ka1.pyvrrpd.sock; {DEFAULT_SOCKET} for keepalived's default)",
    )
    return p


def config_test(path: str, out_path: str, config_id: str | None = None) -> int:
    """`keepalived -t`: diagnostics to stderr (or a file) and keepalived's exit code."""
    result = check_config(path, config_id)
    out = sys.stderr if out_path == "-" else open(out_path, "w", encoding="utf-8")  # noqa: SIM115
    try:
        for d in result.diagnostics:
            print(d.format(), file=out)
    finally:
        if out is not sys.stderr:
            out.close()
    return result.code


def _daemonise() -> None:
    """Classic double fork, as keepalived does without -n."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.chdir("/")
    fd = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1, 2):
        os.dup2(fd, target)
    if fd > 2:
        os.close(fd)


def keepalived_entry(argv: list[str]) -> int:
    from pyvrrpd.io.errors import HostError
    from pyvrrpd.io.procname import set_argv0, set_process_name

    args = _parser().parse_args(argv)
    if args.version:
        # keepalived-exporter reads the version from the first line and looks
        # for --enable-json before it asks for the JSON dump.
        print(
            f"Keepalived v2.2.7 compatible: pyvrrpd {__version__} (VRRP only)\n\n"
            "configure options: --enable-json",
            file=sys.stderr,
        )
        return EXIT_OK
    if args.namespace:
        # keepalived -s NAME runs (and -t checks interfaces) in that network namespace: so
        # do we (a daemon left in the caller's namespace would put the VIPs there).
        try:
            enter_netns(args.namespace)
        except HostError as exc:
            print(f"keepalived: {exc}", file=sys.stderr)
            return EXIT_FATAL
    if args.config_test is not None:
        return config_test(args.use_file, args.config_test, args.config_id)
    # Validate before forking: a daemonised child's errors would go nowhere.
    cfg, rc = preflight(args.use_file, args.config_id)
    if cfg is None:
        return rc
    main_pid, vrrp_pid = keepalived_pid_files(
        args.pid, args.vrrp_pid, args.namespace, cfg.global_defs.instance_name
    )
    control_socket = args.control_socket or control_socket_for(main_pid)
    # `killall keepalived` matches comm; `pidof keepalived` matches argv[0].
    with contextlib.suppress(HostError):
        set_process_name("keepalived")
        set_argv0("keepalived")
    if not args.dont_fork:
        _daemonise()
    console = args.log_console or (args.dont_fork and args.no_syslog)
    return run_daemon(
        args.use_file,
        config=cfg,
        control_socket=control_socket,
        pid_files=[main_pid, vrrp_pid],
        # -D (detailed logging) is what pyvrrpd's info level already gives.
        log_level="info",
        syslog=not console,
        release_on_stop=not args.dont_release_vrrp,
        # -s also names the USR1 dump (with data_use_instance).
        namespace=args.namespace,
        keepalived=True,  # Keepalived_vrrp, keepalived's log lines (shell/ops/logsetup.py)
        config_id=args.config_id,
    )
