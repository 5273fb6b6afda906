"""In-memory stand-ins for the kernel layer, for simulation tests (DESIGN.md, second ring).

Each fake has the public interface of the real class it replaces:

* :class:`FakeVrrpSocket` -- :class:`vrrpd.kernel.vrrp_socket.VrrpSocket`
* :class:`FakeAddressManager` -- :class:`vrrpd.kernel.addresses.AddressManager`
* :class:`FakeRouteManager` -- :class:`vrrpd.kernel.routes.RouteManager`
* :class:`FakeTransparentProxy` -- :class:`vrrpd.kernel.tproxy.TransparentProxy`
* :class:`FakeAnnouncer` -- :class:`vrrpd.kernel.announcer.Announcer`
* :class:`FakeInterfaceWatcher` -- :class:`vrrpd.kernel.link.InterfaceWatcher`
* :class:`FakeNeighbourCache` -- :class:`vrrpd.kernel.neighbours.NeighbourCache`
* :class:`FakeSpeaker` -- :class:`vrrpd.kernel.frr.FrrSpeaker` (:class:`vrrpd.kernel.bgp.Speaker`)

:class:`FakeLink` is the shared segment: fake sockets attached to it exchange payloads, with a
configurable loss rate (seeded, so a run is reproducible) and TTL.  Fake sockets have a real
file descriptor that becomes readable when a packet is queued, so ``loop.add_reader`` works
exactly as with the real socket.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Iterable, Mapping

from vrrpd.config.model import VirtualRoute, VirtualRule
from vrrpd.kernel.bgp import Announcement, IPNetwork, PeerState, SpeakerError
from vrrpd.kernel.link import IPInterface, Readiness
from vrrpd.kernel.vrrp_socket import IPAddress, ReceivedPacket
from vrrpd.proto.numbers import VRRP_TTL


class FakeLink:
    """A broadcast segment.  ``loss`` is the probability (0..1) that a delivery is lost."""

    def __init__(self, loss: float = 0.0, ttl: int = VRRP_TTL, seed: int = 0) -> None:
        self.loss = loss
        self.ttl = ttl  # what receivers see; set to e.g. 64 to simulate a routed packet
        self.sent: list[tuple[IPAddress, IPAddress, bytes]] = []  # (src, dst, payload)
        self._random = random.Random(seed)
        self._sockets: list[FakeVrrpSocket] = []

    def attach(self, sock: FakeVrrpSocket) -> None:
        self._sockets.append(sock)

    def detach(self, sock: FakeVrrpSocket) -> None:
        self._sockets.remove(sock)

    def transmit(self, sender: FakeVrrpSocket, payload: bytes, dst: IPAddress,
                 src: IPAddress | None = None) -> None:
        """Deliver to every other socket of the family that the destination addresses."""
        src = src or sender.primary_address
        self.sent.append((src, dst, payload))
        for sock in self._sockets:
            if sock is sender or sock.family != sender.family:
                continue
            if not (dst.is_multicast or dst == sock.primary_address):
                continue
            if self._random.random() >= self.loss:
                sock.queue(ReceivedPacket(payload, src, dst, self.ttl))


class FakeVrrpSocket:
    """A VRRP socket on a :class:`FakeLink`, sending from ``address``."""

    def __init__(self, segment: FakeLink, address: IPAddress, ifname: str = "eth0") -> None:
        self.ifname = ifname
        self.family = address.version
        self.primary_address = address
        self.exclude: frozenset[IPAddress] = frozenset()  # the address is fixed anyway
        self.ifindex = 1
        self.own_source_dropped = 0  # never anything to drop: the segment does not loop back
        self._segment = segment
        self._packets: deque[ReceivedPacket] = deque()
        self._wake, self._readable = socket.socketpair()
        self._readable.setblocking(False)
        segment.attach(self)

    def queue(self, packet: ReceivedPacket) -> None:
        """Queue ``packet``; the fd holds one byte exactly while packets are waiting."""
        self._packets.append(packet)
        if len(self._packets) == 1:
            self._wake.send(b"\x00")

    def fileno(self) -> int:
        return self._readable.fileno()

    def refresh_addresses(self) -> None:
        """Nothing to re-read: the address is fixed at construction."""

    def receive(self) -> ReceivedPacket | None:
        if not self._packets:
            return None
        packet = self._packets.popleft()
        if not self._packets:
            self._readable.recv(1)
        return packet

    def send(self, payload: bytes, dst: IPAddress, src: IPAddress | None = None) -> None:
        self._segment.transmit(self, payload, dst, src)

    def close(self) -> None:
        self._segment.detach(self)
        self._wake.close()
        self._readable.close()


class FakeAddressManager:
    """Keeps addresses per interface in memory and records every call as
    ``(command, ifname, vips)``, and the label of each labelled address in :attr:`labels`."""

    def __init__(self) -> None:
        self.addresses: defaultdict[str, set[IPInterface]] = defaultdict(set)
        self.labels: dict[IPInterface, str] = {}
        self.calls: list[tuple[str, str, tuple[IPInterface, ...]]] = []

    async def open(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close."""

    async def add(self, ifname: str, vips: Iterable[IPInterface],
                  labels: Mapping[IPInterface, str] | None = None) -> None:
        vips = tuple(vips)
        self.calls.append(("add", ifname, vips))
        self.addresses[ifname].update(vips)
        self.labels.update({v: label for v, label in (labels or {}).items() if v in vips})

    async def remove(self, ifname: str, vips: Iterable[IPInterface]) -> None:
        vips = tuple(vips)
        self.calls.append(("remove", ifname, vips))
        self.addresses[ifname].difference_update(vips)
        for vip in vips:
            self.labels.pop(vip, None)

    async def present(self, ifname: str) -> set[IPInterface]:
        return set(self.addresses[ifname])


