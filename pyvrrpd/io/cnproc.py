"""The kernel's process-events connector (NETLINK_CONNECTOR, CN_IDX_PROC).

Owns: the socket, the PROC_CN_MCAST_LISTEN subscription and the decoding of
its messages (fork, exec, comm, exit and the subscription's ack) with
`struct`. keepalived's vrrp_track_process uses the same source
(core/track_process.c); pyroute2's ProcEventSocket was read for reference.

Where it works: the kernel delivers process events only to listeners in the
initial network namespace (elsewhere the subscription's send fails with
ECONNREFUSED, errno 111, as keepalived 2.2.7 logs it), and ignores a
subscription from outside the initial PID/user namespace without a word
(linux drivers/connector/cn_proc.c `cn_proc_mcast_ctl()`: it returns before
acking). So the subscription carries an ack cookie: the connector is
"active" only once the kernel's ack (a PROC_EVENT_NONE with our cookie + 1)
has come back. Must not: decide which processes matter.

Message layout (one per datagram; the kernel never chains them):

    nlmsghdr  16 B  len u32, type u16, flags u16, seq u32, pid u32
    cn_msg    20 B  idx u32, val u32, seq u32, ack u32, len u16, flags u16
    proc_event      what u32, cpu u32, timestamp_ns u64, then by `what`:
      FORK  0x001   parent_pid, parent_tgid, child_pid, child_tgid  (u32 each)
      EXEC  0x002   pid, tgid
      COMM  0x200   pid, tgid, comm[16]
      EXIT  0x80000000  pid, tgid, exit_code, exit_signal
      NONE  0x000   err (the subscription's ack)
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
from dataclasses import dataclass

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2
NLMSG_DONE = 3

PROC_EVENT_NONE = 0x00000000
PROC_EVENT_FORK = 0x00000001
PROC_EVENT_EXEC = 0x00000002
PROC_EVENT_COMM = 0x00000200
PROC_EVENT_EXIT = 0x80000000

_NLMSG = struct.Struct("=IHHII")
_CNMSG = struct.Struct("=IIIIHH")
_EVHEAD = struct.Struct("=IIQ")
_HEAD = _NLMSG.size + _CNMSG.size  # 36: proc_event starts here
_U32X4 = struct.Struct("=IIII")
_U32X2 = struct.Struct("=II")
RECV_SIZE = 4096
# Datagrams read per call: the loop comes back for the rest (the fd stays
# readable). Under a fork bomb on many cores the queue may never drain, and a
# read-until-EAGAIN would keep the loop (and its adverts) away for good.
MAX_BATCH = 1024


@dataclass(frozen=True, slots=True)
class ProcEvent:
    """One decoded event; `pid`/`tgid` are the subject (the child for FORK)."""

    what: int
    pid: int = 0
    tgid: int = 0
    parent_tgid: int = 0  # FORK only
    comm: str = ""  # COMM only
    ack: int = 0  # cn_msg ack (NONE: our cookie + 1)
    err: int = 0  # NONE only


def decode(data: bytes) -> ProcEvent | None:
    """One datagram from the connector; None for anything else (never raises)."""
    if len(data) < _HEAD + _EVHEAD.size:
        return None
    _len, _type, _flags, _seq, _pid = _NLMSG.unpack_from(data, 0)
    idx, val, _cseq, ack, _clen, _cflags = _CNMSG.unpack_from(data, _NLMSG.size)
    if (idx, val) != (CN_IDX_PROC, CN_VAL_PROC):
        return None
    what, _cpu, _ts = _EVHEAD.unpack_from(data, _HEAD)
    body = _HEAD + _EVHEAD.size
    rest = len(data) - body
    try:
        if what == PROC_EVENT_FORK and rest >= 16:
            _ppid, ptgid, cpid, ctgid = _U32X4.unpack_from(data, body)
            return ProcEvent(what, cpid, ctgid, parent_tgid=ptgid)
        if what in (PROC_EVENT_EXEC, PROC_EVENT_EXIT) and rest >= 8:
            pid, tgid = _U32X2.unpack_from(data, body)
            return ProcEvent(what, pid, tgid)
        if what == PROC_EVENT_COMM and rest >= 24:
            pid, tgid = _U32X2.unpack_from(data, body)
            raw = data[body + 8 : body + 24].split(b"\0", 1)[0]
            return ProcEvent(what, pid, tgid, comm=raw.decode("utf-8", "replace"))
        if what == PROC_EVENT_NONE and rest >= 4:
            (err,) = struct.unpack_from("=I", data, body)
            return ProcEvent(what, ack=ack, err=err)
    except struct.error:  # pragma: no cover - lengths are checked above
        return None
    return ProcEvent(what)


def subscribe_message(listen: bool, cookie: int) -> bytes:
    """The PROC_CN_MCAST_LISTEN (or IGNORE) request, acked with `cookie` + 1."""
    op = struct.pack("=I", PROC_CN_MCAST_LISTEN if listen else PROC_CN_MCAST_IGNORE)
    cn = _CNMSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, cookie, len(op), 0)
    nl = _NLMSG.pack(_HEAD + len(op), NLMSG_DONE, 0, 0, 0)
    return nl + cn + op


class ProcConnector:
    """A non-blocking subscribed connector socket; read it with `recv_events`."""

    def __init__(self, cookie: int | None = None) -> None:
        self.cookie = cookie if cookie is not None else (os.getpid() & 0xFFFF) << 8
        self.sock = socket.socket(
            socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK, NETLINK_CONNECTOR
        )
        try:
            self.sock.bind((0, CN_IDX_PROC))
            # ECONNREFUSED here outside the initial network namespace.
            self.sock.send(subscribe_message(True, self.cookie))
        except OSError:
            self.sock.close()
            raise

    def fileno(self) -> int:
        return self.sock.fileno()

    def is_ack(self, ev: ProcEvent) -> bool:
        """Whether `ev` is the kernel's answer to our subscription."""
        return ev.what == PROC_EVENT_NONE and ev.ack == self.cookie + 1

    def recv_events(self) -> tuple[list[ProcEvent], bool]:
        """What is queued now, at most MAX_BATCH datagrams, and whether events
        were lost (ENOBUFS)."""
        out: list[ProcEvent] = []
        for _ in range(MAX_BATCH):
            try:
                data, addr = self.sock.recvfrom(RECV_SIZE)
            except BlockingIOError:
                return out, False
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    return out, True
                raise
            if addr[0] != 0:  # only the kernel (port 0) speaks here
                continue
            ev = decode(data)
            if ev is not None:
                out.append(ev)
        return out, False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.send(subscribe_message(False, self.cookie))
        self.sock.close()


def describe_error(exc: OSError) -> str:
    """Why the connector is unavailable, in one line."""
    if exc.errno == errno.ECONNREFUSED:
        return "errno 111 (ECONNREFUSED): not in the initial network namespace"
    if exc.errno == errno.EPROTONOSUPPORT:
        return "no kernel support (CONFIG_PROC_EVENTS)"
    if exc.errno == errno.EPERM:
        return "errno 1 (EPERM): needs CAP_NET_ADMIN"
    return f"errno {exc.errno} ({errno.errorcode.get(exc.errno or 0, '?')}): {exc.strerror}"


__all__ = [
    "PROC_EVENT_COMM",
    "PROC_EVENT_EXEC",
    "PROC_EVENT_EXIT",
    "PROC_EVENT_FORK",
    "PROC_EVENT_NONE",
    "ProcConnector",
    "ProcEvent",
    "decode",
    "describe_error",
    "subscribe_message",
]
