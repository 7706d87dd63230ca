"""The text and JSON layouts of keepalived's dumps, from a snapshot of plain values.

Owns: the views a dump is made of (`Snapshot` and its parts) and rendering
them exactly as keepalived 2.2.7 does (`dump_vrrp()`, `dump_vscript()` and
`dump_vprocess()`, `dump_sync_group()` and `dump_notify_script()` in
vrrp_data.c, `dump_track_file()` in track_file.c, `vrrp_print_stats()` in
vrrp_print.c, `vrrp_json.c`; compared with its real output in the netns
lab). 2.2.7's JSON has no track_process/track_file or sync group fields, so
neither has ours; pyvrrpd-only trackers (vrrp_track_http) are in
no dump at all, so a parser written for 2.2.7 meets only 2.2.7's layout
(`pyvrrpd status` shows them). Pure: no clock read (epochs are given and
only formatted), no files, no daemon, so tests can hold the output to golden
text. `pyvrrpd.shell.ops.dumps` takes the snapshot from the daemon and writes
the files.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyvrrpd.core.router import KEEPALIVED_STAT_KEYS

# keepalived's State numbering (vrrp.h; the JSON "state" field).
STATE_NUMBERS = {"INIT": 0, "BACKUP": 1, "MASTER": 2, "FAULT": 3}


@dataclass(frozen=True, slots=True)
class VipView:
    """One virtual address as keepalived's ``format_ipaddress()`` prints it."""

    address: str  # "192.0.2.10" for a /32, else "192.0.2.20/24"
    dev: str
    scope: str = "global"
    label: str | None = None
    broadcast: str | None = None
    installed: bool = False

    def text(self) -> str:
        out = self.address
        if self.broadcast:
            out += f" brd {self.broadcast}"
        out += f" dev {self.dev} scope {self.scope}"
        if self.label:
            out += f" label {self.label}"
        if self.installed:
            out += " set"
        return out


@dataclass(frozen=True, slots=True)
class TrackedScript:
    """An instance's ``track_script`` entry (also a script's tracking instance)."""

    name: str
    weight: int
    reverse: bool = False


def cmd_str(argv: Sequence[str]) -> str:
    """keepalived's ``cmd_str()``: each word in single quotes, but a first word
    starting with ``<`` or ``>`` (a shell redirection test) left bare."""
    return " ".join(a if not n and a[:1] in ("<", ">") else f"'{a}'" for n, a in enumerate(argv))


# dump_notify_script()'s type label and vrrp_json_script_dump()'s key, per
# NotifyConfig field, in the order vrrp_data.c dumps an instance's scripts.
NOTIFY_LABELS = {
    "backup": ("Backup", "script_backup"),
    "master": ("Master", "script_master"),
    "fault": ("Fault", "script_fault"),
    "stop": ("Stop", "script_stop"),
    "deleted": ("Deleted", "script_deleted"),
    "generic": ("Generic", "script"),
    "master_rx_lower_pri": ("Master rx lower pri", "script_master_rx_lower_pri"),
}


@dataclass(frozen=True, slots=True)
class NotifyView:
    """A notify script keepalived kept (one it disabled is in no dump).

    `hook` is the NotifyConfig field (``master``, ``generic``, ...), `argv`
    as keepalived shows it: argv[0] resolved (dumps.keepalived_argv).
    """

    hook: str
    argv: tuple[str, ...]
    uid: int = 0
    gid: int = 0

    def text(self) -> str:
        label = NOTIFY_LABELS[self.hook][0]
        return (
            f"   {label} state transition script = {cmd_str(self.argv)},"
            f" uid:gid {self.uid}:{self.gid}"
        )


@dataclass(frozen=True, slots=True)
class TrackFileView:
    """One ``track_file`` block (keepalived's ``dump_track_file()``).

    keepalived lists only the blocks some instance uses; `status` is the
    value last read from the file, `weight` the block's own, `tracking`
    the instances with their entry's weight.
    """

    name: str
    path: str
    status: int
    weight: int
    reverse: bool = False
    tracking: tuple[TrackedScript, ...] = ()


