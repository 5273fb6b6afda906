"""FRR's bgpd as the BGP speaker of anycast groups (:class:`vrrpd.kernel.bgp.Speaker`).

vrrpd talks to bgpd over bgpd's own vty socket (``/run/frr/bgpd.vty``; ``-N NAME`` path
spaces put it in ``/run/frr/NAME/``), in the protocol ``vtysh`` itself speaks: each command
is sent NUL-terminated, the answer is the command's output followed by three NUL bytes and a
return code (FRR's lib/vty.c, ``vtysh_flush``; 0 is CMD_SUCCESS).  That is what an operator
types in ``vtysh``, so every change vrrpd makes reads back in ``show running-config``, and a
change costs well under a millisecond (starting ``vtysh`` costs about 200 ms).

What vrrpd configures, per group ``G``::

    route-map vrrpd-G permit 10          the group's weight: MED and AS-path prepend
     set metric 0
    router bgp 64510
     address-family ipv4 unicast
      network 203.0.113.10/32 route-map vrrpd-G

``network`` originates the prefix whether or not the RIB has it when bgpd runs with
``no bgp network import-check`` (the node's HAProxy binds the address on ``lo``; the
reference configuration in README.md "Scaling out" sets it).  Withdrawing is ``no network``.
Entries whose route-map is named ``vrrpd-*`` are vrrpd's: :meth:`FrrSpeaker.announced` finds
them (also a crashed run's), and vrrpd leaves every other line of the operator's
configuration alone.
"""

from __future__ import annotations

import asyncio
import json
import re
from ipaddress import ip_network
from pathlib import Path
from typing import Any

from vrrpd.kernel.bgp import Announcement, IPNetwork, PeerState, SpeakerError

DEFAULT_SOCKET = Path("/run/frr/bgpd.vty")
ROUTE_MAP_PREFIX = "vrrpd-"
END_MARK = b"\0\0\0"  # then one byte: the command's return code (lib/command.h CMD_*)
CMD_SUCCESS = 0
TIMEOUT = 5.0  # seconds for one command's answer
ROUTER_BGP = re.compile(r"^router bgp (\d+)$", re.MULTILINE)  # the default VRF's instance
NETWORK = re.compile(rf"^\s+network (\S+) route-map {ROUTE_MAP_PREFIX}(\S+)$", re.MULTILINE)


def route_map(group: str) -> str:
    return f"{ROUTE_MAP_PREFIX}{group}"


def _family(prefix: IPNetwork) -> str:
    return "ipv4" if prefix.version == 4 else "ipv6"


class FrrSpeaker:
    """One long-lived vty session with bgpd; commands are serialised on it."""

    def __init__(self, socket: Path = DEFAULT_SOCKET) -> None:
        self.socket = socket
        self.asn: int | None = None  # bgpd's ``router bgp`` AS, read on open
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()

    def describe(self) -> str:
        return f"FRR bgpd at {self.socket}"

    async def open(self) -> None:
        async with self._lock:
            await self._connect()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def _connect(self) -> None:
        await self.close()
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_unix_connection(str(self.socket)), TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise SpeakerError(f"cannot reach FRR bgpd at {self.socket}: "
                               f"{getattr(exc, 'strerror', None) or exc!r}; is bgpd running "
                               f"(`systemctl status frr`, bgpd=yes in /etc/frr/daemons)?") \
                from None
        await self._command("enable")
        running = await self._command("show running-config")
        found = ROUTER_BGP.search(running)
        if found is None:
            await self.close()
            raise SpeakerError(f"FRR bgpd at {self.socket} has no `router bgp ASN` (default "
                               "VRF): configure the session to the upstream router first "
                               "(README.md, \"Scaling out\")")
        self.asn = int(found[1])

    async def _command(self, command: str) -> str:
        """Send one command on the open session; its output, or SpeakerError."""
        if self._reader is None or self._writer is None:
            raise SpeakerError(f"not connected to FRR bgpd at {self.socket}")
        try:
            self._writer.write(command.encode() + b"\0")
            await self._writer.drain()
            data = await asyncio.wait_for(self._reader.readuntil(END_MARK), TIMEOUT)
            code = (await asyncio.wait_for(self._reader.readexactly(1), TIMEOUT))[0]
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                TimeoutError) as exc:
            await self.close()
            raise SpeakerError(f"FRR bgpd at {self.socket} did not answer {command!r}: "
                               f"{exc!r}") from None
        text = data[:-len(END_MARK)].decode(errors="replace")
        if code != CMD_SUCCESS:
            raise SpeakerError(f"FRR bgpd refused {command!r} (code {code}): {text.strip()}")
        return text

    async def _run(self, commands: list[str]) -> list[str]:
        """``commands`` in order on the session, reconnecting once if bgpd restarted; a
        configuration sequence always ends with ``end`` (back to the enable node)."""
        async with self._lock:
            if self._writer is None:
                await self._connect()
            try:
                return [await self._command(c) for c in commands]
            except SpeakerError:
                if self._writer is None:  # the session broke: bgpd restarted?  once more
                    await self._connect()
                    return [await self._command(c) for c in commands]
                raise
            finally:
                if commands and commands[0] == "configure terminal" and self._writer:
                    await self._command("end")

    async def announce(self, announcement: Announcement) -> None:
        name = route_map(announcement.group)
        prepend = (f" set as-path prepend {' '.join([str(self.asn)] * announcement.prepend)}"
                   if announcement.prepend else " no set as-path prepend")
        commands = ["configure terminal", f"route-map {name} permit 10",
                    f" set metric {announcement.med}", prepend, "exit",
                    f"router bgp {self.asn}"]
        for prefix in announcement.prefixes:  # re-stating `network` re-applies the route-map
            commands += [f"address-family {_family(prefix)} unicast",
                         f"network {prefix} route-map {name}", "exit-address-family"]
        await self._run(commands)

    async def withdraw(self, group: str, prefixes: tuple[IPNetwork, ...]) -> None:
        if not prefixes:
            return
        announced = await self.announced()
        commands = ["configure terminal", f"router bgp {self.asn}"]
        for prefix in prefixes:
            if prefix in announced:
                commands += [f"address-family {_family(prefix)} unicast",
                             f"no network {prefix} route-map {route_map(announced[prefix])}",
                             "exit-address-family"]
        if len(commands) > 2:
            await self._run(commands)

    async def announced(self) -> dict[IPNetwork, str]:
        (running,) = await self._run(["show running-config"])
        return {ip_network(m[1]): m[2] for m in NETWORK.finditer(running)}

    async def _json(self, command: str) -> Any:
        (text,) = await self._run([command])
        try:
            return json.loads(text or "{}")
        except ValueError:
            raise SpeakerError(f"FRR bgpd: {command!r} did not answer JSON: {text[:200]!r}") \
                from None

    async def peers(self) -> list[PeerState]:
        neighbours = await self._json("show bgp neighbors json")
        out = []
        for address, doc in sorted(neighbours.items()):
            if not isinstance(doc, dict):
                continue
            bfd = doc.get("peerBfdInfo", {}).get("status")
            advertised: list[IPNetwork] = []
            families = doc.get("addressFamilyInfo", {})
            if doc.get("bgpState") == "Established":
                for family in ("ipv4", "ipv6"):
                    if f"{family}Unicast" not in families:
                        continue
                    sent = await self._json(f"show bgp {family} unicast neighbors {address} "
                                            "advertised-routes json")
                    advertised += [ip_network(p) for p in sent.get("advertisedRoutes", {})]
            out.append(PeerState(address, doc.get("bgpState", "?"), bfd, tuple(advertised)))
        return out
