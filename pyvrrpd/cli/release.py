"""`pyvrrpd release-vips`: undo what a dead daemon left on the host.

Owns: reading the run-state record a daemon keeps under /run
(pyvrrpd/shell/ops/runstate.py), refusing while that daemon still runs, and
undoing exactly what it recorded: a priority-0 advert for each instance that
was MASTER or still has a VIP here (RFC 3768 6.4.3: the backup then takes
over after its Skew_Time instead of Master_Down_Interval), then the VIPs,
the instances' virtual_routes/virtual_rules, the nftables drop-rule table,
the use_vmac IGMP table and the vmac interfaces. keepalived 2.2.7 leaves
its VIPs after SIGKILL until it starts again (keepalived.md 2.8); the units
run this as ExecStopPost.

A daemon started with -V (`--dont-release-vrrp`) recorded that: its VIPs
are left in place, as keepalived leaves them. Run this in the network
namespace the daemon ran in (`ip netns exec NS pyvrrpd release-vips ...`).
Sends and deletes with the daemon's own pieces (pyvrrpd.io, pyvrrpd.wire).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import math
import os
import socket
import time
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any

from pyvrrpd.config.routemodel import Route
from pyvrrpd.io import vmac as vmacio
from pyvrrpd.io.ah_socket import AhSocket
from pyvrrpd.io.errors import HostError
from pyvrrpd.io.netlink import Netlink
from pyvrrpd.io.nft import Nft
from pyvrrpd.io.routes import Routes
from pyvrrpd.io.vrrp_socket import SendTarget, VrrpSocket
from pyvrrpd.shell.ops import runstate
from pyvrrpd.wire.ah import build_ah_datagram

#: Added to the AH sequence number estimate: anti-replay wants a number above
#: the backup's counter (README "auth_type AH"); any higher number is fine.
AH_SEQ_MARGIN = 10


@dataclass
class Outcome:
    """What one run did, one line each, and whether anything failed."""

    lines: list[str] = field(default_factory=list)
    failed: bool = False

    def ok(self, line: str) -> None:
        self.lines.append(line)

    def error(self, line: str) -> None:
        self.lines.append(f"error: {line}")
        self.failed = True


def check(path: str) -> tuple[dict[str, Any] | None, str | None]:
    """(record, None) to go ahead, or (None, message) when there is nothing to do or we refuse."""
    try:
        record = runstate.read(path)
    except ValueError as exc:
        return None, str(exc)
    if record is None:
        return None, None
    pid = runstate.writer_alive(record)
    if pid is not None:
        return None, f"refusing: the daemon that wrote {path} still runs (pid {pid}); stop it first"
    return record, None


async def _present(nl: Netlink, dev: str, address: IPv4Address) -> bool:
    try:
        return await nl.has_address(dev, address)
    except HostError:
        return False  # the device is gone, and its addresses with it


async def _is_local(nl: Netlink, address: IPv4Address) -> bool:
    """True if `address` is on some interface of this namespace."""
    for _, ifname in socket.if_nameindex():
        if await _present(nl, ifname, address):
            return True
    return False


async def _advert(
    nl: Netlink, name: str, rec: dict[str, Any], vips: set[str], out: Outcome
) -> None:
    """One priority-0 advert round, as the daemon's executor would send it."""
    ifname = rec["interface"]
    try:
        link = await nl.link(ifname, frozenset(IPv4Address(v) for v in vips))
    except HostError as exc:
        out.error(f"{name}: no priority-0 advert: {exc}")
        return
    # The daemon's socket address: a vmac's adverts carry the base interface's
    # address (shell/host/vmac.py), so the recorded one first, the link's if it is gone.
    recorded = IPv4Address(rec["source"]) if rec.get("source") else None
    local = recorded is not None and await _is_local(nl, recorded)
    source = recorded if local else link.primary_ip
    if source is None:
        out.error(f"{name}: no priority-0 advert: {ifname} has no IPv4 address")
        return
    dests = tuple(IPv4Address(d) for d in rec["dests"])
    src = IPv4Address(rec["src"]) if rec["src"] else None
    payload = bytes.fromhex(rec["advert0"])
    try:
        if rec["ah"] is None:
            target = SendTarget(dests, src, int(rec["ttl"]))
            sock = VrrpSocket.open(ifname, link.index, source, None, {int(rec["vrid"]): target})
            try:
                sock.send(payload)
            finally:
                sock.close()
            how = ""
        else:
            ah = rec["ah"]
            # One number per advert interval since it was recorded, plus a margin.
            since = max(time.monotonic() - float(ah["at"]), 0.0)
            seq = int(ah["seq"]) + math.ceil(since / float(rec["advert_int"])) + AH_SEQ_MARGIN
            ahsock = AhSocket.open(ifname, link.index, source, ())
            try:
                for dst in dests:
                    unicast = not dst.is_multicast
                    ahsock.send(
                        build_ah_datagram(
                            src or source,
                            dst,
                            payload,
                            seq=seq,
                            ident=ahsock.next_ident(),
                            auth_pass=bytes.fromhex(ah["key"]),
                            unicast=unicast,
                            ttl=int(rec["ttl"]) if unicast else 255,
                        )
                    )
            finally:
                ahsock.close()
            how = f" (AH, sequence {seq})"
    except HostError as exc:
        out.error(f"{name}: no priority-0 advert: {exc}")
        return
    to = ", ".join(rec["dests"])
    out.ok(f"{name}: sent priority 0 (vrid {rec['vrid']}) on {ifname} to {to}{how}")


async def _routes(nl: Netlink, name: str, recorded: list[dict[str, Any]], out: Outcome) -> None:
    """The instance's virtual_routes/rules, rules then routes (as VirtualRoutes removes them)."""
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


async def release(record: dict[str, Any]) -> Outcome:
    """Undo `record` in this network namespace (adverts first, then VIPs, tables, vmacs)."""
    out = Outcome()
    nl = await Netlink.open()
    try:
        instances: dict[str, dict[str, Any]] = record.get("instances", {})
        present: dict[str, list[list[Any]]] = {}
        for name, rec in instances.items():
            present[name] = [v for v in rec["vips"] if await _present(nl, v[2], IPv4Address(v[0]))]
        # The adverts first: the backup's Skew_Time starts while we clean up.
        for name, rec in instances.items():
            if rec["state"] == "MASTER" or present[name]:
                await _advert(nl, name, rec, {v[0] for v in rec["vips"]}, out)
        # virtual_routes/rules out before the VIPs (shell/host/statics.py VirtualRoutes).
        for name, rec in instances.items():
            if rec["state"] == "MASTER" or present[name]:
                await _routes(nl, name, rec.get("routes", []), out)
        for name, here in present.items():
            for address, prefixlen, dev in here:
                try:
                    await nl.remove_address(dev, IPv4Address(address), int(prefixlen))
                    out.ok(f"{name}: removed {address}/{prefixlen} from {dev}")
                except HostError as exc:
                    out.error(f"{name}: cannot remove {address}/{prefixlen} from {dev}: {exc}")
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
        out = asyncio.run(release(record))
    except HostError as exc:
        return 1, [str(exc)]
    if not out.failed:
        with contextlib.suppress(OSError):
            os.unlink(path)
    if not out.lines:
        out.lines.append("nothing was installed: no VIP, table or vmac to remove")
    return (1 if out.failed else 0), out.lines
