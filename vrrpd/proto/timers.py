"""VRRP timer formulas, RFC 5798 §6.1 (v3) and RFC 3768 §6.1 (v2).

Intervals are centiseconds (as carried by VRRPv3); the results are seconds (float), the unit of
the injected clock the state machine runs on.
"""

from __future__ import annotations


def skew_time(version: int, priority: int, master_adver_int_cs: int) -> float:
    """Skew_Time in seconds.

    v3 (RFC 5798 §6.1): ``((256 - Priority) * Master_Adver_Interval) / 256`` centiseconds.
    v2 (RFC 3768 §6.1): ``(256 - Priority) / 256`` seconds.
    """
    if version == 2:
        return (256 - priority) / 256
    return (256 - priority) * master_adver_int_cs / 256 / 100


def master_down_interval(version: int, priority: int, master_adver_int_cs: int) -> float:
    """Master_Down_Interval in seconds: ``3 * Master_Adver_Interval + Skew_Time``.

    RFC 5798 §6.1 and RFC 3768 §6.1 (where the interval is Advertisement_Interval).
    """
    return 3 * master_adver_int_cs / 100 + skew_time(version, priority, master_adver_int_cs)
