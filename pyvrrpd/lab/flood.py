"""A protocol-112 flood from one lab host, pinned to one core, that reports the rate it reached.

Owns: building the flood's datagrams (:func:`build_datagrams`: wrong-password
adverts for the target's VRID, unknown VRIDs, malformed packets, valid
lower-priority adverts), sending them flat out (or at ``rate``) from inside a
network namespace, and reporting what it achieved (:class:`FloodResult`).

Use from tests and benches::

    with Flood(ns, "192.0.2.66", duration=10) as flood:
        flood.start()          # returns once the sender is about to send
        result = flood.wait()  # FloodResult: .offered_pps, .pps, .describe()

The sender is a child process (``ip netns exec NS python -m pyvrrpd.lab.flood``)
pinned to ``cpu``. It writes Ethernet frames on an ``AF_PACKET`` socket, 256
per ``sendmmsg(2)`` call (ctypes): the kernel's IPv4 output path (routing,
multicast loop-back) is skipped, which is what lets pure Python put 250-400k
frames/s on a veth from one core.

``AH_KINDS`` (in no default mix) make it a protocol-51 flood instead: AH junk
for ``auth_type AH`` instances (tests/netns/test_ah_flood.py).

By default it behaves like an attacker on a box of its own: nice -20 on its
core (the daemons under test cannot slow it down) and a send buffer so large
it never waits for the lab. A veth hands each frame straight to the next hop's
input queue; when that queue is full the frame is refused (ENOBUFS) where a
NIC would have put it on the wire for the switch to drop. So the result says
both: ``offered_pps`` (frames put on the wire) and ``pps`` (frames the lab
took in). ``wait_for_lab=True`` makes the sender sleep instead (offered ==
taken in). It must only run in a namespace a test or bench created; it touches
nothing else. SIGTERM/SIGINT end it early, still printing its result.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from types import TracebackType

from pyvrrpd.wire.ipv4 import build_ipv4
from pyvrrpd.wire.vrrp import VRRP_GROUP, AuthType, encode_advert

__all__ = [
    "AH_KINDS",
    "DEFAULT_MIX",
    "KINDS",
    "Flood",
    "FloodError",
    "FloodResult",
    "Target",
    "build_datagrams",
    "parse_mix",
]

#: Every kind of datagram the flood can carry.
KINDS: tuple[str, ...] = (
    "wrong_pass",  # the target's VRID, priority 254, wrong auth_pass (no secret needed)
    "unknown_vrid",  # a well-formed advert for a VRID nobody runs
    "bad_checksum",  # the target's VRID, one checksum byte flipped
    "truncated",  # the target's VRID, cut short (length error)
    "version3",  # a VRRPv3 header on the target's VRID
    "garbage",  # random bytes with protocol 112
    "lower_prio",  # valid: right password, priority below the master's
)
#: The issue's mix: each kind equally often.
DEFAULT_MIX: Mapping[str, int] = dict.fromkeys(KINDS, 1)
#: Protocol-51 (`auth_type AH`) junk, in no default mix: needs no key to send.
AH_KINDS: tuple[str, ...] = (
    "ah_junk",  # an AH header (next header 112, made-up SPI/sequence/ICV), then an
    # advert for the target's VRID with auth type AH: the ICV check rejects it
    "ah_garbage",  # random bytes with protocol 51
)
_AH_PROTO = 51

_ETH_P_ALL = 0x0003
_ETH_P_IP = 0x0800
# RFC 1112 6.4: 224.0.0.18 maps to 01:00:5e:00:00:12.
_VRRP_MAC = bytes.fromhex("01005e000012")
_BATCH = 256  # frames per sendmmsg(2) call
_UNIQUE = 512  # distinct datagrams cycled through
_SO_SNDBUFFORCE = 32  # <asm-generic/socket.h>
_SNDBUF = 64 << 20


class FloodError(Exception):
    """The flood could not be started or did not report a result (one line)."""


@dataclass(frozen=True, slots=True)
class Target:
    """The VRRP instance under attack (the lab's defaults: VRID 51, PASS 1111)."""

    vrid: int = 51
    vips: tuple[IPv4Address, ...] = (IPv4Address("192.0.2.10"),)
    auth_pass: bytes = b"1111"
    master_priority: int = 100
    advert_int: int = 1


_DEFAULT = Target()


@dataclass(frozen=True, slots=True)
class FloodResult:
    """What the sender achieved; ``start``/``end`` are wall-clock (time.time()) seconds."""

    sent: int  # frames the next hop took in
    refused: int  # frames its full input queue refused (only without wait_for_lab)
    seconds: float
    start: float
    end: float
    cpu: int
    method: str

    @property
    def pps(self) -> float:
        """Frames per second the lab took in."""
        return self.sent / self.seconds if self.seconds > 0 else 0.0

    @property
    def offered_pps(self) -> float:
        """Frames per second put on the wire, refused ones included."""
        return (self.sent + self.refused) / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        refused = f", {self.refused} more refused by a full queue" if self.refused else ""
        return (
            f"flood: {self.sent} packets in {self.seconds:.2f} s = {self.pps:,.0f} packets/s "
            f"from CPU {self.cpu} ({self.method}){refused}"
        )


def parse_mix(text: str) -> dict[str, int]:
    """``"wrong_pass=2,garbage=1"`` (or ``"all"``) -> weights; ValueError on unknown kinds."""
    if text.strip() in ("", "all"):
        return dict(DEFAULT_MIX)
    mix: dict[str, int] = {}
    for part in text.split(","):
        name, _, weight = part.partition("=")
        name = name.strip()
        if name not in KINDS + AH_KINDS:
            known = ", ".join(KINDS + AH_KINDS)
            raise ValueError(f"unknown flood kind {name!r} (known: {known})")
        mix[name] = int(weight) if weight else 1
    if not any(mix.values()):
        raise ValueError("flood mix has no packets")
    return mix


def _one(kind: str, src: IPv4Address, t: Target, rng: random.Random) -> bytes:
    """One IPv4 datagram of ``kind``; varied fields so no two look alike."""
    lower = max(1, min(t.master_priority - 1 - rng.randrange(10), 254))
    if kind == "wrong_pass":
        bad = rng.randbytes(8)
        payload = encode_advert(t.vrid, 254, t.vips, t.advert_int, AuthType.PASS, bad)
    elif kind == "unknown_vrid":
        vrid = rng.choice([v for v in range(1, 256) if v != t.vrid])
        payload = encode_advert(vrid, 254, t.vips, t.advert_int, AuthType.PASS, t.auth_pass)
    elif kind == "bad_checksum":
        good = encode_advert(t.vrid, 254, t.vips, t.advert_int, AuthType.PASS, t.auth_pass)
        payload = good[:6] + bytes([good[6] ^ (1 + rng.randrange(255))]) + good[7:]
    elif kind == "truncated":
        good = encode_advert(t.vrid, 254, t.vips, t.advert_int, AuthType.PASS, t.auth_pass)
        payload = good[: rng.randrange(2, len(good))]  # the VRID byte stays
    elif kind == "version3":
        good = encode_advert(t.vrid, 254, t.vips, t.advert_int, AuthType.PASS, t.auth_pass)
        payload = bytes([0x31]) + good[1:]
    elif kind == "garbage":
        payload = rng.randbytes(rng.randrange(0, 64))
    elif kind in AH_KINDS:
        if kind == "ah_garbage":
            payload = rng.randbytes(rng.randrange(0, 64))
        else:
            # keepalived's AH layout (pyvrrpd.wire.ah): next header 112, length 4.
            ah = struct.pack("!BBH4sI", 112, 4, 0, src.packed, rng.randrange(1, 2**32))
            vrrp = encode_advert(t.vrid, 254, t.vips, t.advert_int, AuthType.AH, b"")
            payload = ah + rng.randbytes(12) + vrrp
        return build_ipv4(
            src, VRRP_GROUP, payload, ident=rng.randrange(1, 0x10000), proto=_AH_PROTO
        )
    elif kind == "lower_prio":
        # RFC 3768 6.4.3: a master receiving a lower priority advert answers
        # with its own advert at once (keepalived also re-sends GARPs).
        payload = encode_advert(t.vrid, lower, t.vips, t.advert_int, AuthType.PASS, t.auth_pass)
    else:
        raise ValueError(f"unknown flood kind {kind!r}")
    return build_ipv4(src, VRRP_GROUP, payload, ident=rng.randrange(0x10000))


def build_datagrams(
    src: IPv4Address,
    target: Target = _DEFAULT,
    mix: Mapping[str, int] = DEFAULT_MIX,
    count: int = _UNIQUE,
    seed: int = 5,
) -> list[bytes]:
    """``count`` IPv4 datagrams (protocol 112 to 224.0.0.18) in ``mix`` proportions, shuffled."""
    rng = random.Random(seed)
    kinds = [k for k, w in mix.items() for _ in range(w)]
    if not kinds:
        raise ValueError("flood mix has no packets")
    out = [_one(kinds[i % len(kinds)], src, target, rng) for i in range(count)]
    rng.shuffle(out)
    return out


# ----------------------------------------------------------------- sender side


class _IoVec(ctypes.Structure):
    _fields_ = (("base", ctypes.c_void_p), ("len", ctypes.c_size_t))


class _MsgHdr(ctypes.Structure):
    _fields_ = (
        ("name", ctypes.c_void_p),
        ("namelen", ctypes.c_uint32),
        ("iov", ctypes.c_void_p),
        ("iovlen", ctypes.c_size_t),
        ("control", ctypes.c_void_p),
        ("controllen", ctypes.c_size_t),
        ("flags", ctypes.c_int),
    )


class _MMsgHdr(ctypes.Structure):
    _fields_ = (("hdr", _MsgHdr), ("len", ctypes.c_uint))


class _Batches:
    """Pre-built ``struct mmsghdr`` arrays, ``_BATCH`` frames each, cycling the frames."""

    def __init__(self, frames: Sequence[bytes]) -> None:
        self._bufs = [ctypes.create_string_buffer(f, len(f)) for f in frames]
        n = len(frames)
        self.arrays: list[ctypes.Array[_MMsgHdr]] = []
        self._iovs: list[ctypes.Array[_IoVec]] = []
        for start in range(0, n, _BATCH):
            idx = [(start + i) % n for i in range(_BATCH)]
            iovs = (_IoVec * _BATCH)(
                *[_IoVec(ctypes.addressof(self._bufs[i]), len(frames[i])) for i in idx]
            )
            msgs = (_MMsgHdr * _BATCH)()
            for j in range(_BATCH):
                msgs[j].hdr.iov = ctypes.addressof(iovs) + j * ctypes.sizeof(_IoVec)
                msgs[j].hdr.iovlen = 1
            self._iovs.append(iovs)
            self.arrays.append(msgs)


_stop = False


def _on_signal(signum: int, frame: object) -> None:
    global _stop
    _stop = True


def send_flood(
    iface: str,
    datagrams: Sequence[bytes],
    duration: float,
    *,
    rate: float | None = None,
    cpu: int | None = None,
    nice: int = 0,
    wait_for_lab: bool = True,
    on_start: Callable[[], None] | None = None,
) -> FloodResult:
    """Send ``datagrams`` round-robin on ``iface`` for ``duration`` s (this process's netns).

    ``wait_for_lab``: with the default send buffer the sender sleeps while its
    frames sit in the lab's queues, so every frame sent is one the lab took in.
    Without it (a 64 MiB buffer) the sender never waits, and frames the next
    hop's input queue cannot take are refused (ENOBUFS) and counted apart.
    """
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    if nice:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, nice)
    sendmmsg = ctypes.CDLL(None, use_errno=True).sendmmsg
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # 0: transmit only
    try:
        sock.bind((iface, 0))
        if not wait_for_lab:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, _SO_SNDBUFFORCE, _SNDBUF)
        mac = sock.getsockname()[4]
        eth = _VRRP_MAC + mac + struct.pack("!H", _ETH_P_IP)
        frames = _Batches([eth + d for d in datagrams])  # keeps the buffers alive
        batches = frames.arrays
        fd = sock.fileno()
        sent = refused = 0
        if on_start is not None:
            on_start()
        t0 = time.monotonic()
        w0 = time.time()
        deadline = t0 + duration
        # At a given rate, bursts of at most a millisecond's worth of frames.
        burst = _BATCH if rate is None else max(1, min(_BATCH, int(rate / 1000)))
        i = 0
        while not _stop:
            now = time.monotonic()
            if now >= deadline:
                break
            if rate is not None:
                ahead = (sent + refused) / rate - (now - t0)
                if ahead > 0:
                    time.sleep(min(ahead, deadline - now))
                    continue
            r = sendmmsg(fd, batches[i % len(batches)], burst, 0)
            i += 1
            if r < 0:
                err = ctypes.get_errno()
                if err == errno.ENOBUFS:  # the next hop's input queue is full
                    refused += 1
                elif err not in (errno.EAGAIN, errno.EINTR):
                    raise OSError(err, os.strerror(err))
            else:
                # sendmmsg(2): an error after the first message ends the call
                # early and is not reported; that message was refused.
                sent += r
                refused += r < burst
        seconds = time.monotonic() - t0
        return FloodResult(
            sent=sent,
            refused=refused,
            seconds=seconds,
            start=w0,
            end=w0 + seconds,
            cpu=cpu if cpu is not None else -1,
            method="AF_PACKET sendmmsg" + ("" if wait_for_lab else ", never waiting"),
        )
    finally:
        sock.close()


