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

The table is created when the first address goes in and deleted at stop,
as keepalived does; `nftables_priority` sets the chains' priority and
`nftables_counters` adds a counter to both rules.

No Python binding is used: the command keeps the daemon free of a C library
dependency, and one `nft -f -` run is one atomic batch. Must not decide when
addresses go in or out (pyvrrpd.shell.firewall does) and never raises
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

__all__ = ["NFT_TIMEOUT", "Nft"]

#: Seconds one `nft` run may take; a healthy host answers in a few ms.
NFT_TIMEOUT = 2.0
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
        #: The chains and rules are in the kernel (created by this process).
        self.created = False

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

    async def run(self, script: str, what: str) -> str:
        """Run an nft script (one atomic batch); its stdout. HostError on failure."""
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
            out, err = await asyncio.wait_for(proc.communicate(script.encode()), self.timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise HostError(
                f"{what}: nft did not finish within {self.timeout:g} s", errno_code=errno.ETIMEDOUT
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
        # `add` is idempotent; the rules are added only on the first call, so
        # a second pass does not stack copies of them.
        return (
            f"add table ip {t}\n"
            f"add set ip {t} vips {{ type ipv4_addr; }}\n"
            f"add chain ip {t} out {{ type filter hook output priority {prio}; policy accept; }}\n"
            f"add chain ip {t} in {{ type filter hook input priority {prio}; policy accept; }}\n"
            f"add rule ip {t} out ip saddr @vips {counter}drop\n"
            f"add rule ip {t} in ip daddr @vips {counter}drop\n"
        )

    async def add(self, addresses: Iterable[IPv4Address]) -> None:
        """Drop traffic to and from `addresses` (creating the table the first time)."""
        elems = _elements(addresses)
        if not elems:
            return
        script = "" if self.created else self._setup()
        script += f"add element ip {self.table} vips {{ {elems} }}\n"
        await self.run(script, f"cannot add nftables drop rules for {elems}")
        self.created = True

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
            self.created = False  # someone deleted the table: nothing is dropped

    async def delete_table(self) -> bool:
        """Delete the whole table (start: a stale one; stop: ours). True if it existed."""
        try:
            await self.run(f"delete table ip {self.table}\n", f"cannot delete table {self.table}")
        except HostError as exc:
            if exc.errno_code != errno.ENOENT:
                raise
            return False
        finally:
            self.created = False
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
