"""Virtual IP addresses on and off the interface, with pyroute2's asyncio netlink API.

RFC 5798 §6.4.2 / §6.4.3: on becoming Master the router starts accepting packets for the
virtual addresses, on leaving it stops; vrrpd does that by adding / removing the VIPs as
ordinary interface addresses (RTM_NEWADDR / RTM_DELADDR, RFC 3549 §3.1.1).

Changes are idempotent -- adding a VIP that is already there, or removing one that is gone, is
not an error -- and confirmed: after the requests, one RTM_GETADDR dump must show the result,
otherwise :class:`AddressError` says what is missing.  Adding is on the failover critical path:
one request per VIP, one dump.  Confirmations share dumps: a dump that has not started yet
serves every change made before it starts, and one runs per interface at a time.  A master of
255 instances confirms 255 changes at once, and each dump lists all 255 VIPs: a dump each was
65,000 addresses parsed, seconds of CPU during which its adverts waited.

An IPv4 VIP may carry an address label (IFA_LABEL, keepalived's ``label``; ``ip addr`` shows
it as the address's interface alias, e.g. ``eth1:pacs``).

IPv6 VIPs get IFA_F_NODAD: RFC 4862 §5.4 DAD would keep a tentative VIP unusable for a second
or more, and RFC 5798 §8.2.2 notes the virtual address is meant to move between routers
without it.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Iterable, Mapping

from pyroute2.netlink.exceptions import NetlinkError

from vrrpd.kernel.link import (
    IFA_F_NODAD,
    AddressInfo,
    IPInterface,
    RtnlClient,
    address_info,
    ifindex,
)


class AddressError(OSError):
    """A VIP change the kernel refused or did not show afterwards."""


class AddressManager(RtnlClient):
    """Adds and removes VIPs over one long-lived netlink socket; ``open()`` before use."""

    def __init__(self) -> None:
        super().__init__()
        self._next: dict[int, asyncio.Task[dict[IPInterface, AddressInfo]]] = {}
        # one dump at a time on this socket, of whichever interface: netlink refuses a second
        # dump on one socket while one runs (EBUSY: two instances on eth1 and eth2 of one
        # sync group taking over together)
        self._dumping = asyncio.Lock()

    async def add(self, ifname: str, vips: Iterable[IPInterface],
                  labels: Mapping[IPInterface, str] | None = None) -> None:
        """Put ``vips`` on ``ifname`` (with their ``labels``, IPv4); raise :class:`AddressError`
        unless all are usable."""
        index, wanted = ifindex(ifname), set(vips)
        for vip in wanted:
            await self._request("add", index, vip, errno.EEXIST, ifname,
                                (labels or {}).get(vip))
        seen = await self._confirm(index)
        missing = {vip for vip in wanted if vip not in seen or not seen[vip].usable}
        if missing:
            raise AddressError(errno.EADDRNOTAVAIL, f"{ifname}: added but not usable: "
                               + ", ".join(sorted(map(str, missing))))

    async def remove(self, ifname: str, vips: Iterable[IPInterface]) -> None:
        """Take ``vips`` off ``ifname``; raise :class:`AddressError` if any is still there."""
        index, unwanted = ifindex(ifname), set(vips)
        for vip in unwanted:
            await self._request("del", index, vip, errno.EADDRNOTAVAIL, ifname)
        left = unwanted & (await self._confirm(index)).keys()
        if left:
            raise AddressError(errno.EEXIST, f"{ifname}: removed but still present: "
                               + ", ".join(sorted(map(str, left))))

    async def present(self, ifname: str) -> set[IPInterface]:
        """Every address on ``ifname`` now (VIPs and the interface's own addresses)."""
        return set(await self._dump(ifindex(ifname)))

    async def _request(self, command: str, index: int, vip: IPInterface, benign: int,
                       ifname: str, label: str | None = None) -> None:
        spec: dict[str, object] = {"index": index, "address": str(vip.ip),
                                   "prefixlen": vip.network.prefixlen}
        if label is not None:
            spec["label"] = label
        if vip.version == 6:
            spec["flags"] = IFA_F_NODAD
        elif vip.network.prefixlen <= 30:  # RFC 3021: /31 and /32 have no broadcast
            spec["broadcast"] = str(vip.network.broadcast_address)
        try:
            await self.rtnl.addr(command, **spec)
        except NetlinkError as exc:
            if exc.code != benign:
                raise AddressError(exc.code, f"{ifname}: {command} {vip}: "
                                   f"{errno.errorcode.get(exc.code, exc.code)}") from exc

    async def _confirm(self, index: int) -> dict[IPInterface, AddressInfo]:
        """The addresses on interface ``index`` from a dump that starts after this call (so
        it shows the caller's changes), shared with every caller until it starts."""
        task = self._next.get(index)
        if task is None:
            task = self._next[index] = asyncio.get_running_loop().create_task(
                self._dump_after(index))
        return await asyncio.shield(task)

    async def _dump_after(self, index: int) -> dict[IPInterface, AddressInfo]:
        async with self._dumping:  # callers join this one until it starts
            del self._next[index]  # from now on, a change needs the next dump
            return await self._dump(index)

    async def _dump(self, index: int) -> dict[IPInterface, AddressInfo]:
        infos = [address_info(msg) async for msg in
                 await self.rtnl.addr("dump", index=index, family=socket.AF_UNSPEC)]
        return {info.interface: info for info in infos}
