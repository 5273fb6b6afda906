"""Interface state -> instances: the daemon starts in any network state.

An instance whose interface is missing, down, without its source address or still running
DAD is in FAULT (fault source ``link:IFNAME``, the reason in ``vrrpctl status``) and joins as
soon as netlink reports the interface usable (:class:`vrrpd.kernel.link.InterfaceWatcher`).
When an interface becomes usable again, the announcer re-reads its addresses (a MAC or
link-local may have changed) and its unresolved neighbour entries are cleared
(:mod:`vrrpd.kernel.neighbours`), so a node rejoining after a cable pull reaches its servers
at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from vrrpd.config.model import Config
from vrrpd.daemon.instances import Instances
from vrrpd.daemon.ports import Kernel
from vrrpd.daemon.receiver import NOT_LOOKED_AT
from vrrpd.kernel.link import Readiness

log = logging.getLogger("vrrpd")

PostFault = Callable[[list[str], str, bool], None]


class InterfaceFollower:
    """Follows the kernel's view of the instances' interfaces."""

    def __init__(self, kernel: Kernel, instances: Instances, post_fault: PostFault,
                 record: Callable[..., None]) -> None:
        self.kernel = kernel
        self.instances = instances
        self._post_fault = post_fault
        self._record = record
        self._interfaces: Any = None  # the kernel's InterfaceWatcher
        self._task: asyncio.Task[None] | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        self._interfaces = self.kernel.interfaces()
        await self._interfaces.open()

    def start(self, config: Config) -> None:
        self.look(config)
        self._task = asyncio.create_task(self._follow(), name="interfaces")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await asyncio.gather(*filter(None, [self._task]), *self._flushes,
                             return_exceptions=True)
        if self._interfaces is not None:
            await self._interfaces.close()

    def look(self, config: Config) -> None:
        """(Re)read every endpoint's interface, never taking the configured VIPs for its
        source: new ones are watched from now on, and unusable ones fault their instances."""
        for (ifname, family), endpoint in self.instances.endpoints.items():
            endpoint.exclude = config.not_sources(ifname, family)
            self.changed(self._interfaces.watch(ifname, family, endpoint.exclude))

    async def _follow(self) -> None:
        async for state in self._interfaces.events():
            try:
                self.changed(state)
            except Exception:  # one bad event must not end interface watching
                log.exception("[%s IPv%d] handling the interface's change failed",
                              state.ifname, state.family)

    def changed(self, state: Readiness) -> None:
        """An interface became usable for VRRP, or stopped being: FAULT follows it.

        The fault source is ``link:IFNAME`` for the instances of that interface and family.
        """
        endpoint = self.instances.endpoints.get((state.ifname, state.family))
        if endpoint is None:
            return
        was = endpoint.problem
        endpoint.follow(state)
        problem = endpoint.problem
        drivers = self.instances.drivers
        names = [n for n, d in drivers.items() if d.endpoint is endpoint]
        for name in names:
            drivers[name].source_changed()
        where, first = f"[{state.ifname} IPv{state.family}]", was == NOT_LOOKED_AT
        if problem is None and state.ifname in self.instances.announcers:
            with contextlib.suppress(OSError):  # a MAC or link-local may have changed
                self.instances.announcers[state.ifname].refresh_addresses()
        if problem is None and was is not None and not first:
            if self.kernel.neighbours is not None:
                task = asyncio.create_task(self._flush_neighbours(state.ifname))
                self._flushes.add(task)
                task.add_done_callback(self._flushes.discard)
            log.info("%s usable again, adverts from %s: instances %s leave FAULT", where,
                     endpoint.primary_address, ", ".join(names))
        elif problem is not None and problem != was:
            log.warning("%s %s: instances %s wait in FAULT until it is usable (no restart "
                        "needed)", where, problem, ", ".join(names))
        if first or (problem is None) != (was is None):
            self._record("link", interface=state.ifname, family=state.family,
                         problem=problem, instances=names)
            self._post_fault(names, f"link:{state.ifname}", problem is not None)

    async def _flush_neighbours(self, ifname: str) -> None:
        """Carrier is back: unresolved neighbours re-resolve now, not at the next retry."""
        try:
            stale = await self.kernel.neighbours.flush_unresolved(ifname)
        except OSError as exc:
            log.warning("[%s] could not clear unresolved neighbour entries: %s", ifname, exc)
            return
        if stale:
            log.info("[%s] link up: cleared unresolved neighbour entries %s so they resolve at "
                     "once", ifname, ", ".join(map(str, stale)))
