"""What a flood does to a VRRP master: advert gaps on the wire, kernel drops, RSS, elections.

Owns: capturing one host's outgoing adverts with kernel timestamps
(:class:`AdvertCapture`), reading a namespace's kernel counters through a
process in it (:func:`raw_socket_counters`, :func:`ip_in_receives`), the longest
advert gap over a window (:func:`longest_gap`), steering a port's receive work
to chosen CPUs (:func:`steer_rx`), and one driver, :func:`measure_flood`, that
runs a :class:`~pyvrrpd.lab.flood.Flood` and gathers :class:`FloodFigures`.
The driver is daemon-agnostic: the caller passes callables for the daemon's
PIDs, its own packet counters and who holds the VIP, so the same code measures
pyvrrpd and keepalived. Reads only namespaces and processes the caller made.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from pyvrrpd.lab.flood import Flood, FloodResult

__all__ = [
    "AdvertCapture",
    "FloodFigures",
    "RampStep",
    "capacity_ramp",
    "ip_in_receives",
    "longest_gap",
    "measure_flood",
    "raw_socket_counters",
    "rss_of",
    "steer_rx",
    "wait_idle",
    "with_children",
]

_CLONE_NEWNET = 0x40000000
_SO_TIMESTAMPNS = 35  # also the SCM_ type of the control message
_SO_ATTACH_FILTER = 26
_PACKET_OUTGOING = 4
_ETH_P_ALL = 0x0003
# Classic BPF opcodes (<linux/filter.h>).
_LD_W_ABS, _LDH_ABS, _LDB_ABS = 0x20, 0x28, 0x30
_JEQ_K, _RET_K = 0x15, 0x06
_SKF_AD_PKTTYPE = 0xFFFFF000 + 4  # SKF_AD_OFF + SKF_AD_PKTTYPE

_libc = ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def _in_netns(ns: str) -> Iterator[None]:
    """This thread only, inside ``/run/netns/<ns>``; sockets made here stay there."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if _libc.setns(target, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {ns}: {os.strerror(err)}")
        try:
            yield
        finally:
            if _libc.setns(home, _CLONE_NEWNET) != 0:  # pragma: no cover - cannot fail back
                err = ctypes.get_errno()
                raise OSError(err, f"setns back: {os.strerror(err)}")
    finally:
        os.close(target)
        os.close(home)


def _outgoing_vrrp_filter(src: IPv4Address) -> list[tuple[int, int, int, int]]:
    """cBPF: keep only frames this host sends, IPv4 protocol 112, from ``src``."""
    prog = [
        (_LD_W_ABS, 0, 0, _SKF_AD_PKTTYPE),
        (_JEQ_K, 0, 7, _PACKET_OUTGOING),
        (_LDH_ABS, 0, 0, 12),  # ethertype
        (_JEQ_K, 0, 5, 0x0800),
        (_LDB_ABS, 0, 0, 23),  # IPv4 protocol
        (_JEQ_K, 0, 3, 112),
        (_LD_W_ABS, 0, 0, 26),  # IPv4 source
        (_JEQ_K, 0, 1, int(src)),
        (_RET_K, 0, 0, 0xFFFF),
        (_RET_K, 0, 0, 0),
    ]
    return prog


