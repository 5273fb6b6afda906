"""The VRRP state machine of one virtual router, pure and clock-injected (RFC 5798 §6).

``VirtualRouter.handle(event, now)`` and ``handle_timer(now)`` return the actions to execute;
``next_deadline()`` says when ``handle_timer`` must run next.  Nothing here does I/O or reads a
clock, so every RFC rule is a table test and a whole failover runs in milliseconds of test time.

Beyond RFC 5798 (as clarified by RFC 9568) this adds what an HA pair needs:

* FAULT: a failing tracker or link keeps the router from serving.  A master resigns with one
  priority-0 advert and drops its VIPs; in FAULT the router never becomes master.
* Operator modes (:class:`~vrrpd.proto.events.AdminMode`).  A planned hand-over is
  make-before-break: the master sends priority 0 (every interval, in case one is lost) but
  *keeps* its VIPs until the new master's first advert arrives, so the peer serves before this
  node stops serving.  A DEMOTED router advertises priority 1, so it never unseats a live master.
* Sync groups: a sibling's MASTER/BACKUP transition is fed in as :class:`GroupState`.
* The address owner (priority 255) holds the VIPs as its own, real addresses (RFC 5798 §1,
  "IPvX Address Owner"): it never gives them up for another router's advert (one claiming
  priority 255 too is discarded, reported and counted), and stopping or FAULT sends priority 0
  but leaves the addresses where they are.
* A master that steps down for a better master sends one last advert (its own priority)
  first.  RFC 5798 §6.4.3 steps down silently, but then the winner may never learn that there
  were two masters: after a partition heals, whichever advert crosses first decides, and if
  the winner's does, the loser goes quiet while hosts still send it the VIP traffic (it
  announced the VIPs while cut off).  The winner answers the lower priority (RFC 9568
  §6.4.3) and announces the VIPs again, so the hosts come back (:meth:`VirtualRouter._reclaim`,
  :class:`~vrrpd.proto.events.DualMaster`).  Not priority 0: a backup would take that for a
  resigning master and take over after Skew_Time.
* VRRPv3 over IPv4 has two checksum forms (RFC 9568 §5.2.8): ``RouterParams.checksum`` says
  which are accepted, and ``auto`` sends the form its peer sends (:attr:`send_form`).
* Every :class:`~vrrpd.proto.events.Transition` carries a :class:`~vrrpd.proto.events.Cause`;
  sync groups, for one, tell their own moves apart by it.
* Known peers (``peers``): an advert from any other router is obeyed as the RFC says but
  reported (:class:`ForeignAdvert`), a master that is not a listed peer is a *foreign master*
  in transition reasons and :attr:`VirtualRouter.foreign_master`.  Dropping unlisted sources
  (``strict_peers``) is receive-side filtering, done before the state machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from vrrpd.proto.events import (
    Action,
    AddVips,
    AdminChanged,
    AdminMode,
    AdvertReceived,
    Announce,
    Cause,
    Dropped,
    DualMaster,
    Event,
    FaultChanged,
    ForeignAdvert,
    GroupState,
    Mismatch,
    Notice,
    PriorityChanged,
    Reconfigure,
    RemoveVips,
    SendAdvert,
    Shutdown,
    Startup,
    State,
    Transition,
)
from vrrpd.proto.numbers import OWNER_PRIORITY
from vrrpd.proto.packet import (
    AUTH_NONE,
    AUTH_SIMPLE_TEXT,
    Advertisement,
    ChecksumForm,
    ChecksumMode,
    DropReason,
)
from vrrpd.proto.timers import master_down_interval, skew_time

IPAddress = IPv4Address | IPv6Address

PROMOTED_PRIORITY = 254  # highest priority a non-owner may advertise
DEMOTED_PRIORITY = 1  # lowest priority that still serves (0 means "resigning")


@dataclass(frozen=True)
class RouterParams:
    """What the state machine needs of an instance's configuration."""

    version: int
    vrid: int
    priority: int
    advert_interval_cs: int  # Advertisement_Interval, centiseconds
    addresses: tuple[IPAddress, ...]  # the virtual addresses, as advertised
    # Our source address, the RFC 5798 §6.4.3 tie-breaker; None while the interface has none
    # (the driver keeps the router in FAULT then).
    primary_address: IPAddress | None
    preempt: bool = True
    preempt_delay: float = 0.0  # seconds a backup waits before preempting a lower master
    peers: tuple[IPAddress, ...] = ()  # the legitimate other routers; () = not listed
    checksum: ChecksumMode = ChecksumMode.AUTO  # VRRPv3 over IPv4: forms sent and accepted
    accept_mode: bool = True  # RFC 5798 §6.1 Accept_Mode (vrrpd's default: True, see accepts)
    # VRRPv2 Simple Text Password (packet.simple_text_auth); None = auth type 0
    auth_data: bytes | None = None

    @property
    def v3_ipv4(self) -> bool:
        """VRRPv3 over IPv4, the one case with two checksum forms (RFC 9568 §5.2.8)."""
        return self.version == 3 and isinstance(self.addresses[0], IPv4Address)


