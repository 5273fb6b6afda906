"""Neighbour-cache hygiene when a link comes back.

While a cable is out, every connection attempt of the node (HAProxy's health checks towards
its servers, for one) leaves an INCOMPLETE or FAILED ARP / ND entry (RFC 826, RFC 4861 §7.3.2).
When carrier returns, the kernel retries such an entry only at its next retransmit timer, up to
a second later, and until then traffic to that neighbour is queued or dropped: a node that
preempts back in that window serves errors.  Deleting the unresolved entries makes the next
packet resolve its neighbour at once.  Resolved entries are left alone.
"""

from __future__ import annotations

import logging
import socket

from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl.ndmsg import NUD_FAILED, NUD_INCOMPLETE

from vrrpd.kernel.link import RtnlClient

log = logging.getLogger("vrrpd.kernel.neighbours")

UNRESOLVED = NUD_INCOMPLETE | NUD_FAILED


class NeighbourCache(RtnlClient):
    async def flush_unresolved(self, ifname: str) -> list[str]:
        """Delete ``ifname``'s INCOMPLETE and FAILED neighbour entries; return their addresses."""
        index = socket.if_nametoindex(ifname)
        stale = [msg.get_attr("NDA_DST")
                 async for msg in await self.rtnl.neigh("dump", ifindex=index)
                 if msg["state"] & UNRESOLVED]
        for dst in stale:
            try:
                await self.rtnl.neigh("del", ifindex=index, dst=dst)
            except NetlinkError as exc:  # resolved or gone meanwhile: nothing to do
                log.debug("[%s] neighbour %s: %s", ifname, dst, exc)
        return stale
