"""`pyvrrpd release-vips`: undo what a dead daemon left on the host.

Owns: reading the run-state record a daemon keeps under /run
(pyvrrpd/shell/ops/runstate.py), refusing while that daemon still runs, and
undoing exactly what it recorded: a priority-0 advert for each instance that
was MASTER or still has a VIP here (RFC 3768 6.4.3: the backup then takes
over after its Skew_Time instead of Master_Down_Interval), then the VIPs,
then the instances' virtual_routes/virtual_rules, the nftables drop-rule
table, the use_vmac IGMP table and the vmac interfaces. keepalived 2.2.7
leaves its VIPs after SIGKILL until it starts again (keepalived.md 2.8); the
units run this as ExecStopPost.

Why the adverts and the VIPs come first, with nothing but the standard
library, pyvrrpd.io.rtnl and pyvrrpd.io.txsock imported: after a watchdog
kill (WatchdogSec=2s) the backup's Master_Down_Interval may already have
run out, and until the VIP leaves the dead box both boxes hold it.
pyroute2, asyncio and the config package (~200 ms of imports) are loaded
only afterwards, for the routes, rules, tables and vmacs (README "After a
crash"). cli/main.py dispatches `release-vips` here before building its
parser, and imports nothing heavy itself.

A daemon started with -V (`--dont-release-vrrp`) recorded that: its VIPs
are left in place, as keepalived leaves them. Run this in the network
namespace the daemon ran in (`ip netns exec NS pyvrrpd release-vips ...`).
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import socket
import sys
import time
from typing import TYPE_CHECKING, Any

from pyvrrpd.io import rtnl, txsock
from pyvrrpd.io.errors import HostError, describe_oserror
from pyvrrpd.shell.ops import runrecord

if TYPE_CHECKING:
    from pyvrrpd.io.netlink import Netlink

#: Added to the AH sequence number estimate: anti-replay wants a number above
#: the backup's counter (README "auth_type AH"); any higher number is fine.
AH_SEQ_MARGIN = 10


class Outcome:
    """What one run did, one line each, and whether anything failed."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.failed = False

    def ok(self, line: str) -> None:
        self.lines.append(line)

    def error(self, line: str) -> None:
        self.lines.append(f"error: {line}")
        self.failed = True


def check(path: str) -> tuple[dict[str, Any] | None, str | None]:
    """(record, None) to go ahead, or (None, message) when there is nothing to do or we refuse."""
    try:
        record = runrecord.read(path)
    except ValueError as exc:
        return None, str(exc)
    if record is None:
        return None, None
    pid = runrecord.writer_alive(record)
    if pid is not None:
        return None, f"refusing: the daemon that wrote {path} still runs (pid {pid}); stop it first"
    return record, None


class _Addresses:
    """The namespace's IPv4 addresses, from one RTM_GETADDR dump."""

    def __init__(self, found: list[rtnl.IfAddr]) -> None:
        self.found = found

    def present(self, dev: str, address: str) -> bool:
        """`address` (any prefix length) on `dev`; False when the device is gone."""
        try:
            index = socket.if_nametoindex(dev)
        except OSError:
            return False  # the device is gone, and its addresses with it
        return any(a.ifindex == index and a.address == address for a in self.found)

    def is_local(self, address: str) -> bool:
        return any(a.address == address for a in self.found)

    def primary(self, index: int, exclude: set[str]) -> str | None:
        """The interface's first primary address that is not one of our VIPs
        (a /32 VIP is a primary address to the kernel), as io/netlink.py's link()."""
        for a in self.found:
            if (
                a.ifindex == index
                and not a.flags & rtnl.IFA_F_SECONDARY
                and a.address not in exclude
            ):
                return a.address
        return None


def _advert(
    addrs: _Addresses, name: str, rec: dict[str, Any], vips: set[str], out: Outcome
) -> None:
    """One priority-0 advert round, as the daemon's executor would send it."""
    ifname = rec["interface"]
    try:
        index = socket.if_nametoindex(ifname)
    except OSError:
        out.error(f"{name}: no priority-0 advert: interface {ifname!r} not found")
        return
    # The daemon's socket address: a vmac's adverts carry the base interface's
    # address (shell/host/vmac.py), so the recorded one first, the link's if it is gone.
    recorded = rec.get("source") or None
    source = recorded if recorded and addrs.is_local(recorded) else addrs.primary(index, vips)
    if source is None:
        out.error(f"{name}: no priority-0 advert: {ifname} has no IPv4 address")
        return
    dests = [str(d) for d in rec["dests"]]
    src = rec["src"] or None
    payload = bytes.fromhex(rec["advert0"])
    try:
        if rec["ah"] is None:
            sock = txsock.open_vrrp(ifname, index, source)
            try:
                txsock.send_vrrp(sock, ifname, index, source, payload, dests, src, int(rec["ttl"]))
            finally:
                sock.close()
            how = ""
        else:
            how = _advert_ah(ifname, index, source, rec, dests, payload)
    except HostError as exc:
        out.error(f"{name}: no priority-0 advert: {exc}")
        return
    to = ", ".join(rec["dests"])
    out.ok(f"{name}: sent priority 0 (vrid {rec['vrid']}) on {ifname} to {to}{how}")


