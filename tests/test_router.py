"""State-machine ring: one table test per rule of RFC 5798 §6 (as amended by RFC 9568),
RFC 3768 §6 where VRRPv2 differs, and the HA-pair extensions (FAULT, operator modes, sync
groups).  Time is a float the test chooses; nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address

import pytest

from vrrpd.proto.events import (
    Action,
    AddVips,
    AdminChanged,
    AdminMode,
    AdvertReceived,
    Announce,
    Dropped,
    FaultChanged,
    ForeignAdvert,
    GroupState,
    Mismatch,
    Notice,
    PriorityChanged,
    RemoveVips,
    SendAdvert,
    Shutdown,
    Startup,
    State,
    Transition,
)
from vrrpd.proto.packet import Advertisement, DropReason, IPAddress
from vrrpd.proto.router import RouterParams, VirtualRouter

OURS = IPv4Address("192.0.2.10")
PEER = IPv4Address("192.0.2.20")
LOWER_PEER = IPv4Address("192.0.2.5")
STRANGER = IPv4Address("192.0.2.99")
VIPS: tuple[IPAddress, ...] = (IPv4Address("192.0.2.100"),)
OTHER_VIPS: tuple[IPAddress, ...] = (IPv4Address("192.0.2.200"),)
PASS = b"1111\0\0\0\0"  # keepalived auth_pass 1111 (RFC 2338 §5.3.10: zero padded)

MDI_100 = 3.609375  # v3, priority 100, 100 cs: 3 * 1 s + (156 * 100 / 256) cs
TAKEOVER = [AddVips(), Announce()]  # what a new master does before it advertises


def make(*, priority: int = 100, version: int = 3, interval_cs: int = 100,
         **kwargs: object) -> VirtualRouter:
    """A router with our defaults, not yet started."""
    return VirtualRouter(RouterParams(version=version, vrid=51, priority=priority,
                                      advert_interval_cs=interval_cs, addresses=VIPS,
                                      primary_address=OURS, **kwargs))  # type: ignore[arg-type]


def backup(**kwargs: object) -> VirtualRouter:
    """A router that started at t=0 and is BACKUP."""
    router = make(**kwargs)
    router.handle(Startup(), 0.0)
    assert router.state is State.BACKUP
    return router


def started(**kwargs: object) -> VirtualRouter:
    """A router that started at t=0: BACKUP, or MASTER when it is the owner (priority 255)."""
    router = make(**kwargs)
    router.handle(Startup(), 0.0)
    return router


def master(**kwargs: object) -> VirtualRouter:
    """A router that started at t=0 and became MASTER at t=0 (operator promotion, then
    resumed), so every test's clock starts at 0 with the Adver_Timer due at 1 interval."""
    router = backup(**kwargs)
    router.handle(AdminChanged(AdminMode.PROMOTED), 0.0)
    router.handle(AdminChanged(AdminMode.NORMAL), 0.0)
    assert router.state is State.MASTER
    return router


def rx(router: VirtualRouter, priority: int, now: float, source: IPAddress = PEER, *,
       version: int | None = None, interval_cs: int = 100, auth_type: int = 0,
       addresses: tuple[IPAddress, ...] = VIPS, auth_data: bytes = bytes(8)) -> list[Action]:
    """Deliver one advert from ``source``."""
    advert = Advertisement(version or router.params.version, 51, priority, interval_cs,
                           addresses, auth_type, auth_data=auth_data)
    return router.handle(AdvertReceived(advert, source), now)


def critical(actions: list[Action]) -> list[Action]:
    """The actions the driver executes first (RFC-visible), without log/notify ones."""
    return [a for a in actions if isinstance(a, SendAdvert | AddVips | RemoveVips | Announce)]


def transitions(actions: list[Action]) -> list[tuple[State, State]]:
    return [(a.old, a.new) for a in actions if isinstance(a, Transition)]


def dropped(actions: list[Action]) -> list[DropReason]:
    return [a.reason for a in actions if isinstance(a, Dropped)]


# ---- Initialize ------------------------------------------------------------------------------


