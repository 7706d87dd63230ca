"""release-vips' fast path without root: the bare rtnetlink codec (io/rtnl.py), the
light copies of runstate/control constants, the option scan, and what it imports."""

from __future__ import annotations

import errno
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from pyvrrpd.cli import release
from pyvrrpd.io import rtnl, txsock

NLMSG = struct.Struct("=IHHII")


def nlmsg(mtype: int, seq: int, body: bytes, flags: int = 0) -> bytes:
    """One netlink message, padded to 4 bytes as the kernel sends it."""
    raw = NLMSG.pack(NLMSG.size + len(body), mtype, flags, seq, 0) + body
    return raw + bytes(-len(raw) % 4)


def attr(atype: int, value: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(value), atype) + value
    return raw + bytes(-len(raw) % 4)


def newaddr(seq: int, index: int, address: str, prefixlen: int, flags: int = 0) -> bytes:
    body = struct.pack("=BBBBi", socket.AF_INET, prefixlen, flags, 0, index)
    body += attr(rtnl.IFA_ADDRESS, socket.inet_aton(address))
    body += attr(rtnl.IFA_LOCAL, socket.inet_aton(address))
    body += attr(3, b"eth0\0")  # IFA_LABEL
    return nlmsg(rtnl.RTM_NEWADDR, seq, body, rtnl.NLM_F_MULTI)


def error(seq: int, code: int) -> bytes:
    """NLMSG_ERROR: -errno, then the request's header (0 = the ack)."""
    return nlmsg(rtnl.NLMSG_ERROR, seq, struct.pack("=i", -code) + NLMSG.pack(40, 21, 5, seq, 0))


def test_deladdr_is_what_pyroute2_and_ip_send() -> None:
    data = rtnl.encode_deladdr(5, 7, "192.0.2.10", 32)
    # nlmsghdr: 40 bytes, RTM_DELADDR, NLM_F_REQUEST|NLM_F_ACK, seq 5;
    # ifaddrmsg: AF_INET, /32, index 7; IFA_LOCAL and IFA_ADDRESS 192.0.2.10.
    assert data.hex() == (
        "28000000" "1500" "0500" "05000000" "00000000"
        "02" "20" "00" "00" "07000000"
        "0800" "0200" "c000020a"
        "0800" "0100" "c000020a"
    )  # fmt: skip
    from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg

    msg = ifaddrmsg()
    msg["family"], msg["prefixlen"], msg["index"] = socket.AF_INET, 32, 7
    msg["attrs"] = [("IFA_LOCAL", "192.0.2.10"), ("IFA_ADDRESS", "192.0.2.10")]
    msg["header"]["type"] = 21
    msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK
    msg["header"]["sequence_number"] = 5
    msg.encode()
    assert bytes(msg.data) == data


def test_getaddr_is_an_ipv4_dump() -> None:
    length, mtype, flags, seq, _ = NLMSG.unpack_from(rtnl.encode_getaddr(9))
    assert (length, mtype, seq) == (24, rtnl.RTM_GETADDR, 9)
    assert flags == rtnl.NLM_F_REQUEST | rtnl.NLM_F_DUMP
    assert rtnl.encode_getaddr(9)[16] == socket.AF_INET


def test_messages_acks_and_addresses_are_parsed() -> None:
    data = newaddr(3, 2, "192.0.2.11", 24) + newaddr(3, 2, "192.0.2.10", 32, flags=1)
    data += nlmsg(rtnl.NLMSG_DONE, 3, struct.pack("=i", 0))
    msgs = rtnl.split_messages(data + b"\x30\0\0\0")  # a truncated tail is dropped
    assert [m.mtype for m in msgs] == [rtnl.RTM_NEWADDR, rtnl.RTM_NEWADDR, rtnl.NLMSG_DONE]
    assert [rtnl.parse_ifaddr(m.payload) for m in msgs[:2]] == [
        rtnl.IfAddr(2, "192.0.2.11", 24, 0, "eth0"),
        rtnl.IfAddr(2, "192.0.2.10", 32, rtnl.IFA_F_SECONDARY, "eth0"),
    ]
    six = struct.pack("=BBBBi", socket.AF_INET6, 64, 0, 0, 2) + attr(1, bytes(16))
    assert rtnl.parse_ifaddr(six) is None
    ack, gone = rtnl.split_messages(error(4, 0) + error(5, errno.EADDRNOTAVAIL))
    assert (rtnl.ack_errno(ack.payload), rtnl.ack_errno(gone.payload)) == (0, errno.EADDRNOTAVAIL)
    assert rtnl.ack_errno(b"") == errno.EPROTO


class FakeSocket:
    """Stands in for the netlink socket: records what is sent, answers from a script."""

    def __init__(self, replies: list[bytes]) -> None:
        self.sent: list[bytes] = []
        self.replies = replies

    def send(self, data: bytes) -> int:
        self.sent.append(data)
        return len(data)

    def recv(self, _size: int) -> bytes:
        return self.replies.pop(0)

    def close(self) -> None:
        pass