class FakeRouteManager:
    """Keeps routes and rules in memory and records every call as ``(command, routes, rules)``;
    ``flush`` empties both (set them beforehand to play a crashed run's leftovers)."""

    def __init__(self) -> None:
        self.routes: set[VirtualRoute] = set()
        self.rules: set[VirtualRule] = set()
        self.calls: list[tuple[str, tuple[VirtualRoute, ...], tuple[VirtualRule, ...]]] = []

    async def open(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close."""

    async def add(self, routes: Iterable[VirtualRoute], rules: Iterable[VirtualRule]) -> None:
        routes, rules = tuple(routes), tuple(rules)
        self.calls.append(("add", routes, rules))
        self.routes.update(routes)
        self.rules.update(rules)

    async def remove(self, routes: Iterable[VirtualRoute],
                     rules: Iterable[VirtualRule]) -> None:
        routes, rules = tuple(routes), tuple(rules)
        self.calls.append(("remove", routes, rules))
        self.routes.difference_update(routes)
        self.rules.difference_update(rules)

    async def flush(self) -> list[str]:
        removed = [f"route {r.to} table {r.table}" for r in self.routes] + [
            f"rule table {r.table}" for r in self.rules]
        self.calls.append(("flush", tuple(self.routes), tuple(self.rules)))
        self.routes.clear()
        self.rules.clear()
        return removed


class FakeTransparentProxy:
    """Keeps the marking chains as ``{instance: (family, fwmark)}``; ``reset`` empties them
    (set one beforehand to play a crashed run's leftover)."""

    def __init__(self) -> None:
        self.chains: dict[str, tuple[int, int]] = {}
        self.resets = 0

    async def reset(self) -> None:
        self.resets += 1
        self.chains.clear()

    async def mark(self, instance: str, family: int, fwmark: int) -> None:
        self.chains[instance] = (family, fwmark)

    async def unmark(self, instance: str) -> None:
        self.chains.pop(instance, None)


class FakeAnnouncer:
    """Records each burst as ``(vips, count, interval)`` instead of sending frames, and the
    NA options of the last one in :attr:`na_options`."""

    def __init__(self, ifname: str) -> None:
        self.ifname = ifname
        self.bursts: list[tuple[tuple[IPInterface, ...], int, float]] = []
        self.na_options: tuple[IPAddress | None, bool] | None = None

    async def send_burst(self, vips: Iterable[IPInterface], count: int, interval: float, *,
                         na_source: IPAddress | None = None, na_router: bool = True) -> None:
        self.bursts.append((tuple(vips), count, interval))
        self.na_options = (na_source, na_router)

    def refresh_addresses(self) -> None:
        """Nothing to re-read: there is no interface."""

    def close(self) -> None:
        """Nothing to close."""


class FakeInterfaceWatcher:
    """Interface states set by the test with :meth:`set`; changes come out of :meth:`events`.

    Every interface is usable until the test says otherwise (``problems`` or :meth:`set`).
    """

    def __init__(self, problems: dict[tuple[str, int], str] | None = None) -> None:
        self.problems: dict[tuple[str, int], str | None] = dict(problems or {})
        self.states: dict[tuple[str, int], Readiness] = {}
        self._changes: asyncio.Queue[Readiness] = asyncio.Queue()

    async def open(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close."""

    def watch(self, ifname: str, family: int, exclude: frozenset[IPAddress]) -> Readiness:
        state = self.states[(ifname, family)] = Readiness(
            ifname, family, self.problems.get((ifname, family)), None, 1)
        return state

    def set(self, ifname: str, family: int, problem: str | None) -> None:
        """The interface's new state: ``problem`` None is usable."""
        self.problems[(ifname, family)] = problem
        state = Readiness(ifname, family, problem, None, 1)
        if (ifname, family) in self.states and self.states[(ifname, family)] != state:
            self.states[(ifname, family)] = state
            self._changes.put_nowait(state)

    async def events(self) -> AsyncIterator[Readiness]:
        while True:
            yield await self._changes.get()


class FakeNeighbourCache:
    """Unresolved neighbour entries per interface, set by the test; flushes are recorded."""

    def __init__(self) -> None:
        self.unresolved: defaultdict[str, list[str]] = defaultdict(list)
        self.flushed: list[str] = []  # interface names, in call order

    async def open(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close."""

    async def flush_unresolved(self, ifname: str) -> list[str]:
        self.flushed.append(ifname)
        stale, self.unresolved[ifname] = self.unresolved[ifname], []
        return stale


class FakeSpeaker:
    """A BGP speaker in memory: what is announced (``table``: prefix -> announcement), the
    changes in order (``log``), one upstream router ``peer`` in state ``session``.  Set
    ``down`` to a reason to make every call fail as an unreachable speaker does."""

    def __init__(self, peer: str = "192.0.2.1") -> None:
        self.table: dict[IPNetwork, Announcement] = {}
        self.log: list[tuple[str, str, int, int]] = []  # (action, group, med, prepend)
        self.peer = peer
        self.session = "Established"
        self.down: str | None = None
        self.opened = False

    def _check(self) -> None:
        if self.down is not None:
            raise SpeakerError(self.down)

    def describe(self) -> str:
        return "fake speaker"

    async def open(self) -> None:
        self._check()
        self.opened = True

    async def close(self) -> None:
        self.opened = False

    async def announce(self, announcement: Announcement) -> None:
        self._check()
        for prefix in announcement.prefixes:
            self.table[prefix] = announcement
        self.log.append(("announce", announcement.group, announcement.med,
                         announcement.prepend))

    async def withdraw(self, group: str, prefixes: tuple[IPNetwork, ...]) -> None:
        self._check()
        for prefix in prefixes:
            self.table.pop(prefix, None)
        self.log.append(("withdraw", group, 0, 0))

    async def announced(self) -> dict[IPNetwork, str]:
        self._check()
        return {prefix: a.group for prefix, a in self.table.items()}

    async def peers(self) -> list[PeerState]:
        self._check()
        sent = tuple(self.table) if self.session == "Established" else ()
        return [PeerState(self.peer, self.session, "Up", sent)]
