"""What the draining node tells its peer, over the config-sync channel.

Why that channel: the VRRP advert must stay exactly RFC 5798's (no extra field, no private
meaning of a priority or interval), and the drain needs words a VRRP packet cannot carry (how
many sessions, where to forward, "ended").  The config-sync transport
(:mod:`vrrpd.configsync.transport`)
already connects exactly these two nodes over TLS 1.3 with pinned certificates and a
listener that admits only the listed peers, so a forged "forward to me" from the LAN is
refused the same way as a forged configuration push.  One request per message, answered.

Messages (``op: drain``), each naming the instance and its VRID (both must match on the
receiver):

* ``planned``: sent by a master just before it hands over on purpose (``vrrpctl demote``,
  maintenance): "forward to ``via`` as soon as you take over".
* ``draining``: the heartbeat, every :data:`HEARTBEAT_INTERVAL` while draining, with the
  sessions left and the seconds left before ``drain_timeout``.
* ``ended``: the drain is over; stop forwarding now.

The receiver stops forwarding when no heartbeat came for :data:`HEARTBEAT_TIMEOUT` (the
draining node died or lost its link), and forwards on a take-over it expects to be drained
(preempt, promote, a ``planned`` hand-over) for at most :data:`FIRST_HEARTBEAT_GRACE` before
the first heartbeat.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from ipaddress import ip_address
from typing import Any

from vrrpd.proto.packet import IPAddress

OP = "drain"
HEARTBEAT_INTERVAL = 0.25  # seconds between heartbeats of a draining node
# seconds without one before the new master stops forwarding: 8 heartbeats, each a TLS
# handshake that a loaded 2-core host was seen to take over a second for
HEARTBEAT_TIMEOUT = 2.0
FIRST_HEARTBEAT_GRACE = 2.0  # seconds a forwarding set up at a take-over waits for the first
PLANNED_VALID = 10.0  # seconds a `planned` notice stays good (the hand-over takes < 1 s)
SEND_TIMEOUT = 1.5  # seconds one message may take (TLS handshake included)
PLANNED_TIMEOUT = 3.0  # seconds `vrrpctl demote` waits for the peer to confirm `planned`


class Phase(StrEnum):
    PLANNED = "planned"
    DRAINING = "draining"
    ENDED = "ended"


@dataclass(frozen=True)
class DrainMessage:
    instance: str
    vrid: int
    phase: Phase
    via: IPAddress  # the draining node's own address on the instance's interface
    sessions: int | None = None  # HAProxy's sessions on the VIPs (None: not known)
    left: float | None = None  # seconds before drain_timeout

    def header(self) -> dict[str, Any]:
        return {"op": OP, "instance": self.instance, "vrid": self.vrid,
                "phase": self.phase.value, "via": str(self.via), "sessions": self.sessions,
                "left": self.left}

    @classmethod
    def parse(cls, header: dict[str, Any]) -> DrainMessage:
        """A message from a request header; ValueError says what is wrong with it."""
        try:
            instance, vrid = header["instance"], header["vrid"]
            phase, via = Phase(header["phase"]), ip_address(header["via"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed drain message: {exc}") from None
        sessions, left = header.get("sessions"), header.get("left")
        if not isinstance(instance, str) or not isinstance(vrid, int) or isinstance(vrid, bool):
            raise ValueError("malformed drain message: instance must be text, vrid a number")
        if sessions is not None and (not isinstance(sessions, int) or sessions < 0):
            raise ValueError("malformed drain message: sessions must be a count")
        if left is not None and not isinstance(left, int | float):
            raise ValueError("malformed drain message: left must be seconds")
        return cls(instance, vrid, phase, via, sessions,
                   None if left is None else float(left))
