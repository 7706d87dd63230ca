"""Classic BPF programs that split received VRRP traffic into two queues.

Owns: building the socket filter that tells the kernel which received
datagrams look like adverts of our own virtual routers (the fast queue) and
its exact complement (the slow queue). Pure: it returns the instructions as
bytes for SO_ATTACH_FILTER; ``pyvrrpd.io.vrrp_socket`` attaches them.

Why: under a flood from a third box (wrong passwords, unknown VRIDs,
garbage: no secret needed) a single receive queue fills with junk and the
kernel drops the real adverts with it; the backup then misses
Master_Down_Interval worth of adverts and becomes a second master. With two
queues the real adverts never wait behind junk. The slow queue is still read
and every packet in it classified and counted by ``pyvrrpd.wire.check``, at a
bounded rate; what overflows it is counted by the kernel (SO_MEMINFO drops).

The fast test is deliberately loose: a packet passes when it is an IPv4
datagram with TTL 255 (RFC 3768 7.1), VRRP version 2 type 1, a VRID we
serve, that router's auth type and advert interval and, for simple-password
auth, its password. Everything else (checksum, lengths, address list) is
still checked in userspace, so the filter decides only which queue a packet
waits in, never whether it is accepted.

Unicast routers (``unicast_peer``): keepalived does not require TTL 255 of
unicast adverts (a peer may be routed hops away), so their block tests the
TTL only when every router on the socket is multicast; and while no master
is followed (a MASTER, or a BACKUP before its first advert) only the listed
peers' adverts take the fast queue, a flood from anyone else the slow one.
The destination is not tested: whether a unicast router got a multicast
advert (or the reverse) is decided, and counted, in userspace.

Program layout (the packet starts at the IPv4 header on a raw socket)::

    len >= 20 ?                         else -> slow
    ttl == 255 ?                        else -> slow   (only if no router is unicast)
    X = 4 * IHL ; len >= X + 8 ?        else -> slow
    vrrp[0] == 0x21 ?                   else -> slow
    per served VRID v:
      vrrp[1] == v ? -> [ttl == 255,] [src == master | src in peers,]
                        type == t, interval == i [, password] -> fast
    -> slow

Every load is preceded by a length check, so no load can run past the end of
the packet (which would end the program with "drop" in both filters and lose
the packet from both queues).

`auth_type AH` (protocol-51 sockets, ``pyvrrpd.io.ah_socket``): the same
program with ``offset=AH_HEADER_LEN``. keepalived's AH header (RFC 2402, 12
fixed bytes and a 12-byte HMAC-96 ICV, ``pyvrrpd.wire.ah``) sits between the
IP and VRRP headers, so every VRRP load moves 24 bytes further in, and one
more test comes first: the AH next-header byte (at 4 * IHL) must be 112.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address

__all__ = ["AH_HEADER_LEN", "BpfInsn", "FastPath", "assemble", "split_filter"]

# <linux/bpf_common.h>, <linux/filter.h>
_LD, _LDX, _ST, _ALU, _JMP, _RET, _MISC = 0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x07
_W, _B = 0x00, 0x10
_IMM, _ABS, _IND, _MEM, _LEN, _MSH = 0x00, 0x20, 0x40, 0x60, 0x80, 0xA0
_ADD, _LSH = 0x00, 0x60
_JEQ, _JGT, _JGE = 0x10, 0x20, 0x30
_K, _X = 0x00, 0x08
_TAX, _TXA = 0x00, 0x80

ACCEPT_ALL = 0xFFFFFFFF
_TTL_OFFSET = 8
_SRC_OFFSET = 12
_VRRP_V2_ADVERT = 0x21  # version 2, type 1 (RFC 3768 5.3.1, 5.3.2)
_AUTH_PASS = 1
#: keepalived's AH header: next header, length, reserved, SPI, sequence, ICV.
AH_HEADER_LEN = 24
_PROTO_VRRP = 112


@dataclass(frozen=True, slots=True)
class BpfInsn:
    code: int
    jt: int
    jf: int
    k: int


@dataclass(frozen=True, slots=True)
class FastPath:
    """What an advert of one of our routers looks like on the wire."""

    vrid: int
    auth_type: int
    advert_int: int
    auth_data: bytes = b""  # 8 bytes, for simple-password auth
    #: The master a BACKUP currently follows: only its adverts take the fast
    #: queue (a flood from anyone else, even with the password, waits in the
    #: slow one). None: any sender (MASTER, or no master known yet).
    src: IPv4Address | None = None
    #: A unicast router: any TTL (keepalived checks TTL 255 on multicast only),
    #: and with no master followed, only these senders (its unicast_peer list).
    unicast: bool = False
    peers: tuple[IPv4Address, ...] = ()


def assemble(prog: Sequence[BpfInsn]) -> bytes:
    """The `struct sock_filter` array for SO_ATTACH_FILTER."""
    return b"".join(struct.pack("=HBBI", i.code, i.jt, i.jf, i.k) for i in prog)


class _Builder:
    """Straight-line code with symbolic jump targets ("fast"/"slow" or labels)."""

    def __init__(self) -> None:
        self.code: list[tuple[int, str | int, str | int, int]] = []
        self.labels: dict[str, int] = {}

    def op(self, code: int, k: int = 0) -> None:
        self.code.append((code, 0, 0, k))

    def jump(self, code: int, k: int, jt: str | int, jf: str | int) -> None:
        # An int target means "fall through" (0); strings are resolved later.
        self.code.append((code, jt, jf, k))

    def label(self, name: str) -> None:
        self.labels[name] = len(self.code)

    def build(self, fast_ret: int, slow_ret: int) -> list[BpfInsn]:
        self.label("fast")
        self.op(_RET | _K, fast_ret)
        self.label("slow")
        self.op(_RET | _K, slow_ret)
        out = []
        for pc, (code, jt, jf, k) in enumerate(self.code):

            def rel(target: str | int, pc: int = pc) -> int:
                if isinstance(target, int):
                    return target
                off = self.labels[target] - pc - 1
                if not 0 <= off <= 255:
                    raise ValueError("BPF jump out of range (too many virtual routers)")
                return off

            out.append(BpfInsn(code, rel(jt), rel(jf), k))
        return out


def _program(paths: Sequence[FastPath], offset: int) -> _Builder:
    """`offset`: bytes between the IP header and the VRRP header (0, or AH)."""
    b = _Builder()
    b.op(_LD | _W | _LEN)
    b.op(_ST, 0)  # M[0] = packet length
    b.jump(_JMP | _JGE | _K, 20, 0, "slow")
    # RFC 3768 7.1: TTL 255. One test for all when no router is unicast (the
    # program then stays as short as before unicast existed); else per router.
    ttl_per_path = any(p.unicast for p in paths)
    if not ttl_per_path:
        b.op(_LD | _B | _ABS, _TTL_OFFSET)
        b.jump(_JMP | _JEQ | _K, 255, 0, "slow")
    # X = 4 * IHL; need X + offset + 8 bytes (the VRRP fixed header).
    b.op(_LDX | _B | _MSH, 0)
    b.op(_MISC | _TXA)
    b.op(_ALU | _ADD | _K, offset + 8)
    b.op(_LDX | _W | _MEM, 0)
    b.jump(_JMP | _JGT | _X, 0, "slow", 0)  # A (needed) > X (len)
    b.op(_LDX | _B | _MSH, 0)
    if offset:
        # AH: the header after IP must announce VRRP (next header 112).
        b.op(_LD | _B | _IND, 0)
        b.jump(_JMP | _JEQ | _K, _PROTO_VRRP, 0, "slow")
    b.op(_LD | _B | _IND, offset)
    b.jump(_JMP | _JEQ | _K, _VRRP_V2_ADVERT, 0, "slow")
    for n, path in enumerate(paths):
        nxt = f"next{n}"
        b.op(_LD | _B | _IND, offset + 1)
        b.jump(_JMP | _JEQ | _K, path.vrid, 0, nxt)
        if ttl_per_path and not path.unicast:
            b.op(_LD | _B | _ABS, _TTL_OFFSET)
            b.jump(_JMP | _JEQ | _K, 255, 0, "slow")
        if path.src is not None:
            b.op(_LD | _W | _ABS, _SRC_OFFSET)
            b.jump(_JMP | _JEQ | _K, int(path.src), 0, "slow")
        elif path.unicast and path.peers:
            ok = f"peer{n}"
            b.op(_LD | _W | _ABS, _SRC_OFFSET)
            for peer in path.peers:
                b.jump(_JMP | _JEQ | _K, int(peer), ok, 0)
            b.jump(_JMP | _JEQ | _K, 0, "slow", "slow")
            b.label(ok)
        b.op(_LD | _B | _IND, offset + 4)
        b.jump(_JMP | _JEQ | _K, path.auth_type, 0, nxt)
        b.op(_LD | _B | _IND, offset + 5)
        b.jump(_JMP | _JEQ | _K, path.advert_int, 0, nxt)
        if path.auth_type != _AUTH_PASS:
            b.jump(_JMP | _JEQ | _K, 0, "fast", "fast")
        else:
            pw = path.auth_data.ljust(8, b"\0")[:8]
            # The password follows the 4n address bytes: need X + 8 + 4n + 8.
            b.op(_LD | _B | _IND, offset + 3)
            b.op(_ALU | _LSH | _K, 2)
            b.op(_ALU | _ADD | _K, offset + 8)
            b.op(_ALU | _ADD | _X, 0)  # A = X + 8 + 4n: the password's offset
            b.op(_ST, 1)
            b.op(_ALU | _ADD | _K, 8)
            b.op(_LDX | _W | _MEM, 0)
            b.jump(_JMP | _JGT | _X, 0, "slow", 0)
            b.op(_LDX | _W | _MEM, 1)
            b.op(_LD | _W | _IND, 0)
            b.jump(_JMP | _JEQ | _K, int.from_bytes(pw[:4], "big"), 0, "slow")
            b.op(_LD | _W | _IND, 4)
            b.jump(_JMP | _JEQ | _K, int.from_bytes(pw[4:], "big"), "fast", "slow")
        b.label(nxt)
        if n + 1 < len(paths):
            # Each VRID block starts with X = 4 * IHL again (the password
            # check of the previous block may have moved it).
            b.op(_LDX | _B | _MSH, 0)
    b.jump(_JMP | _JEQ | _K, 0, "slow", "slow")
    return b


def split_filter(paths: Sequence[FastPath], offset: int = 0) -> tuple[list[BpfInsn], list[BpfInsn]]:
    """(fast, slow): the fast program accepts what looks like our adverts, the
    slow program accepts exactly everything else.

    `offset`: 0 on protocol-112 sockets, :data:`AH_HEADER_LEN` on AH ones.
    """
    fast = _program(paths, offset).build(ACCEPT_ALL, 0)
    slow = _program(paths, offset).build(0, ACCEPT_ALL)
    return fast, slow
