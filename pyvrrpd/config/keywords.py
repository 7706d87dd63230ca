"""The three classes of keepalived keywords; what the reader does with unhandled ones.

Owns: keepalived 2.2.7's keyword lists for the blocks the reader reads
(`KEEPALIVED_227`, taken from its parsers' install lists), the REFUSED and
NO_EFFECT tables with the reason shown to the user, and `not_handled()`, the
one place the reader sends a keyword it has no handler for. A keyword is:

- implemented: the reader has a handler for it (parser.py, instance.py,
  vip.py, or a feature module registered there). Handlers are consulted
  first, so a feature landing its handler wins over any entry here;
- refused: it changes VRRP behaviour and pyvrrpd does not do it. The reader
  reports an error at the keyword (file:line:col) with the reason, so neither
  `check-config` nor `run` accepts the config;
- no effect: keepalived's other half (LVS, checkers, BFD, SNMP, D-Bus,
  process names, buffer sizes, ...). A warning says pyvrrpd does not provide
  it. When keepalived 2.2.7 knows the keyword, the warning is marked
  `keepalived_silent` so `keepalived -t` parity is kept (keepalived says
  nothing about it there either).

Also owns three small readers of keepalived values no feature module owns
(`vrrp_version`/`version`: 2 accepted, 3 refused; `vrrp_min_garp`; the
trailing-';' note), and the "unknown keyword" wording, which names the
closest keyword of the block (`virtual_ipadress` -> `virtual_ipaddress`):
keepalived only warns about unknown keywords, so a typo would otherwise pass
almost silently.
`pyvrrpd.config.lint` turns these tables into the README's compatibility table.
Must not: list a keyword the reader implements (tests/unit/test_keyword_classes.py).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from .lexer import Stmt, Token
from .model import Diagnostic, Severity
from .values import Cursor, Reporter, need_arg, parse_int


def _w(text: str) -> list[str]:
    """Whitespace-separated words (keeps the long keyword lists readable)."""
    return text.split()


# Block names used in the tables (and in messages).
TOP = "top level"
GLOBAL = "global_defs"
INSTANCE = "vrrp_instance"
SCRIPT = "vrrp_script"
VIP = "virtual_ipaddress"  # per-address options, also virtual_ipaddress_excluded
SYNC = "vrrp_sync_group"

# -- keepalived 2.2.7's own lists (install_keyword* in global_parser.c,
# vrrp_parser.c, check_parser.c, bfd_parser.c; vrrp_ipaddress.c for VIP options) --

KEEPALIVED_227: Mapping[str, frozenset[str]] = {
    TOP: frozenset(
        _w("""
        global_defs vrrp_script vrrp_instance instance vrrp_sync_group vrrp_track_process
        track_file vrrp_track_file garp_group static_ipaddress static_routes static_rules
        track_group linkbeat_interfaces interface_up_down_delays net_namespace
        net_namespace_ipvs namespace_with_ipsets use_pid_dir child_wait_time
        linkbeat_use_polling virtual_server virtual_server_group bfd_instance SSL
        """)
    ),
    GLOBAL: frozenset(
        _w("""
        process_names process_name vrrp_process_name checker_process_name lvs_process_name
        bfd_process_name router_id notification_email_from smtp_server smtp_helo_name
        smtp_connect_timeout notification_email smtp_alert startup_script
        startup_script_timeout shutdown_script shutdown_script_timeout max_auto_priority
        min_auto_priority_delay smtp_alert_vrrp smtp_alert_checker checker_log_all_failures
        dynamic_interfaces no_email_faults default_interface disable_local_igmp lvs_timeouts
        lvs_flush lvs_flush_on_stop lvs_flush_onstop lvs_sync_daemon vrrp_mcast_group4
        vrrp_mcast_group6 vrrp_garp_master_delay vrrp_garp_master_repeat
        vrrp_garp_master_refresh vrrp_garp_master_refresh_repeat vrrp_garp_lower_prio_delay
        vrrp_garp_lower_prio_repeat vrrp_down_timer_adverts vrrp_garp_interval
        vrrp_gna_interval vrrp_min_garp vrrp_garp_extra_if vrrp_vmac_garp_intvl
        vrrp_lower_prio_no_advert vrrp_higher_prio_send_advert vrrp_version vrrp_iptables
        vrrp_ipsets nftables nftables_priority nftables_ifindex nftables_ipvs
        nftables_ipvs_priority nftables_ipvs_start_fwmark nftables_counters
        vrrp_check_unicast_src vrrp_skip_check_adv_addr vrrp_strict vrrp_priority
        vrrp_no_swap vrrp_rt_priority vrrp_cpu_affinity vrrp_rlimit_rttime vrrp_rlimit_rtime
        notify_fifo notify_fifo_script vrrp_notify_fifo vrrp_notify_fifo_script
        vrrp_notify_priority_changes fifo_write_vrrp_states_on_reload lvs_notify_fifo
        lvs_notify_fifo_script checker_priority checker_no_swap checker_rt_priority
        checker_cpu_affinity checker_rlimit_rttime checker_rlimit_rtime bfd_priority
        bfd_no_swap bfd_rt_priority bfd_cpu_affinity bfd_rlimit_rttime bfd_rlimit_rtime
        snmp_socket enable_traps enable_snmp_vrrp enable_snmp_keepalived enable_snmp_rfc
        enable_snmp_rfcv2 enable_snmp_rfcv3 enable_snmp_checker enable_dbus
        dbus_service_name script_user enable_script_security vrrp_netlink_cmd_rcv_bufs
        vrrp_netlink_cmd_rcv_bufs_force vrrp_netlink_monitor_rcv_bufs
        vrrp_netlink_monitor_rcv_bufs_force process_monitor_rcv_bufs
        process_monitor_rcv_bufs_force lvs_netlink_cmd_rcv_bufs
        lvs_netlink_cmd_rcv_bufs_force lvs_netlink_monitor_rcv_bufs
        lvs_netlink_monitor_rcv_bufs_force rs_init_notifies no_checker_emails
        vrrp_rx_bufs_policy vrrp_rx_bufs_multiplier vrrp_startup_delay log_unknown_vrids
        vmac_prefix vmac_addr_prefix umask random_seed reload_check_config reload_time_file
        reload_repeat reload_file include_check config_save_dir tmp_config_directory
        data_use_instance
        """)
    ),
    INSTANCE: frozenset(
        _w("""
        use_vmac use_vmac_addr vmac_xmit_base use_ipvlan unicast_peer unicast_fault_no_peer
        check_unicast_src old_unicast_checksum native_ipv6 state interface vrf
        dont_track_primary track_interface track_script track_file track_process track_bfd
        mcast_src_ip unicast_src_ip mcast_dst_ip track_src_ip virtual_router_id unicast_ttl
        version priority advert_int virtual_ipaddress virtual_ipaddress_excluded
        promote_secondaries linkbeat_use_polling virtual_routes virtual_rules accept no_accept
        skip_check_adv_addr strict_mode preempt nopreempt preempt_delay debug notify_backup
        notify_master notify_fault notify_stop notify_deleted notify
        notify_master_rx_lower_pri smtp_alert notify_priority_changes
        lvs_sync_daemon_interface garp_master_delay garp_master_refresh garp_master_repeat
        garp_master_refresh_repeat garp_lower_prio_delay garp_lower_prio_repeat
        down_timer_adverts garp_extra_if vmac_garp_intvl lower_prio_no_advert
        higher_prio_send_advert kernel_rx_buf_size authentication
        """)
    ),
    SCRIPT: frozenset(_w("script interval timeout weight rise fall user init_fail")),
    VIP: frozenset(
        _w("""
        dev scope broadcast brd label peer home -nodad mngtmpaddr noprefixroute autojoin
        no_track preferred_lft use_vmac
        """)
    ),
    # vrrp_parser.c's vrrp_sync_group keywords (install_keyword under it).
    SYNC: frozenset(
        _w("""
        group track_interface track_script track_file track_process track_bfd
        notify_backup notify_master notify_fault notify_stop notify smtp_alert
        global_tracking sync_group_tracking_weight notify_priority_changes
        """)
    ),
}

# -- reasons ---------------------------------------------------------------

_IPV6 = "IPv6/VRRPv3 is not supported by pyvrrpd yet (later issue)"
_LVS = "LVS (virtual servers) is keepalived's other half; pyvrrpd does not provide it"
_CHECKER = "the health checker is keepalived's other half; pyvrrpd does not provide it"
_BFD = "BFD is not provided by pyvrrpd"
_SNMP = "SNMP is not provided by pyvrrpd (use `pyvrrpd status --json` or the JSON dump)"
_DBUS = "D-Bus is not provided by pyvrrpd"
_NETLINK = "pyvrrpd follows link state through netlink events only"
_BUFS = "pyvrrpd sizes its own sockets and receive queues"
_PROCNAME = "pyvrrpd runs as one process; the `keepalived` command names it keepalived"


def _since(version: str, what: str) -> str:
    return f"keepalived {version}+ keyword (2.2.7 ignores it as unknown); {what}"


# Keyword -> reason. Once a feature registers its handler, the handler wins
# (see module doc) and the entry is reported as stale by the keyword-class test.
REFUSED: Mapping[str, Mapping[str, str]] = {
    TOP: {
        "garp_group": "per-interface GARP groups are not implemented; use vrrp_garp_interval",
        "track_group": "track groups (of static addresses) are not implemented",
        "interface_up_down_delays": "delayed reaction to link changes is not implemented",
        "net_namespace": (
            "pyvrrpd does not read the namespace from the config; use `keepalived -s NAME` "
            "or start it inside the namespace (ip netns exec NAME ...)"
        ),
    },
    GLOBAL: {
        "startup_script": "startup/shutdown scripts are not run by pyvrrpd",
        "startup_script_timeout": "startup/shutdown scripts are not run by pyvrrpd",
        "shutdown_script": "startup/shutdown scripts are not run by pyvrrpd",
        "shutdown_script_timeout": "startup/shutdown scripts are not run by pyvrrpd",
        "default_interface": "default_interface (for addresses without dev) is not implemented",
        "disable_local_igmp": "pyvrrpd does not change the interfaces' IGMP reports",
        "vrrp_mcast_group6": _IPV6,
        "vrrp_garp_extra_if": "extra GARPs for virtual MAC interfaces are not implemented",
        "vrrp_vmac_garp_intvl": "extra GARPs for virtual MAC interfaces are not implemented",
        "reload_time_file": "scheduled reloads are not implemented",
        "reload_repeat": "scheduled reloads are not implemented",
        "reload_file": "scheduled reloads are not implemented",
        "vrrp_owner_ignore_adverts": _since("2.3", "not implemented"),
        "v3_checksum_as_v2": _since("2.3", _IPV6),
        "set_supplementary_groups": _since("2.3", "not implemented"),
    },
    INSTANCE: {
        "garp_extra_if": "extra GARPs for virtual MAC interfaces are not implemented",
        "vmac_garp_intvl": "extra GARPs for virtual MAC interfaces are not implemented",
        "use_ipvlan": "ipvlan interfaces are not implemented",
        "vrf": "VRF binding is not implemented",
        "old_unicast_checksum": "keepalived's pre-1.3.6 unicast checksum is not implemented",
        "native_ipv6": _IPV6,
        "track_bfd": _BFD,
        "promote_secondaries": "promote_secondaries is not implemented",
        "timer_expired_backup": _since("2.3", "not implemented"),
        "thread_timer_expired": _since("2.3", "not implemented"),
        "owner_ignore_adverts": _since("2.3", "not implemented"),
        "v3_checksum_as_v2": _since("2.3", _IPV6),
        "auth_hmac": _since("2.4", "HMAC authentication is not implemented"),
    },
    VIP: {
        "peer": "point-to-point (peer) addresses are not implemented",
        "noprefixroute": "addresses without their prefix route are not implemented",
        "autojoin": "multicast autojoin addresses are not implemented",
        "preferred_lft": "address lifetimes are not implemented",
    },
    SYNC: {
        "track_bfd": _BFD,
    },
}

#: pyvrrpd's own keywords (README "vrrp_track_http"); keepalived reports them as unknown.
PYVRRPD_ONLY: Mapping[str, frozenset[str]] = {
    TOP: frozenset({"vrrp_track_http"}),
    INSTANCE: frozenset({"track_http"}),
    SYNC: frozenset({"track_http"}),
}

NO_EFFECT: Mapping[str, Mapping[str, str]] = {
    TOP: {
        "virtual_server": _LVS,
        "virtual_server_group": _LVS,
        "net_namespace_ipvs": _LVS,
        "SSL": _CHECKER,
        "bfd_instance": _BFD,
        "namespace_with_ipsets": "pyvrrpd does not use ipsets",
        "use_pid_dir": "pid files are named by -p/-r (pyvrrpd run: --pid-file)",
        "child_wait_time": "pyvrrpd runs as one process, with no children to wait for",
        "linkbeat_use_polling": _NETLINK,
        "linkbeat_interfaces": _NETLINK,
    },
    GLOBAL: {
        **dict.fromkeys(
            _w("""process_names process_name vrrp_process_name checker_process_name
            lvs_process_name bfd_process_name"""),
            _PROCNAME,
        ),
        **dict.fromkeys(
            _w("""smtp_alert_checker checker_log_all_failures rs_init_notifies
            no_checker_emails checker_priority checker_no_swap checker_rt_priority
            checker_cpu_affinity checker_rlimit_rttime checker_rlimit_rtime"""),
            _CHECKER,
        ),
        **dict.fromkeys(
            _w("""lvs_timeouts lvs_flush lvs_flush_on_stop lvs_flush_onstop lvs_sync_daemon
            lvs_notify_fifo lvs_notify_fifo_script lvs_netlink_cmd_rcv_bufs
            lvs_netlink_cmd_rcv_bufs_force lvs_netlink_monitor_rcv_bufs
            lvs_netlink_monitor_rcv_bufs_force nftables_ipvs nftables_ipvs_priority
            nftables_ipvs_start_fwmark"""),
            _LVS,
        ),
        **dict.fromkeys(
            _w("""bfd_priority bfd_no_swap bfd_rt_priority bfd_cpu_affinity bfd_rlimit_rttime
            bfd_rlimit_rtime"""),
            _BFD,
        ),
        **dict.fromkeys(
            _w("""snmp_socket enable_traps enable_snmp_vrrp enable_snmp_keepalived
            enable_snmp_rfc enable_snmp_rfcv2 enable_snmp_rfcv3 enable_snmp_checker"""),
            _SNMP,
        ),
        "enable_dbus": _DBUS,
        "dbus_service_name": _DBUS,
        **dict.fromkeys(
            _w("""vrrp_netlink_cmd_rcv_bufs vrrp_netlink_cmd_rcv_bufs_force
            vrrp_netlink_monitor_rcv_bufs vrrp_netlink_monitor_rcv_bufs_force
            process_monitor_rcv_bufs process_monitor_rcv_bufs_force vrrp_rx_bufs_policy
            vrrp_rx_bufs_multiplier"""),
            _BUFS,
        ),
        "vrrp_cpu_affinity": "pyvrrpd does not pin itself to CPUs",
        "log_unknown_vrids": "a logging option; pyvrrpd counts such adverts in its stats",
        "umask": "pyvrrpd creates its files with fixed modes",
        "random_seed": "pyvrrpd has no use for a fixed random seed",
        "reload_check_config": "a reload always checks the whole config first (README, Reload)",
        "include_check": "pyvrrpd's include checks are keepalived's defaults",
        "config_save_dir": "pyvrrpd does not save configs",
        "tmp_config_directory": "pyvrrpd does not copy configs",
        "json_version": _since("2.3", "the JSON dump keeps the 2.2.7 format"),
        "state_dump_file": _since("2.3", "dump files keep their 2.2.7 names"),
        "stats_dump_file": _since("2.3", "dump files keep their 2.2.7 names"),
        "json_dump_file": _since("2.3", "dump files keep their 2.2.7 names"),
        "use_symlink_paths": _since("2.3", "script paths are used as written"),
        "dbus_no_interface_name": _since("2.3", _DBUS),
        "iproute_etc_dir": _since("2.3", "not used"),
        "iproute_usr_dir": _since("2.3", "not used"),
        "snmp_rs_stats_update_interval": _since("2.3", _SNMP),
        "snmp_vs_stats_update_interval": _since("2.3", _SNMP),
    },
    INSTANCE: {
        "linkbeat_use_polling": _NETLINK,
        "debug": "keepalived's per-instance debug level; use --log-level",
        "lvs_sync_daemon_interface": _LVS,
        "kernel_rx_buf_size": _BUFS,
    },
    VIP: {
        "home": "an IPv6 (Mobile IPv6) flag: no effect on IPv4 addresses",
        "-nodad": "an IPv6 flag (duplicate address detection): no effect on IPv4 addresses",
        "mngtmpaddr": "an IPv6 flag (temporary addresses): no effect on IPv4 addresses",
        "no_track": "pyvrrpd re-adds a VIP removed behind its back, with or without no_track",
    },
}

# How many words follow each per-address option we do not implement.
VIP_OPTION_ARGS: Mapping[str, int] = {"peer": 1, "preferred_lft": 1}


def refused_message(block: str, word: str) -> str:
    return f"'{word}' is not supported by pyvrrpd: {REFUSED[block][word]}"


def no_effect_message(block: str, word: str) -> str:
    where = "" if block == TOP else f" in {block}"
    return f"'{word}'{where} has no effect in pyvrrpd ({NO_EFFECT[block][word]}); ignored"


def classify_unhandled(
    rep: Reporter, at: Token, block: str, known: Iterable[str] = ()
) -> str | None:
    """Report a word the reader has no handler for; its class, or None if unknown.

    Returns "refused" (an error was reported), "no effect" (a warning) or
    None (an "unknown keyword" warning; `known` feeds the did-you-mean hint).
    """
    word = at.text
    if word in REFUSED.get(block, {}):
        rep.error(at, refused_message(block, word))
        return "refused"
    if word in NO_EFFECT.get(block, {}):
        # keepalived says nothing about a keyword it knows: keep `-t` quiet.
        silent = word in KEEPALIVED_227.get(block, frozenset())
        rep.diagnostics.append(
            Diagnostic(
                Severity.WARNING,
                at.loc,
                no_effect_message(block, word),
                at.source_line,
                keepalived_silent=silent,
            )
        )
        return "no effect"
    if block == VIP:
        return None  # vip.py words its own "unknown option" warning
    hint_from = {
        *known,
        *KEEPALIVED_227.get(block, ()),
        *REFUSED.get(block, {}),
        *NO_EFFECT.get(block, {}),
    }
    rep.warn(at, unknown_keyword(word, None if block == TOP else block, hint_from))
    return None


def not_handled(
    rep: Reporter, stmt: Stmt, body: Cursor, block: str, known: Iterable[str] = ()
) -> None:
    """A statement no handler took: report it by class and skip its `{ }` block."""
    classify_unhandled(rep, stmt.keyword, block, known)
    body.skip_optional_block(stmt)


def vrrp_version(rep: Reporter, stmt: Stmt) -> None:
    """`vrrp_version 2|3` (global) / `version 2|3` (instance).

    2 is what pyvrrpd speaks, so it is accepted; 3 (and IPv6, which forces
    it) would change the wire format under a keepalived peer: refused.
    """
    tok = need_arg(rep, stmt, 1, "2 or 3")
    if tok is None:
        return
    value = parse_int(tok.text)
    if value == 2:
        return
    if value == 3:
        rep.error(tok, f"'{stmt.keyword.text} 3' is not supported by pyvrrpd: {_IPV6}")
    else:
        # keepalived: "Unknown version" and the default (2) is kept.
        rep.warn(tok, f"{stmt.keyword.text} must be 2 or 3, got '{tok.text}'; using 2")


def note_semicolon(rep: Reporter, tok: Token, keyword: str) -> None:
    """Warn (without changing `keepalived -t`'s code) about a value ending in ';'.

    keepalived.conf has no ';' separator: `auth_pass 1111;` sets the password
    `1111;` in keepalived too, so both read it alike, but a peer written
    without the ';' would not match.
    """
    if not tok.text.endswith(";"):
        return
    rep.diagnostics.append(
        Diagnostic(
            Severity.WARNING,
            tok.loc,
            f"{keyword} '{tok.text}' ends with ';', which is part of the value "
            "(keepalived.conf has no ';' separator; keepalived reads it the same way)",
            tok.source_line,
            keepalived_silent=True,
        )
    )


def vrrp_min_garp(rep: Reporter, stmt: Stmt, values: dict[str, object]) -> None:
    """`vrrp_min_garp [BOOL]` (global_defs): one GARP per VIP, no second burst, no refresh.

    keepalived 2.2.7 (global_parser.c) sets the master repeat to 1, the delay
    of the second burst and the refresh to 0, without overwriting values
    written before it; values written after it win as usual.
    """
    if len(stmt.tokens) > 1:
        tok = stmt.tokens[1]
        truth = {"on": True, "true": True, "yes": True, "off": False, "false": False, "no": False}
        if tok.text.lower() not in truth:
            rep.error(tok, f"vrrp_min_garp takes on|off|true|false|yes|no, got '{tok.text}'")
            return
        if not truth[tok.text.lower()]:
            return
    for field, value in (
        ("vrrp_garp_master_repeat", 1),
        ("vrrp_garp_master_refresh", 0.0),
        ("vrrp_garp_master_delay", 0.0),
    ):
        values.setdefault(field, value)


def unknown_keyword(word: str, block: str | None, known: Iterable[str]) -> str:
    """The warning for an unknown keyword, naming the closest known one if any.

    `block` is where it was found (None: top level). keepalived matches
    keywords exactly and case-sensitively, so `Priority` is unknown too; the
    hint shows the spelling it wants.
    """
    where = f" in {block}" if block else ""
    if word.endswith(";") and word[:-1] in set(known):
        # `nopreempt;`: keepalived ignores the whole line, so the option is NOT set.
        return (
            f"unknown keyword '{word}'{where}: keepalived.conf has no ';' separator, so this "
            f"line is ignored and '{word[:-1]}' is NOT in effect (keepalived 2.2.7 does the same)"
        )
    close = difflib.get_close_matches(word, sorted(set(known)), n=1, cutoff=0.75)
    if not close:
        lowered = {k.lower(): k for k in known}
        close = [lowered[word.lower()]] if word.lower() in lowered else []
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown keyword '{word}'{where}{hint}"