def _advert_ah(
    ifname: str, index: int, source: str, rec: dict[str, Any], dests: list[str], payload: bytes
) -> str:
    """The AH round (one datagram per destination); the output line's tail."""
    from ipaddress import IPv4Address

    # ~30 ms (hmac and the wire package): only when an instance uses AH.
    from pyvrrpd.wire.ah import build_ah_datagram

    ah = rec["ah"]
    # One number per advert interval since it was recorded, plus a margin.
    since = max(time.monotonic() - float(ah["at"]), 0.0)
    seq = int(ah["seq"]) + math.ceil(since / float(rec["advert_int"])) + AH_SEQ_MARGIN
    sock = txsock.open_ah(ifname, index)
    try:
        # IP identifications 1, 2, ... as a fresh AhSocket counts them.
        for ident, dst in enumerate(dests, start=1):
            unicast = not txsock.is_multicast(dst)
            txsock.send_ah(
                sock,
                ifname,
                build_ah_datagram(
                    IPv4Address(rec["src"] or source),
                    IPv4Address(dst),
                    payload,
                    seq=seq,
                    ident=ident,
                    auth_pass=bytes.fromhex(ah["key"]),
                    unicast=unicast,
                    ttl=int(rec["ttl"]) if unicast else 255,
                ),
            )
    finally:
        sock.close()
    return f" (AH, sequence {seq})"


def _urgent(record: dict[str, Any], out: Outcome) -> dict[str, list[list[Any]]]:
    """The priority-0 adverts, then the VIPs out: the first thing the process does.

    Returns each instance's VIPs that were present. HostError if netlink
    cannot be used at all.
    """
    instances: dict[str, dict[str, Any]] = record.get("instances", {})
    with rtnl.Rtnl() as nl:
        try:
            addrs = _Addresses(nl.addresses())
        except OSError as exc:
            raise HostError(f"cannot list addresses: {describe_oserror(exc)}") from exc
        present = {
            name: [v for v in rec["vips"] if addrs.present(v[2], str(v[0]))]
            for name, rec in instances.items()
        }
        # The adverts first: the backup's Skew_Time starts while we clean up.
        for name, rec in instances.items():
            if rec["state"] == "MASTER" or present[name]:
                _advert(addrs, name, rec, {str(v[0]) for v in rec["vips"]}, out)
        # Then the VIPs: a backup that took over before the watchdog's kill
        # already answers for them (README "After a crash").
        for name, here in present.items():
            for address, prefixlen, dev in here:
                what = f"cannot remove {address}/{prefixlen} from {dev!r}"
                try:
                    index = socket.if_nametoindex(dev)
                except OSError:
                    err = f"interface {dev!r} not found"
                    out.error(f"{name}: cannot remove {address}/{prefixlen} from {dev}: {err}")
                    continue
                try:
                    # False: already gone, which is what we want.
                    nl.delete_address(index, str(address), int(prefixlen))
                except OSError as exc:
                    out.error(
                        f"{name}: cannot remove {address}/{prefixlen} from {dev}: "
                        f"{what}: {_netlink_refusal(exc)}"
                    )
                    continue
                out.ok(f"{name}: removed {address}/{prefixlen} from {dev}")
    return present


def _netlink_refusal(exc: OSError) -> str:
    """As io/netlink.py words a refusal."""
    if isinstance(exc, PermissionError) or exc.errno in (errno.EPERM, errno.EACCES):
        return "permission denied (CAP_NET_ADMIN missing, run as root)"
    return describe_oserror(exc)


def _has_rest(record: dict[str, Any], present: dict[str, list[list[Any]]]) -> bool:
    """Anything left after the VIPs: routes/rules, an nftables table, vmacs."""
    instances: dict[str, dict[str, Any]] = record.get("instances", {})
    routes = any(
        rec.get("routes") and (rec["state"] == "MASTER" or present[name])
        for name, rec in instances.items()
    )
    return bool(
        routes or record.get("nft_table") or record.get("igmp_table") or record.get("vmacs")
    )