def test_startup_non_owner_becomes_backup() -> None:
    """RFC 5798 §6.4.1: "else ... Set Master_Adver_Interval to Advertisement_Interval; Set the
    Master_Down_Timer to Master_Down_Interval; Transition to the {Backup} state"."""
    router = make()
    actions = router.handle(Startup(), 0.0)
    assert critical(actions) == []
    assert transitions(actions) == [(State.INITIALIZE, State.BACKUP)]
    assert router.next_deadline() == MDI_100


def test_startup_owner_becomes_master() -> None:
    """RFC 5798 §6.4.1: "If the Priority = 255 ... Send an ADVERTISEMENT; ... broadcast a
    gratuitous ARP ...; Set the Adver_Timer to Advertisement_Interval; Transition to the
    {Master} state"."""
    router = make(priority=255)
    actions = router.handle(Startup(), 0.0)
    assert critical(actions) == [*TAKEOVER, SendAdvert(255)]
    assert transitions(actions) == [(State.INITIALIZE, State.MASTER)]
    assert router.next_deadline() == 1.0


@pytest.mark.parametrize(("version", "priority", "interval_cs", "skew", "mdi"), [
    (3, 100, 100, 0.609375, 3.609375),
    (3, 100, 10, 0.0609375, 0.3609375),
    (3, 200, 300, 0.65625, 9.65625),
    (3, 254, 100, 0.0078125, 3.0078125),
    (2, 100, 100, 0.609375, 3.609375),
    (2, 200, 300, 0.21875, 9.21875),
])
def test_skew_and_master_down_interval(version: int, priority: int, interval_cs: int,
                                       skew: float, mdi: float) -> None:
    """RFC 5798 §6.1: Skew_Time = "((256 - priority) * Master_Adver_Interval) / 256" cs and
    Master_Down_Interval = "(3 * Master_Adver_Interval) + Skew_time"; RFC 3768 §6.1 (v2):
    Skew_Time = "(256 - Priority) / 256" seconds, whatever the advertisement interval."""
    router = make(version=version, priority=priority, interval_cs=interval_cs)
    assert router.skew_time() == pytest.approx(skew)
    assert router.master_down_interval() == pytest.approx(mdi)


# ---- Backup ----------------------------------------------------------------------------------


def test_backup_master_down_timer_expiry() -> None:
    """RFC 5798 §6.4.2: "If the Master_Down_Timer fires, then: Send an ADVERTISEMENT ...
    Set the Adver_Timer to Advertisement_Interval; Transition to the {Master} state"."""
    router = backup()
    assert router.handle_timer(MDI_100 - 0.001) == []
    actions = router.handle_timer(MDI_100)
    assert critical(actions) == [*TAKEOVER, SendAdvert(100)]
    assert transitions(actions) == [(State.BACKUP, State.MASTER)]
    assert router.next_deadline() == MDI_100 + 1.0


def test_backup_priority_zero_takes_over_after_skew_only() -> None:
    """RFC 5798 §6.4.2: "If the Priority in the ADVERTISEMENT is zero, then: Set the
    Master_Down_Timer to Skew_Time"."""
    router = backup()
    assert rx(router, 0, 2.0) == []
    assert router.next_deadline() == 2.0 + 0.609375
    assert router.handle_timer(2.6) == []
    assert transitions(router.handle_timer(2.0 + 0.609375)) == [(State.BACKUP, State.MASTER)]


def test_backup_v3_learns_master_adver_interval() -> None:
    """RFC 5798 §6.4.2: "Set Master_Adver_Interval to Adver Interval contained in the
    ADVERTISEMENT; Recompute the Master_Down_Interval; Reset the Master_Down_Timer"."""
    router = backup()
    assert rx(router, 200, 1.0, interval_cs=300) == []
    assert router.master_adver_int == 300
    assert router.next_deadline() == 1.0 + 9.0 + 156 * 3 / 256


def test_backup_v2_drops_mismatched_interval() -> None:
    """RFC 3768 §7.1: "MUST verify that the Adver Interval in the packet is the same as the
    locally configured for this virtual router. If the above check fails, the receiver MUST
    discard the packet"."""
    router = backup(version=2)
    assert dropped(rx(router, 200, 1.0, interval_cs=300)) == [DropReason.INTERVAL]
    assert router.master_adver_int == 100
    assert router.next_deadline() == MDI_100


