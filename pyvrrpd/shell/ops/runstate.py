"""What the running daemon has put on the host, recorded under /run for `release-vips`.

Owns: the run-state file (JSON, replaced atomically on every write) and its
name. After SIGKILL or a crash nothing removes the VIPs (keepalived 2.2.7
leaves them too, keepalived.md 2.8), so both boxes answer ARP for them until
the daemon starts again. The file lets `pyvrrpd release-vips`
(pyvrrpd/cli/release.py) undo exactly what this daemon installed, not what
the config says after an edit, and send the priority-0 advert the dead
daemon never sent (RFC 3768 6.4.3: the backup then waits Skew_Time, not
Master_Down_Interval).

Recorded: the daemon's pid and process start time (so a reused pid is not
taken for a live daemon), whether it runs with -V (`--dont-release-vrrp`),
its nftables table and vmac interfaces, and per instance its state, its
addresses with their devices, and what a priority-0 advert needs (interface,
source, destinations, TTL, the encoded message, the AH key and a sequence
number to continue from). An instance's addresses are written when it
changes state, before the VIPs go in (the executor adds them after the
state change), so a crash between the two leaves a record of addresses that
are maybe not there: release-vips removes only those present.

Must not decide protocol state; writing never raises (a full /run is logged).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING, Any

import structlog

from pyvrrpd.config.routemodel import Route, Rule
from pyvrrpd.shell.host.unicast import send_target
from pyvrrpd.shell.ops.runrecord import FORMAT as FORMAT
from pyvrrpd.shell.ops.runrecord import process_start as process_start
from pyvrrpd.shell.ops.runrecord import read as read
from pyvrrpd.shell.ops.runrecord import state_file_for as state_file_for
from pyvrrpd.shell.ops.runrecord import writer_alive as writer_alive
from pyvrrpd.wire.vrrp import AuthType, encode_advert

if TYPE_CHECKING:
    from pyvrrpd.shell.instance import Instance

log = structlog.get_logger("pyvrrpd")

#: The fields of Route/Rule that are not plain JSON values, and their types.
_TYPED: dict[str, dict[str, type[IPv4Address] | type[IPv4Network]]] = {
    "Route": {"dst": IPv4Network, "via": IPv4Address, "src": IPv4Address},
    "Rule": {"src": IPv4Network, "dst": IPv4Network},
}


def encode_item(item: Route | Rule) -> dict[str, Any]:
    """A virtual route or rule as JSON values (`decode_item` reverses it)."""
    out: dict[str, Any] = {"kind": type(item).__name__}
    for f in dataclasses.fields(item):
        value = getattr(item, f.name)
        out[f.name] = str(value) if isinstance(value, (IPv4Address, IPv4Network)) else value
    return out


def decode_item(data: dict[str, Any]) -> Route | Rule:
    """The Route or Rule `encode_item` recorded. ValueError/TypeError if malformed."""
    kind = data.get("kind")
    if kind not in _TYPED:
        raise ValueError(f"unknown recorded item {kind!r}")
    typed = _TYPED[kind]
    kw: dict[str, Any] = {
        k: (typed[k](v) if k in typed and v is not None else v)
        for k, v in data.items()
        if k != "kind"
    }
    return Route(**kw) if kind == "Route" else Rule(**kw)


def _advert0(inst: Instance) -> bytes:
    """The priority-0 VRRP message as the daemon would send it (executor/ahsend)."""
    cfg = inst.router.config
    if cfg.auth_type == AuthType.AH:
        # keepalived leaves the 8 auth bytes zero under AH (shell/host/ahsend.py).
        return encode_advert(cfg.vrid, 0, cfg.vips, int(cfg.advert_int), AuthType.AH, b"")
    return encode_advert(cfg.vrid, 0, cfg.vips, int(cfg.advert_int), cfg.auth_type, cfg.auth_data)


class RunState:
    """The record of one daemon; `instance()` after each state change."""

    def __init__(self, path: str, *, release_on_stop: bool) -> None:
        self.path = path
        self._data: dict[str, Any] = {
            "format": FORMAT,
            "pid": os.getpid(),
            "start": process_start(os.getpid()),
            "dont_release": not release_on_stop,
            "nft_table": None,
            "igmp_table": False,
            "vmacs": [],
            "instances": {},
        }
        self.writes = 0

    def host(self, *, nft_table: str | None, vmacs: list[str]) -> None:
        """Host-wide pieces: the drop-rule table (if any instance needs one), our vmacs."""
        self._data["nft_table"] = nft_table
        self._data["vmacs"] = sorted(vmacs)
        # use_vmac's IGMP rules live in their own table (io/vmac.py igmp_ruleset).
        self._data["igmp_table"] = bool(vmacs)
        self._write()

    def instance(self, inst: Instance) -> None:
        """Record `inst` as the core left it (its new state) and write the file.

        Never raises: a recording bug must not take the state change with it.
        """
        try:
            self._data["instances"][inst.name] = self._describe(inst)
        except Exception as exc:  # logged; the daemon carries on
            log.error("runstate_record_failed", instance=inst.name, error=repr(exc))
            return
        self._write()

    @staticmethod
    def _describe(inst: Instance) -> dict[str, Any]:
        cfg = inst.router.config
        target = send_target(inst.cfg)
        sock = inst.iface.sock
        ah = inst.router.ah_seq
        return {
            "state": inst.router.state.name,
            "vrid": cfg.vrid,
            "interface": inst.iface.name,
            "source": str(sock.primary_ip) if sock is not None else None,
            "dests": [str(d) for d in target.dests],
            "src": str(target.src) if target.src is not None else None,
            "ttl": target.ttl,
            "advert_int": cfg.advert_int,
            "advert0": _advert0(inst).hex(),
            "ah": None
            if ah is None
            else {
                "key": bytes(cfg.auth_data).hex(),
                "seq": ah.seq,
                # CLOCK_MONOTONIC is system-wide: release-vips adds one number
                # per advert interval since, to stay above the backup's counter.
                "at": time.monotonic(),
            },
            "vips": [[str(v.address), v.prefixlen, inst.dev(v)] for v in inst.addresses],
            # Installed with the VIPs while MASTER (shell/host/statics.py VirtualRoutes).
            "routes": [encode_item(r) for r in inst.cfg.virtual_routes]
            + [encode_item(r) for r in inst.cfg.virtual_rules],
        }

    def remove(self) -> None:
        """A clean stop released everything: no record is left (with -V it is kept)."""
        if self._data["dont_release"]:
            return  # -V: the VIPs stay, and so does their record
        with contextlib.suppress(OSError):
            os.unlink(self.path)

    def _write(self) -> None:
        # Per process: two daemons sharing a path (no socket given) must not
        # trip over each other's half-written file.
        tmp = f"{self.path}.{os.getpid()}.tmp"
        try:
            directory = os.path.dirname(self.path)
            if directory:
                os.makedirs(directory, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self._data, fh, separators=(",", ":"))
            os.replace(tmp, self.path)
            self.writes += 1
        except OSError as exc:
            log.error("runstate_write_failed", path=self.path, error=str(exc))
