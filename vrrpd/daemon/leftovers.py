"""What an earlier run left in the kernel, removed before any instance starts (startup
reconcile, DESIGN.md seam 4): virtual MAC links of instances no longer configured, vrrpd's
routes and policy rules (its routing protocol number, :mod:`vrrpd.kernel.routes`) and its
nftables tables (``accept_mode: false``, ``tproxy``).  VIPs are reconciled per instance
(:meth:`vrrpd.daemon.instances.Instances.reconcile`).  The nftables tables are reset again at
stop."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from vrrpd.daemon.instance import InstanceDriver
from vrrpd.daemon.ports import Kernel

log = logging.getLogger("vrrpd")


async def remove_stale_links(kernel: Kernel, drivers: Iterable[InstanceDriver]) -> None:
    """Delete vrrpd's macvlan links that no configured instance uses."""
    if kernel.virtual_macs is None:
        return
    wanted = [d.vmac.name for d in drivers if d.vmac is not None]
    for name in await kernel.virtual_macs.remove_stale(wanted):
        log.warning("removed virtual MAC link %s: an earlier run made it for an instance that "
                    "is no longer configured", name)


async def flush_routes(kernel: Kernel) -> None:
    """Remove the virtual routes and rules an earlier run left: no instance is master yet."""
    if kernel.routes is None:
        return
    removed = await kernel.routes.flush()
    if removed:
        log.warning("removed %s left by an earlier run (startup reconcile)", "; ".join(removed))


async def reset_nft_tables(kernel: Kernel, drivers: Iterable[InstanceDriver]) -> None:
    """Delete vrrpd's nftables tables, accept_mode: false's and tproxy's (whatever a crashed
    run left, or ours at stop); a missing libnftables matters only when an instance needs the
    table."""
    drivers = list(drivers)
    for table, needed, what in (
            (kernel.accept_filter, any(not d.router.accepts for d in drivers),
             "accept_mode: false"),
            (kernel.tproxy, any(d.cfg.tproxy for d in drivers), "tproxy")):
        if table is None:
            continue
        try:
            await table.reset()
        except OSError as exc:
            if needed:
                raise OSError(f"{what} needs nftables: {exc.strerror or exc}") from None