@dataclass(frozen=True, slots=True)
class ProcessView:
    """One ``vrrp_track_process`` block (keepalived's ``dump_vprocess()``).

    keepalived lists every block, used or not. `current` is the count now,
    `have_quorum` the result the instances were last given (after any
    fork/terminate delay), the two timers whether such a delay is pending.
    """

    name: str
    process: str
    params: tuple[str, ...] = ()
    param_match: str | None = None  # None, "exact", "partial", "initial"
    quorum: int = 1
    quorum_max: int | None = None  # None: unlimited
    current: int = 0
    have_quorum: bool = False
    weight: int = 0
    reverse: bool = False
    terminate_delay: float = 0.0
    fork_delay: float = 0.0
    fork_timer: bool = False
    terminate_timer: bool = False
    full_command: bool = False
    tracking: tuple[TrackedScript, ...] = ()


@dataclass(frozen=True, slots=True)
class InstanceView:
    """What the dumps show of one ``vrrp_instance``."""

    name: str
    state: str
    vrid: int
    interface: str
    priority: int
    effective_priority: int
    advert_int: float
    stats: Mapping[str, int]
    wantstate: str | None = None
    master_ip: str | None = None
    master_priority: int = 0
    faults: int = 0
    last_transition: float = 0.0  # epoch seconds
    read_timeout: float | None = None  # epoch seconds of the next timer, None: disabled
    master_down_usecs: int = 0
    src_ip: str | None = None
    garp_delay: float = 5.0
    garp_repeat: int = 5
    garp_refresh: float = 0.0
    garp_refresh_repeat: int = 1
    garp_lower_prio_delay: float = 5.0
    garp_lower_prio_repeat: int = 5
    lower_prio_no_advert: bool = False
    preempt: bool = True
    preempt_delay: float = 0.0
    skip_check_adv_addr: bool = False
    auth_type: str | None = None  # None, "PASS", "AH"
    auth_pass: bytes = b""
    vips: tuple[VipView, ...] = ()
    excluded_vips: tuple[VipView, ...] = ()
    tracked_scripts: tuple[TrackedScript, ...] = ()
    smtp_alert: bool = False
    # track_interface entries (name = interface), dont_track_primary,
    # higher_prio_send_advert, down_timer_adverts (config/tracking.py).
    tracked_interfaces: tuple[TrackedScript, ...] = ()
    dont_track_primary: bool = False
    higher_prio_send_advert: bool = False
    down_timer_adverts: int = 3
    # track_file and track_process entries (name = block, the entry's weight).
    tracked_files: tuple[TrackedScript, ...] = ()
    tracked_processes: tuple[TrackedScript, ...] = ()
    # The vrrp_sync_group it is in; its own notify scripts (in NOTIFY_LABELS
    # order), notify_deleted and notify_priority_changes as resolved.
    sync_group: str | None = None
    notify: tuple[NotifyView, ...] = ()
    notify_deleted: bool = False
    priority_changes: bool = False

    @property
    def want(self) -> str:
        return self.wantstate or self.state


@dataclass(frozen=True, slots=True)
class ScriptView:
    """One ``vrrp_script`` and its current result."""

    name: str
    argv: tuple[str, ...]
    interval: float
    timeout: float
    weight: int
    reverse: bool
    rise: int
    fall: int
    result: int
    good: bool
    insecure: bool = False
    init_state: str = "unknown"
    uid: int = 0
    gid: int = 0
    running: bool = False
    tracking: tuple[TrackedScript, ...] = ()

    def command(self) -> str:
        """keepalived's ``cmd_str()``: each word in single quotes."""
        return cmd_str(self.argv)


