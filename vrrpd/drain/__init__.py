"""Draining hand-over (issue 20): a planned hand-over that breaks no open connection.

Not an RFC rule (nothing here changes a VRRP packet or the state machine of
:mod:`vrrpd.proto.router`): when a master hands over on purpose (``vrrpctl demote``,
maintenance, a preempt back, a ``vrrpctl promote`` on the peer), the old master keeps its
connections' VIPs on ``lo`` where it never answers ARP/NS for them and keeps serving them
(:mod:`vrrpd.drain.draining`), while the new master forwards the packets of TCP flows it does
not know to the old master's real address (:mod:`vrrpd.drain.forwarding`).  They talk over the
config-sync channel (TLS 1.3, pinned certificates; :mod:`vrrpd.drain.messages`).  The drain
ends when HAProxy has no session left on the VIPs (:mod:`vrrpd.drain.sessions`) or at
``drain_timeout``.  :mod:`vrrpd.drain.handover` is what the instance driver calls.
"""
