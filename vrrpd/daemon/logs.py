"""Logging: human-readable by default, ``log_format: json`` for structured logs.

Every line about a virtual router carries its context, ``[eth0 vrid=51 v3 web]``, through a
:class:`logging.LoggerAdapter`; JSON lines carry the same context as fields.
"""

from __future__ import annotations

import atexit
import json
import logging
import logging.handlers
import os
import queue
from collections.abc import MutableMapping
from typing import Any

from vrrpd.ratelimit import RepeatFilter


class InstanceLog(logging.LoggerAdapter[logging.Logger]):
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
    """At most one line per ``key`` every ``period`` seconds (see :class:`RepeatFilter`)."""

    def __init__(self, log: logging.Logger | logging.LoggerAdapter[logging.Logger],
                 period: float = 10.0) -> None:
        self._log = log
        self._filter = RepeatFilter(period)

    def warning(self, key: str, msg: str, *args: object) -> None:
        line = self._filter.admit(msg % args if args else msg, key)
        if line is not None:
            self._log.warning("%s", line)


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


# syslog(3) priorities (sd-daemon(3): "<4>" at the start of a line is a warning).
SYSLOG_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
                   logging.CRITICAL: 2}


class JournalPrefix(logging.Formatter):
    """Prefixes every line of ``inner``'s text with ``<N>``, the record's syslog priority.

    journald reads the prefix from a service's stdout/stderr stream (sd-daemon(3)), so
    ``journalctl -p warning -u vrrpd`` shows warnings and errors only.  Every line of a
    traceback carries it, since journald makes each line an entry of its own.
    """

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        level = max((lvl for lvl in SYSLOG_PRIORITY if lvl <= record.levelno), default=0)
        prefix = f"<{SYSLOG_PRIORITY.get(level, 7)}>"
        return "\n".join(prefix + line for line in self.inner.format(record).split("\n"))


def stderr_is_journal() -> bool:
    """True when stderr is journald's stream: ``$JOURNAL_STREAM`` names its device:inode."""
    expected = os.environ.get("JOURNAL_STREAM")
    if not expected:
        return False
    try:
        st = os.fstat(2)
    except OSError:
        return False
    return expected == f"{st.st_dev}:{st.st_ino}"


LOG_QUEUE_MAX = 10_000  # records waiting for the writer thread; more are dropped and counted


class BoundedQueueHandler(logging.handlers.QueueHandler):
    """A QueueHandler that never blocks and never grows without bound.

    When the writer thread cannot keep up (stderr blocked, journald slow), records that do not
    fit are dropped and counted (``dropped``, in ``vrrpctl status``); the next record that fits
    is preceded by one WARNING saying how many were lost.
    """

    dropped = 0  # since start, all instances (one handler per process)

    def __init__(self, records: queue.Queue[logging.LogRecord]) -> None:
        super().__init__(records)
        self._unreported = 0

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            if self._unreported:
                self.queue.put_nowait(logging.makeLogRecord({
                    "name": "vrrpd", "levelno": logging.WARNING, "levelname": "WARNING",
                    "msg": f"{self._unreported} log lines dropped: the log writer (stderr, "
                           "journald) could not keep up"}))
                self._unreported = 0
            self.queue.put_nowait(record)
        except queue.Full:
            BoundedQueueHandler.dropped += 1
            self._unreported += 1


def setup_logging(fmt: str = "text", level: int = logging.INFO
                  ) -> logging.handlers.QueueListener:
    """Log to stderr (journald picks it up under systemd), from a thread of its own.

    The event loop only puts records on a queue: a slow or full stderr pipe must never hold up
    an advert or a takeover.  The writer thread is flushed and stopped at exit (or by
    ``stop()`` on the listener returned).  Into the journal, lines carry their priority and no
    time stamp (the journal has its own).
    """
    writer = logging.StreamHandler()
    journal = stderr_is_journal()
    formatter: logging.Formatter
    if fmt == "json":
        formatter = JsonFormatter()
    elif journal:
        formatter = logging.Formatter("%(levelname)s %(message)s")
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    writer.setFormatter(JournalPrefix(formatter) if journal else formatter)
    records: queue.Queue[logging.LogRecord] = queue.Queue(LOG_QUEUE_MAX)
    enqueue = BoundedQueueHandler(records)
    enqueue.addFilter(_quiet_libraries)
    listener = logging.handlers.QueueListener(records, writer)
    listener.start()
    atexit.register(listener.stop)
    root = logging.getLogger()
    root.handlers[:] = [enqueue]
    root.setLevel(level)
    return listener


def _quiet_libraries(record: logging.LogRecord) -> bool:
    """pyroute2 resets its logger's level on import; drop its netlink chatter here instead."""
    return record.levelno >= logging.WARNING or not record.name.startswith("pyroute2")