def fake_rtnl(replies: list[bytes]) -> tuple[rtnl.Rtnl, FakeSocket]:
    nl = rtnl.Rtnl()  # a real NETLINK_ROUTE socket needs no privilege
    nl.close()
    fake = FakeSocket(replies)
    nl._sock = fake  # type: ignore[assignment]
    return nl, fake


def test_delete_reads_the_ack_of_its_own_request() -> None:
    # seq 1 removed; seq 2 already gone; seq 3 refused. A stray answer to an
    # older request (seq 0) is skipped.
    nl, fake = fake_rtnl(
        [error(0, 0) + error(1, 0), error(2, errno.EADDRNOTAVAIL), error(3, errno.EPERM)]
    )
    assert nl.delete_address(7, "192.0.2.10", 32) is True
    assert nl.delete_address(7, "192.0.2.10", 32) is False
    with pytest.raises(PermissionError):
        nl.delete_address(7, "192.0.2.10", 32)
    assert [NLMSG.unpack_from(d)[3] for d in fake.sent] == [1, 2, 3]
    assert fake.sent[0] == rtnl.encode_deladdr(1, 7, "192.0.2.10", 32)


def test_a_silent_kernel_is_a_timeout_not_a_hang() -> None:
    nl = rtnl.Rtnl(timeout=0.05)
    assert nl._sock.gettimeout() == 0.05
    nl.close()

    class Silent(FakeSocket):
        def recv(self, _size: int) -> bytes:
            raise TimeoutError("timed out")

    nl, _ = fake_rtnl([])
    nl._sock = Silent([])  # type: ignore[assignment]
    with pytest.raises(TimeoutError):
        nl.delete_address(7, "192.0.2.10", 32)


def test_address_dump_spans_several_reads() -> None:
    nl, _ = fake_rtnl(
        [newaddr(1, 2, "192.0.2.11", 24), nlmsg(rtnl.NLMSG_DONE, 1, struct.pack("=i", 0))]
    )
    assert nl.addresses() == [rtnl.IfAddr(2, "192.0.2.11", 24, 0, "eth0")]
    nl, _ = fake_rtnl([error(1, errno.EINVAL)])
    with pytest.raises(OSError, match="Invalid argument"):
        nl.addresses()


def test_primary_source_skips_secondaries_and_our_vips() -> None:
    addrs = release._Addresses(
        [
            rtnl.IfAddr(2, "192.0.2.10", 32, 0),  # the VIP: a primary /32 to the kernel
            rtnl.IfAddr(2, "192.0.2.99", 24, rtnl.IFA_F_SECONDARY),
            rtnl.IfAddr(2, "192.0.2.11", 24, 0),
            rtnl.IfAddr(3, "198.51.100.11", 24, 0),
        ]
    )
    assert addrs.primary(2, {"192.0.2.10"}) == "192.0.2.11"
    assert addrs.primary(4, set()) is None
    assert addrs.is_local("198.51.100.11") and not addrs.is_local("203.0.113.1")
    assert not addrs.present("no-such-dev0", "192.0.2.10")


def test_multicast_destinations() -> None:
    assert txsock.is_multicast("224.0.0.18") and not txsock.is_multicast("192.0.2.12")


@pytest.mark.parametrize(
    ("argv", "want"),
    [
        ([], (None, None, None)),
        (["--control-socket", "/a.sock"], ("/a.sock", None, None)),
        (["--pid-file=/run/ka1.pid", "--state-file", "x"], (None, "/run/ka1.pid", "x")),
        (["--state-file", "a", "--state-file=b"], (None, None, "b")),
        (["--help"], None),
        (["--state", "x"], None),  # argparse's abbreviation: argparse decides
        (["--state-file"], None),
        (["--state-file", "--pid-file"], None),
        (["extra"], None),
    ],
)
def test_plain_options_skip_argparse(
    argv: list[str], want: tuple[str | None, str | None, str | None] | None
) -> None:
    got = release.fast_args(argv)
    if want is None:
        assert got is None
    else:
        assert got is not None
        assert (got["--control-socket"], got["--pid-file"], got["--state-file"]) == want


HEAVY = ("pyroute2", "asyncio", "pyvrrpd.config", "pyvrrpd.shell", "pyvrrpd.wire", "structlog")


def test_release_vips_imports_nothing_heavy(tmp_path: Path) -> None:
    """The entry point up to an answer: no config reader, pyroute2 or asyncio."""
    code = (
        "import sys\n"
        "from pyvrrpd.cli import main\n"
        f"rc = main(['release-vips', '--state-file', {str(tmp_path / 'none.state')!r}])\n"
        f"print(rc, sorted(m for m in sys.modules if m.startswith({HEAVY!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("nothing to release: no record at")
    # The record's reader (stdlib only) and its packages, nothing else of the shell.
    light = ["pyvrrpd.shell", "pyvrrpd.shell.ops", "pyvrrpd.shell.ops.runrecord"]
    assert lines[1] == f"0 {light}"