@pytest.mark.parametrize(("preempt", "deadline"), [(True, MDI_100), (False, 3.0 + MDI_100)])
def test_backup_lower_priority_and_preempt_mode(preempt: bool, deadline: float) -> None:
    """RFC 5798 §6.4.2: "If Preempt_Mode is False, or if the Priority in the ADVERTISEMENT is
    greater than or equal to the local Priority, then: ... Reset the Master_Down_Timer ...
    else: Discard the ADVERTISEMENT" - so a preempting backup takes over at Master_Down_Interval
    after the last advert it accepted."""
    router = backup(preempt=preempt)
    for t in (1.0, 2.0, 3.0):
        assert rx(router, 50, t) == []
    assert router.next_deadline() == deadline
    became_master = transitions(router.handle_timer(MDI_100)) == [(State.BACKUP, State.MASTER)]
    assert became_master is preempt


def test_backup_equal_priority_is_accepted() -> None:
    """RFC 5798 §6.4.2: an advert whose priority is "greater than or equal to the local
    Priority" resets the Master_Down_Timer; the address tie-break is only for a master."""
    router = backup()
    rx(router, 100, 3.0, LOWER_PEER)
    assert router.next_deadline() == 3.0 + MDI_100


def test_preempt_delay_waits_then_preempts() -> None:
    """preempt_delay (a vendor extension, not in the RFC): a backup accepts a lower master's
    adverts for ``preempt_delay`` seconds, then preempts it."""
    router = backup(preempt_delay=10.0)
    for t in range(1, 11):
        assert rx(router, 50, float(t)) == []
        assert router.handle_timer(float(t)) == []
    assert transitions(router.handle_timer(11.0)) == [(State.BACKUP, State.MASTER)]


@pytest.mark.parametrize("hold", [AdminChanged(AdminMode.DEMOTED),
                                  GroupState("g", State.BACKUP)])
@pytest.mark.parametrize(("preempt_delay", "last_advert"), [(0.0, 3), (10.0, 10)])
def test_preempt_cancelled_when_preempt_is_lost(hold: AdminChanged | GroupState,
                                                preempt_delay: float, last_advert: int) -> None:
    """A backup about to preempt a live lower master (its Master_Down_Timer or preempt_delay
    runs out within the interval) must not do so once it may no longer preempt - demoted by
    the operator, or held by its sync group: RFC 5798 §6.4.2 with Preempt_Mode now False
    accepts that master, so the timer that fires must not make us master."""
    router = backup(preempt_delay=preempt_delay)
    for t in range(1, last_advert + 1):
        rx(router, 50, float(t))
    router.handle(hold, last_advert + 0.5)
    deadline = router.next_deadline()
    assert deadline is not None and deadline <= last_advert + 1
    assert router.handle_timer(deadline) == []
    for t in range(last_advert + 1, last_advert + 15):
        rx(router, 50, float(t))
        assert router.handle_timer(float(t) + 0.5) == []
    assert router.state is State.BACKUP


# ---- Master ----------------------------------------------------------------------------------


def test_master_steps_down_for_higher_priority() -> None:
    """RFC 5798 §6.4.3: "If the Priority in the ADVERTISEMENT is greater than the local
    Priority ... Cancel Adver_Timer; Set Master_Adver_Interval to Adver Interval contained in
    the ADVERTISEMENT; ... Set Master_Down_Timer to Master_Down_Interval; Transition to the
    {Backup} state".  vrrpd sends one last advert first, so that a winner that has been
    master all along (a healed partition) hears there were two masters and re-announces."""
    router = master()
    actions = rx(router, 200, 0.5, interval_cs=200)
    assert critical(actions) == [SendAdvert(100), RemoveVips()]
    assert transitions(actions) == [(State.MASTER, State.BACKUP)]
    assert router.next_deadline() == 0.5 + 6.0 + 156 * 2 / 256


@pytest.mark.parametrize(("source", "steps_down"), [(PEER, True), (LOWER_PEER, False)])
def test_master_equal_priority_tie_break(source: IPAddress, steps_down: bool) -> None:
    """RFC 5798 §6.4.3: "or the Priority in the ADVERTISEMENT is equal to the local Priority
    and the primary IPvX Address of the sender is greater than the local primary IPvX Address"
    then step down; otherwise (RFC 9568) answer with an ADVERTISEMENT."""
    router = master()
    actions = rx(router, 100, 0.5, source)
    expected = [SendAdvert(100), RemoveVips()] if steps_down else [SendAdvert(100)]
    assert critical(actions) == expected
    assert router.state is (State.BACKUP if steps_down else State.MASTER)


