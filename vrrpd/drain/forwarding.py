"""The new master's side of a drain: forward the flows it does not know to the draining peer,
for exactly as long as that peer says it drains.

:class:`Forwarding` keeps one :class:`Forwarded` per instance with its deadline: the first
heartbeat must come within :data:`~vrrpd.drain.messages.FIRST_HEARTBEAT_GRACE` of a take-over
that expected a drain, each next one within :data:`~vrrpd.drain.messages.HEARTBEAT_TIMEOUT`.
A missed deadline means the draining node died or lost its link: forwarding stops at once,
and its flows break as they would without a drain (never worse: forwarding to a dead node
would black-hole them).  ``ended`` or leaving MASTER stops it too.  The kernel part is
:mod:`vrrpd.kernel.drain_forward`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from vrrpd.drain.messages import HEARTBEAT_TIMEOUT, DrainMessage
from vrrpd.kernel.drain_forward import DrainForwarding, Forward

log = logging.getLogger("vrrpd.drain")

WATCH_INTERVAL = 0.1  # seconds between deadline checks


@dataclass
class Forwarded:
    forward: Forward
    deadline: float  # loop time by which the next heartbeat must arrive
    heard: float  # loop time of the last heartbeat (at first: when forwarding started)
    since: float = field(default_factory=time.time)
    heartbeats: int = 0
    # the longest wait for a heartbeat so far (the first counted from the start): how close
    # the drain came to HEARTBEAT_TIMEOUT, i.e. to a lapse that ends the forwarding
    longest_gap: float = 0.0
    peer_sessions: int | None = None
    peer_left: float | None = None

    def status(self) -> dict[str, Any]:
        return {"to": str(self.forward.via), "since": self.since,
                "heartbeats": self.heartbeats, "longest_heartbeat_gap": round(self.longest_gap, 3),
                "peer_sessions": self.peer_sessions, "peer_left": self.peer_left}


class Forwarding:
    """The instances whose unknown flows go to a draining peer, with their deadlines."""

    def __init__(self, kernel: DrainForwarding) -> None:
        self.kernel = kernel
        self.active: dict[str, Forwarded] = {}
        self.counters: dict[str, int] = {}  # drains forwarded, per instance
        self._loop = asyncio.get_running_loop()
        self._watch: asyncio.Task[None] | None = None

    async def start(self, fwd: Forward, grace: float, log_: Any) -> None:
        """Forward ``fwd`` now, for ``grace`` seconds unless a heartbeat extends it."""
        if fwd.instance in self.active and self.active[fwd.instance].forward == fwd:
            self.active[fwd.instance].deadline = self._loop.time() + grace
            return
        await self.kernel.start(fwd)
        now = self._loop.time()
        self.active[fwd.instance] = Forwarded(fwd, now + grace, now)
        self.counters[fwd.instance] = self.counters.get(fwd.instance, 0) + 1
        log_.info("forwarding unknown flows to %s (draining peer) for the VIPs %s",
                  fwd.via, ", ".join(str(v.ip) for v in fwd.vips))
        if self._watch is None or self._watch.done():
            self._watch = self._loop.create_task(self._watch_deadlines())

    def heartbeat(self, msg: DrainMessage) -> bool:
        """A heartbeat for an instance we forward: True if it is forwarded to its sender."""
        fwd = self.active.get(msg.instance)
        if fwd is None or fwd.forward.via != msg.via:
            return False
        now = self._loop.time()
        fwd.longest_gap = max(fwd.longest_gap, now - fwd.heard)
        fwd.deadline, fwd.heard = now + HEARTBEAT_TIMEOUT, now
        fwd.heartbeats += 1
        fwd.peer_sessions, fwd.peer_left = msg.sessions, msg.left
        return True

    async def stop(self, instance: str, reason: str, log_: Any) -> None:
        fwd = self.active.get(instance)
        if fwd is None:
            return
        try:
            await self.kernel.stop(instance)  # shown as forwarding until it is undone
        finally:
            if self.active.get(instance) is fwd:
                del self.active[instance]
            log_.info("stopped forwarding unknown flows to %s after %.1fs (%d heartbeats, at "
                      "most %.2fs apart; %gs ends it): %s", fwd.forward.via,
                      time.time() - fwd.since, fwd.heartbeats, fwd.longest_gap,
                      HEARTBEAT_TIMEOUT, reason)

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        for name in list(self.active):
            await self.stop(name, "vrrpd stops", log)

    async def _watch_deadlines(self) -> None:
        while self.active:
            await asyncio.sleep(WATCH_INTERVAL)
            now = self._loop.time()
            for name, fwd in list(self.active.items()):
                if now >= fwd.deadline:
                    what = ("no heartbeat" if fwd.heartbeats == 0 else
                            f"no heartbeat for {HEARTBEAT_TIMEOUT:g}s")
                    try:
                        await self.stop(name, f"{what} from {fwd.forward.via}: it stopped "
                                        "draining, died or lost its link", log)
                    except OSError:
                        log.exception("[%s] could not stop forwarding to %s; check `nft list "
                                      "table inet vrrpd_drain` and `ip rule`", name,
                                      fwd.forward.via)
