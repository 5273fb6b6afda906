"""HAProxy's stats socket (the management socket of HAProxy's documentation, section 9.3):
one command, its reply, and the two replies vrrpd reads (``show info``, ``show stat``).

Used by the ``haproxy`` tracker (:mod:`vrrpd.track.haproxy`) and the draining hand-over's
session count (:mod:`vrrpd.drain.sessions`); it needs nothing but asyncio, so a node that
drains without an ``haproxy`` tracker does not load the tracker's process look-up (psutil).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
from pathlib import Path

MAX_REPLY = 8 * 1024 * 1024  # bytes; `show stat` of a large configuration stays well below


class StatsError(Exception):
    """The stats socket failed or answered nonsense; the message is the failure detail."""

    def __init__(self, message: str, *, connection: bool = False) -> None:
        super().__init__(message)
        self.connection = connection  # the connection failed (rather than the answer)


async def stats_command(path: Path, command: str) -> str:
    """Send one command to a HAProxy stats socket and read the reply until HAProxy closes.

    Unbounded in time: the caller's check timeout bounds it.
    """
    try:
        reader, writer = await asyncio.open_unix_connection(path)
    except OSError as exc:
        raise StatsError(f"cannot connect: {exc.strerror or exc}", connection=True) from None
    try:
        writer.write(command.encode("ascii") + b"\n")
        await writer.drain()
        reply = bytearray()
        while chunk := await reader.read(65536):
            reply += chunk
            if len(reply) > MAX_REPLY:
                raise StatsError(f"reply to {command!r} exceeds {MAX_REPLY} bytes")
    except OSError as exc:
        raise StatsError(f"{command!r} failed: {exc.strerror or exc}",
                         connection=True) from None
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return reply.decode("utf-8", errors="replace")


def parse_info(reply: str) -> dict[str, str]:
    """``show info`` -> ``{"Name": "HAProxy", "Version": ..., ...}``; nonsense raises."""
    info = dict(line.split(": ", 1) for line in reply.splitlines() if ": " in line)
    if info.get("Name") != "HAProxy":
        raise StatsError(f"unexpected reply to 'show info': {reply[:60]!r}")
    return info


def parse_stat(reply: str) -> list[dict[str, str]]:
    """``show stat`` CSV -> one dict per row, keyed by the header (``pxname``, ``status``...)."""
    lines = reply.splitlines()
    if not lines or not lines[0].startswith("# pxname,svname,"):
        raise StatsError(f"unexpected reply to 'show stat': {reply[:60]!r}")
    header = lines[0][2:].split(",")
    return [dict(zip(header, row, strict=False)) for row in csv.reader(lines[1:]) if row]