@pytest.mark.parametrize("priority", [0, 50])
def test_master_answers_priority_zero_and_lower_at_once(priority: int) -> None:
    """RFC 5798 §6.4.3: "If the Priority in the ADVERTISEMENT is zero, then: Send an
    ADVERTISEMENT; Reset the Adver_Timer to Advertisement_Interval"; RFC 9568 §6.4.3, lower
    priority: "Discard the ADVERTISEMENT; Send an ADVERTISEMENT immediately to assert the
    {Active} state"."""
    router = master()
    assert critical(rx(router, priority, 0.7)) == [SendAdvert(100)]
    assert router.state is State.MASTER
    assert router.next_deadline() == 1.7


def test_master_priority_change_is_advertised_at_once() -> None:
    """A tracker lowering a master's priority is announced now, so a preempting backup
    starts its Master_Down_Interval now rather than an interval later."""
    router = master()
    assert router.handle(PriorityChanged(40), 0.3) == [SendAdvert(40)]
    assert router.next_deadline() == 1.3


@pytest.mark.parametrize(("make_router", "expected"), [
    (master, [SendAdvert(0), RemoveVips()]),
    (backup, []),
])
def test_shutdown(make_router: Callable[[], VirtualRouter], expected: list[Action]) -> None:
    """RFC 5798 §6.4.3: "If a Shutdown event is received, then: Cancel the Adver_Timer; Send
    an ADVERTISEMENT with Priority = 0; Transition to the {Initialize} state"; §6.4.2 (Backup):
    "Cancel the Master_Down_Timer"."""
    router = make_router()
    actions = router.handle(Shutdown(), 0.5)
    assert critical(actions) == expected
    assert router.state is State.INITIALIZE
    assert router.next_deadline() is None
    assert router.handle_timer(100.0) == []


def test_adver_timer_cadence_without_burst() -> None:
    """RFC 5798 §6.4.3: "If the Adver_Timer fires, then: Send an ADVERTISEMENT; Reset the
    Adver_Timer to Advertisement_Interval" - one advert per interval, and a driver that stalled
    for several intervals gets one advert, not the ones it missed."""
    router = master(interval_cs=10)
    sent = []
    for _ in range(20):
        now = router.next_deadline()
        assert now is not None
        sent.append(now)
        assert router.handle_timer(now) == [SendAdvert(100)]
    assert sent == pytest.approx([0.1 * (i + 1) for i in range(20)])
    stalled = sent[-1] + 0.75
    assert router.handle_timer(stalled) == [SendAdvert(100)]
    assert router.next_deadline() == pytest.approx(stalled + 0.1)


@pytest.mark.parametrize("late", [0.0, 0.004, 0.06, 0.25])
def test_adver_timer_restarts_from_the_advert_sent(late: float) -> None:
    """RFC 5798 §6.4.3: "Reset the Adver_Timer to Advertisement_Interval" when the advert is
    sent: a timer that fires ``late`` puts the next advert a whole interval after this one,
    never closer (no catching up on the old cadence)."""
    router = master(interval_cs=10)
    due = router.next_deadline()
    assert due is not None
    assert router.handle_timer(due + late) == [SendAdvert(100)]
    assert router.next_deadline() == pytest.approx(due + late + 0.1)


