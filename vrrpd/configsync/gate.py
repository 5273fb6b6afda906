"""Who may talk to the sync listener, and how much an unauthenticated caller can hold.

The sync port faces the LAN.  Before a caller has proved it holds a pinned key it gets as
little as possible (DESIGN.md "A peer's word is checked"):

* only the configured peer addresses are served; any other connection is aborted right after
  ``accept()``, before TLS, and counted;
* at most :data:`MAX_PENDING` connections are unauthenticated at any time, at most
  :data:`MAX_PENDING_PER_SOURCE` from one address; more are aborted at accept;
* TLS handshake plus challenge/proof must finish within :data:`PRE_AUTH_TIMEOUT` seconds.

Together they bound the descriptors, memory and CPU a flood can take, so trackers, the
control socket and real pushes keep working (``benchmarks/configsync_flood.py``).  Every refusal is
counted by kind (``vrrpctl config-sync status``) and logged at most once per 10 s per kind.
"""

from __future__ import annotations

import logging
from collections import Counter
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

from vrrpd.daemon.logs import RateLimitedLog

log = logging.getLogger("vrrpd.configsync")

MAX_PENDING = 16  # unauthenticated connections, all sources
MAX_PENDING_PER_SOURCE = 4  # unauthenticated connections from one address
PRE_AUTH_TIMEOUT = 3.0  # seconds from accept to a verified client proof

IPAddress = IPv4Address | IPv6Address


def peer_address(peername: Any) -> IPAddress | None:
    """The IP of a socket's ``peername`` (IPv4-mapped IPv6 unmapped), or None."""
    try:
        address = ip_address(str(peername[0]).split("%")[0])
    except (TypeError, IndexError, ValueError):
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class Gate:
    """Admission control for the sync listener: address filter, caps, counters."""

    def __init__(self, allowed: frozenset[IPAddress], max_pending: int = MAX_PENDING,
                 max_per_source: int = MAX_PENDING_PER_SOURCE) -> None:
        self.allowed = allowed
        self.max_pending = max_pending
        self.max_per_source = max_per_source
        self.pending: Counter[IPAddress] = Counter()
        self.counters: Counter[str] = Counter()
        self._log = RateLimitedLog(log)

    def admit(self, peer: IPAddress | None) -> bool:
        """Count ``peer`` as an unauthenticated connection, or refuse it (False)."""
        if peer is None or peer not in self.allowed:
            self.refuse("not_a_peer", f"config sync: refused a connection from {peer}: not one of "
                        "the configured peers (config_sync.peers); if it should be, list it there")
            return False
        if self.pending[peer] >= self.max_per_source or self.pending.total() >= self.max_pending:
            self.refuse("busy", f"config sync: refused a connection from {peer}: "
                        f"{self.pending[peer]} from it and {self.pending.total()} in all are "
                        "still authenticating (a flood, or a peer retrying very fast)")
            return False
        self.pending[peer] += 1
        self.counters["accepted"] += 1
        return True

    def release(self, peer: IPAddress) -> None:
        """``peer``'s connection authenticated, failed or closed."""
        self.pending[peer] -= 1
        if self.pending[peer] <= 0:
            del self.pending[peer]

    def refuse(self, kind: str, message: str) -> None:
        """Count a refused or failed connection under ``kind`` and log it, rate-limited."""
        self.counters[kind] += 1
        self._log.warning(kind, "%s", message)

    def status(self) -> dict[str, Any]:
        return {"allowed": sorted(str(a) for a in self.allowed),
                "pending": self.pending.total(), "counters": dict(self.counters)}