@dataclass(frozen=True, slots=True)
class SyncGroupView:
    """One ``vrrp_sync_group`` (keepalived's ``dump_sync_group()``).

    The tracker entries are the group's own (a member's dump lists only its
    own); `member_faults` counts members with a fault of their own.
    `priority_changes` is None when the group does not set it.
    """

    name: str
    state: str
    members: tuple[str, ...]
    member_faults: int = 0
    member_init: int = 0
    tracking_weight: bool = False
    smtp_alert: bool = False
    priority_changes: bool | None = None
    tracked_interfaces: tuple[TrackedScript, ...] = ()
    tracked_scripts: tuple[TrackedScript, ...] = ()
    tracked_files: tuple[TrackedScript, ...] = ()
    tracked_processes: tuple[TrackedScript, ...] = ()
    notify: tuple[NotifyView, ...] = ()


@dataclass(frozen=True, slots=True)
class InterfaceView:
    name: str
    index: int | None
    ipv4: str | None
    mac: str | None
    up: bool
    instances: tuple[str, ...] = ()  # the VRRP instances using it


@dataclass(frozen=True, slots=True)
class GlobalView:
    """The ``global_defs`` lines of the data dump that mean something here."""

    router_id: str
    namespace: str | None = None
    garp_delay: float = 5.0
    garp_repeat: int = 5
    garp_refresh: float = 0.0
    garp_refresh_repeat: int = 1
    garp_lower_prio_delay: float = 5.0
    garp_lower_prio_repeat: int = 5
    garp_interval: float = 0.0
    gna_interval: float = 0.0
    skip_check_adv_addr: bool = False
    script_security: bool = False
    script_uid: int = 0
    script_gid: int = 0
    smtp_alert: bool | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a dump shows, taken at one moment on the event loop."""

    globals: GlobalView
    instances: tuple[InstanceView, ...]
    scripts: tuple[ScriptView, ...] = ()
    interfaces: tuple[InterfaceView, ...] = ()
    track_files: tuple[TrackFileView, ...] = ()
    track_processes: tuple[ProcessView, ...] = ()
    sync_groups: tuple[SyncGroupView, ...] = ()

    def counters(self) -> dict[str, dict[str, int]]:
        """The stats as written, per instance (the baseline STATS_CLEAR subtracts)."""
        return {i.name: {k: i.stats.get(k, 0) for k in STATS_KEYS} for i in self.instances}


# ---------------------------------------------------------------- renderers


def _split_us(epoch: float) -> tuple[int, int]:
    secs = int(epoch)
    usecs = round((epoch - secs) * 1e6)
    if usecs >= 1_000_000:
        secs, usecs = secs + 1, usecs - 1_000_000
    return secs, usecs


def _ctime_us(epoch: float) -> str:
    """keepalived's ``ctime_us_r()``: ``Tue Nov 24 22:11:09.994962 2026`` (local time)."""
    secs, usecs = _split_us(epoch)
    text = time.asctime(time.localtime(secs))
    return f"{text[:19]}.{usecs:06d}{text[19:]}"


def _epoch_line(label: str, epoch: float) -> str:
    secs, usecs = _split_us(epoch)
    return f"   {label} = {secs}.{usecs:06d} ({_ctime_us(epoch)})"


def _global_lines(g: GlobalView) -> list[str]:
    """``dump_global_data()``, the lines that apply to a VRRP-only daemon."""
    smtp = "unset" if g.smtp_alert is None else ("true" if g.smtp_alert else "false")
    return [
        "------< Global definitions >------",
        f" Network namespace = {g.namespace or '(default)'}",
        f" Router ID = {g.router_id}",
        f" Default smtp_alert = {smtp}",
        " Dynamic interfaces = false",
        " VRRP notify priority changes = false",
        " VRRP IPv4 mcast group = 224.0.0.18",
        f" Gratuitous ARP delay = {int(g.garp_delay)}",
        f" Gratuitous ARP repeat = {g.garp_repeat}",
        f" Gratuitous ARP refresh timer = {int(g.garp_refresh)}",
        f" Gratuitous ARP refresh repeat = {g.garp_refresh_repeat}",
        f" Gratuitous ARP lower priority delay = {int(g.garp_lower_prio_delay)}",
        f" Gratuitous ARP lower priority repeat = {g.garp_lower_prio_repeat}",
        " Num adverts before down = 3",
        " Send advert after receive lower priority advert = true",
        " Send advert after receive higher priority advert = false",
        f" Gratuitous ARP interval = {g.garp_interval:f}",
        f" Gratuitous NA interval = {g.gna_interval:f}",
        " VRRP default protocol version = 2",
        " VRRP check unicast_src = false",
        f" VRRP skip check advert addresses = {'true' if g.skip_check_adv_addr else 'false'}",
        " VRRP strict mode = false",
        f" Script security {'enabled' if g.script_security else 'disabled'}",
        f" Default script uid:gid {g.script_uid}:{g.script_gid}",
    ]


