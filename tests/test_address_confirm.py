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