# ---- what the instance refuses ---------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "priority", "source", "advert", "reason"), [
    ({"version": 2}, 200, PEER, {"auth_type": 1}, DropReason.AUTH_TYPE),
    ({"version": 2, "auth_data": PASS}, 200, PEER, {}, DropReason.AUTH_TYPE),
    ({"version": 2, "auth_data": PASS}, 200, PEER,
     {"auth_type": 1, "auth_data": b"2222\0\0\0\0"}, DropReason.AUTH_DATA),
    ({"version": 2}, 200, PEER, {"addresses": OTHER_VIPS}, DropReason.ADDRESS_LIST),
    ({}, 200, PEER, {"version": 2}, DropReason.VERSION),
    ({"priority": 255}, 255, PEER, {}, DropReason.OWNER),
    ({"priority": 255, "version": 2}, 255, PEER, {}, DropReason.OWNER),
    ({"peers": (PEER,)}, 200, STRANGER, {"addresses": OTHER_VIPS}, DropReason.CONFLICT),
])
def test_refused_adverts(kwargs: dict[str, object], priority: int, source: IPAddress,
                         advert: dict[str, object], reason: DropReason) -> None:
    """RFC 3768 §7.1: "MUST verify that the Auth Type matches" (and, RFC 2338 §7.1, for a
    Simple Text Password that the Authentication Data does), and, for the address list,
    "If the packet was not generated by the address owner (Priority does not equal 255), the
    receiver MUST drop the packet"; RFC 5798 §7.1: the version must be ours; the address
    owner discards another router's claim to priority 255; with ``peers`` listed, another list
    from a router that is not one of them is a VRID conflict.  Refused adverts never touch the
    timers."""
    router = started(**kwargs)
    deadline = router.next_deadline()
    assert dropped(rx(router, priority, 1.0, source, **advert)) == [reason]  # type: ignore[arg-type]
    assert router.next_deadline() == deadline


def test_simple_text_password_accepted() -> None:
    """RFC 2338 §5.3.6.1: with the same password (auth type 1) the advert counts as usual."""
    router = started(version=2, auth_data=PASS)
    assert dropped(rx(router, 200, 1.0, auth_type=1, auth_data=PASS)) == []
    assert router.master_address == PEER


def mismatches(actions: list[Action]) -> list[str]:
    return [a.what for a in actions if isinstance(a, Mismatch)]


@pytest.mark.parametrize(("kwargs", "priority", "deadline"), [
    ({"version": 2}, 255, 1.0 + MDI_100),  # v2: the owner's list is processed
    ({}, 200, 1.0 + MDI_100),  # v3: any router, the first advert heard too
    ({}, 50, MDI_100),  # lower: §6.4.2 discards it and we preempt on the startup timer
    ({"peers": (PEER,)}, 200, 1.0 + MDI_100),  # a listed peer mid-reload
])
def test_address_list_mismatch_is_logged_and_processed(kwargs: dict[str, object],
                                                       priority: int, deadline: float) -> None:
    """RFC 3768 §7.1: a list mismatch from the address owner (priority 255) goes on being
    processed; RFC 5798 §7.1: "If the above check fails, the receiver SHOULD log the event
    and MAY indicate via network management that a misconfiguration was detected" - and the
    advert is processed by §6.4.2 as usual, from the first advert on."""
    router = backup(**kwargs)
    actions = rx(router, priority, 1.0, addresses=OTHER_VIPS)
    assert (dropped(actions), mismatches(actions)) == ([], ["address_list"])
    mismatch = next(a for a in actions if isinstance(a, Mismatch))
    assert "192.0.2.200" in mismatch.detail and "192.0.2.100" in mismatch.detail
    assert "another vrid" in mismatch.detail  # the duplicate-VRID hint is kept
    assert router.next_deadline() == deadline


def test_different_lists_still_elect_one_master() -> None:
    """Two routers whose VIP lists differ (a half-applied change) elect one master: the
    lower-priority master hears the higher one's advert, reports the mismatch and steps down
    (RFC 5798 §6.4.3), instead of both staying master for good."""
    higher, lower = master(priority=200), master()
    assert mismatches(rx(higher, 100, 0.5, LOWER_PEER, addresses=OTHER_VIPS)) == [
        "address_list"]
    assert higher.state is State.MASTER
    actions = rx(lower, 200, 0.5, addresses=OTHER_VIPS)
    assert mismatches(actions) == ["address_list"]
    assert transitions(actions) == [(State.MASTER, State.BACKUP)]


# ---- the address owner -----------------------------------------------------------------------


@pytest.mark.parametrize("source", [PEER, LOWER_PEER])
def test_owner_master_never_gives_up_its_addresses(source: IPAddress) -> None:
    """RFC 5798 §1: the IPvX Address Owner "has the virtual router's IPvX address(es) as real
    interface address(es)" and §5.2.4 gives it priority 255.  Another router claiming 255 -
    even from a higher address, which would win the §6.4.3 tie-break - is discarded and
    reported (a Dropped action: counted, logged with the source); the owner stays master and
    keeps advertising on its cadence."""
    router = started(priority=255)
    actions = rx(router, 255, 0.5, source)
    assert dropped(actions) == [DropReason.OWNER]
    assert critical(actions) == []
    assert router.state is State.MASTER
    assert router.next_deadline() == 1.0


