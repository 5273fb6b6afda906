"""One anycast group's drain (``vrrpctl demote``, :mod:`vrrpd.daemon.anycast`).

The group is de-preferred as far as it goes while a :class:`Drain` exists; the drain watches
HAProxy's sessions on the group's addresses (``show sess all``, :mod:`vrrpd.drain.sessions`)
and ends once they have stayed at zero for :data:`DRAIN_QUIET`, or at ``drain_timeout``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from vrrpd.config.model import AnycastGroupConfig
from vrrpd.drain.sessions import sessions_on
from vrrpd.track.haproxy_stats import StatsError

log = logging.getLogger("vrrpd.anycast")

SESSION_POLL = 0.2  # seconds between looks at HAProxy's sessions while draining
# seconds HAProxy's sessions must stay at 0 before a drain counts as done: until the router
# has applied the de-preference new flows still arrive, and a look between two short
# connections would see 0 while flows still come
DRAIN_QUIET = 1.0


class Drain:
    """A group's drain: ``draining`` until its sessions reach zero or time out."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.done: str | None = None  # why it ended: "sessions reached 0", "timeout ..."
        self.sessions: int | None = None

    async def wait(self, name: str, cfg: AnycastGroupConfig) -> dict[str, Any]:
        """Watch group ``name``'s sessions until the drain ends; how it ended."""
        zero_since: float | None = None
        while self.done is None:
            waited = time.monotonic() - self.started
            if cfg.haproxy_socket is None:
                self.done = "no haproxy_socket to watch: de-preferred, not waited"
                break
            try:
                self.sessions = await sessions_on(cfg.haproxy_socket, cfg.addresses)
            except StatsError as exc:
                log.warning("[anycast %s] draining: HAProxy at %s: %s", name,
                            cfg.haproxy_socket, exc)
            zero_since = (zero_since or time.monotonic()) if self.sessions == 0 else None
            if zero_since is not None and time.monotonic() - zero_since >= DRAIN_QUIET:
                self.done = "sessions reached 0"
            elif waited >= cfg.drain_timeout:
                self.done = f"timeout after {cfg.drain_timeout:g}s ({self.sessions} left)"
            else:
                await asyncio.sleep(SESSION_POLL)
        log.info("[anycast %s] drained: %s after %.1fs%s", name, self.done,
                 time.monotonic() - self.started,
                 "; withdrawing" if cfg.drain_withdraw else "; staying de-preferred")
        return {"result": self.done, "seconds": round(time.monotonic() - self.started, 3),
                "sessions": self.sessions, "withdrawn": cfg.drain_withdraw}
