"""Logging: human-readable by default, ``log_format: json`` for structured logs.

Every line about a virtual router carries its context, ``[eth0 vrid=51 v3 web]``, through a
:class:`logging.LoggerAdapter`; JSON lines carry the same context as fields.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import MutableMapping
from typing import Any


class InstanceLog(logging.LoggerAdapter):
    """Prefixes messages with the instance context and attaches it to the record."""

    def __init__(self, logger: logging.Logger, *, instance: str, interface: str, vrid: int,
                 version: int) -> None:
        ctx = {"instance": instance, "interface": interface, "vrid": vrid, "version": version}
        super().__init__(logger, ctx)
        self.prefix = f"[{interface} vrid={vrid} v{version} {instance}]"

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        kwargs.setdefault("extra", {}).update(context=self.extra)
        return f"{self.prefix} {msg}", kwargs


class RateLimitedLog:
    """At most one line per ``key`` every ``period`` seconds; counts what it held back."""

    def __init__(self, log: logging.Logger | logging.LoggerAdapter, period: float = 10.0) -> None:
        self._log = log
        self._period = period
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def warning(self, key: str, msg: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last.get(key, -self._period) < self._period:
            self._held[key] = self._held.get(key, 0) + 1
            return
        held = self._held.pop(key, 0)
        self._last[key] = now
        suffix = f" (and {held} more like it in the last {self._period:g}s)" if held else ""
        self._log.warning(msg + suffix, *args)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update(getattr(record, "context", {}))
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc)


def setup_logging(fmt: str = "text", level: int = logging.INFO) -> None:
    """Log to stderr (journald picks it up under systemd)."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    handler.addFilter(_quiet_libraries)
    root.handlers[:] = [handler]
    root.setLevel(level)


def _quiet_libraries(record: logging.LogRecord) -> bool:
    """pyroute2 resets its logger's level on import; drop its netlink chatter here instead."""
    return record.levelno >= logging.WARNING or not record.name.startswith("pyroute2")
