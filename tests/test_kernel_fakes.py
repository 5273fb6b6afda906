"""The in-memory kernel fakes behave like the real layer where simulation tests rely on it."""

from __future__ import annotations

import asyncio
import select
from ipaddress import IPv4Address, ip_interface

from vrrpd.kernel.fakes import (
    FakeAddressManager,
    FakeInterfaceWatcher,
    FakeLink,
    FakeVrrpSocket,
)
from vrrpd.kernel.link import Readiness
from vrrpd.kernel.vrrp_socket import ReceivedPacket
from vrrpd.proto.numbers import VRRP_GROUP

LB1, LB2, LB3 = (IPv4Address(f"192.0.2.{n}") for n in (11, 12, 13))


def test_multicast_reaches_every_other_socket_unicast_only_its_target() -> None:
    segment = FakeLink()
    a, b, c = (FakeVrrpSocket(segment, ip) for ip in (LB1, LB2, LB3))
    a.send(b"advert", VRRP_GROUP[4])
    assert a.receive() is None
    assert b.receive() == c.receive() == ReceivedPacket(b"advert", LB1, VRRP_GROUP[4], 255)
    a.send(b"unicast", LB3)
    assert (b.receive(), c.receive()) == (None, ReceivedPacket(b"unicast", LB1, LB3, 255))
    for sock in (a, b, c):
        sock.close()


def test_fake_socket_wakes_an_asyncio_reader() -> None:
    """The fd is readable exactly when a packet waits, as ``loop.add_reader`` needs."""
    segment = FakeLink()
    a, b = FakeVrrpSocket(segment, LB1), FakeVrrpSocket(segment, LB2)

    async def scenario() -> ReceivedPacket | None:
        arrived = asyncio.Event()
        asyncio.get_running_loop().add_reader(b.fileno(), arrived.set)
        a.send(b"advert", VRRP_GROUP[4])
        await asyncio.wait_for(arrived.wait(), 1)
        asyncio.get_running_loop().remove_reader(b.fileno())
        return b.receive()

    assert asyncio.run(scenario()) is not None
    assert select.select([b], [], [], 0)[0] == []  # drained: no longer readable
    a.close()
    b.close()


def test_loss_is_seeded_and_roughly_the_configured_rate() -> None:
    def received(seed: int) -> int:
        segment = FakeLink(loss=0.3, seed=seed)
        a, b = FakeVrrpSocket(segment, LB1), FakeVrrpSocket(segment, LB2)
        for _ in range(1000):
            a.send(b"x", VRRP_GROUP[4])
        count = 0
        while b.receive() is not None:
            count += 1
        a.close()
        b.close()
        return count

    assert received(1) == received(1)
    assert 600 < received(1) < 800


def test_fake_address_manager_records_and_is_idempotent() -> None:
    vip = ip_interface("192.0.2.100/24")

    async def scenario() -> FakeAddressManager:
        manager = FakeAddressManager()
        await manager.add("eth0", [vip])
        await manager.add("eth0", [vip])
        assert await manager.present("eth0") == {vip}
        await manager.remove("eth0", [vip])
        assert await manager.present("eth0") == set()
        return manager

    manager = asyncio.run(scenario())
    assert [call[0] for call in manager.calls] == ["add", "add", "remove"]


def test_fake_interface_watcher_reports_changes_of_watched_pairs_only() -> None:
    async def scenario() -> list[Readiness]:
        watcher = FakeInterfaceWatcher()
        assert watcher.watch("eth0", 4, frozenset()) == Readiness("eth0", 4, None, None, 1)
        watcher.set("eth0", 4, None)  # no change, no event
        watcher.set("eth1", 4, "down")  # not watched
        watcher.set("eth0", 4, "eth0 has no carrier")
        events = watcher.events()
        return [await anext(events)]

    assert asyncio.run(scenario()) == [Readiness("eth0", 4, "eth0 has no carrier", None, 1)]