def main(argv: list[str] | None = None) -> int:
    """Child entry point: flood, print ``started`` then the result as one JSON line."""
    ap = argparse.ArgumentParser(prog="python -m pyvrrpd.lab.flood", description=__doc__)
    ap.add_argument("--iface", default="eth0")
    ap.add_argument("--src", required=True, type=IPv4Address)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=None, help="packets/s (default: flat out)")
    ap.add_argument("--cpu", type=int, default=None)
    ap.add_argument("--nice", type=int, default=0, help="scheduling niceness of the sender")
    ap.add_argument("--never-wait", action="store_true", help="see send_flood(wait_for_lab)")
    ap.add_argument("--mix", default="all", help=f"kind=weight,... of {', '.join(KINDS)}")
    ap.add_argument("--vrid", type=int, default=_DEFAULT.vrid)
    ap.add_argument("--vip", action="append", type=IPv4Address)
    ap.add_argument("--auth-pass", default="1111")
    ap.add_argument("--master-priority", type=int, default=_DEFAULT.master_priority)
    ap.add_argument("--advert-int", type=int, default=_DEFAULT.advert_int)
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        mix = parse_mix(args.mix)
        target = Target(
            args.vrid,
            tuple(args.vip) if args.vip else _DEFAULT.vips,
            args.auth_pass.encode(),
            args.master_priority,
            args.advert_int,
        )
        datagrams = build_datagrams(args.src, target, mix)

        def started() -> None:
            print("started", flush=True)

        res = send_flood(
            args.iface,
            datagrams,
            args.duration,
            rate=args.rate,
            cpu=args.cpu,
            nice=args.nice,
            wait_for_lab=not args.never_wait,
            on_start=started,
        )
    except (OSError, ValueError) as exc:
        print(f"flood: {exc}", file=sys.stderr)
        return 2
    print(res.describe(), file=sys.stderr)
    print(json.dumps({k: getattr(res, k) for k in FloodResult.__slots__}), flush=True)
    return 0


