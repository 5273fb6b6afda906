"""Two whole daemons in one event loop on an in-memory link (kernel fakes): the shared parts."""

from __future__ import annotations

import asyncio
import json
from ipaddress import ip_address, ip_interface
from pathlib import Path
from typing import Any

import yaml

from vrrpd.config.loader import load_config
from vrrpd.daemon.ports import Kernel
from vrrpd.daemon.runtime import Daemon
from vrrpd.kernel.fakes import (
    FakeAddressManager,
    FakeAnnouncer,
    FakeInterfaceWatcher,
    FakeLink,
    FakeNeighbourCache,
    FakeRouteManager,
    FakeTransparentProxy,
    FakeVrrpSocket,
)
from vrrpd.proto.events import State
from vrrpd.proto.numbers import VRRP_GROUP

VIP = "192.0.2.100/24"


def write_config(tmp: Path, node: str, priority: int, top: dict[str, Any] | None = None,
                 **extra: Any) -> Path:
    instance = {"name": "web", "interface": "lo", "vrid": 51, "priority": priority,
                "advert_interval": 0.05, "vips": [VIP], **extra}
    doc = {"node": node, "control_socket": str(tmp / f"{node}.sock"),
           "state_dir": str(tmp / node), "instances": [instance], **(top or {})}
    path = tmp / f"{node}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


class Node:
    """One daemon on ``link`` with kernel fakes; ``top``/``extra`` go into its config file
    (top level / its one instance ``web``)."""

    def __init__(self, link: FakeLink, tmp: Path, name: str, address: str, priority: int,
                 log: list[tuple[str, str]] | None = None, top: dict[str, Any] | None = None,
                 **extra: Any) -> None:
        self.path = write_config(tmp, name, priority, top, **extra)
        self.addresses = FakeAddressManager()
        self.link = link
        self.address = ip_address(address)
        self.address6 = ip_address(f"fe80::{address.rsplit('.', 1)[-1]}")  # IPv6 instances'
        self.name = name
        self.log = log if log is not None else []
        self.daemon: Daemon | None = None
        self.links = FakeInterfaceWatcher()  # every interface usable until a test says
        self.announcers: dict[str, FakeAnnouncer] = {}
        self.neighbours = FakeNeighbourCache()
        self.routes = FakeRouteManager()
        self.tproxy = FakeTransparentProxy()
        add, remove = self.addresses.add, self.addresses.remove

        async def logged_add(ifname: str, vips: Any, labels: Any = None) -> None:
            await add(ifname, vips, labels)
            self.log.append((name, "add"))

        async def logged_remove(ifname: str, vips: Any) -> None:
            self.log.append((name, "remove"))
            await remove(ifname, vips)

        self.addresses.add = logged_add  # type: ignore[method-assign]
        self.addresses.remove = logged_remove  # type: ignore[method-assign]

    def _announcer(self, ifname: str) -> FakeAnnouncer:
        self.announcers[ifname] = FakeAnnouncer(ifname)
        return self.announcers[ifname]

    async def start(self) -> Daemon:
        kernel = Kernel(open_socket=lambda ifname, family, exclude: FakeVrrpSocket(
                            self.link, self.address if family == 4 else self.address6),
                        group=VRRP_GROUP.__getitem__, addresses=self.addresses,
                        announcer=self._announcer, interfaces=lambda: self.links,
                        neighbours=self.neighbours, routes=self.routes, tproxy=self.tproxy)
        self.daemon = Daemon(load_config(self.path, host=False), kernel)
        await self.daemon.start()
        return self.daemon

    def holds(self) -> bool:
        return ip_interface(VIP) in self.addresses.addresses["lo"]

    def state(self) -> State:
        assert self.daemon is not None
        return self.daemon.drivers["web"].state


async def until(predicate: Any, timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


async def ctl(node: Node, cmd: str, timeout: float = 5.0, **args: Any) -> dict[str, Any]:
    """One control request over the daemon's real socket; the whole reply (``ok``, ...)."""
    assert node.daemon is not None
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_unix_connection(
            str(node.daemon.config.control_socket))
        writer.write(json.dumps({"v": 1, "cmd": cmd, "args": args}).encode() + b"\n")
        reply: dict[str, Any] = json.loads(await reader.readline())
    writer.close()
    return reply


