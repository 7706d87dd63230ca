"""The nftables table behind accept mode off (`no_accept`, strict mode).

Owns: running the `nft` command (package nftables) with a script on stdin,
under a deadline, and the ruleset keepalived 2.2.7 builds (vrrp_nftables.c,
checked with `nft list ruleset` in a namespace running it)::

    table ip keepalived {
        set vips { type ipv4_addr; }
        chain out { type filter hook output priority filter - 1; policy accept;
                    ip saddr @vips drop }
        chain in  { type filter hook input priority filter - 1; policy accept;
                    ip daddr @vips drop }
    }

The table is created at start, with an empty set (``ensure_table``), so a
transition to MASTER runs only `add element`: keepalived creates it when the
first address goes in, which makes the first transition the slowest nft run.
If that start-up run fails, the first `add` creates it instead. It is deleted
at stop. `nftables_priority` sets the chains' priority and
`nftables_counters` adds a counter to both rules.

Deadlines: a transition's run (`add`/`remove` of set elements) gets
NFT_TIMEOUT, kept below shell/host/vips.py GIVE_UP_AFTER (two attempts fit in
it), so a hung nft makes the instance give up, and the peer take over, as
fast as a hung netlink call would. Table creation and deletion at start and
stop, when nobody waits for a VIP, get NFT_TABLE_TIMEOUT.

No Python binding is used: the command keeps the daemon free of a C library
dependency, and one `nft -f -` run is one atomic batch. Must not decide when
addresses go in or out (pyvrrpd.shell.host.firewall does) and never raises
anything but HostError, with a one-line message.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import shutil
from collections.abc import Iterable
from ipaddress import IPv4Address

from pyvrrpd.io import children
from pyvrrpd.io.errors import HostError

__all__ = ["NFT_TABLE_TIMEOUT", "NFT_TIMEOUT", "Nft"]

#: Seconds one transition's `nft` run may take; a healthy host answers in a
#: few ms. Two attempts (and the 0.1 s backoff between) fit in GIVE_UP_AFTER.
NFT_TIMEOUT = 0.7
#: Seconds for creating or deleting the table (start and stop).
NFT_TABLE_TIMEOUT = 2.0
#: Seconds to wait for a killed nft to be reaped: the caller holds the
#: Firewall lock; a process stuck in the kernel is left to the orphan reaper.
_REAP_TIMEOUT = 1.0
#: stderr text of nft when the table or set does not exist.
_MISSING = "No such file or directory"


class Nft:
    """The drop rules for one table name, in the caller's network namespace."""

    def __init__(
        self,
        table: str,
        priority: int = -1,
        counters: bool = False,
        *,
        binary: str | None = None,
        timeout: float = NFT_TIMEOUT,
    ) -> None:
        self.table = table
        self.priority = priority
        self.counters = counters
        self.timeout = timeout
        self._binary = binary
        #: The table is (or may be: a run that timed out) in the kernel, made
        #: by this process: removal and the delete at stop must not skip it.
        self.created = False
        #: The table, set, chains and rules are known to be complete.
        self._ready = False

    def binary(self) -> str:
        """The nft command's path; HostError if it is not installed."""
        if self._binary is None:
            found = shutil.which("nft") or shutil.which("nft", path="/usr/sbin:/sbin")
            if found is None:
                raise HostError(
                    "no_accept/strict mode needs the 'nft' command (package nftables): not found"
                )
            self._binary = found
        return self._binary

    async def run(self, script: str, what: str, timeout: float | None = None) -> str:
        """Run an nft script (one atomic batch); its stdout. HostError on failure.

        `timeout`: seconds (default: the instance's, NFT_TIMEOUT)."""
        deadline = self.timeout if timeout is None else timeout
        argv = [self.binary(), "-f", "-"]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                close_fds=True,
            )
        except OSError as exc:
            # Not exc.errno: ENOENT here would read as "table missing" to callers.
            raise HostError(f"{what}: cannot run nft: {exc.strerror}") from exc
        children.OWNED.add(proc.pid)  # asyncio waits for it: the orphan reaper must not
        try:
            out, err = await asyncio.wait_for(proc.communicate(script.encode()), deadline)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            # Bounded: SIGKILL does not end a process stuck in the kernel.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), _REAP_TIMEOUT)
            raise HostError(
                f"{what}: nft did not finish within {deadline:g} s", errno_code=errno.ETIMEDOUT
            ) from None
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise
        finally:
            children.OWNED.discard(proc.pid)
        if proc.returncode != 0:
            text = err.decode(errors="replace").strip()
            # nft repeats the offending line with carets: the first line says it.
            first = text.splitlines()[0] if text else f"exit status {proc.returncode}"
            code = errno.ENOENT if _MISSING in text else errno.EIO
            raise HostError(f"{what}: {first}", errno_code=code)
        return out.decode(errors="replace")

    def _setup(self) -> str:
        t = self.table
        counter = "counter " if self.counters else ""
        prio = self.priority
        # Idempotent: `add` keeps what exists (the set's elements too), and
        # the chains are flushed before their rule goes in, in the same atomic
        # batch, so running it again (after a run that timed out and may have
        # committed) never stacks copies and never leaves a moment without it.
        return (
            f"add table ip {t}\n"
            f"add set ip {t} vips {{ type ipv4_addr; }}\n"
            f"add chain ip {t} out {{ type filter hook output priority {prio}; policy accept; }}\n"
            f"add chain ip {t} in {{ type filter hook input priority {prio}; policy accept; }}\n"
            f"flush chain ip {t} out\n"
            f"flush chain ip {t} in\n"
            f"add rule ip {t} out ip saddr @vips {counter}drop\n"
            f"add rule ip {t} in ip daddr @vips {counter}drop\n"
        )

    async def ensure_table(self) -> None:
        """Create the table, set and chains (empty set: nothing dropped yet)."""
        if self._ready:
            return
        try:
            await self.run(self._setup(), "cannot create the nftables table", NFT_TABLE_TIMEOUT)
        except HostError as exc:
            if exc.errno_code == errno.ETIMEDOUT:
                self.created = True  # nft may have committed: stop must delete it
            raise
        self.created = self._ready = True

    async def add(self, addresses: Iterable[IPv4Address]) -> None:
        """Drop traffic to and from `addresses` (creating the table if needed)."""
        elems = _elements(addresses)
        if not elems:
            return
        script = "" if self._ready else self._setup()
        script += f"add element ip {self.table} vips {{ {elems} }}\n"
        try:
            await self.run(script, f"cannot add nftables drop rules for {elems}")
        except HostError as exc:
            if exc.errno_code == errno.ETIMEDOUT:
                # nft may have committed before it was killed: the removal
                # and the delete at stop must not skip the table.
                self.created = True
            raise
        self.created = self._ready = True

    async def remove(self, addresses: Iterable[IPv4Address]) -> None:
        """Stop dropping traffic for `addresses`; a missing table means done."""
        elems = _elements(addresses)
        if not elems or not self.created:
            return
        # Adding first makes the delete succeed whether or not each element is in.
        script = (
            f"add element ip {self.table} vips {{ {elems} }}\n"
            f"delete element ip {self.table} vips {{ {elems} }}\n"
        )
        try:
            await self.run(script, f"cannot remove nftables drop rules for {elems}")
        except HostError as exc:
            if exc.errno_code != errno.ENOENT:
                raise
            self.created = self._ready = False  # someone deleted the table: nothing is dropped

    async def delete_table(self) -> bool:
        """Delete the whole table (start: a stale one; stop: ours). True if it existed."""
        try:
            await self.run(
                f"delete table ip {self.table}\n",
                f"cannot delete table {self.table}",
                NFT_TABLE_TIMEOUT,
            )
        except HostError as exc:
            if exc.errno_code != errno.ENOENT:
                raise
            return False
        finally:
            self.created = self._ready = False
        return True

    async def elements(self) -> set[IPv4Address] | None:
        """The addresses in the set now; None if the table does not exist (tests, status)."""
        try:
            out = await self.run(f"list set ip {self.table} vips\n", "cannot list the vips set")
        except HostError as exc:
            if exc.errno_code == errno.ENOENT:
                return None
            raise
        found: set[IPv4Address] = set()
        if "elements" in out:
            inner = out.split("elements", 1)[1].split("{", 1)[1].split("}", 1)[0]
            for word in inner.replace(",", " ").split():
                with contextlib.suppress(ValueError):
                    found.add(IPv4Address(word))
        return found


def _elements(addresses: Iterable[IPv4Address]) -> str:
    return ", ".join(sorted({str(a) for a in addresses}, key=lambda s: IPv4Address(s)))