class VirtualRouter:
    """One VRRP virtual router (one VRID on one interface, one address family)."""

    def __init__(self, params: RouterParams) -> None:
        self.params = params
        self.state = State.INITIALIZE
        self.admin = AdminMode.NORMAL
        self.faults: set[str] = set()
        self.effective_priority = params.priority
        self.master_adver_int = params.advert_interval_cs  # Master_Adver_Interval (cs)
        self.master_address: IPAddress | None = None
        self.group_hold = False  # a sync-group sibling went BACKUP: do not preempt
        self._master_down_at: float | None = None  # Master_Down_Timer
        self._adver_at: float | None = None  # Adver_Timer
        self._preempt_at: float | None = None  # preempt_delay running
        self._handover_at: float | None = None  # hand-over started, waiting for the peer
        self._resigned_by: IPAddress | None = None  # master that sent priority 0
        self._preempting: tuple[IPAddress, int] | None = None  # lower master being preempted
        self.send_form: ChecksumForm = params.checksum.first_form  # v3 IPv4 checksum we send
        self._master_since = -float("inf")  # when we last became MASTER
        self._reclaimed_at = -float("inf")  # when we last re-announced for a dual master

    # ---- derived values ----------------------------------------------------------------

    @property
    def priority(self) -> int:
        """The priority we advertise and compare with (RFC 5798 §6.4.3).

        DEMOTED advertises 1, even for the owner: a demoted router that had to take over (no
        advert heard for Master_Down_Interval, on a lossy link too) then loses to any live
        master at once instead of unseating it, and yields to a peer that comes up later.
        """
        if self.admin is AdminMode.DEMOTED:
            return DEMOTED_PRIORITY
        if self.owner:
            return OWNER_PRIORITY
        if self.admin is AdminMode.PROMOTED:
            return PROMOTED_PRIORITY
        return self.effective_priority

    @property
    def preempt(self) -> bool:
        """Preempt_Mode after operator overrides; the owner always preempts (RFC 5798 §6.1)."""
        if self.admin is AdminMode.PROMOTED:
            return True
        if self.admin is not AdminMode.NORMAL or self.group_hold:
            return False
        return self.params.preempt or self.owner

    @property
    def may_be_master(self) -> bool:
        return not self.faults and self.admin is not AdminMode.MAINTENANCE

    @property
    def handing_over(self) -> bool:
        return self._handover_at is not None

    def is_foreign(self, source: IPAddress) -> bool:
        """``source`` is not one of the listed ``peers`` (none listed: nobody is foreign)."""
        p = self.params
        return bool(p.peers) and source not in p.peers and source != p.primary_address

    @property
    def foreign_master(self) -> bool:
        """The router we take for master is not a listed peer (a rogue took the VRID)."""
        return (self.state is not State.MASTER and self.master_address is not None
                and self.is_foreign(self.master_address))

    def _who(self, source: IPAddress) -> str:
        """``source`` for a transition reason, marked when it is not a listed peer."""
        return (f"{source} (foreign master, not in peers)" if self.is_foreign(source)
                else str(source))

    def skew_time(self) -> float:
        return skew_time(self.params.version, self.priority, self.master_adver_int)

    def master_down_interval(self) -> float:
        return master_down_interval(self.params.version, self.priority, self.master_adver_int)

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must run next, or None when no timer is armed."""
        armed = [t for t in (self._master_down_at, self._adver_at, self._preempt_at,
                             self._handover_at) if t is not None]
        return min(armed, default=None)

    # ---- entry points ------------------------------------------------------------------

    def handle(self, event: Event, now: float) -> list[Action]:
        match event:
            case Startup():
                return self._startup(now)
            case Shutdown():
                return self._shutdown()
            case AdvertReceived(advert, source):
                return self._advert(advert, source, now)
            case PriorityChanged(priority):
                self.effective_priority = priority
                return self._announce_priority(now)
            case FaultChanged(source, faulted):
                return self._fault(source, faulted, now)
            case AdminChanged(mode):
                return self._admin(mode, now)
            case GroupState(group, state):
                return self._group(group, state, now)
            case Reconfigure(params):
                return self._reconfigure(params)
        raise TypeError(f"unknown event {event!r}")

    def handle_timer(self, now: float) -> list[Action]:
        """Fire every timer that is due at ``now``."""
        actions: list[Action] = []
        if self._handover_at is not None and now >= self._handover_at:
            actions += self._handover_timeout(now)
        if self.state is State.BACKUP and (
                self._due(self._master_down_at, now) or self._due(self._preempt_at, now)):
            actions += self._master_down(now)
        if self.state is State.MASTER and self._due(self._adver_at, now):
            # RFC 5798 §6.4.3: "Send an ADVERTISEMENT; Reset the Adver_Timer to
            # Advertisement_Interval" - from now, the moment the advert is sent, so a late fire
            # delays the following adverts instead of bunching them up to catch up.
            self._adver_at = now + self.params.advert_interval_cs / 100
            actions.append(SendAdvert(0 if self.handing_over else self.priority))
        return actions

    @staticmethod
    def _due(deadline: float | None, now: float) -> bool:
        return deadline is not None and now >= deadline

    # ---- transitions -------------------------------------------------------------------

    def _become_master(self, now: float, cause: Cause, reason: str) -> list[Action]:
        """RFC 5798 §6.4.1/§6.4.2: send an ADVERTISEMENT, announce, arm Adver_Timer.

        The VIPs are added and announced *before* the advert goes out so that the old master,
        which drops its VIPs on hearing us, never leaves clients without an answer.
        """
        old = self.state
        self.state = State.MASTER
        self.master_address = self.params.primary_address
        self.group_hold = False
        self._master_down_at = self._preempt_at = self._handover_at = None
        self._resigned_by = self._preempting = None
        self._adver_at = now + self.params.advert_interval_cs / 100
        self._master_since = now
        return [AddVips(), Announce(), SendAdvert(self.priority),
                Transition(old, State.MASTER, reason, cause)]

    @property
    def accepts(self) -> bool:
        """Whether, as Master, this host accepts packets addressed to the VIPs.

        RFC 5798 §6.4.3: "MUST accept packets addressed to the IPvX address(es) associated
        with the virtual router if it is the IPvX address owner or if Accept_Mode is True.
        Otherwise, MUST NOT accept these packets."  RFC 3768 §6.4.3 (VRRPv2, which has no
        Accept_Mode): "MUST NOT accept packets addressed to the IP address(es) associated with
        the virtual router if it is not the IP address owner" - ``accept_mode: false`` does
        that; vrrpd's default True (HAProxy serves on the VIPs) is a documented deviation.
        Neighbour discovery for the VIPs is answered either way (§6.4.3: "MUST respond").
        """
        return self.owner or self.params.accept_mode

    @property
    def owner(self) -> bool:
        """The IPvX Address Owner (RFC 5798 §1): priority 255, the VIPs are its own."""
        return self.params.priority == OWNER_PRIORITY

    def _release(self) -> list[Action]:
        """Stop accepting for the VIPs on leaving MASTER (RFC 5798 §6.4.3), unless they are
        this host's own addresses (the owner): those stay, whatever the state."""
        return [] if self.owner else [RemoveVips()]

    def _become_backup(self, now: float, cause: Cause, reason: str, *, resign: bool = False
                       ) -> list[Action]:
        """Enter BACKUP and arm Master_Down_Timer (RFC 5798 §6.4.1, §6.4.3)."""
        old = self.state
        actions: list[Action] = []
        if old is State.MASTER:
            if resign:
                actions.append(SendAdvert(0))
            actions += self._release()
        self.state = State.BACKUP
        self._adver_at = self._handover_at = self._preempt_at = None
        self._master_down_at = now + self.master_down_interval()
        actions.append(Transition(old, State.BACKUP, reason, cause))
        return actions

    def _enter_fault(self, reason: str) -> list[Action]:
        old = self.state
        actions: list[Action] = [SendAdvert(0), *self._release()] if old is State.MASTER else []
        self.state = State.FAULT
        self._master_down_at = self._adver_at = self._preempt_at = self._handover_at = None
        actions.append(Transition(old, State.FAULT, reason, Cause.FAULT))
        return actions

    # ---- event handlers ----------------------------------------------------------------

    def _startup(self, now: float) -> list[Action]:
        """RFC 5798 §6.4.1 (Initialize): the owner becomes master, everyone else backup."""
        if self.state is not State.INITIALIZE:
            return []
        self.master_adver_int = self.params.advert_interval_cs
        if self.faults:
            return self._enter_fault(f"fault at startup: {', '.join(sorted(self.faults))}")
        if self.may_be_master and self.priority == OWNER_PRIORITY:
            return self._become_master(now, Cause.STARTUP,
                                       "address owner (priority 255) starting up")
        if self.may_be_master and self.admin is AdminMode.PROMOTED:
            return self._become_master(now, Cause.OPERATOR, "promoted by operator")
        return self._become_backup(now, Cause.STARTUP, "startup")

    def _shutdown(self) -> list[Action]:
        """RFC 5798 §6.4.3: a master sends one priority-0 advert, then releases its VIPs."""
        old = self.state
        actions: list[Action] = [SendAdvert(0), *self._release()] if old is State.MASTER else []
        self.state = State.INITIALIZE
        self._master_down_at = self._adver_at = self._preempt_at = self._handover_at = None
        if old is not State.INITIALIZE:
            actions.append(Transition(old, State.INITIALIZE, "shutdown", Cause.SHUTDOWN))
        return actions

    def _advert(self, adv: Advertisement, source: IPAddress, now: float) -> list[Action]:
        refused = self._refuse(adv, source)
        if refused is not None:
            return [refused]
        foreign = self.is_foreign(source)
        actions: list[Action] = [ForeignAdvert(source, adv.priority)] if foreign else []
        actions += self._compare_addresses(adv, source)
        if not foreign:
            actions += self._learn_checksum_form(adv, source)
        if self.state is State.BACKUP:
            return actions + self._backup_rx(adv, source, now)
        if self.state is State.MASTER:
            return actions + self._master_rx(adv, source, now)
        if adv.priority:
            self.master_address = source
        return actions

    def _learn_checksum_form(self, adv: Advertisement, source: IPAddress) -> list[Action]:
        """``v3_checksum: auto`` sends the form the peer sends (keepalived 2.2 and FRR use the
        pseudo-header form and drop the RFC 9568 one, RFC 9568 §5.2.8).  Never learnt from a
        foreign router: a rogue must not switch the pair's form."""
        p = self.params
        if (not p.v3_ipv4 or p.checksum is not ChecksumMode.AUTO
                or adv.checksum_form is self.send_form):
            return []
        self.send_form = adv.checksum_form
        return [Notice(f"peer {source} uses the {adv.checksum_form} checksum form; sending it "
                       "too (v3_checksum: auto)")]

    def _refuse(self, adv: Advertisement, source: IPAddress) -> Dropped | None:
        """RFC 5798 §7.1 / RFC 3768 §7.1 checks that need this instance's configuration."""
        p = self.params
        if p.v3_ipv4 and not p.checksum.accepts(adv.checksum_form):
            return Dropped(DropReason.CHECKSUM_FORM, source,
                           f"checksum in {adv.checksum_form} form, v3_checksum is "
                           f"{p.checksum}; set v3_checksum: auto to accept both")
        if adv.version != p.version:
            return Dropped(DropReason.VERSION, source,
                           f"VRRPv{adv.version} advert, this instance runs VRRPv{p.version}")
        if p.version == 2:
            auth_type = AUTH_NONE if p.auth_data is None else AUTH_SIMPLE_TEXT
            if adv.auth_type != auth_type:  # RFC 3768 §7.1 "MUST verify that the Auth Type"
                return Dropped(DropReason.AUTH_TYPE, source,
                               f"auth type {adv.auth_type}, ours is {auth_type} "
                               f"({'auth_pass set' if auth_type else 'no auth_pass'}); set "
                               "the same on both routers")
            if p.auth_data is not None and adv.auth_data != p.auth_data:
                return Dropped(DropReason.AUTH_DATA, source,
                               "simple-text password differs from our auth_pass (RFC 2338 "
                               "§7.1)")
        if p.version == 2 and adv.max_adver_int != p.advert_interval_cs:
            return Dropped(DropReason.INTERVAL, source,
                           f"advert interval {adv.max_adver_int / 100:g}s, "
                           f"ours {p.advert_interval_cs / 100:g}s (RFC 3768 §7.1)")
        if self.owner and adv.priority == OWNER_PRIORITY:
            return Dropped(DropReason.OWNER, source,
                           f"also claims to own the addresses of VRID {p.vrid} (priority 255); "
                           "this router is their owner and keeps them (RFC 5798 §1, §5.2.4): "
                           "give the other router a priority below 255")
        if _same_addresses(adv.addresses, p.addresses):
            return None
        if p.version == 2 and adv.priority != OWNER_PRIORITY:
            return Dropped(DropReason.ADDRESS_LIST, source,
                           f"address list [{_addresses(adv.addresses)}] differs from ours "
                           f"[{_addresses(p.addresses)}] and the sender is not the address "
                           "owner (RFC 3768 §7.1)")
        if p.peers and self.is_foreign(source):
            return Dropped(DropReason.CONFLICT, source,
                           f"advertises VRID {p.vrid} with [{_addresses(adv.addresses)}], ours "
                           f"are [{_addresses(p.addresses)}], and is not one of our peers: two "
                           "virtual routers share this VRID on the LAN; give one of them "
                           "another vrid")
        return None

    def _compare_addresses(self, adv: Advertisement, source: IPAddress) -> list[Action]:
        """RFC 5798 §7.1: an address list that differs from ours "SHOULD log the event", and
        the advert is processed (RFC 3768 §7.1: the owner's is, in VRRPv2), so two routers
        whose lists differ - one extra VIP on one side, a half-applied change - still elect
        one master.  (With ``peers`` listed, a stranger's other list is refused earlier, as a
        VRID conflict.)"""
        p = self.params
        if _same_addresses(adv.addresses, p.addresses):
            return []
        return [Mismatch(
            "address_list", source,
            f"advertises VRID {p.vrid} with [{_addresses(adv.addresses)}], ours are "
            f"[{_addresses(p.addresses)}]; processed anyway (RFC 5798 §7.1). Make the VIP "
            "lists equal on both nodes, or, if that router is not our peer, two virtual "
            f"routers share VRID {p.vrid} on this LAN: give one of them another vrid")]

    def _backup_rx(self, adv: Advertisement, source: IPAddress, now: float) -> list[Action]:
        """RFC 5798 §6.4.2, receiving an ADVERTISEMENT in Backup."""
        if adv.priority == 0:
            self._master_down_at = now + self.skew_time()
            self._resigned_by, self._preempting = source, None
            return []
        lower = adv.priority < self.priority
        if lower and self.preempt and self.params.preempt_delay == 0:
            self._preempting = (source, adv.priority)
            return []  # discard: Master_Down_Timer runs out and we preempt
        if lower and self.preempt:
            if self._preempt_at is None:
                self._preempt_at = now + self.params.preempt_delay
        else:
            self._preempt_at = None
        if self.params.version == 3:
            self.master_adver_int = adv.max_adver_int  # v3 Backup learns the interval
        self.master_address = source
        self._resigned_by = self._preempting = None
        self._master_down_at = now + self.master_down_interval()
        return []

    def _master_rx(self, adv: Advertisement, source: IPAddress, now: float) -> list[Action]:
        """RFC 5798 §6.4.3 as amended by RFC 9568, receiving an ADVERTISEMENT in Master."""
        if adv.priority == 0:
            self._adver_at = now + self.params.advert_interval_cs / 100
            return [SendAdvert(self.priority)]
        if self.handing_over:
            self._learn(adv, source)
            return self._become_backup(now, Cause.HANDED_OVER,
                                       f"handed over to {self._who(source)}")
        if adv.priority > self.priority or (
                adv.priority == self.priority
                and (self.params.primary_address is None
                     or source.packed > self.params.primary_address.packed)):
            self._learn(adv, source)
            why = ("higher priority" if adv.priority > self.priority
                   else "same priority, higher address")
            farewell: list[Action] = [SendAdvert(self.priority)]  # see the module docstring
            return farewell + self._become_backup(
                now, Cause.BETTER_MASTER, f"{self._who(source)} is master with {why} "
                f"({adv.priority} vs ours {self.priority})")
        # RFC 9568 §6.4.3: answer a lower-priority master at once so it steps down now.
        self._adver_at = now + self.params.advert_interval_cs / 100
        return [SendAdvert(self.priority), *self._reclaim(source, now)]

    def _reclaim(self, source: IPAddress, now: float) -> list[Action]:
        """Announce the VIPs again after hearing another router acting as master for them.

        Two masters at once (a partition that healed, or a peer that could not read our
        adverts - keepalived 2.2 drops VRRPv3 adverts in the RFC 9568 checksum form that
        ``v3_checksum: auto`` sends until it hears the peer) means the other one added our VIPs
        and sent gratuitous ARPs / NAs for them: hosts now send VIP traffic to its MAC.  It
        steps down on our answer (RFC 9568 §6.4.3), or we hear the last advert it sends as it
        steps down (see the module docstring), but nothing tells the hosts to come back, so
        they black-hole the VIPs until their caches expire.  We announce again, at most once per
        Master_Down_Interval, like keepalived's ``garp_lower_prio_repeat``.  Not while we are
        new in MASTER (less than a Master_Down_Interval): that advert is most likely the last
        one of the master we just preempted, and we have just announced the VIPs.
        """
        mdi = self.master_down_interval()
        if now - self._master_since < mdi or now - self._reclaimed_at < mdi:
            return []
        self._reclaimed_at = now
        return [Announce(), DualMaster(source)]

    def _reconfigure(self, params: RouterParams) -> list[Action]:
        """New parameters in place (reload, or a new source address); the state is kept.  A
        new configured priority resets the effective one (the trackers apply their weights
        again right after); a new ``v3_checksum`` restarts the form learning."""
        old, self.params = self.params, params
        if params.priority != old.priority:
            self.effective_priority = params.priority
        if params.checksum is not old.checksum:
            self.send_form = params.checksum.first_form
        return []

    def _learn(self, adv: Advertisement, source: IPAddress) -> None:
        self.master_address = source
        if self.params.version == 3:
            self.master_adver_int = adv.max_adver_int

    def _master_down(self, now: float) -> list[Action]:
        """RFC 5798 §6.4.2: Master_Down_Timer fired (or the preempt delay ran out)."""
        if not self.may_be_master:
            self._master_down_at = self._preempt_at = None
            return []
        if not self.preempt:
            # Preempt_Mode went False (operator demote, sync-group hold) while we were about to
            # preempt a live lower-priority master: §6.4.2 now accepts it, so follow it.
            self._preempt_at = None
            if self._preempting is not None:
                self._preempting = None
                self._master_down_at = now + self.master_down_interval()
            if not self._due(self._master_down_at, now):
                return []
        if self._preempt_at is not None and now >= self._preempt_at:
            cause, reason = Cause.PREEMPT, (
                f"preempting lower-priority master {self.master_address} after "
                f"preempt_delay {self.params.preempt_delay:g}s")
        elif self._resigned_by is not None:
            cause = Cause.MASTER_RESIGNED
            reason = f"master {self._who(self._resigned_by)} resigned (priority 0)"
        elif self._preempting is not None:
            source, priority = self._preempting
            cause = Cause.PREEMPT
            reason = f"preempting lower-priority master {source} ({priority} < {self.priority})"
        else:
            cause, reason = Cause.MASTER_DOWN, (
                f"no advert from master {self.master_address or '(none heard)'} for "
                f"{self.master_down_interval():.3f}s (Master_Down_Interval)")
        return self._become_master(now, cause, reason)

    def _announce_priority(self, now: float) -> list[Action]:
        """Tell the peer about a priority change at once instead of at the next Adver_Timer."""
        if self.state is State.MASTER and not self.handing_over:
            self._adver_at = now + self.params.advert_interval_cs / 100
            return [SendAdvert(self.priority)]
        return []

    def _fault(self, source: str, faulted: bool, now: float) -> list[Action]:
        if faulted:
            self.faults.add(source)
        else:
            self.faults.discard(source)
        if self.state is State.INITIALIZE:
            return []
        if self.faults and self.state is not State.FAULT:
            return self._enter_fault(f"fault: {source}")
        if not self.faults and self.state is State.FAULT:
            self.master_adver_int = self.params.advert_interval_cs
            return self._become_backup(now, Cause.RECOVERED, f"recovered: {source}")
        return []

    def _admin(self, mode: AdminMode, now: float) -> list[Action]:
        old, self.admin = self.admin, mode
        if self.state is State.MASTER and mode in (AdminMode.DEMOTED, AdminMode.MAINTENANCE):
            return self._start_handover(now)
        if self.state is State.BACKUP and mode is AdminMode.PROMOTED:
            return self._become_master(now, Cause.OPERATOR, "promoted by operator")
        if self.state is State.BACKUP and self._master_down_at is None and self.may_be_master:
            self._master_down_at = now + self.master_down_interval()
        if self.state is State.MASTER and old is not mode:
            if self.handing_over:  # resumed before anyone took over
                self._handover_at = None
            return self._announce_priority(now)
        return []

    def _start_handover(self, now: float) -> list[Action]:
        """Planned hand-over, make-before-break.

        Send priority 0 so the backup takes over after only its Skew_Time (RFC 5798 §6.4.2),
        but keep the VIPs until its first advert arrives.  Priority 0 is repeated at every
        Adver_Timer so that one lost packet does not cancel the hand-over (a backup re-arms
        Skew_Time, a new master answers at once, §6.4.3).  If nobody has taken over within a
        Master_Down_Interval of the lowest priority, stay master.
        """
        if self.handing_over:
            return []
        self._adver_at = now + self.params.advert_interval_cs / 100
        self._handover_at = now + master_down_interval(self.params.version, 1,
                                                       self.params.advert_interval_cs)
        return [SendAdvert(0)]

    def _handover_timeout(self, now: float) -> list[Action]:
        self._handover_at = None
        if self.state is not State.MASTER:
            return []
        if self.admin is AdminMode.MAINTENANCE:
            return self._become_backup(now, Cause.OPERATOR,
                                       "maintenance: no peer took over; VIPs released")
        self._adver_at = now
        return [Notice("hand-over failed: no peer took over; staying MASTER")]

    def _group(self, group: str, state: State, now: float) -> list[Action]:
        """keepalived-style sync groups: siblings follow each other to MASTER and BACKUP."""
        if state is State.MASTER:
            self.group_hold = False
            if self.state is State.BACKUP and self.may_be_master:
                return self._become_master(now, Cause.SYNC_GROUP,
                                           f"sync group {group}: a sibling became MASTER")
            return []
        if state is State.BACKUP:
            # Hold only where the group overrules us: a master that resigns, or a backup about
            # to preempt a live master.  A backup that lost on its own merits is not held, or
            # two siblings that both went BACKUP would hold each other for ever.
            if self.state is State.MASTER:
                self.group_hold = True
                return self._become_backup(now, Cause.SYNC_GROUP,
                                           f"sync group {group}: a sibling became BACKUP",
                                           resign=True)
            if self._preempting is not None or self._preempt_at is not None:
                self.group_hold = True
        return []


def _same_addresses(theirs: tuple[IPAddress, ...], ours: tuple[IPAddress, ...]) -> bool:
    """The same virtual addresses, in any order (RFC 5798 §7.1 compares the lists as sets);
    the common case, the same list in the same order, without building sets."""
    return theirs == ours or set(theirs) == set(ours)


def _addresses(addresses: tuple[IPAddress, ...]) -> str:
    return ", ".join(map(str, addresses))