def _instance_lines(v: InstanceView) -> list[str]:
    """``dump_vrrp()`` for a VRRPv2 IPv4 multicast instance."""
    out = [
        f" VRRP Instance = {v.name}",
        "   VRRP Version = 2",
    ]
    if v.sync_group:
        out.append(f"   Sync group = {v.sync_group}")
    out += [f"   State = {v.state}"]
    if v.state == "BACKUP" and v.master_ip:
        out.append(f"   Master router = {v.master_ip}")
        out.append(f"   Master priority = {v.master_priority}")
    out += [
        "   Flags: none",
        f"   Wantstate = {v.want}",
        "   Number of config faults = 0",
        f"   Number of interface and track script faults = {v.faults}",
        "   Number of track scripts init = 0",
        _epoch_line("Last transition", v.last_transition),
        "   Read timeout = DISABLED"
        if v.read_timeout is None
        else _epoch_line("Read timeout", v.read_timeout),
        f"   Master down timer = {v.master_down_usecs} usecs",
        f"   Interface = {v.interface}",
    ]
    if v.dont_track_primary:
        out.append("   VRRP interface tracking disabled")
    if v.skip_check_adv_addr:
        out.append("   Skip checking advert IP addresses")
    out += [
        f"   Using src_ip = {v.src_ip or '(none)'}",
        "   Multicast address 224.0.0.18",
        f"   Gratuitous ARP delay = {int(v.garp_delay)}",
        f"   Gratuitous ARP repeat = {v.garp_repeat}",
        f"   Gratuitous ARP refresh = {int(v.garp_refresh)}",
        f"   Gratuitous ARP refresh repeat = {v.garp_refresh_repeat}",
        f"   Gratuitous ARP lower priority delay = {int(v.garp_lower_prio_delay)}",
        f"   Gratuitous ARP lower priority repeat = {v.garp_lower_prio_repeat}",
        f"   Down timer adverts = {v.down_timer_adverts}",
        "   Send advert after receive lower priority advert = "
        + ("false" if v.lower_prio_no_advert else "true"),
        "   Send advert after receive higher priority advert = "
        + ("true" if v.higher_prio_send_advert else "false"),
        f"   Virtual Router ID = {v.vrid}",
        f"   Priority = {v.priority}",
        f"   Effective priority = {v.effective_priority}",
        f"   Total priority = {v.effective_priority}",
        f"   Advert interval = {int(v.advert_int)} sec",
        "   Accept = enabled",
        f"   Preempt = {'enabled' if v.preempt else 'disabled'}",
    ]
    if v.preempt_delay:
        out.append(f"   Preempt delay = {v.preempt_delay:g} secs")
    out.append("   Promote_secondaries = disabled")
    if v.auth_type == "PASS":
        out.append("   Authentication type = SIMPLE_PASSWORD")
        out.append(f"   Password = {_password(v.auth_pass)}")
    elif v.auth_type == "AH":
        out.append("   Authentication type = IPSEC_AH")
    else:
        out.append("   Authentication type = none")
    if v.vips:
        out.append(f"   Virtual IP ({len(v.vips)}):")
        out += [f"     {vip.text()}" for vip in v.vips]
    if v.excluded_vips:
        out.append("   Virtual IP Excluded :")
        out += [f"     {vip.text()}" for vip in v.excluded_vips]
    out += _tracked_lines(v, "   Tracked processes :")
    out += [
        f"   Using smtp notification = {'yes' if v.smtp_alert else 'no'}",
        f"   Notify deleted = {'Deleted' if v.notify_deleted else 'Fault'}",
    ]
    out += [n.text() for n in v.notify]
    out.append(f"   Notify priority changes = {'true' if v.priority_changes else 'false'}")
    return out


