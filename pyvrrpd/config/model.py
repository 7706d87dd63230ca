"""Typed, frozen model of a keepalived.conf (the VRRP half).

Owns: the data the parser produces and the daemon consumes. Values here are
already validated and defaulted (global garp defaults resolved into each
instance). Must not do any parsing or I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from ipaddress import IPv4Address

from .routemodel import Route, Rule

VRRP_GROUP4 = IPv4Address("224.0.0.18")  # RFC 3768 5.2.2; default vrrp_mcast_group4


@dataclass(frozen=True, slots=True)
class SourceLoc:
    """Where something was written: file, 1-based line and column."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class Severity(Enum):
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One compiler-style message about the configuration."""

    severity: Severity
    loc: SourceLoc
    message: str
    source_line: str = ""
    # A pyvrrpd-only note (a keyword without VRRP effect that keepalived 2.2.7
    # accepts silently): not counted by `keepalived -t` (config/lint.py).
    keepalived_silent: bool = False

    def format(self) -> str:
        """`file:line:col: error: message`, then the source line and a caret.

        A long line is shown as a window around the column, so a listing
        stays readable (and linear in size) for a 64 KiB line.
        """
        head = f"{self.loc}: {self.severity.value}: {self.message}"
        if not self.source_line:
            return head
        line, col = self.source_line, max(self.loc.col, 1)
        if len(line) > _SHOWN:
            start = max(0, min(col - 1 - _SHOWN // 2, len(line) - _SHOWN))
            shown = line[start : start + _SHOWN]
            prefix = "..." if start else ""
            suffix = "..." if start + _SHOWN < len(line) else ""
            line, col = prefix + shown + suffix, col - start + len(prefix)
        # Keep tabs so the caret lines up under the token however tabs render.
        lead = line[: col - 1]
        caret = "".join("\t" if c == "\t" else " " for c in lead) + "^"
        return f"{head}\n    {line}\n    {caret}"


_SHOWN = 160  # characters of a long source line shown in a diagnostic


class ConfigError(Exception):
    """Raised with every error (and warning) found, never just the first."""

    def __init__(self, diagnostics: tuple[Diagnostic, ...], partial: Config | None = None) -> None:
        self.diagnostics = diagnostics
        # What could be read despite the errors (scripts, instances): lets
        # `keepalived -t` still report script security, as keepalived does.
        self.partial = partial
        super().__init__("\n".join(d.format() for d in diagnostics))

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.ERROR)


@dataclass(frozen=True, slots=True)
class NotifyScript:
    """A notify hook: `"cmd args" [user [group]]` (keepalived.md 3.1).

    argv is the command string split shell-like; nothing is appended for the
    specific hooks, the generic `notify` gets TYPE NAME STATE PRIORITY.
    """

    argv: tuple[str, ...]
    user: str | None = None
    group: str | None = None
    loc: SourceLoc | None = None


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    """Notify hooks of one vrrp_instance (or vrrp_sync_group)."""

    master: NotifyScript | None = None
    backup: NotifyScript | None = None
    fault: NotifyScript | None = None
    stop: NotifyScript | None = None
    deleted: NotifyScript | None = None
    generic: NotifyScript | None = None  # `notify`
    master_rx_lower_pri: NotifyScript | None = None
    notify_deleted: bool = False
    priority_changes: bool | None = None  # None: vrrp_notify_priority_changes
    smtp_alert: bool | None = None  # None: smtp_alert_vrrp, then smtp_alert


@dataclass(frozen=True, slots=True)
class NotifyFifo:
    """`notify_fifo FIFO [user [group]]` with its `notify_fifo_script`."""

    path: str | None = None
    user: str | None = None  # the FIFO is chowned to them
    group: str | None = None
    script: NotifyScript | None = None  # run with the FIFO path appended


@dataclass(frozen=True, slots=True)
class GlobalDefs:
    router_id: str | None = None
    script_user: str | None = None
    script_group: str | None = None
    enable_script_security: bool = False
    vrrp_garp_master_delay: float = 5.0
    vrrp_garp_master_repeat: int = 5
    vrrp_garp_master_refresh: float = 0.0
    vrrp_garp_master_refresh_repeat: int = 1
    vrrp_garp_interval: float = 0.0
    vrrp_skip_check_adv_addr: bool = False
    notification_email: tuple[str, ...] = ()
    notification_email_from: str | None = None
    smtp_server: str | None = None
    smtp_connect_timeout: int | None = None
    # Added by the parser work; defaults keep older callers valid.
    vrrp_gna_interval: float = 0.0
    smtp_port: int = 25
    smtp_helo_name: str | None = None
    smtp_alert: bool = False
    # None: follow vrrp_garp_master_delay / _repeat, as keepalived does.
    vrrp_garp_lower_prio_delay: float | None = None
    vrrp_garp_lower_prio_repeat: int | None = None
    # keepalived.md 4.1: with data_use_instance the USR1 dump files carry the
    # top-level `instance NAME` (and the -s namespace) in their names.
    data_use_instance: bool = False
    instance_name: str | None = None
    # Scheduling of the daemon (keepalived's vrrp_* process keywords; applied
    # at start by pyvrrpd.shell.priority). None: not configured, left alone.
    vrrp_priority: int | None = None  # nice value, -20..19
    vrrp_rt_priority: int | None = None  # SCHED_RR priority, 1..99
    vrrp_rlimit_rttime: int | None = None  # RLIMIT_RTTIME hard limit (µs); None: default
    vrrp_no_swap: bool = False  # mlockall
    # Raise to realtime when timers run late: 0 off, else the highest SCHED_RR
    # priority to climb to (keepalived's max_auto_priority; -1 reads as 0).
    max_auto_priority: int = 0
    min_auto_priority_delay: int = 1_000_000  # µs late before a raise
    # vrrp_mcast_group4 / vrrp_check_unicast_src (pyvrrpd.config.unicast).
    vrrp_mcast_group4: IPv4Address = VRRP_GROUP4
    vrrp_check_unicast_src: bool = False
    # Notify FIFOs and mail (keepalived.md 3.2; pyvrrpd.config.notify):
    # notify_fifo / notify_fifo_script, vrrp_notify_fifo / vrrp_notify_fifo_script,
    # vrrp_notify_priority_changes, smtp_alert_vrrp (None: smtp_alert), no_email_faults.
    notify_fifo: NotifyFifo = NotifyFifo()
    vrrp_notify_fifo: NotifyFifo = NotifyFifo()
    vrrp_notify_priority_changes: bool = False
    smtp_alert_vrrp: bool | None = None
    no_email_faults: bool = False
    # Every instance's state line written to the FIFOs after a reload (shell/ops/reloader.py).
    fifo_write_vrrp_states_on_reload: bool = False
    # Accept mode's firewall and strict mode (pyvrrpd.config.strict): vrrp_strict,
    # nftables [TABLE] (None: not configured; `keepalived` is used when needed),
    # nftables_priority, nftables_counters, nftables_ifindex (IPv6 only: no effect).
    vrrp_strict: bool = False
    nftables_table: str | None = None
    nftables_priority: int = -1
    nftables_counters: bool = False
    nftables_ifindex: bool = False
    # dynamic_interfaces [allow_if_changes] (config/hostside.py): start with a
    # configured interface missing (FAULT until it appears) instead of refusing.
    dynamic_interfaces: bool = False
    allow_if_changes: bool = False
    # vrrp_lower_prio_no_advert, vrrp_higher_prio_send_advert, vrrp_down_timer_adverts
    # (instance defaults), vrrp_startup_delay and vrrp_delay_after_boot (seconds;
    # the latter counted from boot) (pyvrrpd.config.tracking).
    vrrp_lower_prio_no_advert: bool = False
    vrrp_higher_prio_send_advert: bool = False
    vrrp_down_timer_adverts: int = 3
    vrrp_startup_delay: float = 0.0
    vrrp_delay_after_boot: float = 0.0
    # vmac_prefix / vmac_addr_prefix: default vmac names PREFIX.VRID (config/vmac.py).
    vmac_prefix: str | None = None
    vmac_addr_prefix: str | None = None


@dataclass(frozen=True, slots=True)
class VrrpScript:
    """A `vrrp_script NAME { }` block."""

    name: str
    argv: tuple[str, ...]  # shell-like split of the `script` string (keepalived 1.1 item 10)
    interval: float = 1.0
    timeout: float | None = None  # None: same as interval
    weight: int = 0  # -253..253
    weight_reverse: bool = False
    rise: int = 1
    fall: int = 1
    user: str | None = None
    group: str | None = None
    init_fail: bool = False
    loc: SourceLoc | None = None

    @property
    def effective_timeout(self) -> float:
        return self.timeout if self.timeout else self.interval


@dataclass(frozen=True, slots=True)
class VirtualIP:
    """One line of `virtual_ipaddress { }`: `IP[/prefix] [dev IF] [brd X] [scope S] [label L]`."""

    address: IPv4Address
    prefixlen: int = 32
    dev: str | None = None  # None: the instance's interface
    broadcast: str | None = None  # an address, "+" or "-"
    scope: str = "global"
    label: str | None = None
    # Per-address `use_vmac`: the address goes on a virtual-MAC interface made
    # on its `dev` (keepalived.md 1.9; pyvrrpd/config/vmac.py).
    use_vmac: bool = False

    def __str__(self) -> str:
        return f"{self.address}/{self.prefixlen}"


@dataclass(frozen=True, slots=True)
class VmacConfig:
    """`use_vmac [NAME] [MAC]`, `vmac_xmit_base` and `use_vmac_addr` of one instance.

    Resolved by pyvrrpd/config/vmac.py; the interfaces are made by pyvrrpd/shell/host/vmac.py.
    """

    enabled: bool = False  # `use_vmac` given
    name: str | None = None  # None: vrrp.VRID (or the next free vrrpN.VRID)
    mac: bytes | None = None  # None: RFC 3768 7.3 00:00:5e:00:01:VRID
    xmit_base: bool = False  # adverts sent and received on the base interface
    addr: bool = False  # `use_vmac_addr`: VIPs on other interfaces get a vmac too


@dataclass(frozen=True, slots=True)
class TrackScriptRef:
    """An entry of `track_script { NAME [weight W [reverse|noreverse]] }`."""

    name: str
    weight: int | None = None  # None: the script's own weight
    reverse: bool | None = None  # None: the script's own setting


@dataclass(frozen=True, slots=True)
class TrackInterface:
    """An entry of `track_interface { IF [weight W [reverse]] }` (keepalived.md 2.2)."""

    name: str
    weight: int = 0  # 0: FAULT while the link is down
    reverse: bool = False


@dataclass(frozen=True, slots=True)
class VrrpInstance:
    """A `vrrp_instance NAME { }` block with defaults resolved."""

    name: str
    interface: str
    virtual_router_id: int
    priority: int = 100
    state: str = "BACKUP"  # "MASTER" or "BACKUP" as configured
    advert_int: float = 1.0
    nopreempt: bool = False
    preempt_delay: float = 0.0
    auth_type: str | None = None  # None, "PASS" or "AH"
    auth_pass: bytes = b""  # exactly 8 bytes (truncated / zero-padded) when auth_type is set
    virtual_ipaddress: tuple[VirtualIP, ...] = ()
    track_script: tuple[TrackScriptRef, ...] = ()
    garp_master_delay: float = 5.0
    garp_master_repeat: int = 5
    garp_master_refresh: float = 0.0
    garp_master_refresh_repeat: int = 1
    skip_check_adv_addr: bool = False
    loc: SourceLoc | None = None
    # Added and removed like VIPs, but not listed in adverts (keepalived.md 1.8).
    virtual_ipaddress_excluded: tuple[VirtualIP, ...] = ()
    # GARPs a master sends on hearing a lower-priority advert, and the delay of
    # the second such burst (0: none); keepalived's garp_lower_prio_*.
    garp_lower_prio_delay: float = 5.0
    garp_lower_prio_repeat: int = 5
    # notify_master/backup/fault/stop/deleted, notify, notify_master_rx_lower_pri,
    # notify_priority_changes, smtp_alert (pyvrrpd.config.notify).
    notify: NotifyConfig = NotifyConfig()
    # unicast_src_ip / mcast_src_ip, unicast_peer, unicast_ttl, check_unicast_src
    # (+ the global vrrp_check_unicast_src), mcast_dst_ip (default vrrp_mcast_group4),
    # unicast_fault_no_peer (pyvrrpd.config.unicast). Unicast when unicast_peer is
    # not empty; `interface` is "" when omitted (the daemon finds it from src_ip).
    src_ip: IPv4Address | None = None
    unicast_peer: tuple[UnicastPeer, ...] = ()
    unicast_ttl: int = 255
    check_unicast_src: bool = False
    mcast_dst_ip: IPv4Address = VRRP_GROUP4
    unicast_fault: str | None = None  # why the instance must stay FAULT
    # strict_mode (resolved with the global vrrp_strict) and accept/no_accept
    # (resolved: False = drop traffic to the VIPs as master; pyvrrpd.config.strict).
    strict_mode: bool = False
    accept: bool = True
    # virtual_routes / virtual_rules: installed as master after the VIPs (config.routes).
    virtual_routes: tuple[Route, ...] = ()
    virtual_rules: tuple[Rule, ...] = ()
    # track_src_ip: FAULT while src_ip is not on the interface (config/hostside.py)
    track_src_ip: bool = False
    # track_interface, dont_track_primary, lower_prio_no_advert,
    # higher_prio_send_advert, down_timer_adverts (own value, else the global
    # vrrp_* one; pyvrrpd.config.tracking).
    track_interface: tuple[TrackInterface, ...] = ()
    dont_track_primary: bool = False
    lower_prio_no_advert: bool = False
    higher_prio_send_advert: bool = False
    down_timer_adverts: int = 3
    # use_vmac [NAME] [MAC], vmac_xmit_base, use_vmac_addr (pyvrrpd.config.vmac).
    vmac: VmacConfig = VmacConfig()
    # track_process { NAME [weight W [reverse]] } (pyvrrpd.config.trackprocess),
    # the sync group's entries already merged in.
    track_process: tuple[TrackProcessRef, ...] = ()
    # track_http { NAME [weight W [reverse]] } (pyvrrpd-only; config/trackhttp.py).
    track_http: tuple[TrackHttpRef, ...] = ()
    # track_file { NAME [weight W [reverse|noreverse]] }, sync-group entries
    # merged in (pyvrrpd.config.trackfile, pyvrrpd.config.syncgroup).
    track_file: tuple[TrackFileRef, ...] = ()


@dataclass(frozen=True, slots=True)
class Config:
    """A whole parsed configuration."""

    global_defs: GlobalDefs = field(default_factory=GlobalDefs)
    scripts: tuple[VrrpScript, ...] = ()
    instances: tuple[VrrpInstance, ...] = ()
    warnings: tuple[Diagnostic, ...] = ()
    files: tuple[str, ...] = ()  # every file read, the main one first
    # Top-level static_ipaddress / static_routes / static_rules (config.routes):
    # installed at start, removed at stop.
    static_ipaddress: tuple[VirtualIP, ...] = ()
    static_routes: tuple[Route, ...] = ()
    static_rules: tuple[Rule, ...] = ()
    # vrrp_sync_group blocks (pyvrrpd.config.syncgroup); their trackers are
    # already copied onto the member instances.
    sync_groups: tuple[SyncGroup, ...] = ()
    # vrrp_track_process blocks (pyvrrpd.config.trackprocess).
    track_processes: tuple[VrrpTrackProcess, ...] = ()
    # vrrp_track_http blocks (pyvrrpd-only; config/trackhttp.py).
    track_https: tuple[TrackHttp, ...] = ()
    # Top-level track_file / vrrp_track_file blocks (pyvrrpd.config.trackfile).
    track_files: tuple[TrackFile, ...] = ()

    def script(self, name: str) -> VrrpScript | None:
        for s in self.scripts:
            if s.name == name:
                return s
        return None


@dataclass(frozen=True, slots=True)
class UnicastPeer:
    """One line of `unicast_peer { IP [min_ttl N] [max_ttl N] }` (keepalived.md 1.8)."""

    address: IPv4Address
    min_ttl: int = 0
    max_ttl: int = 255


@dataclass(frozen=True, slots=True)
class SyncGroup:
    """A `vrrp_sync_group NAME { }` block (keepalived.md 1.7; pyvrrpd.config.syncgroup)."""

    name: str
    members: tuple[str, ...]  # vrrp_instance names, each in one group only
    track_script: tuple[TrackScriptRef, ...] = ()  # applied to every member
    track_interface: tuple[TrackInterface, ...] = ()  # applied to every member
    notify: NotifyConfig = NotifyConfig()  # notify_master|backup|fault|stop, notify, smtp_alert
    tracking_weight: bool = False  # sync_group_tracking_weight (or global_tracking)
    loc: SourceLoc | None = None
    # track_process { } of the group (pyvrrpd.config.trackprocess); applied to every member.
    track_process: tuple[TrackProcessRef, ...] = ()
    # track_http refs, applied to every member (config/trackhttp.py).
    track_http: tuple[TrackHttpRef, ...] = ()
    # track_file { } entries, already applied to every member (config.trackfile)
    track_file: tuple[TrackFileRef, ...] = ()


@dataclass(frozen=True, slots=True)
class TrackHttp:
    """A `vrrp_track_http NAME { }` block: pyvrrpd-only (config/trackhttp.py).

    Exactly one of `url` (split into host, port, path) and `stats_socket`.
    """

    name: str
    url: str | None = None  # as written: http://HOST[:PORT][/PATH]
    host: str = ""
    port: int = 80
    path: str = "/"
    stats_socket: str | None = None  # HAProxy's stats socket (`show info`)
    expect: int = 200  # the HTTP status code that means healthy
    interval: float = 0.5
    timeout: float = 0.5
    rise: int = 2
    fall: int = 2
    weight: int = 0  # -253..253; 0: FAULT while failed
    reverse: bool = False
    loc: SourceLoc | None = None


@dataclass(frozen=True, slots=True)
class TrackHttpRef:
    """An entry of `track_http { NAME [weight W [reverse|noreverse]] }`."""

    name: str
    weight: int | None = None  # None: the block's weight
    reverse: bool | None = None  # None: the block's setting


@dataclass(frozen=True, slots=True)
class TrackFile:
    """A top-level `track_file NAME { }` block (keepalived.md 1.6; config.trackfile).

    The file holds an integer; the priority moves by value x weight. `path`
    is absolute (a relative one is resolved against the directory of the
    configuration file that wrote it).
    """

    name: str
    path: str
    weight: int = 1  # keepalived's default; -254..254
    reverse: bool = False
    init_file: bool = False  # `init_file [VALUE] [overwrite]` written
    init_value: int = 0
    overwrite: bool = False
    loc: SourceLoc | None = None


@dataclass(frozen=True, slots=True)
class TrackFileRef:
    """An entry of `track_file { NAME [weight W [reverse|noreverse]] }`."""

    name: str
    weight: int | None = None  # None: the block's own weight
    reverse: bool | None = None  # None: the block's own setting


@dataclass(frozen=True, slots=True)
class VrrpTrackProcess:
    """A `vrrp_track_process NAME { }` block (keepalived.md 1.5; pyvrrpd.config.trackprocess).

    Without `full_command`, `process` is compared with /proc/PID/comm; with it
    (implied by parameters or param_match), with argv[0] of /proc/PID/cmdline.
    """

    name: str
    process: str
    params: tuple[str, ...] = ()
    param_match: str | None = None  # None: parameters not compared; exact|initial|partial
    full_command: bool = False
    weight: int = 0  # -254..254; 0: FAULT while the quorum is not met
    weight_reverse: bool = False
    quorum: int = 1  # 0 only with quorum_max 0 (the process must not run)
    quorum_max: int | None = None  # None: unlimited
    fork_delay: float = 0.0  # seconds
    terminate_delay: float = 0.0
    loc: SourceLoc | None = None


@dataclass(frozen=True, slots=True)
class TrackProcessRef:
    """An entry of `track_process { NAME [weight W [reverse|noreverse]] }`."""

    name: str
    weight: int | None = None  # None: the block's own weight
    reverse: bool | None = None  # None: the block's own setting
