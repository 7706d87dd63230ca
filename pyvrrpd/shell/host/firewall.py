"""Accept mode off: nftables drop rules that follow an instance's VIPs.

Owns: the daemon's one `Nft` table (keepalived's `nftables [TABLE]`, default
`keepalived`) and, per instance with accept mode off (`no_accept`, or strict
mode below priority 255; pyvrrpd.config.strict.needs_firewall), the companion
its VipSet runs around the addresses: the drop rules go in before the VIPs
and come out after them, as keepalived does (vrrp.c
`vrrp_state_become_master()` / `vrrp_restore_interface()`). RFC 3768 8.2
("Accept_Mode" is RFC 5798's name): a master that is not the address owner
does not accept packets addressed to the VIPs.

A drop rule that cannot be installed fails the VIP pass (the VIPs are not
added without it); the VipSet retries and then gives up, and the instance
resigns (FAULT): traffic to the VIPs is never silently accepted. A missing
`nft` command stops the daemon at start with a one-line error.
Must not decide protocol state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from ipaddress import IPv4Address

import structlog

from pyvrrpd.config.model import Config
from pyvrrpd.config.strict import DEFAULT_TABLE, needs_firewall
from pyvrrpd.io.errors import HostError
from pyvrrpd.io.nft import Nft

log = structlog.get_logger("pyvrrpd")


class Firewall:
    """The nftables table shared by every instance with accept mode off."""

    def __init__(self, config: Config, nft: Nft | None = None) -> None:
        gd = config.global_defs
        self.nft = nft or Nft(
            gd.nftables_table or DEFAULT_TABLE, gd.nftables_priority, gd.nftables_counters
        )
        self._lock = asyncio.Lock()  # one nft batch at a time: the setup runs once

    @staticmethod
    def needed(config: Config) -> bool:
        return any(needs_firewall(i) for i in config.instances)

    async def start(self) -> None:
        """Check nft is there (HostError if not); delete a table a previous run
        left, and create ours with an empty set.

        Creating it now (keepalived waits for the first address) leaves a
        transition to MASTER a single `add element` run: the least a slow or
        hung nft can cost while the VIPs wait. If it fails here, the error is
        logged and the first add creates the table.
        """
        self.nft.binary()
        async with self._lock:
            if await self.nft.delete_table():
                # keepalived: "Deleting old ip keepalived table"
                log.info("nftables_stale_table_deleted", table=self.nft.table)
            try:
                await self.nft.ensure_table()
            except HostError as exc:
                log.error("nftables_setup_failed", table=self.nft.table, error=str(exc))

    async def stop(self) -> None:
        """Delete our table (after the VIPs are gone); errors are logged.

        Always tried, whatever this process believes: an nft run that timed
        out may have committed the table before it was killed. A table that
        is not there is fine.
        """
        async with self._lock:
            try:
                if await self.nft.delete_table():
                    log.info("nftables_table_deleted", table=self.nft.table)
            except HostError as exc:
                log.error("nftables_cleanup_failed", table=self.nft.table, error=str(exc))

    async def add(self, addresses: Iterable[IPv4Address]) -> None:
        async with self._lock:
            await self.nft.add(addresses)

    async def remove(self, addresses: Iterable[IPv4Address]) -> None:
        async with self._lock:
            await self.nft.remove(addresses)

    def companion(self, name: str, addresses: tuple[IPv4Address, ...]) -> DropRules:
        return DropRules(self, name, addresses)


class DropRules:
    """One instance's drop rules, run by its VipSet around the addresses."""

    #: In before the VIPs, out after them.
    first = True

    def __init__(self, fw: Firewall, name: str, addresses: tuple[IPv4Address, ...]) -> None:
        self.fw = fw
        self.name = name
        self.addresses = addresses

    async def apply(self, want: bool) -> str | None:
        """Add (want) or remove the rules; a one-line error or None."""
        try:
            if want:
                await self.fw.add(self.addresses)
            else:
                await self.fw.remove(self.addresses)
        except HostError as exc:
            return str(exc)
        log.debug(
            "firewall_drop_rule",
            instance=self.name,
            action="set" if want else "removed",
            vips=[str(a) for a in self.addresses],
        )
        return None
