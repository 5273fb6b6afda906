"""When to drain and when to forward: the instance driver's hooks and the side channel's
receiver.

The driver (:mod:`vrrpd.daemon.instance`) calls, around its VIP changes:

* :meth:`Handover.taking_over` before it adds the VIPs: a take-over from a live master on
  purpose (a preempt back, ``vrrpctl promote`` here, or a hand-over the old master announced
  as ``planned``) starts forwarding unknown flows to the old master *before* hosts are pointed
  here, so no packet of an old connection meets this host without a way on.
* :meth:`Handover.took_over` after: a drain of our own (we were the draining old master and
  became master again) ends, the VIPs being back on the interface.
* :meth:`Handover.giving_up` before it removes the VIPs: forwarding stops (we are no longer
  master); if the hand-over was planned (the peer took over after our ``vrrpctl demote`` or
  maintenance, or preempted us with a higher priority) the VIPs are held on ``lo`` and the
  drain starts.  Leaving MASTER for a fault, a shutdown or a sync group never drains: an
  unplanned failover is unchanged.

The transition that led to the VIP change is the driver's latest (its cause, from
:class:`vrrpd.proto.events.Cause`).  Messages arrive through :meth:`Handover.receive`
(registered on the config-sync listener).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from ipaddress import ip_address
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from vrrpd.config.model import Config, InstanceConfig, TrackType
from vrrpd.drain.draining import Drain
from vrrpd.drain.forwarding import Forwarding
from vrrpd.drain.messages import (
    FIRST_HEARTBEAT_GRACE,
    HEARTBEAT_TIMEOUT,
    PLANNED_TIMEOUT,
    PLANNED_VALID,
    SEND_TIMEOUT,
    DrainMessage,
    Phase,
)
from vrrpd.kernel.drain_forward import DrainForwarding, Forward
from vrrpd.kernel.drain_hold import DrainHold
from vrrpd.proto.events import Cause, State
from vrrpd.proto.packet import IPAddress

if TYPE_CHECKING:
    from vrrpd.daemon.instance import InstanceDriver

log = logging.getLogger("vrrpd.drain")

# why the old master left MASTER when that was planned: the peer took over after our demote
# or maintenance, or a higher-priority peer preempted (or was promoted)
DRAINING_CAUSES = frozenset({Cause.HANDED_OVER, Cause.BETTER_MASTER})
# why the new master took over from a live master on purpose: it preempted, or was promoted
FORWARDING_CAUSES = frozenset({Cause.PREEMPT, Cause.OPERATOR})


class Channel(Protocol):
    """The config-sync service (:class:`vrrpd.configsync.service.ConfigSyncService`) as the
    drain uses it."""

    node: str
    handlers: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]]

    async def tell(self, header: dict[str, Any], timeout: float) -> list[dict[str, Any]]: ...


def haproxy_socket(config: Config, cfg: InstanceConfig) -> Path | None:
    """The stats socket to count sessions on: the instance's first ``haproxy`` tracker with a
    socket, else ``config_sync.stats_socket``."""
    for ref in cfg.track:
        tracker = config.tracks.get(ref.name)
        if tracker is not None and tracker.type is TrackType.HAPROXY:
            sock = getattr(tracker.options, "socket", None)
            if sock is not None:
                return Path(sock)
    return config.config_sync.stats_socket if config.config_sync is not None else None


class Handover:
    """The drains of this node (old master) and the forwarding it does (new master)."""

    def __init__(self, hold: DrainHold, forwarding: DrainForwarding,
                 channel: Callable[[], Channel | None],
                 drivers: Callable[[], dict[str, InstanceDriver]],
                 config: Callable[[], Config]) -> None:
        self.hold = hold
        self.forwarding = Forwarding(forwarding)
        self.channel = channel
        self.drivers = drivers
        self.config = config
        self.drains: dict[str, Drain] = {}
        self.drains_started: dict[str, int] = {}
        self.planned: dict[str, tuple[IPAddress, float]] = {}  # instance -> (via, until)
        self._loop = asyncio.get_running_loop()

    def enabled(self, driver: InstanceDriver) -> bool:
        return self.off(driver) is None

    def off(self, driver: InstanceDriver) -> str | None:
        """Why ``driver``'s instance does not drain nor forward (None: it does).

        The transparent variant (an instance with ``tproxy:``) never does: the PACS answers
        the old master's transparent connections through the gateway VIP, which the new
        master holds, and those packets are addressed to the client, not to a VIP: nothing
        would take them on to the old master, whose connections would stall until HAProxy's
        timeouts instead of breaking at once as today."""
        if driver.cfg.drain_timeout <= 0:
            return "drain_timeout is 0"
        if self.channel() is None:
            return "no config_sync: (the side channel)"
        if any(i.tproxy is not None for i in self.config().instances):
            return "the transparent variant (tproxy:) cannot drain"
        return None

    @staticmethod
    def _cause(driver: InstanceDriver) -> Cause | None:
        return driver.history[-1].cause if driver.history else None

    # ---- the driver's hooks --------------------------------------------------------------

    async def taking_over(self, driver: InstanceDriver) -> None:
        if not self.enabled(driver):
            return
        planned = self.planned.pop(driver.name, None)
        via: IPAddress | None = None
        if planned is not None and planned[1] > self._loop.time():
            via = planned[0]
        elif self._cause(driver) in FORWARDING_CAUSES and driver.last_master_advert:
            via = ip_address(driver.last_master_advert["from"])
        if via is None or via == driver.router.params.primary_address:
            return
        await self._forward(driver, via, FIRST_HEARTBEAT_GRACE)

    async def took_over(self, driver: InstanceDriver) -> None:
        drain = self.drains.get(driver.name)
        if drain is not None:
            await drain.cancel("this node is master again (the VIPs are back on "
                               f"{driver.vip_interface})")

    async def giving_up(self, driver: InstanceDriver) -> None:
        await self.forwarding.stop(driver.name, "this node is no longer master", driver.log)
        if (not self.enabled(driver) or self._cause(driver) not in DRAINING_CAUSES
                or driver.name in self.drains):
            return
        via = driver.router.params.primary_address
        if via is None:
            return
        cfg = driver.cfg
        try:
            await self.hold.hold(cfg.interface, cfg.held)
        except OSError as exc:
            driver.log.error("drain: cannot keep the VIPs on lo (%s); open connections break "
                             "as without a drain", exc)
            return
        socket = haproxy_socket(self.config(), cfg)
        if socket is None:
            driver.log.warning("drain: no HAProxy stats socket to count sessions (a haproxy "
                               "tracker with socket:, or config_sync: stats_socket); draining for "
                               "drain_timeout %gs", cfg.drain_timeout)
        drain = Drain(driver.name, cfg.vrid, tuple(v.ip for v in cfg.held), via,
                      cfg.drain_timeout, socket, self._send,
                      lambda: self.hold.release(cfg.held), driver.log, self._ended)
        self.drains[driver.name] = drain
        self.drains_started[driver.name] = self.drains_started.get(driver.name, 0) + 1
        driver.log.info("draining: keeping the VIPs on lo for the open connections, at most "
                        "%gs (drain_timeout); the peer forwards their packets here",
                        cfg.drain_timeout)
        drain.start()

    def _ended(self, drain: Drain) -> None:
        if self.drains.get(drain.instance) is drain:
            del self.drains[drain.instance]

    async def _forward(self, driver: InstanceDriver, via: IPAddress, grace: float) -> None:
        cfg = driver.cfg
        fwd = Forward(cfg.name, tuple(v for v in cfg.held if not v.ip.is_link_local), via,
                      cfg.interface, driver.vip_interface)
        try:
            await self.forwarding.start(fwd, grace, driver.log)
        except OSError as exc:
            driver.log.error("drain: cannot forward unknown flows to %s (%s); the old "
                             "master's open connections break as without a drain", via, exc)

    # ---- the side channel ----------------------------------------------------------------

    async def _send(self, msg: DrainMessage, timeout: float = SEND_TIMEOUT
                    ) -> list[dict[str, Any]]:
        channel = self.channel()
        if channel is None:
            return []
        return await channel.tell(msg.header(), timeout)

    async def before_handover(self, names: list[str]) -> None:
        """Tell the peer that these masters are about to hand over on purpose (``vrrpctl
        demote``, maintenance), so it forwards from its first moment as master."""
        async def tell(driver: InstanceDriver, via: IPAddress) -> None:
            replies = await self._send(DrainMessage(driver.name, driver.cfg.vrid,
                                                    Phase.PLANNED, via), PLANNED_TIMEOUT)
            if not any(r.get("ok") for r in replies):
                driver.log.warning("drain: the peer did not confirm the planned hand-over (%s); "
                                   "it forwards from its first heartbeat, so a connection "
                                   "that sends in between may break",
                                   "; ".join(str(r.get("error")) for r in replies) or "no peer")

        sends = []
        for name in names:
            driver = self.drivers().get(name)
            if driver is None or driver.state is not State.MASTER or not self.enabled(driver):
                continue
            via = driver.router.params.primary_address
            if via is not None:
                sends.append(tell(driver, via))
        await asyncio.gather(*sends)

    async def receive(self, header: dict[str, Any]) -> dict[str, Any]:
        """A drain message from a pinned peer (the config-sync listener authenticated it)."""
        channel = self.channel()
        node = channel.node if channel is not None else None
        try:
            msg = DrainMessage.parse(header)
        except ValueError as exc:
            return {"ok": False, "error": str(exc), "node": node}
        driver = self.drivers().get(msg.instance)
        if driver is None or driver.cfg.vrid != msg.vrid:
            return {"ok": False, "node": node,
                    "error": f"no instance {msg.instance!r} with VRID {msg.vrid} here"}
        if (off := self.off(driver)) is not None:
            return {"ok": True, "forwarding": False, "node": node, "why": f"{off} here"}
        match msg.phase:
            case Phase.PLANNED:
                self.planned[msg.instance] = (msg.via, self._loop.time() + PLANNED_VALID)
                return {"ok": True, "forwarding": False, "node": node}
            case Phase.ENDED:
                await self.forwarding.stop(msg.instance, f"{msg.via} ended its drain",
                                           driver.log)
                return {"ok": True, "forwarding": False, "node": node}
        if not self.forwarding.heartbeat(msg) and driver.state is State.MASTER \
                and driver.vips_held:
            # a drain we did not expect (we were not told and did not preempt it)
            await self._forward(driver, msg.via, HEARTBEAT_TIMEOUT)
            self.forwarding.heartbeat(msg)
        return {"ok": True, "forwarding": msg.instance in self.forwarding.active,
                "node": node}

    # ---- status and lifecycle ------------------------------------------------------------

    def status(self, driver: InstanceDriver) -> dict[str, Any]:
        drain = self.drains.get(driver.name)
        fwd = self.forwarding.active.get(driver.name)
        return {"enabled": self.enabled(driver), "off": self.off(driver),
                "timeout": driver.cfg.drain_timeout,
                "draining": drain.status() if drain is not None else None,
                "forwarding": fwd.status() if fwd is not None else None,
                "drains": self.drains_started.get(driver.name, 0),
                "forwards": self.forwarding.counters.get(driver.name, 0)}

    async def forget(self, name: str) -> None:
        """The instance goes away (reload without it): end what it had."""
        drain = self.drains.get(name)
        if drain is not None:
            await drain.cancel("the instance was removed")
        await self.forwarding.stop(name, "the instance was removed", log)

    async def close(self) -> None:
        for drain in list(self.drains.values()):
            await drain.cancel("vrrpd stops")
        await self.forwarding.close()