class AdvertCapture:
    """Kernel timestamps (wall clock) of the adverts ``src`` sends on ``iface`` in ``ns``.

    An ``AF_PACKET`` socket in the sender's own namespace sees its frames as
    they leave (PACKET_OUTGOING), timestamped by the kernel, so the capture
    thread's own scheduling delays under load do not shift the figures. A BPF
    filter drops everything else in the kernel, flood included.
    """

    def __init__(self, ns: str, src: str | IPv4Address, iface: str = "eth0") -> None:
        self.ns, self.iface, self.src = ns, iface, IPv4Address(src)
        self.stamps: list[float] = []
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> AdvertCapture:
        with _in_netns(self.ns):
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_ALL))
        try:
            prog = _outgoing_vrrp_filter(self.src)
            raw = b"".join(struct.pack("=HBBI", *insn) for insn in prog)
            buf = ctypes.create_string_buffer(raw, len(raw))
            fprog = struct.pack("@HP", len(prog), ctypes.addressof(buf))
            sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)
            sock.bind((self.iface, _ETH_P_ALL))
            sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
            # Frames queued between socket() and the filter are not ours to judge.
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                while True:
                    sock.recv(65535)
            sock.settimeout(0.1)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._thread = threading.Thread(target=self._run, name="advert-capture", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                _, anc, _, _ = self._sock.recvmsg(256, socket.CMSG_SPACE(16))
            except TimeoutError:
                continue
            except OSError:
                return
            stamp = time.time()
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= 16:
                    sec, nsec = struct.unpack("=qq", data[:16])
                    stamp = sec + nsec / 1e9
            self.stamps.append(stamp)

    def stop(self) -> list[float]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        return sorted(self.stamps)

    def __enter__(self) -> AdvertCapture:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def longest_gap(stamps: Sequence[float], start: float, end: float) -> float | None:
    """Longest interval between consecutive ``stamps`` that overlaps ``[start, end]``.

    The interval spanning ``start`` (last advert before the flood, first one in
    it) counts, as does the one spanning ``end``. None with fewer than two stamps
    around the window (no advert at all after the window started).
    """
    s = sorted(stamps)
    gaps = [b - a for a, b in itertools.pairwise(s) if b > start and a < end]
    return max(gaps) if gaps else None


def _proc_net(pid: int, name: str) -> str:
    # /proc/PID/net is the network namespace of that process, read from here.
    with open(f"/proc/{pid}/net/{name}") as f:
        return f.read()


@dataclass(frozen=True, slots=True)
class RawCounters:
    """Summed over the namespace's protocol-112 raw sockets (/proc/net/raw)."""

    drops: int
    rx_queue: int
    sockets: int


def raw_socket_counters(pid: int, proto: int = 112) -> RawCounters:
    """Kernel drops and queued bytes of every raw ``proto`` socket in ``pid``'s namespace."""
    drops = queued = n = 0
    for line in _proc_net(pid, "raw").splitlines()[1:]:
        f = line.split()
        # sl local_address rem_address st tx_queue:rx_queue ... drops (last field);
        # a raw socket's "port" is its protocol.
        if len(f) < 13 or int(f[1].split(":")[1], 16) != proto:
            continue
        n += 1
        queued += int(f[4].split(":")[1], 16)
        drops += int(f[-1])
    return RawCounters(drops, queued, n)


def ip_in_receives(pid: int) -> int:
    """``Ip: InReceives`` of ``pid``'s namespace: datagrams its IP layer took in."""
    lines = [ln.split() for ln in _proc_net(pid, "snmp").splitlines() if ln.startswith("Ip:")]
    head, vals = lines[0], lines[1]
    return int(vals[head.index("InReceives")])


def steer_rx(ns: str, dev: str, cpus: set[int]) -> None:
    """Receive Packet Steering: ``dev``'s received frames are processed on ``cpus``.

    Used on the switch port facing the injector, so the lab's receive work for
    the flood runs on the daemons' core, not on the sender's (as it would if the
    attacker were a box of its own).
    """
    mask = sum(1 << c for c in cpus)
    path = f"/sys/class/net/{dev}/queues/rx-0/rps_cpus"
    subprocess.run(
        ["ip", "netns", "exec", ns, "sh", "-c", f"echo {mask:x} > {path}"],
        check=True,
        capture_output=True,
        timeout=10,
    )


def rss_of(pids: Sequence[int]) -> int:
    """Summed RSS in bytes (``VmRSS``; 0 for processes that are gone)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time of ``pids`` so far (gone processes count 0)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError), open(f"/proc/{pid}/stat") as f:
            # Fields after the parenthesised command name; utime, stime are 14, 15.
            fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / tick


def wait_idle(
    pids: Sequence[int], busy: float = 0.1, window: float = 0.5, timeout: float = 15.0
) -> bool:
    """Wait until ``pids`` use under ``busy`` of a core over ``window`` s; True if they did.

    After a flood a daemon may still work off what it queued (keepalived sends
    its GARPs for each lower-priority advert): the next measurement must not
    start on a busy daemon.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c0 = cpu_seconds(pids)
        time.sleep(window)
        if cpu_seconds(pids) - c0 < busy * window:
            return True
    return False


def with_children(pid: int) -> list[int]:
    """``pid`` and its descendants (keepalived's VRRP child, say)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
    return out


@dataclass
class FloodFigures:
    """One flood against one master. Rates are per second of flood."""

    daemon: str
    flood: FloodResult
    arrived_pps: float  # IP datagrams the master's namespace took in
    read_pps: float  # arrived minus the kernel's drops at the daemon's sockets
    counted_pps: float | None  # what the daemon's own counters classified
    kernel_drops: int  # drops at the daemon's protocol-112 raw sockets
    longest_gap_s: float | None  # longest interval between the master's adverts
    adverts_in_flood: int
    rss_before: int
    rss_peak: int
    rss_after: int
    backup_state: str | None
    holder_samples: int
    bad_holder_samples: list[tuple[float, list[str]]] = field(default_factory=list)
    holders_after: list[str] = field(default_factory=list)

    @property
    def rss_growth(self) -> int:
        return max(self.rss_peak, self.rss_after) - self.rss_before


def measure_flood(
    daemon: str,
    flood: Flood,
    master_ns: str,
    master_src: str,
    pids: Callable[[], list[int]],
    counted: Callable[[], int | None],
    holders: Callable[[], list[str]],
    backup_state: Callable[[], str | None],
    master: str = "lb1",
    advert_int: float = 1.0,
    drain_timeout: float = 10.0,
) -> FloodFigures:
    """Run ``flood`` against the master and gather the figures (see FloodFigures).

    ``pids`` lists the master daemon's processes (read once, before the flood);
    ``counted`` returns the daemon's total of received packets it classified
    (accepted plus every drop reason), or None if it keeps no such count;
    ``holders`` who has the VIP now; ``backup_state`` the backup's state word.
    """
    procs = pids()
    netpid = procs[0]
    c0 = counted()
    raw0 = raw_socket_counters(netpid)
    in0 = ip_in_receives(netpid)
    rss0 = rss_of(procs)
    peak = rss0
    samples: list[tuple[float, list[str]]] = []
    with AdvertCapture(master_ns, master_src) as cap:
        # An advert or two before the flood, so the first gap is bounded.
        deadline = time.time() + 3 * advert_int
        while len(cap.stamps) < 1 and time.time() < deadline:
            time.sleep(0.05)
        flood.start()
        try:
            while flood.running():
                samples.append((time.time(), holders()))
                peak = max(peak, rss_of(procs))
                time.sleep(0.2)
            result = flood.wait()
        finally:
            flood.kill()
        # Wait for the first advert after the flood: it closes the last gap.
        deadline = time.time() + 3 * advert_int + 1
        while time.time() < deadline and not [t for t in cap.stamps if t > result.end]:
            time.sleep(0.05)
    stamps = sorted(cap.stamps)
    # Let the daemon finish what the kernel queued before reading its counters.
    deadline = time.monotonic() + drain_timeout
    while raw_socket_counters(netpid).rx_queue and time.monotonic() < deadline:
        time.sleep(0.05)
    peak = max(peak, rss_of(procs))
    raw1 = raw_socket_counters(netpid)
    arrived = ip_in_receives(netpid) - in0
    c1 = counted()
    secs = result.seconds
    drops = raw1.drops - raw0.drops
    good = [master]
    return FloodFigures(
        daemon=daemon,
        flood=result,
        arrived_pps=arrived / secs,
        read_pps=(arrived - drops) / secs,
        counted_pps=(c1 - c0) / secs if c0 is not None and c1 is not None else None,
        kernel_drops=drops,
        longest_gap_s=longest_gap(stamps, result.start, result.end),
        adverts_in_flood=sum(1 for t in stamps if result.start <= t <= result.end),
        rss_before=rss0,
        rss_peak=peak,
        rss_after=rss_of(procs),
        backup_state=backup_state(),
        holder_samples=len(samples),
        bad_holder_samples=[(t, h) for t, h in samples if h != good],
        holders_after=holders(),
    )


@dataclass(frozen=True, slots=True)
class RampStep:
    """One rate-limited flood of a capacity ramp."""

    offered_pps: float
    arrived_pps: float
    drop_ratio: float  # kernel drops at the daemon's sockets / arrived
    counted_pps: float | None


def capacity_ramp(
    make_flood: Callable[[float], Flood],
    pids: Sequence[int],
    counted: Callable[[], int | None],
    start: float = 2000.0,
    factor: float = 1.5,
    limit: float = 400_000.0,
    max_drop: float = 0.01,
    drain_timeout: float = 10.0,
) -> list[RampStep]:
    """Floods at rising rates until the kernel drops more than ``max_drop`` of what arrived.

    The last step below ``max_drop`` is the rate the daemon classifies before
    the kernel starts dropping (issue 5, item 2). ``make_flood(rate)`` builds a
    short rate-limited :class:`Flood`; ``pids`` are the daemon's processes
    (the first one's namespace is read); each step starts on an idle daemon.
    """
    netpid = pids[0]
    steps: list[RampStep] = []
    rate = start
    while rate <= limit:
        wait_idle(pids)
        c0 = counted()
        raw0 = raw_socket_counters(netpid)
        in0 = ip_in_receives(netpid)
        result = make_flood(rate).run()
        deadline = time.monotonic() + drain_timeout
        while raw_socket_counters(netpid).rx_queue and time.monotonic() < deadline:
            time.sleep(0.05)
        arrived = ip_in_receives(netpid) - in0
        drops = raw_socket_counters(netpid).drops - raw0.drops
        c1 = counted()
        secs = result.seconds
        step = RampStep(
            offered_pps=result.offered_pps,
            arrived_pps=arrived / secs,
            drop_ratio=drops / arrived if arrived else 0.0,
            counted_pps=(c1 - c0) / secs if c0 is not None and c1 is not None else None,
        )
        steps.append(step)
        if step.drop_ratio > max_drop:
            break
        rate *= factor
    return steps
