"""The kernel-facing parts the daemon needs, as one bundle (:class:`Kernel`), and the ports an
instance driver uses (:mod:`vrrpd.daemon.instance`, :mod:`vrrpd.daemon.holding`,
:mod:`vrrpd.daemon.transmit`).

:func:`real_kernel` builds them from :mod:`vrrpd.kernel`; tests swap in
:mod:`vrrpd.kernel.fakes`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from vrrpd.config.model import SpeakerConfig
from vrrpd.daemon.receiver import RawSocket
from vrrpd.kernel.bgp import Speaker
from vrrpd.proto.packet import IPAddress

if TYPE_CHECKING:
    from vrrpd.daemon.instance import InstanceDriver


class Endpoint(Protocol):
    """The part of :class:`vrrpd.daemon.receiver.VrrpEndpoint` a driver uses."""

    @property
    def primary_address(self) -> IPAddress | None: ...

    @property
    def group(self) -> IPAddress: ...

    def send(self, payload: bytes, dst: IPAddress, src: IPAddress | None = None) -> None: ...


class AddressPort(Protocol):
    async def add(self, ifname: str, vips: Any, labels: Any = None) -> None: ...

    async def remove(self, ifname: str, vips: Any) -> None: ...


class RoutePort(Protocol):
    """:class:`vrrpd.kernel.routes.RouteManager` as a driver uses it."""

    async def add(self, routes: Any, rules: Any) -> None: ...

    async def remove(self, routes: Any, rules: Any) -> None: ...


class AnnouncePort(Protocol):
    async def send_burst(self, vips: Any, count: int, interval: float, *,
                         na_source: Any = None, na_router: bool = True) -> None: ...

    def refresh_addresses(self) -> None: ...

    def close(self) -> None: ...


class AcceptFilterPort(Protocol):
    """:class:`vrrpd.kernel.accept_filter.AcceptFilter` as a driver uses it."""

    async def block(self, instance: str, vips: Any) -> None: ...

    async def unblock(self, instance: str) -> None: ...


class TransparentProxyPort(Protocol):
    """:class:`vrrpd.kernel.tproxy.TransparentProxy` as a driver uses it."""

    async def mark(self, instance: str, family: int, fwmark: int) -> None: ...

    async def unmark(self, instance: str) -> None: ...


class VirtualMacPort(Protocol):
    """:class:`vrrpd.kernel.vmac.VirtualMac` as a driver uses it."""

    name: str
    mac: bytes

    async def ensure(self) -> None: ...

    async def up(self) -> None: ...

    async def down(self) -> None: ...

    def send(self, payload: bytes, dst: IPAddress, src: IPAddress | None = None) -> None: ...

    async def close(self) -> None: ...


class HandoverPort(Protocol):
    """:class:`vrrpd.drain.handover.Handover` as a driver uses it (draining hand-over)."""

    async def taking_over(self, driver: InstanceDriver) -> None: ...

    async def took_over(self, driver: InstanceDriver) -> None: ...

    async def giving_up(self, driver: InstanceDriver) -> None: ...

    async def forget(self, name: str) -> None: ...

    def status(self, driver: InstanceDriver) -> dict[str, Any]: ...


@dataclass
class InstancePorts:
    """What one instance driver reaches the kernel through."""

    endpoint: Endpoint  # its VRRP socket on the interface
    addresses: AddressPort
    announcer: AnnouncePort  # gratuitous ARP / NA on the interface (or the virtual MAC link)
    vmac: VirtualMacPort | None = None  # virtual_mac: the link carrying the VIPs while MASTER
    accept_filter: AcceptFilterPort | None = None  # accept_mode: false (Accept_Mode False)
    routes: RoutePort | None = None  # virtual_routes / virtual_rules
    tproxy: TransparentProxyPort | None = None  # tproxy: the nftables half
    announcers: dict[str, AnnouncePort] = field(default_factory=dict)  # other VIP devs


class AddressManagerPort(AddressPort, Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def present(self, ifname: str) -> set[Any]: ...


@dataclass
class Kernel:
    """The kernel-facing parts the daemon needs; tests swap in :mod:`vrrpd.kernel.fakes`."""

    open_socket: Callable[[str, int, frozenset[IPAddress]], RawSocket]  # ifname, family, exclude
    group: Callable[[int], IPAddress]
    addresses: AddressManagerPort
    announcer: Callable[[str], AnnouncePort]
    interfaces: Callable[[], Any]  # vrrpd.kernel.link.InterfaceWatcher
    virtual_macs: Any = None  # vrrpd.kernel.vmac.VirtualMacs (virtual_mac: true)
    accept_filter: Any = None  # vrrpd.kernel.accept_filter.AcceptFilter (accept_mode: false)
    neighbours: Any = None  # vrrpd.kernel.neighbours.NeighbourCache
    routes: Any = None  # vrrpd.kernel.routes.RouteManager (virtual_routes / virtual_rules)
    # the BGP speaker of anycast groups (vrrpd.kernel.bgp.Speaker) for the `bgp:` section
    speaker: Callable[[SpeakerConfig], Speaker] | None = None
    tproxy: Any = None  # vrrpd.kernel.tproxy.TransparentProxy (tproxy:)
    drain_forwarding: Any = None  # vrrpd.kernel.drain_forward.DrainForwarding (drain_timeout)

    async def open(self) -> None:
        """The netlink sessions: addresses, and neighbours and routes where present."""
        await self.addresses.open()
        for part in (self.neighbours, self.routes):
            if part is not None:
                await part.open()

    async def close(self) -> None:
        await self.addresses.close()
        for part in (self.neighbours, self.routes):
            if part is not None:
                await part.close()


def real_kernel() -> Kernel:
    from vrrpd.kernel.accept_filter import AcceptFilter
    from vrrpd.kernel.addresses import AddressManager
    from vrrpd.kernel.announcer import Announcer
    from vrrpd.kernel.bgp import build_speaker
    from vrrpd.kernel.drain_forward import DrainForwarding
    from vrrpd.kernel.link import InterfaceWatcher
    from vrrpd.kernel.neighbours import NeighbourCache
    from vrrpd.kernel.routes import RouteManager
    from vrrpd.kernel.tproxy import TransparentProxy
    from vrrpd.kernel.vmac import VirtualMacs
    from vrrpd.kernel.vrrp_socket import VrrpSocket
    from vrrpd.proto.numbers import VRRP_GROUP

    addresses = AddressManager()
    return Kernel(open_socket=VrrpSocket, group=VRRP_GROUP.__getitem__,
                  addresses=addresses, virtual_macs=VirtualMacs(addresses),
                  accept_filter=AcceptFilter(),
                  announcer=Announcer, interfaces=InterfaceWatcher, neighbours=NeighbourCache(),
                  routes=RouteManager(), tproxy=TransparentProxy(),
                  speaker=lambda cfg: build_speaker(cfg.engine, cfg.socket),
                  drain_forwarding=DrainForwarding())