def _tracked_lines(v: InstanceView | SyncGroupView, processes_title: str) -> list[str]:
    """The tracker lists of an instance or a group (the group's process title
    is "Tracked process :", singular, in 2.2.7)."""
    out: list[str] = []
    if v.tracked_interfaces:
        out.append("   Tracked interfaces :")
        out += [
            f"     {t.name} weight {t.weight}{' reverse' if t.reverse else ''}"
            for t in v.tracked_interfaces
        ]
    if v.tracked_scripts:
        out.append("   Tracked scripts :")
        out += [
            f"     {t.name} weight {t.weight}{' reverse' if t.reverse else ''}"
            for t in v.tracked_scripts
        ]
    # Unlike scripts, these entries have a comma (dump_track_file_monitor(),
    # dump_track_process()).
    if v.tracked_files:
        out.append("   Tracked files :")
        out += _tracking_lines(v.tracked_files)
    if v.tracked_processes:
        out.append(processes_title)
        out += _tracking_lines(v.tracked_processes)
    return out


def _sync_group_lines(g: SyncGroupView) -> list[str]:
    """``dump_sync_group()``."""
    out = [
        f" VRRP Sync Group = {g.name}, {g.state}",
        f"   Num member fault {g.member_faults}, num member init {g.member_init}",
    ]
    if g.members:
        out.append("   VRRP member instances :")
        out += [f"     {m}" for m in g.members]
    if g.tracking_weight:
        out.append("   sync group tracking weight set")
    out.append(f"   Using smtp notification = {'yes' if g.smtp_alert else 'no'}")
    if g.priority_changes is not None:
        out.append(f"   Notify priority changes = {'yes' if g.priority_changes else 'no'}")
    out += _tracked_lines(g, "   Tracked process :")
    out += [n.text() for n in g.notify]
    return out


def _password(raw: bytes) -> str:
    """auth_pass as configured (the model pads it to 8 bytes with NULs)."""
    return raw.rstrip(b"\0").decode("latin-1")


def _script_lines(s: ScriptView) -> list[str]:
    """``dump_vscript()``."""
    out = [
        f" VRRP Script = {s.name}",
        f"   Command = {s.command()}",
        f"   Interval = {int(s.interval)} sec",
        f"   Timeout = {int(s.timeout)} sec",
        f"   Weight = {s.weight}{' reverse' if s.reverse else ''}",
        f"   Rise = {s.rise}",
        f"   Fall = {s.fall}",
        f"   Result = {s.result}",
        f"   Insecure = {'yes' if s.insecure else 'no'}",
        f"   Init state = {s.init_state}",
        f"   Status = {'GOOD' if s.good else 'BAD'}",
        f"   Script uid:gid = {s.uid}:{s.gid}",
        "   VRRP instances :",
        "   Tracking instances :",
    ]
    out += [
        f"     {t.name}, weight {t.weight}{' reverse' if t.reverse else ''}" for t in s.tracking
    ]
    out.append(f"   State = {'running' if s.running else 'idle'}")
    return out


def _tracking_lines(entries: Sequence[TrackedScript]) -> list[str]:
    return [f"     {t.name}, weight {t.weight}{' reverse' if t.reverse else ''}" for t in entries]


def _track_file_lines(f: TrackFileView) -> list[str]:
    """``dump_track_file()``."""
    out = [
        f" Track file = {f.name}",
        f"   File = {f.path}",
        f"   Status = {f.status}",
        f"   Weight = {f.weight}{' reverse' if f.reverse else ''}",
    ]
    if f.tracking:
        out.append("   Tracking instances :")
        out += _tracking_lines(f.tracking)
    return out


_PARAM_MATCH = {"exact": "", "partial": " = partial", "initial": " = initial"}


