"""Real-time scheduling of the event loop (``realtime_priority:``, keepalived's
``vrrp_rt_priority``).

VRRP's timers are short: at ``advert_interval: 0.1`` a backup declares the master dead after
Master_Down_Interval, 361 ms at priority 100 (RFC 5798 §6.1), and at VRRPv3's shortest
interval, 10 ms, after 34 ms.  A host whose cores HAProxy (or anything else) keeps busy can
delay a normally scheduled daemon by that much: the master's adverts leave late, the backup
takes over, a false failover.  With ``realtime_priority: N`` the event loop's thread runs
SCHED_RR at priority N (sched(7)), ahead of every normally scheduled process, so adverts and
timers keep their time however busy the host is.

Only that thread: ``SCHED_RESET_ON_FORK`` gives every thread and process it creates (the
executor's threads, notify hooks, script trackers, sync commands) normal scheduling again, so
a script that spins cannot take a core.  ``RLIMIT_RTTIME`` bounds the loop itself: a thread
that runs :data:`RTTIME_LIMIT_US` of CPU without once blocking is killed (SIGXCPU), and
systemd restarts it, instead of a runaway loop holding a core at real-time priority.

The shipped unit forbids real-time scheduling (``RestrictRealtime=yes``, no CAP_SYS_NICE);
the drop-in etc/systemd/vrrpd.service.d/realtime.conf allows it.  Where the switch is refused
(that sandbox, or a cgroup without a real-time budget, as in many containers) vrrpd says so
and runs normally scheduled.
"""

from __future__ import annotations

import os
import resource

RTTIME_LIMIT_US = 2_000_000  # CPU time without blocking before RLIMIT_RTTIME kills the loop
DROP_IN = "/usr/share/doc/vrrpd/examples/vrrpd.service.d/realtime.conf"


def use_realtime(priority: int) -> None:
    """Run the calling thread SCHED_RR at ``priority``, its children normally scheduled;
    :class:`OSError` naming what to check when the kernel refuses."""
    try:
        resource.setrlimit(resource.RLIMIT_RTTIME, (RTTIME_LIMIT_US, RTTIME_LIMIT_US))
        os.sched_setscheduler(0, os.SCHED_RR | os.SCHED_RESET_ON_FORK,
                              os.sched_param(priority))
    except OSError as exc:
        raise OSError(exc.errno, f"realtime_priority {priority}: the kernel refused real-time "
                                 f"scheduling ({exc.strerror}): it needs CAP_SYS_NICE and "
                                 f"RestrictRealtime=no ({DROP_IN}) and a cgroup with a "
                                 "real-time budget; running normally scheduled") from None


def describe() -> str:
    """``SCHED_RR priority 10`` or ``normal``: how the calling thread is scheduled now."""
    policy = os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK
    if policy in (os.SCHED_RR, os.SCHED_FIFO):
        name = "SCHED_RR" if policy == os.SCHED_RR else "SCHED_FIFO"
        return f"{name} priority {os.sched_getparam(0).sched_priority}"
    return "normal"
