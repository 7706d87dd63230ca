"""RFC 3768 timer formulas.

Owns: Skew_Time and Master_Down_Interval. Pure arithmetic on seconds.
"""

from __future__ import annotations


def skew_time(priority: int, advert_int: float, version: int = 2) -> float:
    """RFC 3768 6.1: Skew_Time = (256 - Priority) / 256 seconds.

    VRRPv3 (RFC 5798 6.1) scales it by the (master) advert interval instead.
    """
    if version == 3:
        return (256 - priority) * advert_int / 256.0
    return (256 - priority) / 256.0


def master_down_interval(priority: int, advert_int: float, version: int = 2) -> float:
    """RFC 3768 6.1: Master_Down_Interval = 3 * Advertisement_Interval + Skew_Time."""
    return 3 * advert_int + skew_time(priority, advert_int, version)
