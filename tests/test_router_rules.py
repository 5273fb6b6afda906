"""Table tests for the rules that used to live in the asyncio driver and now live in the state
machine (issue 13 part 1): the VRRPv3 IPv4 checksum form accepted and, with
``v3_checksum: auto``, learnt; the dual-master re-announce ("reclaim"); reconfiguration as an
event; and the structured cause every transition carries.  Same helpers as test_router.py.
"""

from __future__ import annotations

from ipaddress import IPv6Address

import pytest
from test_router import MDI_100, PEER, STRANGER, backup, make, master

from vrrpd.proto.events import (
    AdminChanged,
    AdminMode,
    AdvertReceived,
    Announce,
    Cause,
    Dropped,
    DualMaster,
    FaultChanged,
    GroupState,
    Notice,
    PriorityChanged,
    Reconfigure,
    SendAdvert,
    Startup,
    State,
    Transition,
)
from vrrpd.proto.packet import Advertisement, ChecksumForm, ChecksumMode, DropReason, IPAddress
from vrrpd.proto.router import VirtualRouter

PSEUDO, RFC = ChecksumForm.PSEUDO_HEADER, ChecksumForm.RFC9568


def advert(router: VirtualRouter, priority: int, form: ChecksumForm = RFC,
           source: IPAddress = PEER, now: float = 1.0) -> list[object]:
    adv = Advertisement(3, 51, priority, 100, router.params.addresses, checksum_form=form)
    return list(router.handle(AdvertReceived(adv, source), now))


# ---- RFC 9568 §5.2.8: two checksum forms for VRRPv3 over IPv4 -------------------------------

@pytest.mark.parametrize(("mode", "form", "accepted"), [
    (ChecksumMode.AUTO, RFC, True),
    (ChecksumMode.AUTO, PSEUDO, True),
    (ChecksumMode.RFC9568, RFC, True),
    (ChecksumMode.RFC9568, PSEUDO, False),
    (ChecksumMode.PSEUDO_HEADER, PSEUDO, True),
    (ChecksumMode.PSEUDO_HEADER, RFC, False),
])
def test_checksum_form_accepted_by_mode(mode: ChecksumMode, form: ChecksumForm,
                                        accepted: bool) -> None:
    """``v3_checksum`` names the form(s) an instance accepts; the other is dropped and
    counted (``checksum_form``) before the state machine looks at the advert."""
    router = backup(checksum=mode)
    actions = advert(router, 150, form)
    drops = [a.reason for a in actions if isinstance(a, Dropped)]
    assert drops == ([] if accepted else [DropReason.CHECKSUM_FORM])
    assert (router.master_address == PEER) is accepted


@pytest.mark.parametrize(("mode", "first"), [(ChecksumMode.AUTO, RFC),
                                             (ChecksumMode.RFC9568, RFC),
                                             (ChecksumMode.PSEUDO_HEADER, PSEUDO)])
def test_first_form_sent(mode: ChecksumMode, first: ChecksumForm) -> None:
    assert make(checksum=mode).send_form is first


def test_auto_learns_the_peers_form_once() -> None:
    """``auto`` starts with the RFC 9568 form and sends what the peer sends (keepalived 2.2
    and FRR drop the other form): learnt once, with one Notice for the log."""
    router = backup()
    first = advert(router, 150, PSEUDO)
    assert router.send_form is PSEUDO
    assert [type(a) for a in first] == [Notice]
    assert not [a for a in advert(router, 150, PSEUDO, now=2.0) if isinstance(a, Notice)]


@pytest.mark.parametrize("mode", [ChecksumMode.RFC9568, ChecksumMode.PSEUDO_HEADER])
def test_fixed_modes_never_learn(mode: ChecksumMode) -> None:
    router = backup(checksum=mode)
    before = router.send_form
    advert(router, 150, before)
    assert router.send_form is before


def test_auto_never_learns_from_a_foreign_router() -> None:
    """With ``peers`` listed, a router that is not one of them cannot switch our form."""
    router = backup(peers=(PEER,))
    advert(router, 150, PSEUDO, source=STRANGER)
    assert router.send_form is RFC
    advert(router, 150, PSEUDO, source=PEER, now=2.0)
    assert router.send_form is PSEUDO


