"""Transition and tracker history for ``vrrpctl events``, with live subscribers (``--follow``)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from vrrpd.timefmt import iso

HISTORY = 500
SUBSCRIBER_BACKLOG = 1000  # a follower this far behind is cut off rather than grow memory


class EventLog:
    def __init__(self) -> None:
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()

    def record(self, kind: str, **fields: Any) -> None:
        now = time.time()
        event = {"ts": round(now, 6), "time": iso(now), "type": kind, **fields}
        self.history.append(event)
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                self._subscribers.discard(queue)

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(SUBSCRIBER_BACKLOG)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers.discard(queue)
