"""The asyncio shell: lifecycle, one timer heap, carrying out the core's actions.

Top level: the daemon (daemon.py), carrying out actions (executor.py), the
instance record, signals, the child reaper, scheduling, vrrp_script runs and
sync groups. Sub-packages: `host` (what is installed on the host: VIPs,
firewall, routes, vmacs, unicast targets, AH) and `ops` (control socket,
reload, dumps, notify, pid files, run state, systemd).
"""
