"""The seam to a BGP speaker: announce and withdraw anycast prefixes (DESIGN.md, scale-out).

vrrpd decides *when* a node serves an anycast group (its trackers); a maintained BGP
implementation does the routing, BFD and ECMP.  The daemon talks to it through this small
interface, as it talks to the kernel's addresses through
:class:`vrrpd.kernel.addresses.AddressManager`, so "hold the VIPs" and "announce the prefixes"
look alike to it.  :class:`vrrpd.kernel.frr.FrrSpeaker` drives FRR's bgpd; another engine
(BIRD, GoBGP) is another class with these methods; tests use
:class:`vrrpd.kernel.fakes.FakeSpeaker`.

Like VIP changes, announcements are idempotent (announcing what is announced, or withdrawing
what is gone, is not an error) and an engine marks its own (``vrrpd-<group>``) so a start can
find and withdraw what a crashed run left behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Protocol

IPNetwork = IPv4Network | IPv6Network

# RFC 4271 §5.1.4: MULTI_EXIT_DISC is a 4-octet unsigned integer; lower is preferred.
MED_MAX = 2**32 - 1
# What a group's announcement amounts to (``vrrpctl status``, metrics): its healthy MED and
# no prepends, a worse MED or prepends (out of the router's ECMP set, still a fallback), none
GROUP_STATES = ("announced", "de-preferred", "withdrawn")


class SpeakerError(OSError):
    """The BGP speaker is unreachable or refused a change."""


@dataclass(frozen=True)
class Announcement:
    """What a group announces: its prefixes with the path attributes that weigh them.

    ``med`` is the MULTI_EXIT_DISC (RFC 4271 §5.1.4), ``prepend`` how many extra times the
    speaker's own AS is put on the AS_PATH (RFC 4271 §5.1.2, §9.1.2.2 a: a longer path loses).
    A router running ECMP over the nodes keeps only the best equal paths, so a raised MED or a
    prepend takes a node out of the multipath set while it stays a fallback.
    """

    group: str
    prefixes: tuple[IPNetwork, ...]
    med: int = 0
    prepend: int = 0


@dataclass(frozen=True)
class PeerState:
    """One BGP neighbour (the upstream router) as the speaker sees it."""

    address: str
    state: str  # RFC 4271 §8.2.2 FSM state: Idle, Connect, Active, OpenSent, ..., Established
    bfd: str | None  # BFD session state (RFC 5880 §4.1: AdminDown, Down, Init, Up), None: no BFD
    advertised: tuple[IPNetwork, ...]  # the prefixes sent to this neighbour now


class Speaker(Protocol):
    """A BGP speaker the daemon drives (:mod:`vrrpd.kernel.frr` is one)."""

    async def open(self) -> None:
        """Connect; raise :class:`SpeakerError` saying what to check when it cannot."""

    async def close(self) -> None: ...

    async def announce(self, announcement: Announcement) -> None:
        """Announce (or re-weigh) every prefix of the group."""

    async def withdraw(self, group: str, prefixes: tuple[IPNetwork, ...]) -> None:
        """Withdraw ``prefixes`` of ``group`` (those not announced are no error)."""

    async def announced(self) -> dict[IPNetwork, str]:
        """Every prefix announced by vrrpd now (by this run or an earlier one) -> its group."""

    async def peers(self) -> list[PeerState]:
        """The speaker's neighbours, their session and BFD state and what they were sent."""

    def describe(self) -> str:
        """Where the speaker is, for logs and ``vrrpctl status`` (e.g. its socket)."""


def build_speaker(engine: str, socket: Path) -> Speaker:
    """The adapter for ``engine`` (the config's ``bgp.engine``, one of
    :data:`vrrpd.config.model.SPEAKER_ENGINES`) at its control ``socket``."""
    from vrrpd.kernel.frr import FrrSpeaker

    engines: dict[str, type[FrrSpeaker]] = {"frr": FrrSpeaker}
    return engines[engine](socket)


async def probe(speaker: Speaker) -> str:
    """``vrrpd --check-config``: connect and list the neighbours, or SpeakerError."""
    await speaker.open()
    try:
        peers = await speaker.peers()
    finally:
        await speaker.close()
    sessions = ", ".join(f"{p.address} {p.state} (BFD {p.bfd or 'off'})" for p in peers)
    return f"{speaker.describe()}: reachable; neighbours: {sessions or 'none configured'}"
