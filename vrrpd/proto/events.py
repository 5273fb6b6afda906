"""Inputs to and outputs from the VRRP state machine (:mod:`vrrpd.proto.router`).

Events go in through ``VirtualRouter.handle(event, now)``; actions come back.  The driver
executes the *critical* actions (:class:`SendAdvert`, :class:`AddVips`, :class:`RemoveVips`,
:class:`Announce`) first and in order; :class:`Transition`, :class:`Dropped`,
:class:`ForeignAdvert`, :class:`Mismatch` and :class:`Notice` are for subscribers (logs,
notify hooks, metrics, config sync) and never delay a takeover.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from vrrpd.proto.packet import Advertisement, DropReason, IPAddress

if TYPE_CHECKING:
    from vrrpd.proto.router import RouterParams


class State(StrEnum):
    """RFC 5798 §6.4 states, plus FAULT (a tracker or the link says we must not serve)."""

    INITIALIZE = "INIT"
    BACKUP = "BACKUP"
    MASTER = "MASTER"
    FAULT = "FAULT"


class Cause(StrEnum):
    """Why a transition happened, for code that must tell (sync groups, notify hooks, tests);
    the transition's ``reason`` says the same for a human, with the details."""

    STARTUP = "startup"  # RFC 5798 §6.4.1: Startup event (backup, or the owner as master)
    SHUTDOWN = "shutdown"  # RFC 5798 §6.4.2/§6.4.3: Shutdown event
    MASTER_DOWN = "master_down"  # Master_Down_Timer fired: no advert heard (§6.4.2)
    MASTER_RESIGNED = "master_resigned"  # the master sent priority 0 (Skew_Time, §6.4.2)
    PREEMPT = "preempt"  # a lower-priority master preempted (§6.4.2), after preempt_delay
    BETTER_MASTER = "better_master"  # an advert with higher priority / address (§6.4.3)
    HANDED_OVER = "handed_over"  # operator demote / maintenance: the peer took over
    OPERATOR = "operator"  # promoted, or maintenance with no peer taking over
    FAULT = "fault"  # a tracker, the link or a sync-group sibling failed
    RECOVERED = "recovered"  # the last fault cleared
    SYNC_GROUP = "sync_group"  # a sync-group sibling went MASTER or BACKUP


class AdminMode(StrEnum):
    """Operator overrides set by ``vrrpctl`` (persisted by the daemon)."""

    NORMAL = "normal"
    DEMOTED = "demoted"  # hand over, then stay BACKUP without preempting until resume
    PROMOTED = "promoted"  # take mastership now and keep it (advertise priority 254)
    MAINTENANCE = "maintenance"  # hand over, then never become master


# ---- events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Startup:
    """RFC 5798 §6.4.1: the Startup event."""


@dataclass(frozen=True, slots=True)
class Shutdown:
    """RFC 5798 §6.4.2/§6.4.3: the Shutdown event (a master resigns with priority 0)."""


@dataclass(frozen=True, slots=True)
class AdvertReceived:
    """A well-formed ADVERTISEMENT for our VRID from ``source`` (the IP source address)."""

    advert: Advertisement
    source: IPAddress


@dataclass(frozen=True, slots=True)
class PriorityChanged:
    """Trackers changed the effective priority (already clamped to 1..254)."""

    priority: int


@dataclass(frozen=True, slots=True)
class FaultChanged:
    """A fault source (``track:NAME``, ``link``, ``group:NAME``) failed or recovered."""

    source: str
    faulted: bool


@dataclass(frozen=True, slots=True)
class AdminChanged:
    mode: AdminMode


@dataclass(frozen=True, slots=True)
class GroupState:
    """A sync-group sibling went MASTER or BACKUP (not FAULT: that is a :class:`FaultChanged`)."""

    group: str
    state: State


@dataclass(frozen=True, slots=True)
class Reconfigure:
    """A reload changed the instance in place (same VRID, interface, version), or its source
    address changed: the router takes the new parameters and keeps its state."""

    params: RouterParams


Event = (Startup | Shutdown | AdvertReceived | PriorityChanged | FaultChanged | AdminChanged
         | GroupState | Reconfigure)


# ---- actions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendAdvert:
    """Send one ADVERTISEMENT carrying ``priority`` (0 = resign, RFC 5798 §6.4.3)."""

    priority: int


@dataclass(frozen=True, slots=True)
class AddVips:
    pass


@dataclass(frozen=True, slots=True)
class RemoveVips:
    pass


@dataclass(frozen=True, slots=True)
class Announce:
    """Gratuitous ARP / unsolicited NA for every VIP (RFC 5798 §6.4.1 / §6.4.2)."""


@dataclass(frozen=True, slots=True)
class Transition:
    old: State
    new: State
    reason: str  # for the operator: what happened, with addresses and priorities
    cause: Cause


@dataclass(frozen=True, slots=True)
class DualMaster:
    """Another router acts as master while we do, and we stay master: we announce the VIPs
    again (an :class:`Announce` comes with this), at most once per Master_Down_Interval."""

    source: IPAddress


@dataclass(frozen=True, slots=True)
class Dropped:
    """A well-formed advert that this instance refuses; ``detail`` is for the log."""

    reason: DropReason
    source: IPAddress
    detail: str


@dataclass(frozen=True, slots=True)
class ForeignAdvert:
    """An advert heard, and obeyed, from a router that is not one of the listed ``peers``.

    A rogue or misconfigured router on the LAN: the driver counts and reports it.  With
    ``strict_peers`` such adverts never get here (they are dropped on receipt).
    """

    source: IPAddress
    priority: int


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A processed advert that disagrees with our configuration (RFC 5798 §7.1 "SHOULD log").

    ``what`` names the disagreement (one counter each); ``detail`` is for the log, which the
    driver rate-limits per ``what`` and source.
    """

    what: str
    source: IPAddress
    detail: str


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the operator should read in the log that is not a state change."""

    message: str


Action = (SendAdvert | AddVips | RemoveVips | Announce | Transition | Dropped | ForeignAdvert
          | Mismatch | DualMaster | Notice)