def _process_lines(p: ProcessView) -> list[str]:
    """``dump_vprocess()``."""
    out = [f" VRRP Track process = {p.name}", f"   Process = {p.process}"]
    if p.params:
        out.append(f"   Parameters = {' '.join(p.params)}")
    if p.param_match is not None:
        out.append(f"   Param match{_PARAM_MATCH.get(p.param_match, 'unknown')}")
    out.append(f"   Min processes = {p.quorum}")
    if p.quorum_max is not None:
        out.append(f"   Max processes = {p.quorum_max}")
    out += [
        f"   Current processes = {p.current}",
        f"   Have quorum = {'true' if p.have_quorum else 'false'}",
        f"   Weight = {p.weight}{' reverse' if p.reverse else ''}",
        f"   Terminate delay = {p.terminate_delay:f}s",
        f"   Fork delay = {p.fork_delay:f}s",
        f"   Fork delay timer {'' if p.fork_timer else 'not '}running",
        f"   Terminate delay timer {'' if p.terminate_timer else 'not '}running",
        f"   Full command = {'true' if p.full_command else 'false'}",
    ]
    if p.tracking:
        out.append("   Tracking instances :")
        out += _tracking_lines(p.tracking)
    return out


def _interface_lines(i: InterfaceView) -> list[str]:
    out = [f" Name = {i.name}"]
    if i.index is not None:
        out.append(f"   index = {i.index}")
    out.append(f"   IPv4 address = {i.ipv4 or '(none)'}")
    if i.mac:
        out.append(f"   MAC = {i.mac}")
    out.append(f"   State = {'UP, RUNNING' if i.up else 'DOWN'}")
    if i.instances:
        out.append("   Tracking VRRP instances :")
        out += [f"     {name}, weight 0" for name in i.instances]
    return out


def render_data(snap: Snapshot) -> str:
    """The USR1 dump (``keepalived.data``), sections in keepalived's order."""
    lines = _global_lines(snap.globals)
    sections: list[tuple[str, Sequence[Any], Callable[[Any], list[str]]]] = [
        ("VRRP Topology", snap.instances, _instance_lines),
        ("VRRP Sync groups", snap.sync_groups, _sync_group_lines),
        ("VRRP Scripts", snap.scripts, _script_lines),
        ("VRRP Track files", snap.track_files, _track_file_lines),
        ("VRRP Track processes", snap.track_processes, _process_lines),
        ("Interfaces", snap.interfaces, _interface_lines),
    ]
    for title, items, render in sections:
        if items:  # keepalived leaves an empty section out, title and all
            lines.append(f"------< {title} >------")
            for item in items:
                lines += render(item)
    return "\n".join(lines) + "\n"


def render_parent_data(snap: Snapshot) -> str:
    """``keepalived_parent.data``: the parent process's global definitions."""
    return "\n".join(_global_lines(snap.globals)) + "\n"


# The stats file's counters, in vrrp_print_stats() order.
STATS_KEYS: tuple[str, ...] = (
    "advert_rcvd",
    "advert_sent",
    "become_master",
    "release_master",
    "packet_len_err",
    "ip_ttl_err",
    "invalid_type_rcvd",
    "advert_interval_err",
    "addr_list_err",
    "invalid_authtype",
    "authtype_mismatch",
    "auth_failure",
    "pri_zero_rcvd",
    "pri_zero_sent",
)


def render_stats(snap: Snapshot) -> str:
    """The USR2 dump (``keepalived.stats``), exactly keepalived 2.2.7's layout."""
    lines: list[str] = []
    for inst in snap.instances:
        s = {k: inst.stats.get(k, 0) for k in STATS_KEYS}
        lines += [
            f"VRRP Instance: {inst.name}",
            "  Advertisements:",
            f"    Received: {s['advert_rcvd']}",
            f"    Sent: {s['advert_sent']}",
            f"  Became master: {s['become_master']}",
            f"  Released master: {s['release_master']}",
            "  Packet Errors:",
            f"    Length: {s['packet_len_err']}",
            f"    TTL: {s['ip_ttl_err']}",
            f"    Invalid Type: {s['invalid_type_rcvd']}",
            f"    Advertisement Interval: {s['advert_interval_err']}",
            f"    Address List: {s['addr_list_err']}",
            "  Authentication Errors:",
            f"    Invalid Type: {s['invalid_authtype']}",
            f"    Type Mismatch: {s['authtype_mismatch']}",
            f"    Failure: {s['auth_failure']}",
            "  Priority Zero:",
            f"    Received: {s['pri_zero_rcvd']}",
            f"    Sent: {s['pri_zero_sent']}",
        ]
    return "".join(line + "\n" for line in lines)


