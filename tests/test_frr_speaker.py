"""vrrpd's FRR speaker (:mod:`vrrpd.kernel.frr`) against a stand-in for bgpd's vty socket
that speaks vtysh's protocol (command NUL-terminated; answer, three NULs, the return code)
and keeps the lines of a running configuration.  The lab (tests/lab/test_anycast_lab.py)
runs the real bgpd."""

from __future__ import annotations

import asyncio
import json
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest

from vrrpd.kernel.bgp import Announcement, SpeakerError
from vrrpd.kernel.frr import FrrSpeaker

WEB = ip_network("203.0.113.10/32")
WEB6 = ip_network("2001:db8:18::10/128")


class FakeBgpd:
    """Answers ``enable``, ``show running-config`` (``router bgp`` plus the ``network``
    lines and route-maps set so far), the configuration commands vrrpd sends, and the JSON
    shows; anything else gets CMD_WARNING (1) like an unknown command."""

    def __init__(self, path: Path, asn: int | None = 64510) -> None:
        self.path = path
        self.asn = asn
        self.commands: list[str] = []
        self.networks: dict[str, str] = {}  # prefix -> route-map
        self.route_maps: dict[str, list[str]] = {}
        self.refuse: set[str] = set()  # prefixes whose `network` line fails (CMD_WARNING)
        self.server: asyncio.AbstractServer | None = None
        self._map: str | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_unix_server(self._session, str(self.path))

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                command = (await reader.readuntil(b"\0"))[:-1].decode()
                self.commands.append(command)
                text, code = self.answer(command.strip())
                writer.write(text.encode() + b"\0\0\0" + bytes([code]))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def running(self) -> str:
        lines = ["frr version 8.4.4", "!"]
        if self.asn is not None:
            lines += [f"router bgp {self.asn}", " address-family ipv4 unicast"]
            lines += [f"  network {p} route-map {m}" for p, m in self.networks.items()]
            lines += [" exit-address-family", "exit", "!"]
        for name, sets in self.route_maps.items():
            lines += [f"route-map {name} permit 10", *sets, "exit", "!"]
        return "\n".join(lines) + "\n"

    def answer(self, command: str) -> tuple[str, int]:
        if command == "show running-config":
            return self.running(), 0
        if command == "show bgp neighbors json":
            return json.dumps({"192.0.2.1": {
                "bgpState": "Established", "peerBfdInfo": {"status": "Up"},
                "addressFamilyInfo": {"ipv4Unicast": {}}}}), 0
        if command.startswith("show bgp ipv4 unicast neighbors 192.0.2.1 advertised-routes"):
            return json.dumps({"advertisedRoutes": {p: {} for p in self.networks}}), 0
        if command.startswith("route-map "):
            self._map = command.split()[1]
            self.route_maps[self._map] = []
            return "", 0
        if command.startswith(("set ", "no set ")) and self._map:
            if command.startswith("set "):
                self.route_maps[self._map].append(f" {command}")
            return "", 0
        if command.startswith("network "):
            words = command.split()
            if words[1] in self.refuse:
                return "% Malformed prefix", 1
            self.networks[words[1]] = words[3]
            return "", 0
        if command.startswith("no network "):
            self.networks.pop(command.split()[2], None)
            return "", 0
        if command in ("enable", "configure terminal", "end", "exit", "exit-address-family") \
                or command.startswith(("router bgp", "address-family")):
            return "", 0
        return f"% Unknown command: {command}", 2


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 10))


def test_announce_reweigh_withdraw_and_status(tmp_path: Path) -> None:
    async def main() -> None:
        bgpd = FakeBgpd(tmp_path / "bgpd.vty")
        await bgpd.start()
        speaker = FrrSpeaker(bgpd.path)
        await speaker.open()
        assert speaker.asn == 64510
        await speaker.announce(Announcement("pacs", (WEB,), med=10))
        assert bgpd.networks == {str(WEB): "vrrpd-pacs"}
        assert bgpd.route_maps["vrrpd-pacs"] == [" set metric 10"]
        assert await speaker.announced() == {WEB: "pacs"}
        # re-weighing re-states the route-map and the `network` line (bgpd re-applies it)
        await speaker.announce(Announcement("pacs", (WEB,), med=0, prepend=2))
        assert bgpd.route_maps["vrrpd-pacs"] == [" set metric 0",
                                                 " set as-path prepend 64510 64510"]
        assert bgpd.commands.count(f"network {WEB} route-map vrrpd-pacs") == 2
        (peer,) = await speaker.peers()
        assert (peer.address, peer.state, peer.bfd, peer.advertised) == (
            "192.0.2.1", "Established", "Up", (WEB,))
        await speaker.withdraw("pacs", (WEB, WEB6))  # WEB6 was never announced: no error
        assert bgpd.networks == {}
        assert [c for c in bgpd.commands if c.startswith("no network")] == [
            f"no network {WEB} route-map vrrpd-pacs"]
        assert bgpd.commands[-1] == "end"  # every configuration sequence ends at enable
        await speaker.close()
        await bgpd.stop()

    run(main())


def test_a_refusal_names_the_command_and_leaves_configure_mode(tmp_path: Path) -> None:
    async def main() -> None:
        bgpd = FakeBgpd(tmp_path / "bgpd.vty")
        await bgpd.start()
        speaker = FrrSpeaker(bgpd.path)
        await speaker.open()
        bgpd.refuse.add(str(WEB6))
        with pytest.raises(SpeakerError, match=f"refused 'network {WEB6} route-map vrrpd-pacs'"):
            await speaker.announce(Announcement("pacs", (WEB, WEB6)))
        assert bgpd.commands[-1] == "end"
        await speaker.close()
        await bgpd.stop()

    run(main())


def test_unreachable_or_unconfigured_bgpd_says_what_to_check(tmp_path: Path) -> None:
    async def main() -> None:
        with pytest.raises(SpeakerError, match=r"cannot reach FRR bgpd .* is bgpd running"):
            await FrrSpeaker(tmp_path / "missing.vty").open()
        bgpd = FakeBgpd(tmp_path / "bgpd.vty", asn=None)
        await bgpd.start()
        with pytest.raises(SpeakerError, match="no `router bgp ASN`"):
            await FrrSpeaker(bgpd.path).open()
        await bgpd.stop()

    run(main())


def test_a_restarted_bgpd_is_reconnected_once(tmp_path: Path) -> None:
    async def main() -> None:
        bgpd = FakeBgpd(tmp_path / "bgpd.vty")
        await bgpd.start()
        speaker = FrrSpeaker(bgpd.path)
        await speaker.open()
        await bgpd.stop()
        assert speaker._writer is not None  # the session bgpd drops
        speaker._writer.close()  # as bgpd's exit does
        (tmp_path / "bgpd.vty").unlink()
        again = FakeBgpd(tmp_path / "bgpd.vty")
        await again.start()
        await speaker.announce(Announcement("pacs", (WEB,)))
        assert again.networks == {str(WEB): "vrrpd-pacs"}
        await speaker.close()
        await again.stop()

    run(main())