def test_ipv6_has_one_form_and_learns_nothing() -> None:
    router = VirtualRouter(make().params.__class__(
        version=3, vrid=51, priority=100, advert_interval_cs=100,
        addresses=(IPv6Address("fe80::51"),), primary_address=IPv6Address("fe80::10")))
    router.handle(Startup(), 0.0)
    assert advert(router, 150, PSEUDO, source=IPv6Address("fe80::20")) == []
    assert router.send_form is RFC


# ---- the dual-master re-announce ("reclaim") -------------------------------------------------

def test_reclaim_after_a_master_down_interval_at_most_once_per_interval() -> None:
    """A master that hears a lower-priority master answers at once (RFC 9568 §6.4.3) and,
    once it has been master for a Master_Down_Interval, announces the VIPs again - at most
    once per Master_Down_Interval."""
    router = master()
    early = advert(router, 50, now=1.0)
    assert early == [SendAdvert(100)]  # just took over: that was the old master's last word
    late = advert(router, 50, now=MDI_100 + 0.1)
    assert late == [SendAdvert(100), Announce(), DualMaster(PEER)]
    again = advert(router, 50, now=MDI_100 + 0.2)
    assert again == [SendAdvert(100)]
    later = advert(router, 50, now=2 * MDI_100 + 0.2)
    assert later == [SendAdvert(100), Announce(), DualMaster(PEER)]


def test_no_reclaim_for_priority_zero_or_when_yielding() -> None:
    router = master()
    assert advert(router, 0, now=10.0) == [SendAdvert(100)]
    yielded = advert(router, 200, now=20.0)
    assert not [a for a in yielded if isinstance(a, Announce | DualMaster)]
    assert router.state is State.BACKUP


# ---- reconfiguration is an event --------------------------------------------------------------

def test_reconfigure_keeps_the_state_and_takes_the_new_parameters() -> None:
    router = master()
    router.handle(PriorityChanged(80), 0.5)  # a tracker lowered it
    new = make(priority=120, checksum=ChecksumMode.PSEUDO_HEADER).params
    assert router.handle(Reconfigure(new), 1.0) == []
    assert router.state is State.MASTER and router.params is new
    assert router.effective_priority == 120  # a new configured priority resets it
    assert router.send_form is PSEUDO  # a new mode restarts the form


def test_reconfigure_with_the_same_priority_keeps_the_trackers_effect() -> None:
    router = master()
    router.handle(PriorityChanged(80), 0.5)
    router.handle(Reconfigure(make(preempt=False).params), 1.0)
    assert router.effective_priority == 80


# ---- every transition carries a cause ---------------------------------------------------------

def _causes(actions: list[object]) -> list[Cause]:
    return [a.cause for a in actions if isinstance(a, Transition)]


def test_causes() -> None:
    router = make()
    assert _causes(router.handle(Startup(), 0.0)) == [Cause.STARTUP]
    assert _causes(router.handle_timer(MDI_100)) == [Cause.MASTER_DOWN]
    assert _causes(advert(router, 200, now=4.0)) == [Cause.BETTER_MASTER]
    assert _causes(advert(router, 0, now=5.0)) == []
    resigned = router.handle_timer(router.next_deadline() or 0.0)
    assert _causes(resigned) == [Cause.MASTER_RESIGNED]
    assert _causes(router.handle(FaultChanged("track:x", True), 7.0)) == [Cause.FAULT]
    assert _causes(router.handle(FaultChanged("track:x", False), 8.0)) == [Cause.RECOVERED]
    assert _causes(router.handle(GroupState("g", State.MASTER), 9.0)) == [Cause.SYNC_GROUP]
    assert _causes(router.handle(AdminChanged(AdminMode.MAINTENANCE), 10.0)) == []
    handed = advert(router, 100, now=10.5)
    assert _causes(handed) == [Cause.HANDED_OVER]
    promoted = router.handle(AdminChanged(AdminMode.PROMOTED), 11.0)
    assert _causes(promoted) == [Cause.OPERATOR]


def test_preempt_cause() -> None:
    router = backup(priority=150)
    advert(router, 100, now=1.0)
    assert _causes(router.handle_timer(router.next_deadline() or 0.0)) == [Cause.PREEMPT]