def test_owner_answers_a_lower_master_at_once() -> None:
    """RFC 9568 §6.4.3: a lower-priority advert is answered at once; the owner keeps the
    addresses."""
    router = started(priority=255)
    assert critical(rx(router, 254, 0.5)) == [SendAdvert(255)]
    assert router.state is State.MASTER


@pytest.mark.parametrize("event", [Shutdown(), FaultChanged("track:haproxy", True),
                                   GroupState("g", State.BACKUP)])
def test_owner_leaving_master_keeps_the_host_addresses(event: Shutdown | FaultChanged
                                                       | GroupState) -> None:
    """RFC 5798 §6.4.3: Shutdown sends "an ADVERTISEMENT with Priority = 0" - so the backup
    takes over after Skew_Time - but the owner's addresses are the host's own (§1): it does
    not remove them, whether it stops, faults or its sync group resigns."""
    router = started(priority=255)
    assert router.state is State.MASTER
    actions = router.handle(event, 0.5)
    assert critical(actions) == [SendAdvert(0)]
    assert router.state is not State.MASTER


# ---- known peers (issue 12) ----------------------------------------------------------------


def test_rogue_master_is_obeyed_but_named_foreign() -> None:
    """With ``peers`` listed, a higher-priority advert from any other router is still obeyed
    (RFC 5798 §6.4.3: the master steps down) but reported: a :class:`ForeignAdvert` action,
    the transition reason says "foreign master", and the router knows its master is foreign.
    Dropping such adverts (``strict_peers``) happens before the state machine."""
    router = master(peers=(PEER,))
    actions = rx(router, 254, 0.5, STRANGER)
    assert actions[0] == ForeignAdvert(STRANGER, 254)
    assert router.state is State.BACKUP and router.foreign_master
    reason = next(a.reason for a in actions if isinstance(a, Transition))
    assert reason.startswith(f"{STRANGER} (foreign master, not in peers) is master")
    # The real peer takes over again (the rogue went quiet): no longer foreign.
    rx(router, 0, 0.6, STRANGER)  # the rogue resigns
    due = router.next_deadline()
    assert due is not None
    takeover = router.handle_timer(due)
    assert "foreign master" in next(a.reason for a in takeover if isinstance(a, Transition))
    assert not router.foreign_master  # we are master ourselves
    assert rx(router, 200, due + 0.1, PEER)[0] == SendAdvert(100)  # a listed peer: no report
    assert not router.foreign_master


@pytest.mark.parametrize(("peers", "source", "foreign"), [
    ((), STRANGER, False),  # no peers listed: nobody is foreign
    ((PEER,), PEER, False),
    ((PEER,), STRANGER, True),
])
def test_backup_follows_and_reports(peers: tuple[IPAddress, ...], source: IPAddress,
                                    foreign: bool) -> None:
    router = backup(peers=peers)
    actions = rx(router, 200, 1.0, source)
    assert actions == ([ForeignAdvert(source, 200)] if foreign else [])
    assert router.master_address == source and router.foreign_master is foreign


# ---- FAULT -----------------------------------------------------------------------------------


def test_master_to_fault_resigns_and_never_comes_back_alone() -> None:
    """FAULT (HA extension): a master resigns like a Shutdown (RFC 5798 §6.4.3, priority 0)
    and releases its VIPs; in FAULT no timer makes it master; recovery goes to BACKUP with a
    fresh Master_Down_Timer (RFC 5798 §6.4.1 Backup branch)."""
    router = master()
    actions = router.handle(FaultChanged("track:haproxy", True), 0.5)
    assert critical(actions) == [SendAdvert(0), RemoveVips()]
    assert transitions(actions) == [(State.MASTER, State.FAULT)]
    assert router.next_deadline() is None
    assert router.handle_timer(1000.0) == []
    assert critical(rx(router, 0, 1000.0)) == []
    assert critical(router.handle(GroupState("g", State.MASTER), 1000.0)) == []
    router.handle(FaultChanged("link", True), 1001.0)
    assert router.handle(FaultChanged("track:haproxy", False), 1002.0) == []  # link still down
    actions = router.handle(FaultChanged("link", False), 1003.0)
    assert transitions(actions) == [(State.FAULT, State.BACKUP)]
    assert router.next_deadline() == 1003.0 + MDI_100