# ----------------------------------------------------------------- parent side


@dataclass
class Flood:
    """A flood from namespace ``ns`` (source ``src_ip``), run in a pinned child process."""

    ns: str
    src_ip: str | IPv4Address
    iface: str = "eth0"
    mix: Mapping[str, int] | str = field(default_factory=lambda: dict(DEFAULT_MIX))
    rate: float | None = None
    duration: float = 10.0
    cpu: int | None = 1
    # As if the attacker were a box of its own: it keeps its core (nice -20,
    # the daemons under test cannot slow it down) and never waits for the
    # lab's queues (what they cannot take is refused and counted).
    nice: int = -20
    wait_for_lab: bool = False
    target: Target = field(default_factory=Target)
    _proc: subprocess.Popen[str] | None = field(default=None, init=False, repr=False)
    result: FloodResult | None = field(default=None, init=False)

    def argv(self) -> list[str]:
        mix = self.mix if isinstance(self.mix, str) else ",".join(
            f"{k}={w}" for k, w in self.mix.items()
        )  # fmt: skip
        cmd = ["ip", "netns", "exec", self.ns, sys.executable, "-m", "pyvrrpd.lab.flood"]
        cmd += ["--iface", self.iface, "--src", str(self.src_ip), "--mix", mix]
        cmd += ["--duration", str(self.duration), "--vrid", str(self.target.vrid)]
        cmd += ["--auth-pass", self.target.auth_pass.decode()]
        cmd += ["--master-priority", str(self.target.master_priority)]
        cmd += ["--advert-int", str(self.target.advert_int)]
        for vip in self.target.vips:
            cmd += ["--vip", str(vip)]
        if self.rate is not None:
            cmd += ["--rate", str(self.rate)]
        if self.cpu is not None:
            cmd += ["--cpu", str(self.cpu)]
        if self.nice:
            cmd += ["--nice", str(self.nice)]
        if not self.wait_for_lab:
            cmd += ["--never-wait"]
        return cmd

    def start(self, timeout: float = 10.0) -> None:
        """Start the sender; return once it is sending (FloodError if it does not)."""
        if self.cpu is not None and self.cpu not in os.sched_getaffinity(0):
            raise FloodError(f"CPU {self.cpu} not available here (have {os.sched_getaffinity(0)})")
        # `ip netns exec` execs the command: the Popen pid is the sender's.
        self._proc = subprocess.Popen(
            self.argv(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert self._proc.stdout is not None
        t0 = time.monotonic()
        line = self._proc.stdout.readline()  # the child prints "started" first
        if line.strip() != "started":
            err = self._finish_err()
            raise FloodError(f"flood sender did not start: {err or line.strip() or 'no output'}")
        if time.monotonic() - t0 > timeout:  # pragma: no cover - readline blocked that long
            raise FloodError("flood sender took too long to start")

    def _finish_err(self) -> str:
        assert self._proc is not None
        with contextlib.suppress(subprocess.TimeoutExpired):
            _, err = self._proc.communicate(timeout=5)
            return (err or "").strip().splitlines()[-1] if err and err.strip() else ""
        return ""

    def wait(self, timeout: float | None = None) -> FloodResult:
        """Wait for the sender to finish; its result (FloodError if it failed)."""
        if self._proc is None:
            raise FloodError("flood not started")
        if timeout is None:
            timeout = self.duration + 30.0
        try:
            out, err = self._proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            self.kill()
            raise FloodError("flood sender did not finish in time") from exc
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        if self._proc.returncode != 0 or not lines:
            last = err.strip().splitlines()[-1] if err.strip() else f"exit {self._proc.returncode}"
            raise FloodError(f"flood sender failed: {last}")
        d = json.loads(lines[-1])
        self.result = FloodResult(**d)
        return self.result

    def running(self) -> bool:
        """True while the sender process runs."""
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> FloodResult:
        """End the flood early (SIGTERM); its result so far."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
        return self.wait()

    def run(self) -> FloodResult:
        """Start and wait."""
        self.start()
        return self.wait()

    def kill(self) -> None:
        """SIGKILL the sender if it still runs (only the process we started)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5)

    def __enter__(self) -> Flood:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()


if __name__ == "__main__":
    raise SystemExit(main())
