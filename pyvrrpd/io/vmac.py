"""Virtual MAC interfaces: macvlans carrying the RFC 3768 virtual router MAC.

Owns: listing, creating, bringing up and deleting the private-mode macvlan
interfaces behind keepalived's ``use_vmac`` (through the daemon's
:class:`~pyvrrpd.io.netlink.Netlink` command socket, so every request has its
deadline), and the ``/proc/sys`` switches keepalived sets around them.

Must not: decide which interfaces to create, adopt or delete (that is
``pyvrrpd.shell.host.vmac``), or let an OS/netlink error escape as anything but a
one-line :class:`~pyvrrpd.io.errors.HostError`.

keepalived 2.2.7 facts this follows (vrrp_vmac.c ``netlink_link_add_vmac``,
vrrp_if_config.c):

* the link is ``macvlan mode private`` (it still receives frames sent to its
  own MAC, but never talks to sibling macvlans), MAC ``00:00:5e:00:01:VRID``
  (RFC 3768 7.3), on top of the instance's interface, and is set up at once;
  it stays up in every VRRP state;
* on the vmac: ``arp_ignore=1``, ``accept_local=1``, ``rp_filter=0``,
  ``promote_secondaries=1``, IPv6 disabled (an IPv4 instance needs no link-local
  address there: RFC 5798 7.4 would have it never be the MAC-derived one);
* on the base interface: ``arp_ignore=1`` and ``arp_filter=1``, the old values
  put back when the last vmac on it goes (otherwise the base would answer ARP
  for the VIPs with its own MAC and the virtual MAC would never be learned);
* ``all.rp_filter`` is lowered to 0 (the kernel uses the larger of ``all`` and
  the interface's value, so the vmac's 0 only counts then), after raising
  ``default`` and every interface to the old ``all`` value so nothing else
  loosens; all of it restored at stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyvrrpd.io.errors import HostError, describe_oserror, errno_of
from pyvrrpd.io.netlink import Netlink

__all__ = [
    "BASE_SYSCTLS",
    "NFT_TABLE",
    "SYSCTL_ROOT",
    "VMAC_SYSCTLS",
    "LinkEntry",
    "create_vmac",
    "delete_link",
    "igmp_ruleset",
    "igmp_teardown",
    "interface_names",
    "list_links",
    "read_sysctl",
    "run_nft",
    "set_link_up",
    "vrrp_mac",
    "write_sysctl",
]

#: Where the per-namespace IPv4/IPv6 interface switches live (tests point it elsewhere).
SYSCTL_ROOT = Path("/proc/sys/net")

#: keepalived's vmac_sysctl[] (vrrp_if_config.c), in its order.
VMAC_SYSCTLS: tuple[tuple[str, int], ...] = (
    ("arp_ignore", 1),
    ("accept_local", 1),
    ("rp_filter", 0),
    ("promote_secondaries", 1),
)
#: keepalived's parent_sysctl[]: what the base interface needs while a vmac rides on it.
BASE_SYSCTLS: tuple[tuple[str, int], ...] = (("arp_ignore", 1), ("arp_filter", 1))


def vrrp_mac(vrid: int) -> bytes:
    """RFC 3768 7.3: the IPv4 virtual router MAC 00-00-5E-00-01-{VRID}."""
    return bytes((0x00, 0x00, 0x5E, 0x00, 0x01, vrid))


@dataclass(frozen=True, slots=True)
class LinkEntry:
    """One interface as the vmac logic needs to see it."""

    name: str
    index: int
    mac: bytes
    kind: str | None  # IFLA_INFO_KIND: "macvlan", "veth", ...; None for plain devices
    mode: str | None  # macvlan mode ("private", "bridge", ...), else None
    lower: int | None  # IFLA_LINK: the interface a macvlan sits on

    @property
    def private_macvlan(self) -> bool:
        return self.kind == "macvlan" and self.mode == "private"


def _entry(msg: Any) -> LinkEntry:
    info = msg.get("IFLA_LINKINFO")
    kind = info.get("IFLA_INFO_KIND") if info is not None else None
    data = info.get("IFLA_INFO_DATA") if info is not None else None
    mode = data.get("IFLA_MACVLAN_MODE") if kind == "macvlan" and data is not None else None
    mac_text = msg.get("IFLA_ADDRESS") or ""
    lower = msg.get("IFLA_LINK")
    return LinkEntry(
        name=str(msg.get("IFLA_IFNAME")),
        index=int(msg["index"]),
        mac=bytes.fromhex(mac_text.replace(":", "")),
        kind=str(kind) if kind else None,
        mode=str(mode) if mode is not None else None,
        lower=int(lower) if lower else None,
    )


def _wrap(exc: BaseException, what: str) -> HostError:
    code = errno_of(exc)
    if code in (errno.EPERM, errno.EACCES):
        return HostError(
            f"{what}: permission denied (CAP_NET_ADMIN missing, run as root)", errno_code=code
        )
    return HostError(f"{what}: {describe_oserror(exc)}", errno_code=code)


async def list_links(nl: Netlink) -> list[LinkEntry]:
    """Every interface of the namespace (one dump, under the command deadline)."""
    what = "cannot list interfaces"

    async def work() -> list[LinkEntry]:
        try:
            return [_entry(m) async for m in await nl._ipr.link("dump")]
        except Exception as exc:
            raise _wrap(exc, what) from exc

    # The daemon's command socket and its deadline (io/netlink.py owns both).
    return await nl._guarded("vmac_list", what, work())


async def create_vmac(nl: Netlink, name: str, base_index: int, mac: bytes) -> None:
    """Create ``name`` as a private macvlan with ``mac`` on ``base_index``.

    EEXIST is an error here: the caller has already decided the name is free
    (an existing interface of that name may belong to someone else).
    """
    await _link(
        nl,
        "vmac_add",
        f"cannot create VMAC interface {name!r}",
        "add",
        ifname=name,
        kind="macvlan",
        link=base_index,
        macvlan_mode="private",
        address=mac.hex(":"),
    )


async def set_link_up(nl: Netlink, index: int, name: str) -> None:
    """Set the interface administratively up (idempotent)."""
    await _link(nl, "vmac_up", f"cannot set {name!r} up", "set", index=index, state="up")


async def _link(nl: Netlink, fault: str, what: str, cmd: str, **kw: Any) -> None:
    """One `ip link` command through the netlink deadline and fault seam."""

    async def work() -> None:
        try:
            await nl._ipr.link(cmd, **kw)
        except Exception as exc:
            raise _wrap(exc, what) from exc

    await nl._guarded(fault, what, work())


async def delete_link(nl: Netlink, index: int, name: str) -> bool:
    """Delete interface ``index``; False if it was already gone."""
    what = f"cannot remove VMAC interface {name!r}"

    async def work() -> bool:
        try:
            await nl._ipr.link("del", index=index)
        except Exception as exc:
            if errno_of(exc) == errno.ENODEV:
                return False
            raise _wrap(exc, what) from exc
        return True

    return await nl._guarded("vmac_del", what, work())


def _sysctl_path(family: str, ifname: str, key: str) -> Path:
    return SYSCTL_ROOT / family / "conf" / ifname / key


def read_sysctl(ifname: str, key: str, family: str = "ipv4") -> int | None:
    """``net.<family>.conf.<ifname>.<key>`` as an int; None if absent or unreadable."""
    try:
        text = _sysctl_path(family, ifname, key).read_text().strip()
    except OSError:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def write_sysctl(ifname: str, key: str, value: int, family: str = "ipv4") -> None:
    """Set ``net.<family>.conf.<ifname>.<key>``; HostError (one line) on failure."""
    path = _sysctl_path(family, ifname, key)
    try:
        path.write_text(f"{value}\n")
    except OSError as exc:
        raise HostError(
            f"cannot set {family}/conf/{ifname}/{key}={value}: {describe_oserror(exc)}",
            errno_code=errno_of(exc),
        ) from exc


def interface_names() -> list[str]:
    """Interfaces that have an IPv4 conf directory (``all`` and ``default`` excluded)."""
    with contextlib.suppress(OSError):
        return sorted(
            p.name
            for p in (SYSCTL_ROOT / "ipv4" / "conf").iterdir()
            if p.name not in ("all", "default")
        )
    return []


#: nftables table holding the IGMP rules of our vmacs (our own, so that the
#: no_accept firewall's `keepalived` table is never touched by this module).
NFT_TABLE = "pyvrrpd_vmac"
NFT_TIMEOUT = 2.0


def _nft_quote(name: str) -> str:
    # Interface names never hold '"' or whitespace (config/vmac.py valid_ifname).
    return f'"{name}"'


def igmp_ruleset(pairs: Sequence[tuple[str, str]]) -> str:
    """nft script moving IGMP sent on each vmac to its base: (vmac, base) pairs.

    keepalived 2.2.7 (vrrp_nftables.c ``setup_rule_move_igmp``): the IGMP
    report for 224.0.0.18 that joining the group on a vmac triggers would carry
    the virtual MAC, so on a BACKUP it would teach the switches that the VIP's
    MAC is behind the backup's port until the master's next advert. The report
    is duplicated out of the base interface and dropped on the vmac. The table
    is replaced in one transaction (a leftover from a crash goes with it).
    """
    rules = "".join(
        f"    oifname {_nft_quote(vmac)} ip protocol igmp"
        f" dup to ip daddr device {_nft_quote(base)} drop\n"
        for vmac, base in pairs
    )
    return (
        f"table ip {NFT_TABLE} {{}}\n"
        f"delete table ip {NFT_TABLE}\n"
        f"table ip {NFT_TABLE} {{\n"
        "  chain out {\n"
        "    type filter hook output priority filter; policy accept;\n"
        f"{rules}"
        "  }\n"
        "}\n"
    )


def igmp_teardown() -> str:
    """nft script removing our table (idempotent)."""
    return f"table ip {NFT_TABLE} {{}}\ndelete table ip {NFT_TABLE}\n"


async def run_nft(script: str, nft: str = "nft") -> None:
    """Feed `script` to ``nft -f -``; HostError (one line) on failure or timeout."""
    try:
        proc = await asyncio.create_subprocess_exec(
            nft,
            "-f",
            "-",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        code = errno_of(exc)
        raise HostError(f"cannot run {nft}: {describe_oserror(exc)}", errno_code=code) from exc
    try:
        _, err = await asyncio.wait_for(proc.communicate(script.encode()), NFT_TIMEOUT)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise HostError(f"{nft} did not finish within {NFT_TIMEOUT:g} s") from None
    if proc.returncode != 0:
        first = err.decode(errors="replace").strip().splitlines()[:1]
        raise HostError(f"{nft} failed: {first[0] if first else f'exit {proc.returncode}'}")
