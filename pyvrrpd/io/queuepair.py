"""Reading a raw socket pair split into a fast and a slow queue.

Owns: the event-loop readers of the two receive sockets the VRRP (112) and AH
(51) sockets both have, and their counters. The fast queue (what the kernel
filter recognised as our routers' adverts) is read ``RECV_BUDGET`` datagrams
per wake-up; the slow queue (everything else) at most ``SLOW_BUDGET`` per
``SLOW_PAUSE``, so a flood gets a bounded share of our CPU and timers run on
time. Must not: open, filter or close the sockets (their owners do).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

from pyvrrpd.io.rawsock import RECV_BUDGET, read_budget

#: The slow queue is read at most this many datagrams per SLOW_PAUSE: about
#: 13k packets/s, a fifth of a core, so a flood cannot take the CPU the kernel
#: and our timers need. What overflows its buffer is counted by the kernel
#: (SO_MEMINFO drops).
SLOW_BUDGET = 64
SLOW_PAUSE = 0.005


class QueuePair:
    """Delivers the datagrams of a fast and an optional slow receive socket."""

    def __init__(self, rx: socket.socket, rx_slow: socket.socket | None) -> None:
        self.rx = rx
        self.rx_slow = rx_slow
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slow_paused: asyncio.TimerHandle | None = None
        self.received = 0
        self.received_slow = 0

    def attach(self, loop: asyncio.AbstractEventLoop, on_datagram: Callable[[bytes], None]) -> None:
        """Call ``on_datagram(whole_ipv4_datagram)`` for each received datagram.

        What a wake-up does not read waits in the socket buffer for the next
        loop iteration, after the timers that are due. Exceptions from
        ``on_datagram`` propagate to the loop's exception handler.
        """
        self.detach()
        rx = self.rx

        def _deliver(data: bytes) -> None:
            self.received += 1
            on_datagram(data)

        def _readable() -> None:
            read_budget(rx, RECV_BUDGET, _deliver)

        loop.add_reader(rx.fileno(), _readable)
        self._loop = loop
        slow = self.rx_slow
        if slow is None:
            return

        def _resume() -> None:
            self._slow_paused = None
            if self._loop is not None and slow.fileno() >= 0:
                self._loop.add_reader(slow.fileno(), _slow_readable)

        def _deliver_slow(data: bytes) -> None:
            self.received_slow += 1
            _deliver(data)

        def _slow_readable() -> None:
            if not read_budget(slow, SLOW_BUDGET, _deliver_slow):
                return  # empty (or a transient error): wait for the next wake-up
            # Budget used up: more is waiting. Pause the slow queue so a flood
            # gets at most SLOW_BUDGET per SLOW_PAUSE of our CPU.
            loop.remove_reader(slow.fileno())
            self._slow_paused = loop.call_later(SLOW_PAUSE, _resume)

        loop.add_reader(slow.fileno(), _slow_readable)

    def detach(self) -> None:
        """Stop delivering datagrams. Idempotent."""
        if self._slow_paused is not None:
            self._slow_paused.cancel()
            self._slow_paused = None
        if self._loop is not None:
            if not self._loop.is_closed():
                for s in (self.rx, self.rx_slow):
                    if s is not None and s.fileno() >= 0:
                        self._loop.remove_reader(s.fileno())
            self._loop = None
