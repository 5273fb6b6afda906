"""What a master holds, taken and released in order (RFC 5798 §6.4.3 / §6.4.2).

Taking: the draining hand-over told (:mod:`vrrpd.drain`), the virtual MAC link up, the accept
filter (``accept_mode: false``) before any VIP, the VIPs, then the virtual routes and rules (a
route may use a VIP), then the tproxy mark, and the hand-over told again.  Releasing goes the
other way; a planned hand-over keeps the VIPs on lo while the old master drains.
A reload that changes the VIP list while MASTER adds and removes only the difference
(:meth:`Holding.change`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vrrpd.config.diff import InstanceChange
from vrrpd.daemon.ports import AcceptFilterPort, RoutePort, TransparentProxyPort

if TYPE_CHECKING:
    from vrrpd.daemon.instance import InstanceDriver


class Holding:
    """The VIPs and what goes with them for one instance; ``held`` while they are in place."""

    def __init__(self, driver: InstanceDriver) -> None:
        self.driver = driver
        self.held = False

    def _filter(self) -> AcceptFilterPort:
        if self.driver.ports.accept_filter is None:
            raise RuntimeError("accept_mode: false needs the nftables accept filter")
        return self.driver.ports.accept_filter

    def _routes(self) -> RoutePort:
        if self.driver.ports.routes is None:
            raise RuntimeError("virtual_routes / virtual_rules need the route manager")
        return self.driver.ports.routes

    def _tproxy(self) -> TransparentProxyPort:
        if self.driver.ports.tproxy is None:
            raise RuntimeError("tproxy needs the nftables transparent-proxy table")
        return self.driver.ports.tproxy

    async def take(self) -> None:
        d, cfg = self.driver, self.driver.cfg
        await self._tell_handover("taking_over")  # forward an old master's flows first
        if d.vmac is not None:
            await d.vmac.ensure()  # made now if the interface came up late
            await d.vmac.up()
        if not d.router.accepts:  # before the VIPs: never accept for them
            await self._filter().block(cfg.name, cfg.held)
        await self.add(cfg.held)
        self.held = True
        if cfg.held_routes or cfg.held_rules:  # after the VIPs: a route may use one
            await self._routes().add(cfg.held_routes, cfg.held_rules)
        if cfg.tproxy is not None:  # the rule first: a marked packet then goes local
            await self._tproxy().mark(cfg.name, cfg.family, cfg.tproxy.fwmark)
        await self._tell_handover("took_over")

    async def release(self) -> None:
        d, cfg = self.driver, self.driver.cfg
        if cfg.tproxy is not None:
            await self._tproxy().unmark(cfg.name)
        if cfg.held_routes or cfg.held_rules:
            await self._routes().remove(cfg.held_routes, cfg.held_rules)
        await self._tell_handover("giving_up")  # a planned one keeps them on lo
        await self.remove(cfg.held)
        self.held = False
        if not d.router.accepts:
            await self._filter().unblock(cfg.name)
        if d.vmac is not None:
            await d.vmac.down()

    async def _tell_handover(self, hook: str) -> None:
        """A draining hand-over hook (:mod:`vrrpd.drain.handover`); its failure is logged and
        never stops the VIP change."""
        d = self.driver
        if d.handover is None:
            return
        try:
            await getattr(d.handover, hook)(d)
        except Exception:
            d.log.exception("drain: %s failed; the VIPs change as without a drain", hook)

    async def change(self, change: InstanceChange) -> None:
        """A reload changed the VIP list while they are held: add and announce the new ones,
        remove the dropped ones; nothing else is touched (no VIP is removed and re-added)."""
        d, cfg = self.driver, self.driver.cfg
        if not d.router.accepts:  # the chain follows the VIP list, before any is added
            await self._filter().block(cfg.name, cfg.held)
        if change.added_vips:
            await self.add(change.added_vips)
            await d.transmit.burst(change.added_vips)
        if change.removed_vips:
            await self.remove(change.removed_vips)
        d.log.info("reload: VIPs added %s, removed %s", [str(v) for v in change.added_vips],
                   [str(v) for v in change.removed_vips])

    async def add(self, vips: Any) -> None:
        """Add ``vips``, each on its interface (its ``dev``, else the driver's
        :attr:`~vrrpd.daemon.instance.InstanceDriver.vip_interface`)."""
        d = self.driver
        for ifname, group in d.cfg.by_interface(vips, d.vip_interface).items():
            await d.ports.addresses.add(ifname, group, d.cfg.vip_labels)

    async def remove(self, vips: Any) -> None:
        d = self.driver
        for ifname, group in d.cfg.by_interface(vips, d.vip_interface).items():
            await d.ports.addresses.remove(ifname, group)