def _json_data(v: InstanceView, commands: Sequence[str]) -> dict[str, Any]:
    """``vrrp_json_data_dump()``: the same keys, in the same order."""
    d: dict[str, Any] = {
        "iname": v.name,
        "dont_track_primary": int(v.dont_track_primary),
        "skip_check_adv_addr": int(v.skip_check_adv_addr),
        "strict_mode": 0,
        "vmac_ifname": "",
        "ifp_ifname": v.interface,
        "master_priority": v.master_priority if v.state == "BACKUP" else 0,
        "last_transition": round(v.last_transition, 6),
        # Whole seconds (keepalived's %g prints 5); keepalived-exporter decodes an int.
        "garp_delay": int(v.garp_delay),
        "garp_refresh": int(v.garp_refresh),
        "garp_rep": v.garp_repeat,
        "garp_refresh_rep": v.garp_refresh_repeat,
        "garp_lower_prio_delay": int(v.garp_lower_prio_delay),
        "garp_lower_prio_rep": v.garp_lower_prio_repeat,
        "lower_prio_no_advert": int(v.lower_prio_no_advert),
        "higher_prio_send_advert": int(v.higher_prio_send_advert),
        "vrid": v.vrid,
        "base_priority": v.priority,
        "effective_priority": v.effective_priority,
        "vipset": any(vip.installed for vip in v.vips + v.excluded_vips),
        "promote_secondaries": False,
        "adver_int": _json_num(v.advert_int),
        "master_adver_int": _json_num(v.advert_int),
        "accept": 1,
        "nopreempt": not v.preempt,
        "preempt_delay": int(v.preempt_delay),
        "state": STATE_NUMBERS.get(v.state, 0),
        "wantstate": STATE_NUMBERS.get(v.want, 0),
        "version": 2,
        "smtp_alert": v.smtp_alert,
        "notify_deleted": v.notify_deleted,
    }
    d.update((NOTIFY_LABELS[n.hook][1], cmd_str(n.argv)) for n in v.notify)
    # keepalived leaves out empty lists.
    if v.vips:
        d["vips"] = [vip.text() for vip in v.vips]
    if v.excluded_vips:
        d["evips"] = [vip.text() for vip in v.excluded_vips]
    if v.tracked_interfaces:
        d["track_ifp"] = [t.name for t in v.tracked_interfaces]
    if commands:
        d["track_script"] = list(commands)
    d["auth_type"] = {"PASS": 1, "AH": 2}.get(v.auth_type or "", 0)
    if v.auth_type:
        d["auth_data"] = _password(v.auth_pass)
    return d


def _json_num(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def render_json(snap: Snapshot) -> str:
    """The SIGRTMIN+2 dump (``keepalived.json``, json_version 1): one array."""
    by_name = {s.name: s for s in snap.scripts}
    out = []
    for inst in snap.instances:
        commands = [by_name[t.name].command() for t in inst.tracked_scripts if t.name in by_name]
        data = _json_data(inst, commands)
        out.append({"data": data, "stats": {k: inst.stats.get(k, 0) for k in _JSON_STATS}})
    # keepalived's json_writer escapes '/' (harmless for any parser; kept for diffs).
    return json.dumps(out, separators=(",", ":")).replace("/", "\\/") + "\n"


# vrrp_json_stats_dump() order.
_JSON_STATS: tuple[str, ...] = KEEPALIVED_STAT_KEYS
