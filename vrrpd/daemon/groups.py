"""Sync groups: members change state together (keepalived's ``vrrp_sync_group``).

* A member in FAULT for its own reasons (a tracker, its link) puts every sibling in FAULT
  (fault source ``group:NAME``) until it recovers.
* A member that becomes MASTER, or steps down from MASTER to BACKUP, takes its siblings along
  (:class:`~vrrpd.proto.events.GroupState`).  Transitions that the group itself caused are not
  propagated again, so nothing ping-pongs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from vrrpd.config.model import SyncGroupConfig
from vrrpd.proto.events import Cause, Event, FaultChanged, GroupState, State


class Member(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def state(self) -> State: ...

    @property
    def faults(self) -> set[str]: ...

    def post(self, event: Event) -> object: ...


class SyncGroup:
    def __init__(self, cfg: SyncGroupConfig, members: Iterable[Member]) -> None:
        self.cfg = cfg
        self.members = list(members)
        self.fault_source = f"group:{cfg.name}"

    def own_faults(self, member: Member) -> set[str]:
        return {f for f in member.faults if f != self.fault_source}

    def refresh_faults(self) -> None:
        """Give each member the group fault exactly when a sibling has a fault of its own."""
        faulty = {m.name for m in self.members if self.own_faults(m)}
        for m in self.members:
            want = bool(faulty - {m.name})
            if want != (self.fault_source in m.faults):
                m.post(FaultChanged(self.fault_source, want))

    def on_transition(self, member: Member, old: State, new: State, cause: Cause) -> None:
        if cause is not Cause.SYNC_GROUP:  # the group's own moves are not passed on again
            if new is State.MASTER:
                self._tell_siblings(member, State.MASTER)
            elif old is State.MASTER and new is State.BACKUP:
                self._tell_siblings(member, State.BACKUP)
        self.refresh_faults()

    def _tell_siblings(self, member: Member, state: State) -> None:
        for sibling in self.members:
            if sibling is not member:
                sibling.post(GroupState(self.cfg.name, state))


class SyncGroups:
    """Every sync group of one configuration."""

    def __init__(self, configs: Iterable[SyncGroupConfig],
                 members: Callable[[str], Member]) -> None:
        self.groups = [SyncGroup(g, [members(n) for n in g.instances]) for g in configs]

    def of(self, member: Member) -> list[SyncGroup]:
        return [g for g in self.groups if member in g.members]

    def on_transition(self, member: Member, old: State, new: State, cause: Cause) -> None:
        for group in self.of(member):
            group.on_transition(member, old, new, cause)

    def refresh_faults(self) -> None:
        for group in self.groups:
            group.refresh_faults()