def test_fault_at_startup() -> None:
    """A router whose tracker already fails starts in FAULT, not BACKUP or MASTER."""
    router = make(priority=255)
    router.handle(FaultChanged("link", True), 0.0)
    assert transitions(router.handle(Startup(), 0.0)) == [(State.INITIALIZE, State.FAULT)]
    assert router.next_deadline() is None


# ---- operator modes --------------------------------------------------------------------------


def test_demote_is_make_before_break() -> None:
    """DEMOTED as master: send priority 0 (the backup takes over after Skew_Time, RFC 5798
    §6.4.2) but keep the VIPs - repeating priority 0 at each Adver_Timer in case it was lost -
    until the new master is heard; then BACKUP and no preempting back."""
    router = master(priority=150)
    assert router.handle(AdminChanged(AdminMode.DEMOTED), 0.5) == [SendAdvert(0)]
    assert router.handle_timer(1.5) == [SendAdvert(0)]
    actions = rx(router, 100, 1.7)
    assert critical(actions) == [RemoveVips()]
    assert transitions(actions) == [(State.MASTER, State.BACKUP)]
    for t in range(2, 20):
        rx(router, 100, float(t))
        assert router.handle_timer(float(t) + 0.5) == []


def test_demoted_router_that_took_over_yields_to_a_live_master() -> None:
    """A demoted backup that hears nothing for Master_Down_Interval still takes over (RFC 5798
    §6.4.2: somebody must serve) but advertises priority 1, so the moment a live master is
    heard it loses the §6.4.3 comparison and steps down, rather than unseating that master."""
    router = backup(priority=150)
    router.handle(AdminChanged(AdminMode.DEMOTED), 0.5)
    actions = router.handle_timer(HANDOVER_TIMEOUT)
    assert critical(actions) == [*TAKEOVER, SendAdvert(1)]
    assert critical(rx(router, 100, 5.0)) == [SendAdvert(1), RemoveVips()]
    assert router.state is State.BACKUP


def run_timers(router: VirtualRouter, until: float) -> list[list[Action]]:
    """Fire the router's timer at each deadline up to ``until``, like a driver; the actions."""
    fired = []
    while (deadline := router.next_deadline()) is not None and deadline <= until:
        fired.append(router.handle_timer(deadline))
    return fired


HANDOVER_TIMEOUT = 3.0 + 255 / 256  # Master_Down_Interval of priority 1 at 1 s


@pytest.mark.parametrize(("mode", "at_timeout"), [
    (AdminMode.DEMOTED, [SendAdvert(1)]),
    (AdminMode.MAINTENANCE, [RemoveVips()]),
])
def test_hand_over_without_peer(mode: AdminMode, at_timeout: list[Action]) -> None:
    """If nobody takes over within a Master_Down_Interval of the lowest priority, a DEMOTED
    master keeps serving, says so and advertises priority 1 (so any peer that appears takes
    over); a MAINTENANCE master releases the VIPs anyway and never becomes master again, not
    even when no master is heard at all."""
    router = master(priority=150)
    router.handle(AdminChanged(mode), 0.5)
    fired = run_timers(router, 0.5 + HANDOVER_TIMEOUT)
    assert [critical(a) for a in fired] == [[SendAdvert(0)]] * 3 + [at_timeout]
    assert any(isinstance(a, Notice) for a in fired[-1]) is (mode is AdminMode.DEMOTED)
    run_timers(router, 100.0)
    assert router.state is (State.MASTER if mode is AdminMode.DEMOTED else State.BACKUP)


