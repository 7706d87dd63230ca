"""keepalived keywords that pyvrrpd recognises but does not act on; typo hints.

Owns: the lists (from keepalived.md 1.2, 1.3, 1.8, 1.9). A keyword listed here
is consumed, with any `{ ... }` block after it, and draws a warning saying it
is not supported, instead of the "unknown keyword" warning meant for typos.
Also owns the wording of that warning, which names the closest keyword of
the block (`virtual_ipadress` -> `virtual_ipaddress`): keepalived only warns
about unknown keywords, so a typo would otherwise pass almost silently.
Must not: contain keywords the parser implements.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# Top level: blocks and single-line statements (keepalived.md 1.2), plus the
# LVS/BFD halves that mixed configs carry.
UNSUPPORTED_TOP = frozenset(
    {
        "vrrp_sync_group",
        "vrrp_track_process",
        "track_file",
        "vrrp_track_file",
        "garp_group",
        "static_ipaddress",
        "static_routes",
        "static_rules",
        "track_group",
        "linkbeat_interfaces",
        "interface_up_down_delays",
        "virtual_server",
        "virtual_server_group",
        "bfd_instance",
        "net_namespace",
        "net_namespace_ipvs",
        "namespace_with_ipsets",
        "use_pid_dir",
        "child_wait_time",
        "linkbeat_use_polling",
    }
)

# global_defs keywords we accept and ignore (keepalived.md 1.3 ◐/○ rows).
UNSUPPORTED_GLOBAL = frozenset(
    {
        "smtp_alert_vrrp",
        "smtp_alert_checker",
        "no_email_faults",
        "vrrp_min_garp",
        "vrrp_garp_extra_if",
        "vrrp_garp_extra_if_vmac",
        "vrrp_strict",
        "vrrp_version",
        "vrrp_mcast_group4",
        "vrrp_mcast_group6",
        "vrrp_check_unicast_src",
        "vrrp_iptables",
        "vrrp_ipsets",
        "nftables",
        "nftables_priority",
        "nftables_counters",
        "nftables_ifindex",
        "vrrp_startup_delay",
        "vrrp_delay_after_boot",
        "vrrp_lower_prio_no_advert",
        "vrrp_higher_prio_send_advert",
        "vrrp_down_timer_adverts",
        "notify_fifo",
        "notify_fifo_script",
        "vrrp_notify_fifo",
        "vrrp_notify_fifo_script",
        "fifo_write_vrrp_states_on_reload",
        "vrrp_notify_priority_changes",
        "dynamic_interfaces",
        "state_dump_file",
        "stats_dump_file",
        "json_dump_file",
        "json_version",
        "vrrp_cpu_affinity",
        "checker_priority",
        "checker_no_swap",
        "checker_rt_priority",
        "checker_cpu_affinity",
        "checker_rlimit_rttime",
        "checker_log_all_failures",
        "bfd_priority",
        "bfd_no_swap",
        "bfd_rt_priority",
        "bfd_cpu_affinity",
        "bfd_rlimit_rttime",
        "enable_snmp_vrrp",
        "enable_snmp_keepalived",
        "enable_snmp_checker",
        "enable_snmp_rfc",
        "enable_snmp_rfcv2",
        "enable_snmp_rfcv3",
        "snmp_socket",
        "enable_traps",
        "enable_dbus",
        "dbus_service_name",
        "lvs_id",
        "lvs_flush",
        "lvs_flush_on_stop",
        "lvs_timeouts",
        "lvs_sync_daemon",
        "lvs_netlink_monitor_rcv_bufs",
        "lvs_netlink_monitor_rcv_bufs_force",
        "lvs_netlink_cmd_rcv_bufs",
        "lvs_netlink_cmd_rcv_bufs_force",
        "net_namespace",
        "net_namespace_ipvs",
        "namespace_with_ipsets",
        "process_names",
        "process_name",
        "vrrp_process_name",
        "checker_process_name",
        "bfd_process_name",
        "vmac_prefix",
        "vmac_addr_prefix",
        "log_unknown_vrids",
        "vrrp_owner_ignore_adverts",
        "vrrp_rx_bufs_policy",
        "vrrp_rx_bufs_multiplier",
        "vrrp_netlink_monitor_rcv_bufs",
        "vrrp_netlink_monitor_rcv_bufs_force",
        "vrrp_netlink_cmd_rcv_bufs",
        "vrrp_netlink_cmd_rcv_bufs_force",
        "startup_script",
        "startup_script_timeout",
        "shutdown_script",
        "shutdown_script_timeout",
        "reload_check_config",
        "reload_time_file",
        "reload_repeat",
        "reload_file",
        "include_check",
        "config_save_dir",
        "tmp_config_directory",
        "umask",
        "random_seed",
        "default_interface",
        "disable_local_igmp",
        "v3_checksum_as_v2",
        "script_security",  # not a real keepalived keyword, but a common slip
        "linkbeat_use_polling",
        "router_id_from_hostname",
        "vrrp_skip_check_adv_addr_fix",
        "vrrp_track_process_max_events",
        "notify_fifo_user",
    }
)

# vrrp_instance keywords we accept and ignore (keepalived.md 1.8 ◐/○ rows).
UNSUPPORTED_INSTANCE = frozenset(
    {
        "unicast_src_ip",
        "unicast_peer",
        "unicast_ttl",
        "unicast_fault_no_peer",
        "check_unicast_src",
        "track_src_ip",
        "mcast_src_ip",
        "mcast_dst_ip",
        "track_interface",
        "track_process",
        "track_file",
        "track_bfd",
        "notify",
        "notify_master",
        "notify_backup",
        "notify_fault",
        "notify_stop",
        "notify_deleted",
        "notify_master_rx_lower_pri",
        "notify_priority_changes",
        "smtp_alert",
        "use_vmac",
        "use_vmac_addr",
        "vmac_xmit_base",
        "use_ipvlan",
        "vrf",
        "native_ipv6",
        "old_unicast_checksum",
        "v3_checksum_as_v2",
        "linkbeat_use_polling",
        "lvs_sync_daemon_interface",
        "owner_ignore_adverts",
        "debug",
        "version",
        "accept",
        "no_accept",
        "dont_track_primary",
        "lower_prio_no_advert",
        "higher_prio_send_advert",
        "down_timer_adverts",
        "timer_expired_backup",
        "thread_timer_expired",
        "strict_mode",
        "promote_secondaries",
        "kernel_rx_buf_size",
        "auth_hmac",
        "virtual_routes",
        "virtual_rules",
        "sync_group_tracking_weight",
    }
)

# Per-address words of `virtual_ipaddress` (keepalived.md 1.9) that we skip;
# the value says how many arguments follow the word.
UNSUPPORTED_VIP_OPTIONS: dict[str, int] = {
    "peer": 1,
    "home": 0,
    "-nodad": 0,
    "mngtmpaddr": 0,
    "noprefixroute": 0,
    "autojoin": 0,
    "no_track": 0,
    "preferred_lft": 1,
    "use_vmac": 0,
    "track_group": 1,
}


def unknown_keyword(word: str, block: str | None, known: Iterable[str]) -> str:
    """The warning for an unknown keyword, naming the closest known one if any.

    `block` is where it was found (None: top level). keepalived matches
    keywords exactly and case-sensitively, so `Priority` is unknown too; the
    hint shows the spelling it wants.
    """
    where = f" in {block}" if block else ""
    close = difflib.get_close_matches(word, sorted(set(known)), n=1, cutoff=0.75)
    if not close:
        lowered = {k.lower(): k for k in known}
        close = [lowered[word.lower()]] if word.lower() in lowered else []
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown keyword '{word}'{where}{hint}"
