"""Seconds since boot, for `vrrp_delay_after_boot`.

Owns: reading /proc/uptime. Must not: raise; an unreadable file gives None
(keepalived then warns and ignores the boot delay).
"""

from __future__ import annotations


def boot_uptime(path: str = "/proc/uptime") -> float | None:
    """The first field of /proc/uptime, or None if it cannot be read."""
    try:
        with open(path, encoding="ascii") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
