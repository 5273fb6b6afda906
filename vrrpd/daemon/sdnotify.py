"""systemd's notify protocol (sd_notify(3)) without libsystemd: READY, STATUS, WATCHDOG."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket


class SystemdNotifier:
    """Sends datagrams to ``$NOTIFY_SOCKET``; does nothing when not run by systemd."""

    def __init__(self) -> None:
        addr = os.environ.get("NOTIFY_SOCKET", "")
        if addr.startswith("@"):
            addr = "\0" + addr[1:]
        self._addr = addr or None
        self._sock: socket.socket | None = None
        if self._addr:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    def notify(self, **fields: str | int) -> None:
        """``notify(READY=1, STATUS="MASTER for web")`` — keys as in sd_notify(3)."""
        if self._sock is None or self._addr is None:
            return
        msg = "\n".join(f"{k}={v}" for k, v in fields.items()).encode()
        with contextlib.suppress(OSError):  # systemd gone or socket full: nothing to do
            self._sock.sendto(msg, self._addr)

    def watchdog_interval(self) -> float | None:
        """Half of ``$WATCHDOG_USEC`` in seconds, when systemd expects pings from us."""
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        if not usec or (pid and int(pid) != os.getpid()):
            return None
        return int(usec) / 2e6

    async def ping_watchdog(self, interval: float) -> None:
        """WATCHDOG=1 every ``interval`` seconds, until cancelled."""
        while True:
            self.notify(WATCHDOG=1)
            await asyncio.sleep(interval)
