"""The draining hand-over (:mod:`vrrpd.drain`) wired into the daemon: opened at start when the
kernel adapter has drain forwarding, and what a drain left removed (a crashed run's at start,
ours at stop)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from vrrpd.drain.handover import Handover
from vrrpd.drain.messages import OP as DRAIN_OP
from vrrpd.kernel.drain_hold import DrainHold

if TYPE_CHECKING:
    from vrrpd.daemon.runtime import Daemon

log = logging.getLogger("vrrpd")


async def open_handover(daemon: Daemon) -> None:
    """Set ``daemon.handover`` up, when the kernel adapter has drain forwarding."""
    forwarding = daemon.kernel.drain_forwarding
    if forwarding is None:
        return
    forwarding.state_file = daemon.config.state_dir / "drain-forwarding.json"
    await forwarding.open()
    daemon.handover = Handover(DrainHold(daemon.kernel.addresses), forwarding,
                               lambda: daemon.config_sync, lambda: daemon.drivers,
                               lambda: daemon.config)
    daemon.instances.handover = daemon.handover
    daemon.channel_handlers[DRAIN_OP] = daemon.handover.receive


async def reconcile(daemon: Daemon) -> None:
    """Remove what a drain left (a crashed run's, or ours at stop): forwarding rules, routes,
    nftables table and sysctls; VIPs held on lo.  Before the routes' flush: the ``local`` rule
    goes back to priority 0 first."""
    if daemon.handover is None:
        return
    try:
        await daemon.handover.forwarding.kernel.reset()
    except OSError as exc:
        if daemon.config.config_sync and any(d.cfg.drain_timeout > 0
                                             for d in daemon.drivers.values()):
            log.error("drain: cannot reset its forwarding (%s); forwarding for a drain will "
                      "fail (apt install nftables)", exc)
    held = [v for d in daemon.drivers.values() for v in d.cfg.held]
    removed = await daemon.handover.hold.reconcile(held)
    if removed:
        log.warning("removed VIP(s) %s from lo, left by an earlier run's drain (startup "
                    "reconcile)", ", ".join(map(str, removed)))
