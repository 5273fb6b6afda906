"""The kernel-facing parts the daemon needs, as one bundle (:class:`Kernel`).

:func:`real_kernel` builds them from :mod:`vrrpd.kernel`; tests swap in
:mod:`vrrpd.kernel.fakes`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from vrrpd.config.model import SpeakerConfig
from vrrpd.daemon.instance import AddressPort, AnnouncePort
from vrrpd.daemon.receiver import RawSocket
from vrrpd.kernel.bgp import Speaker
from vrrpd.proto.packet import IPAddress


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
