"""Keeping one instance's virtual addresses in the kernel as the core asked.

Owns: the wanted state (installed or not) of an instance's addresses and one
background task per instance that makes the kernel match it: every address
added (or removed), each netlink command under its deadline, failures retried
with exponential backoff, and the gratuitous ARP held back until the
addresses are really there (RFC 3768 6.4.2 sends the ARPs for addresses the
router now owns). Repeated AddVips/RemoveVips collapse into the latest wish,
so a burst of actions never becomes a burst of tasks.

An add that keeps failing is given up on after `GIVE_UP_ATTEMPTS` attempts or
`GIVE_UP_AFTER` seconds: a MASTER advertising without its VIPs would keep the
backup from taking over, so the shell tells the core (HostFault), which
resigns with priority 0 and asks for removal. Removal is retried for as long
as it is wanted: a VIP left behind on an old master is the split brain this
daemon exists to prevent.

Must not decide protocol state; it reports failures through `on_give_up`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
from collections.abc import Callable
from typing import Protocol

import structlog

from pyvrrpd.config.model import VirtualIP
from pyvrrpd.io.errors import HostError
from pyvrrpd.io.netlink import Netlink

log = structlog.get_logger("pyvrrpd")

BACKOFF_FIRST = 0.1  # seconds before the first retry
BACKOFF_MAX = 2.0  # removal retries settle at this period
GIVE_UP_ATTEMPTS = 4  # ~0.7 s of failing adds (0.1 + 0.2 + 0.4 between them)
# A hung add costs the netlink deadline (netlink.COMMAND_TIMEOUT) per address:
# stop after this long, even in the middle of a pass, so the peer still takes
# over well inside Master_Down_Interval + 0.5 s.
GIVE_UP_AFTER = 1.5


async def set_address(netlink: Netlink, add: bool, dev: str, vip: VirtualIP) -> bool:
    """Add `vip` on `dev` with its configured broadcast, scope and label, or
    remove it; whether the kernel changed (HostError as Netlink raises it).
    Shared with static_ipaddress (shell/host/statics.py)."""
    if add:
        return await netlink.add_address(
            dev,
            vip.address,
            vip.prefixlen,
            broadcast=vip.broadcast,
            scope=vip.scope,
            label=vip.label,
        )
    return await netlink.remove_address(dev, vip.address, vip.prefixlen)


class Companion(Protocol):
    """Something installed and removed with an instance's addresses."""

    first: bool

    async def apply(self, want: bool) -> str | None: ...