def test_promoted_backup_takes_over_at_254_and_resume_rearms() -> None:
    """PROMOTED: a backup becomes master at once and advertises 254, beating every non-owner
    (RFC 5798 §5.2.4); resuming NORMAL advertises its own priority again at once."""
    router = backup()
    actions = router.handle(AdminChanged(AdminMode.PROMOTED), 1.0)
    assert critical(actions) == [*TAKEOVER, SendAdvert(254)]
    assert critical(rx(router, 200, 1.5)) == [SendAdvert(254)]
    assert router.handle(AdminChanged(AdminMode.NORMAL), 2.0) == [SendAdvert(100)]
    assert critical(rx(router, 200, 2.5)) == [SendAdvert(100), RemoveVips()]


def test_resume_after_demote_preempts_again() -> None:
    """After resume a demoted backup (which advertised priority 1, so its Master_Down_Interval
    is the longest) is a normal preempting backup again (RFC 5798 §6.4.2)."""
    router = backup(priority=150)
    router.handle(AdminChanged(AdminMode.DEMOTED), 0.5)
    rx(router, 100, 1.0)
    router.handle(AdminChanged(AdminMode.NORMAL), 1.5)
    rx(router, 100, 2.0)  # discarded now: the timer armed at 1.0 runs out
    assert router.next_deadline() == 1.0 + HANDOVER_TIMEOUT
    assert transitions(router.handle_timer(1.0 + HANDOVER_TIMEOUT)) == [
        (State.BACKUP, State.MASTER)]


def test_demoted_backup_takes_over_from_resigning_master() -> None:
    """RFC 5798 §6.4.2: priority 0 sets the Master_Down_Timer to Skew_Time (of priority 1 when
    demoted), whatever Preempt_Mode says - even when the resigning master was one we had been
    about to preempt."""
    router = backup(priority=150)
    rx(router, 100, 1.0)  # discarded: we preempt
    router.handle(AdminChanged(AdminMode.DEMOTED), 1.2)
    rx(router, 0, 1.5)
    assert transitions(router.handle_timer(1.5 + 255 / 256)) == [(State.BACKUP, State.MASTER)]


# ---- sync groups -----------------------------------------------------------------------------


def test_group_backup_makes_master_resign_and_hold() -> None:
    """A sibling went BACKUP: resign (priority 0, then release the VIPs) and do not preempt
    the peer back while the group is held."""
    router = master(priority=150)
    actions = router.handle(GroupState("g", State.BACKUP), 0.5)
    assert critical(actions) == [SendAdvert(0), RemoveVips()]
    for t in range(1, 20):
        rx(router, 100, float(t))
        assert router.handle_timer(float(t) + 0.5) == []


def test_group_master_brings_backup_up() -> None:
    """A sibling went MASTER: follow it at once."""
    router = backup()
    rx(router, 200, 0.5)
    actions = router.handle(GroupState("g", State.MASTER), 1.0)
    assert critical(actions) == [*TAKEOVER, SendAdvert(100)]


def test_group_backup_does_not_hold_a_backup_that_lost_on_its_own() -> None:
    """A sibling's BACKUP does not hold a router that is BACKUP because its master is higher:
    when that master later drops below it, it preempts as RFC 5798 §6.4.2 says (otherwise two
    siblings that both went BACKUP would hold each other for ever)."""
    router = backup()
    rx(router, 200, 0.5)
    router.handle(GroupState("g", State.BACKUP), 1.0)
    rx(router, 50, 1.5)
    assert transitions(router.handle_timer(0.5 + MDI_100)) == [(State.BACKUP, State.MASTER)]


# ---- Accept_Mode -------------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "priority", "accept_mode", "accepts"), [
    (3, 100, True, True),
    (3, 100, False, False),
    (3, 255, False, True),  # the owner accepts whatever Accept_Mode says
    (2, 100, False, False),  # RFC 3768 §6.4.3
    (2, 100, True, True),  # vrrpd's default; a documented deviation for VRRPv2
    (2, 255, False, True),
])
def test_accept_mode(version: int, priority: int, accept_mode: bool, accepts: bool) -> None:
    """RFC 5798 §6.4.3: the Master "MUST accept packets addressed to the IPvX address(es)
    associated with the virtual router if it is the IPvX address owner or if Accept_Mode is
    True.  Otherwise, MUST NOT accept these packets"; RFC 3768 §6.4.3: "MUST NOT accept ...
    if it is not the IP address owner"."""
    assert make(version=version, priority=priority, accept_mode=accept_mode).accepts is accepts