async def _routes(nl: Netlink, name: str, recorded: list[dict[str, Any]], out: Outcome) -> None:
    """The instance's virtual_routes/rules, rules then routes (as VirtualRoutes removes them)."""
    from pyvrrpd.config.routemodel import Route
    from pyvrrpd.io.routes import Routes
    from pyvrrpd.shell.ops import runstate

    kernel = Routes(nl)
    for data in reversed(recorded):
        try:
            item = runstate.decode_item(data)
        except (ValueError, TypeError) as exc:
            out.error(f"{name}: unreadable recorded route or rule: {exc}")
            continue
        try:
            if isinstance(item, Route):
                done = await kernel.route(False, item)
            else:
                done = await kernel.rule(False, item)
        except HostError as exc:
            out.error(f"{name}: {exc}")
            continue
        if done:
            out.ok(f"{name}: removed {'route' if isinstance(item, Route) else 'rule'} {item}")


async def _rest(record: dict[str, Any], present: dict[str, list[list[Any]]], out: Outcome) -> None:
    """After the VIPs: routes/rules, the nftables tables, the vmac interfaces (pyroute2, nft).

    A route the kernel dropped with its VIP (one via a gateway on the VIP's
    subnet) is simply gone by now: no line for it.
    """
    from pyvrrpd.io import vmac as vmacio
    from pyvrrpd.io.netlink import Netlink
    from pyvrrpd.io.nft import Nft

    nl = await Netlink.open()
    try:
        for name, rec in record.get("instances", {}).items():
            if rec["state"] == "MASTER" or present[name]:
                await _routes(nl, name, rec.get("routes", []), out)
        table = record.get("nft_table")
        if table:
            try:
                if await Nft(str(table)).delete_table():
                    out.ok(f"deleted nftables table ip {table}")
            except HostError as exc:
                out.error(str(exc))
        if record.get("igmp_table"):
            with contextlib.suppress(HostError):  # absent: nothing to delete
                await vmacio.run_nft(vmacio.igmp_teardown())
        for name in record.get("vmacs", []):
            try:
                index = (await nl.link(name)).index
                if await vmacio.delete_link(nl, index, name):
                    out.ok(f"deleted vmac interface {name}")
            except HostError as exc:
                if exc.errno_code != errno.ENODEV:
                    out.error(f"cannot delete vmac interface {name}: {exc}")
    finally:
        nl.close()


def release(record: dict[str, Any]) -> Outcome:
    """Undo `record` in this network namespace: adverts, VIPs, then routes, tables, vmacs.

    HostError when netlink cannot be used at all before the VIPs. Should
    pyroute2 fail afterwards, that is one more error line after what was done.
    """
    out = Outcome()
    present = _urgent(record, out)
    if _has_rest(record, present):
        import asyncio  # only now: ~25 ms, after the VIPs are gone

        try:
            asyncio.run(_rest(record, present, out))
        except HostError as exc:
            out.error(str(exc))
    return out


def run(path: str) -> tuple[int, list[str]]:
    """The command: (exit code, lines to print). Errors are one line each."""
    record, message = check(path)
    if record is None:
        if message is None:
            return 0, [f"nothing to release: no record at {path} (the daemon stopped cleanly)"]
        return 1, [message]
    if record.get("dont_release"):
        return 0, [f"left in place: the daemon ran with -V (--dont-release-vrrp) ({path})"]
    if os.geteuid() != 0:
        return 4, ["must run as root (needs CAP_NET_RAW and CAP_NET_ADMIN)"]
    try:
        out = release(record)
    except HostError as exc:
        return 1, [str(exc)]
    if not out.failed:
        with contextlib.suppress(OSError):
            os.unlink(path)
    if not out.lines:
        out.lines.append("nothing was installed: no VIP, table or vmac to remove")
    return (1 if out.failed else 0), out.lines


def command(control_socket: str | None, pid_file: str | None, state_file: str | None) -> int:
    """`pyvrrpd release-vips [--control-socket S] [--pid-file P] [--state-file F]`: prints
    the lines (stdout, or "pyvrrpd: ..." on stderr when it failed); the exit code."""
    path = state_file
    if path is None:
        path = runrecord.state_file_for(control_socket or runrecord.control_socket_for(pid_file))
    rc, lines = run(path)
    for line in lines:
        if rc:
            print(f"pyvrrpd: {line}", file=sys.stderr)
        else:
            print(line)
    return rc


#: The options `command` takes, as `pyvrrpd release-vips` declares them (cli/main.py).
_OPTIONS = ("--control-socket", "--pid-file", "--state-file")


def fast_args(argv: list[str]) -> dict[str, str | None] | None:
    """`release-vips`'s options when they are plainly written (`--opt VALUE` or
    `--opt=VALUE`, the last one wins, as argparse); None for anything else
    (--help, a typo, an abbreviation), which cli/main.py hands to argparse."""
    got: dict[str, str | None] = dict.fromkeys(_OPTIONS)
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name not in got:
            return None
        if not eq:
            if i + 1 >= len(argv) or argv[i + 1].startswith("-"):
                return None  # argparse's error (or an option that looks like a value)
            value = argv[i + 1]
            i += 1
        got[name] = value
        i += 1
    return got
