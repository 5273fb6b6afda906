"""``tcp`` and ``http`` trackers: a connect, or one HTTP/1.1 request, on the daemon's own loop.

Options (converted by the config loader): tcp: ``host`` (str), ``port`` (int); http: ``url``
(str, http:// or https://), ``method`` (str, default HEAD), ``status`` ((low, high), default
(200, 399)).  https does not verify the certificate: the check asks "does the service answer",
and a health check is no place to fail over on an expired certificate.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from vrrpd.config.model import HttpOptions, TcpOptions, TrackConfig, TrackType, options_of
from vrrpd.track.base import StatusCallback, Tracker
from vrrpd.track.status import CheckResult

STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3})(?: ([^\r\n]*))?\r?\n")


@contextlib.asynccontextmanager
async def connection(
    host: str, port: int, tls: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """An open stream pair, closed (and the close awaited) on leaving the block."""
    reader, writer = await asyncio.open_connection(
        host, port, ssl=tls, server_hostname=host if tls else None
    )
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


class TcpTracker(Tracker):
    """Passes when a TCP connection to ``host:port`` is established."""

    kind = TrackType.TCP

    def __init__(self, config: TrackConfig, on_status: StatusCallback) -> None:
        super().__init__(config, on_status)
        opts = options_of(config, TcpOptions)
        self.host, self.port = opts.host, opts.port

    async def check(self) -> CheckResult:
        where = f"{self.host}:{self.port}"
        try:
            async with connection(self.host, self.port):
                return CheckResult(True, f"connected to {where}")
        except OSError as exc:
            return CheckResult(False, f"connect to {where} failed: {exc.strerror or exc}")


class HttpTracker(Tracker):
    """Passes when ``method url`` answers with a status in the configured range."""

    kind = TrackType.HTTP

    def __init__(self, config: TrackConfig, on_status: StatusCallback) -> None:
        super().__init__(config, on_status)
        opts = options_of(config, HttpOptions)
        self.url, self.method = opts.url, opts.method
        self.low, self.high = opts.status
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"tracker {config.name}: url must be http:// or https://: {self.url}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.tls = _unverified_context() if parts.scheme == "https" else None
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        self.request = (
            f"{self.method} {target} HTTP/1.1\r\n"
            f"Host: {parts.netloc.rpartition('@')[2]}\r\n"
            "User-Agent: vrrpd-track\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        ).encode("ascii")

    async def check(self) -> CheckResult:
        what = f"{self.method} {self.url}"
        try:
            async with connection(self.host, self.port, self.tls) as (reader, writer):
                writer.write(self.request)
                await writer.drain()
                line = await reader.readline()
        except (OSError, ValueError) as exc:  # ValueError: a status line over the read limit
            return CheckResult(False, f"{what} failed: {getattr(exc, 'strerror', None) or exc}")
        match = STATUS_LINE.fullmatch(line)
        if match is None:
            got = "connection closed" if not line else f"not HTTP: {line[:60]!r}"
            return CheckResult(False, f"{what}: {got}")
        status = int(match[1])
        reply = f"{what}: {status} {(match[2] or b'').decode('latin-1')}".rstrip()
        if self.low <= status <= self.high:
            return CheckResult(True, reply)
        return CheckResult(False, f"{reply} (expected {self.low}-{self.high})")


def _unverified_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