class VipSet:
    """The kernel side of one instance's `virtual_ipaddress` (+ excluded)."""

    def __init__(
        self,
        name: str,
        addresses: tuple[VirtualIP, ...],
        dev: Callable[[VirtualIP], str],
        netlink: Netlink,
        *,
        send_garp: Callable[[int], None],
        on_give_up: Callable[[str], None],
    ) -> None:
        self.name = name
        self.addresses = addresses
        self._dev = dev
        self._netlink = netlink
        self._send_garp = send_garp
        self._on_give_up = on_give_up
        #: True: install; False: remove; None: nothing asked yet.
        self.want: bool | None = None
        #: The last pass made the kernel match `want`.
        self.settled = False
        self.pending_garp = 0
        self.retries = 0
        self.gave_up = 0
        self.last_error: str | None = None
        #: Work done with the addresses (shell/host/firewall.py DropRules,
        #: shell/host/statics.py VirtualRoutes): `first` ones go in before the
        #: addresses and come out after them, the others the other way round.
        self.companions: list[Companion] = []
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ the wishes

    def add(self) -> None:
        self._wish(True)

    def remove(self) -> None:
        self.pending_garp = 0
        self._wish(False)

    def garp(self, repeat: int) -> None:
        """Send `repeat` GARP rounds now if the addresses are in, else once they are."""
        if self.want and self.settled:
            self._send_garp(repeat)
        elif self.want:
            # Coalesced: a burst asked for twice before install goes out once.
            self.pending_garp = max(self.pending_garp, repeat)

    def _wish(self, want: bool) -> None:
        # Always one more pass, even for the same wish: the core repeats
        # AddVips when someone removed an address behind our back. Passes
        # coalesce: a running task just starts over.
        self.want = want
        self.settled = False
        self._changed.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"vips:{self.name}"
            )

    async def wait_settled(self, timeout: float) -> bool:
        """Wait (bounded) for the current pass to finish; True if settled."""
        if self._task is not None and not self._task.done():
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
        return self.settled

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    # ------------------------------------------------------------- the work

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        attempts = 0
        started = loop.time()
        tried: bool | None = None
        while True:
            self._changed.clear()
            want = self.want
            if want is None:
                return
            if want != tried:
                # A new wish (one that arrived during a backoff wait, say an
                # add after a stretch of failed removals) gets its own attempts
                # and time budget, not what is left of the previous one's.
                attempts, started, tried = 0, loop.time(), want
            error = await self._apply(want, started + GIVE_UP_AFTER)
            if self.want != want or self._changed.is_set():
                attempts, started = 0, loop.time()
                continue  # the wish changed while we worked: start over
            if error is None:
                self.settled = True
                self.last_error = None
                if want and self.pending_garp:
                    repeat, self.pending_garp = self.pending_garp, 0
                    self._send_garp(repeat)
                return
            attempts += 1
            self.retries += 1
            self.last_error = error
            if want and (attempts >= GIVE_UP_ATTEMPTS or loop.time() - started >= GIVE_UP_AFTER):
                self.gave_up += 1
                log.error("vips_give_up", instance=self.name, attempts=attempts, error=error)
                # The core answers with RemoveVips (a new wish) via the shell.
                self._on_give_up(f"cannot install VIPs: {error}")
                attempts, started = 0, loop.time()
                continue
            delay = min(BACKOFF_FIRST * 2 ** (attempts - 1), BACKOFF_MAX)
            log.warning(
                "vips_retry",
                instance=self.name,
                action="add" if want else "remove",
                attempt=attempts,
                retry_in=round(delay, 3),
                error=error,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), delay)

    async def _apply(self, want: bool, give_up_at: float) -> str | None:
        """One pass over every address; the first error (one line) or None.

        An add pass that has failed stops at `give_up_at`: with several hung
        addresses a whole pass would cost one netlink deadline per address.
        """
        loop = asyncio.get_running_loop()
        first_error: str | None = None
        changed: list[str] = []
        for comp in self.companions:
            if comp.first == want and (err := await comp.apply(want)):
                if want:
                    return err  # no VIP without its drop rule (accept mode off)
                first_error = first_error or err
        for vip in self.addresses:
            if self.want != want:
                return None  # superseded; the loop starts over
            if want and first_error is not None and loop.time() >= give_up_at:
                break
            dev = self._dev(vip)
            try:
                done = await set_address(self._netlink, want, dev, vip)
            except HostError as exc:
                if not want and exc.errno_code == errno.ENODEV:
                    continue  # the interface is gone, and its addresses with it
                # Keep going: one bad address must not cost the others.
                first_error = first_error or str(exc)
                continue
            except Exception as exc:
                # A bug below must not kill this task silently: a VIP left
                # behind (or never installed) is the split brain we prevent.
                log.exception("vip_internal_error", instance=self.name, vip=str(vip))
                first_error = first_error or f"internal error: {exc!r}"
                continue
            if done:
                changed.append(str(vip))
        for comp in self.companions:
            if comp.first != want and self.want == want and (err := await comp.apply(want)):
                first_error = first_error or err
        if changed:
            log.info(
                "vips_set" if want else "vips_removed",
                instance=self.name,
                vips=[str(v) for v in self.addresses] if want else changed,
                changed=changed,
            )
        return first_error
