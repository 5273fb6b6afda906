"""The old master's half of a draining hand-over (issue 20): it keeps the VIPs as local
addresses that never answer ARP / Neighbor Solicitations, so its open connections go on.

While it drains, every VIP (link-local ones aside: they carry no service) is a host address
(/32, /128) on ``lo``: the kernel still delivers packets to it from any interface (Linux's
weak host model) and the sockets accepted on it keep working, but with ``arp_ignore=1`` on the
instance's interface ARP is answered only for addresses of the receiving interface, and
``arp_announce=2`` keeps the VIPs out of this host's own ARP requests (the same two sysctls
``virtual_mac`` sets, :data:`vrrpd.kernel.vmac.INTERFACE_SYSCTLS`, left set likewise).  IPv6
needs nothing: Linux answers a Neighbor Solicitation only for addresses of the interface it
came in on.  The new master forwards those connections' packets here
(:mod:`vrrpd.kernel.drain_forward`).

:meth:`DrainHold.reconcile` removes what a crashed run left on ``lo`` at start.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import ip_interface
from typing import Any, Protocol

from vrrpd.kernel.link import IPInterface, set_sysctl
from vrrpd.kernel.vmac import INTERFACE_SYSCTLS

LOOPBACK = "lo"


def host_addresses(vips: Iterable[IPInterface]) -> tuple[IPInterface, ...]:
    """``vips`` as host addresses (192.0.2.100/24 -> 192.0.2.100/32), link-local ones left
    out."""
    return tuple(ip_interface(f"{v.ip}/{v.max_prefixlen}") for v in vips
                 if not v.ip.is_link_local)


class Addresses(Protocol):
    """:class:`vrrpd.kernel.addresses.AddressManager` as the hold uses it."""

    async def add(self, ifname: str, vips: Any, labels: Any = None) -> None: ...

    async def remove(self, ifname: str, vips: Any) -> None: ...

    async def present(self, ifname: str) -> set[Any]: ...


class DrainHold:
    """Puts VIPs on ``lo`` and takes them off, through the daemon's address manager."""

    def __init__(self, addresses: Addresses) -> None:
        self.addresses = addresses

    async def hold(self, interface: str, vips: Iterable[IPInterface]) -> None:
        for template, value in INTERFACE_SYSCTLS.items():
            set_sysctl(template, interface, value)
        await self.addresses.add(LOOPBACK, host_addresses(vips))

    async def release(self, vips: Iterable[IPInterface]) -> None:
        await self.addresses.remove(LOOPBACK, host_addresses(vips))

    async def reconcile(self, vips: Iterable[IPInterface]) -> list[IPInterface]:
        """Remove ``vips``' host addresses from ``lo`` (a crashed run's drain); what it
        removed."""
        present = await self.addresses.present(LOOPBACK)
        stale = [v for v in host_addresses(vips) if v in present]
        if stale:
            await self.addresses.remove(LOOPBACK, stale)
        return stale
