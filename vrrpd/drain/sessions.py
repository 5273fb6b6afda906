"""HAProxy's sessions on the VIPs, from its stats socket (``show sess all``).

Each session of ``show sess all`` starts with a line ``0x<ptr>: [date] id=N proto=...`` and
names the address it was accepted on in its ``frontend=NAME (...), listener=... addr=IP:PORT``
line (HAProxy 2.6 management guide, "show sess").  The sessions of the stats socket itself
(``addr=unix:...``), of peers or of a loopback monitor are not on a VIP and do not count.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from ipaddress import ip_address
from pathlib import Path

from vrrpd.proto.packet import IPAddress
from vrrpd.track.haproxy_stats import StatsError, stats_command

SESSION_START = re.compile(r"^0x[0-9a-f]+: ", re.MULTILINE)
FRONTEND_ADDR = re.compile(r"^\s+frontend=\S+ \(.*\), listener=.* addr=(\S+)$", re.MULTILINE)


def listener_address(text: str) -> IPAddress | None:
    """``192.0.2.100:80`` / ``[2001:db8::100]:80`` / ``2001:db8::100:80`` -> the address."""
    host = text.rsplit(":", 1)[0].strip("[]")
    try:
        return ip_address(host)
    except ValueError:
        return None  # unix:..., abns@..., a socket pair


def count_sessions(reply: str, vips: Iterable[IPAddress]) -> int:
    """The sessions of a ``show sess all`` reply accepted on one of ``vips``."""
    if reply.strip() and not SESSION_START.search(reply):
        raise StatsError(f"unexpected reply to 'show sess all': {reply[:60]!r}")
    wanted = set(vips)
    count = 0
    for block in SESSION_START.split(reply)[1:]:
        found = FRONTEND_ADDR.search(block)
        if found and listener_address(found.group(1)) in wanted:
            count += 1
    return count


async def sessions_on(socket: Path, vips: Iterable[IPAddress]) -> int:
    """Ask HAProxy now (the caller bounds the time); :class:`StatsError` if it cannot."""
    return count_sessions(await stats_command(socket, "show sess all"), vips)
