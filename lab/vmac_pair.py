"""The HAProxy pair with ``virtual_mac: true``, and a client that hears no gratuitous ARP.

:class:`VmacPair` is :class:`lab.haproxy_pair.HAProxyPair` (lb1 150 / lb2 100, real HAProxy
on the VIP, the client probing it with HTTP HEAD every 10 ms) with the vrrpd instance on the
virtual router MAC (RFC 5798 §7.3), optionally in unicast mode, and an nftables ``arp``
filter on the client that drops every gratuitous ARP for the VIP (an ARP request whose sender
address is the VIP) and counts it.  So the client can only keep reaching the VIP through a
failover if its neighbour entry for the VIP - the virtual MAC, learnt from the master's ARP
reply - stays right, and the switch learns where that MAC now is from the new master's adverts.

:func:`failover` injects one fault on lb1 and returns what the client saw; the lab test and
``benchmarks/vmac_failover.py`` both use it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from lab.daemons import Vrrpd, wait_for
from lab.haproxy_pair import LBS, VIP, VIP_ADDR, VRID, HAProxyPair
from lab.phase import common_period, random_phase

VIRTUAL_MAC = f"00:00:5e:00:01:{VRID:02x}"  # RFC 5798 §7.3, IPv4
NFT_TABLE = "vrrpd_lab_garp"
FAULTS = ("sigterm", "port-down")


class VmacPair(HAProxyPair):
    """HAProxyPair with ``virtual_mac: true`` (and ``unicast_peers`` when ``unicast``)."""

    def __init__(self, *args: Any, version: int = 3, unicast: bool = False,
                 **kwargs: Any) -> None:
        # The faults here are SIGTERM and a dead port, not HAProxy: a slower HAProxy check
        # keeps a loaded machine's check timeouts from moving the VIP between runs.
        kwargs.setdefault("track_interval", 0.5)
        super().__init__(*args, customize=self._virtual_mac, **kwargs)
        self.version = version
        self.unicast = unicast

    def _virtual_mac(self, node: str, doc: dict[str, Any]) -> None:
        web = doc["instances"][0]
        web.update(virtual_mac=True, version=self.version)
        if self.unicast:
            peer = next(n for n in LBS if n != node)
            web["unicast_peers"] = [LBS[peer][0].split("/")[0]]

    def _build(self) -> None:
        super()._build()
        client = self.node("client").ns
        client.run(["nft", "add", "table", "arp", NFT_TABLE])
        client.run(["nft", "add", "chain", "arp", NFT_TABLE, "input",
                    "{ type filter hook input priority 0 ; }"])
        client.run(["nft", "add", "rule", "arp", NFT_TABLE, "input", "arp", "operation",
                    "request", "arp", "saddr", "ip", VIP_ADDR, "counter", "drop"])

    def garps_dropped(self) -> int:
        """Gratuitous ARPs for the VIP that reached the client and were dropped there."""
        out = self.node("client").ns.run(["nft", "-j", "list", "table", "arp", NFT_TABLE])
        for item in json.loads(out.stdout)["nftables"]:
            for expr in item.get("rule", {}).get("expr", []):
                if "counter" in expr:
                    return int(expr["counter"]["packets"])
        raise AssertionError(f"no counter in the client's {NFT_TABLE} table")

    def neighbour(self) -> str | None:
        """The client's neighbour entry for the VIP: its MAC, or None when it has none."""
        out = self.node("client").ns.run(["ip", "-j", "neigh", "show", VIP_ADDR]).stdout
        entries = json.loads(out or "[]")
        return entries[0].get("lladdr") if entries else None


@dataclass(frozen=True)
class Failover:
    """One failover lb1 -> lb2 as the client saw it."""

    fault: str
    outage_ms: float  # longest gap between successful requests around the fault
    failed: int  # failed requests in that window
    takeover_ms: float  # fault -> lb2 holds the VIP
    neighbour_before: str | None
    neighbour_after: str | None
    garps_dropped: int  # gratuitous ARPs for the VIP the client did not hear (dropped)
    phase_delay_ms: float  # the random wait before the fault (lab.phase)

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def failover(pair: VmacPair, fault: str) -> Failover:
    """Fail lb1 (``sigterm`` or ``port-down``) while the client probes; restore lb1 after.

    Restoring: lb1's vrrpd restarts or its port comes back, and it preempts back; the client
    prober runs only around the failover itself.  The fault goes in at a random phase of the
    advert and tracker intervals (:mod:`lab.phase`).
    """
    lb1: Vrrpd = pair.vrrpd["lb1"]
    with pair.client() as client:
        time.sleep(0.3)
        before, garps = pair.neighbour(), pair.garps_dropped()
        delay = random_phase(common_period(pair.interval, pair.track_interval))
        at = time.monotonic()
        if fault == "sigterm":
            lb1.send_signal()
        else:
            assert pair.lab is not None
            pair.lab.set_link("lb1", False)
        takeover = wait_for(lambda: pair.holders() == ["lb2"], 10, "lb2 to hold the VIP")
        outage = client.measure(at, new_lb="lb2")
        time.sleep(0.3)
        result = Failover(fault, round(outage.outage_ms, 1), outage.failed,
                          round(takeover * 1000, 1), before, pair.neighbour(),
                          pair.garps_dropped() - garps, round(delay * 1000, 1))
    if fault == "sigterm":
        lb1.stop()
        lb1.start()
    else:
        assert pair.lab is not None
        pair.lab.set_link("lb1", True)
    wait_for(lambda: pair.holders() == ["lb1"], 15, "lb1 to take the VIP back", poll=0.01)
    return result


__all__ = ["FAULTS", "VIP", "VIRTUAL_MAC", "Failover", "VmacPair", "failover"]
