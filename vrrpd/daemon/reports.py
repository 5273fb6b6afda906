"""What the state machine reports without asking for anything to be done: dropped adverts
(RFC 5798 §7.1), adverts from routers that are not listed peers, mismatched intervals or
address lists (§6.4.2, §6.4.3), a second master the VIPs are re-announced against, notices.
Each is counted for ``vrrpctl status`` and the metrics and logged; what a peer on the LAN
can repeat at will is logged at most once per 10 s per kind (:class:`RateLimitedLog`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vrrpd.proto.events import Action, Dropped, DualMaster, ForeignAdvert, Mismatch, Notice

if TYPE_CHECKING:
    from vrrpd.daemon.instance import InstanceDriver


def report(d: InstanceDriver, action: Action) -> bool:
    """Count and log ``action`` if it is a report; False when it is work for the executor."""
    match action:
        case Dropped(reason, source, detail):
            d.drops[reason.value] += 1
            d.drops_log.warning(reason.value, "dropped advert from %s: %s", source, detail)
        case ForeignAdvert(source, priority):
            d.counters["foreign_adverts"] += 1
            d.drops_log.warning("foreign", "advert from %s (priority %d), which is not in "
                                "peers: a rogue or misconfigured router", source, priority)
        case Mismatch(what, source, detail):
            d.counters[f"{what}_mismatch"] += 1
            d.drops_log.warning(f"{what}:{source}", "advert from %s %s", source, detail)
        case DualMaster(source):
            d.counters["dual_master_reclaims"] += 1
            d.log.warning("%s is also acting as master; announcing the VIPs again", source)
        case Notice(message):
            d.log.warning("%s", message)
        case _:
            return False
    return True
