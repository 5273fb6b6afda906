"""AddressManager's confirmations share netlink dumps (vrrpd/kernel/addresses.py), never one
that started before the change it confirms."""

from __future__ import annotations

import asyncio
import random
from ipaddress import ip_interface
from typing import Any

import pytest

from vrrpd.kernel import addresses as module
from vrrpd.kernel.addresses import AddressManager
from vrrpd.kernel.link import AddressInfo


def test_concurrent_changes_share_dumps_that_start_after_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """255 masters adding their VIP at once: every add is confirmed by a dump that started
    after its request, and far fewer dumps run than adds (one at a time)."""
    rng = random.Random(7)
    events: list[tuple[str, Any]] = []
    on_link: set[Any] = set()
    running = 0

    async def request(self: AddressManager, command: str, index: int, vip: Any, *_: Any) -> None:
        for _ in range(rng.randrange(4)):
            await asyncio.sleep(0)
        (on_link.add if command == "add" else on_link.discard)(vip)
        events.append(("request", vip))

    async def dump(self: AddressManager, index: int) -> dict[Any, AddressInfo]:
        nonlocal running
        running += 1
        assert running == 1, "two dumps of one interface at once"
        number = sum(kind == "dump" for kind, _ in events)
        events.append(("dump", number))
        snapshot = {vip: AddressInfo(vip, 0) for vip in on_link}
        await asyncio.sleep(0.001)
        running -= 1
        return snapshot

    monkeypatch.setattr(AddressManager, "_request", request)
    monkeypatch.setattr(AddressManager, "_dump", dump)
    monkeypatch.setattr(module, "ifindex", lambda name: 2)
    vips = [ip_interface(f"192.0.2.{i}/32") for i in range(1, 256)]

    async def scenario() -> None:
        manager = AddressManager()
        await asyncio.gather(*(manager.add("eth0", [vip]) for vip in vips))
        await asyncio.gather(*(manager.remove("eth0", [vip]) for vip in vips[:100]))

    asyncio.run(scenario())  # AddressError if a confirmation missed its own change
    dumps = sum(kind == "dump" for kind, _ in events)
    assert 2 <= dumps < 30, dumps


def test_dumps_of_two_interfaces_never_overlap(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two instances of one sync group on eth1 and eth2 take over at once (the transparent
    variant's client VIP and gateway VIP): their confirmations share one netlink socket, on
    which the kernel refuses a second dump while one runs (EBUSY), so they take turns."""
    running = 0
    dumped: list[int] = []

    async def request(self: AddressManager, *_: Any) -> None:
        await asyncio.sleep(0)

    async def dump(self: AddressManager, index: int) -> dict[Any, AddressInfo]:
        nonlocal running
        running += 1
        assert running == 1, "two dumps on one netlink socket at once (EBUSY)"
        await asyncio.sleep(0.001)
        running -= 1
        dumped.append(index)
        return {vip: AddressInfo(vip, 0) for vip in vips[index]}

    monkeypatch.setattr(AddressManager, "_request", request)
    monkeypatch.setattr(AddressManager, "_dump", dump)
    monkeypatch.setattr(module, "ifindex", {"eth1": 2, "eth2": 3}.__getitem__)
    vips = {2: [ip_interface("192.0.2.100/24")], 3: [ip_interface("198.51.100.1/24")]}

    async def scenario() -> None:
        manager = AddressManager()
        await asyncio.gather(*(manager.add(name, vips[index]) for _ in range(3)
                               for name, index in (("eth1", 2), ("eth2", 3))))

    asyncio.run(scenario())
    assert sorted(set(dumped)) == [2, 3]
