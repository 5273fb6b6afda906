"""The old master's drain: after a planned hand-over, keep serving the open connections until
HAProxy has none left on the VIPs or ``drain_timeout`` runs out, telling the peer meanwhile.

One :class:`Drain` per instance.  The VIPs are already held on ``lo``
(:mod:`vrrpd.kernel.drain_hold`) when it starts; it asks HAProxy's stats socket every
:data:`POLL_INTERVAL` (:mod:`vrrpd.drain.sessions`) and, beside that, sends the peer a
heartbeat every :data:`~vrrpd.drain.messages.HEARTBEAT_INTERVAL`.  When it ends it tells the
peer ``ended`` (the new master stops forwarding) and then releases the VIPs from ``lo``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from vrrpd.drain.messages import HEARTBEAT_INTERVAL, SEND_TIMEOUT, DrainMessage, Phase
from vrrpd.drain.sessions import sessions_on
from vrrpd.proto.packet import IPAddress
from vrrpd.track.haproxy_stats import StatsError

POLL_INTERVAL = 0.2  # seconds between `show sess all`: the drain ends <= this after the last
QUERY_TIMEOUT = 1.0  # seconds one stats socket question may take
REFUSALS = 3  # heartbeats the peer answers "not forwarding" in a row before the drain gives up

Send = Callable[[DrainMessage], Awaitable[list[dict[str, Any]]]]


class Drain:
    """One instance's drain on the old master; :meth:`start`, then it ends by itself (or
    :meth:`cancel`)."""

    def __init__(self, instance: str, vrid: int, vips: tuple[IPAddress, ...], via: IPAddress,
                 timeout: float, socket: Path | None, send: Send,
                 release: Callable[[], Awaitable[None]], log: Any,
                 on_end: Callable[[Drain], None]) -> None:
        self.instance, self.vrid, self.vips, self.via = instance, vrid, vips, via
        self.timeout, self.socket = timeout, socket
        self.send, self.release, self.log, self.on_end = send, release, log, on_end
        self.started = time.time()
        self._loop = asyncio.get_running_loop()
        self.deadline = self._loop.time() + timeout
        self.sessions: int | None = None  # None until HAProxy answered
        self.last_session_seen: float | None = None  # wall clock of the last count above 0
        self.peer: str | None = None  # who answered the heartbeat, "forwarding" or not
        self.ended: str | None = None  # why it ended
        self._refusals = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @property
    def left(self) -> float:
        return max(0.0, self.deadline - self._loop.time())

    def start(self) -> None:
        self._task = self._loop.create_task(self._run(), name=f"drain-{self.instance}")

    def status(self) -> dict[str, Any]:
        return {"sessions": self.sessions, "left": round(self.left, 1),
                "since": self.started, "timeout": self.timeout, "peer": self.peer,
                "counting": self.socket is not None}

    def message(self, phase: Phase) -> DrainMessage:
        return DrainMessage(self.instance, self.vrid, phase, self.via, self.sessions,
                            round(self.left, 1))

    async def cancel(self, reason: str) -> None:
        """End now (this node became master again, the instance goes away, shutdown)."""
        if self._task is not None and not self._task.done():
            if self.ended is None:  # else it is telling the peer and releasing: let it
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._finish(reason)

    async def _run(self) -> None:
        heartbeat = self._loop.create_task(self._heartbeats())
        try:
            reason = await self._wait_for_sessions()
        finally:
            # let a heartbeat on its way arrive (an aborted one is a warning on the peer)
            self._stopping.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SEND_TIMEOUT):
                    await asyncio.shield(heartbeat)
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        await self._finish(reason)

    async def _wait_for_sessions(self) -> str:
        """Why the drain ends: no session left, drain_timeout, or the peer not forwarding."""
        while True:
            if self._refusals >= REFUSALS:
                return f"{self.peer} does not forward this instance's flows"
            if self.left <= 0:
                return (f"drain_timeout {self.timeout:g}s reached with "
                        f"{self.sessions if self.sessions is not None else 'unknown'} "
                        "session(s) left: they now break as without a drain")
            if self.socket is not None:
                try:
                    async with asyncio.timeout(QUERY_TIMEOUT):
                        self.sessions = await sessions_on(self.socket, self.vips)
                except (StatsError, TimeoutError) as exc:
                    self.log.warning("drain: cannot count HAProxy's sessions on %s (%s); "
                                     "keeping the VIPs until drain_timeout", self.socket,
                                     exc or "timed out")
                else:
                    if self.sessions == 0:
                        return "HAProxy has no session left on the VIPs"
                    self.last_session_seen = time.time()
            await asyncio.sleep(POLL_INTERVAL)

    async def _heartbeats(self) -> None:
        while not self._stopping.is_set():
            sent = self._loop.time()
            for reply in await self.send(self.message(Phase.DRAINING)):
                self.peer = reply.get("node") or self.peer
                if reply.get("ok") and reply.get("forwarding"):
                    self._refusals = 0
                elif reply.get("ok"):
                    self._refusals += 1
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, HEARTBEAT_INTERVAL
                                               - (self._loop.time() - sent))):
                    await self._stopping.wait()

    async def _finish(self, reason: str) -> None:
        if self.ended is not None:
            return
        self.ended = reason
        try:
            await self.send(self.message(Phase.ENDED))
        finally:
            await self.release()
            self.log.info("drain ended after %.1fs: %s; VIPs released from lo",
                          time.time() - self.started, reason)
            self.on_end(self)
