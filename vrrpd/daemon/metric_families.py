"""The metric families of :mod:`vrrpd.daemon.metrics`, each built from its part of the
status document (``vrrpctl status --json``); the names and their meaning are listed there."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from vrrpd.kernel.bgp import GROUP_STATES

STATES = ("INIT", "BACKUP", "MASTER", "FAULT")
SYNC_STATES = ("in-sync", "ahead", "behind", "diverged", "never-synced", "unknown")
INSTANCE = "vrrp_instance"
ESTABLISHED = "Established"  # RFC 4271 8.2.2
BFD_UP = "Up"  # RFC 5880 4.1


def instance_metrics(instances: list[dict[str, Any]], now: float) -> Iterator[Metric]:
    def gauge(name: str, text: str, *extra: str) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, text, labels=[INSTANCE, *extra])

    def counter(name: str, text: str, *extra: str) -> CounterMetricFamily:
        return CounterMetricFamily(name, text, labels=[INSTANCE, *extra])

    state = gauge("vrrpd_instance_state", "1 for the instance's current state", "state")
    prio = gauge("vrrpd_instance_priority", "configured priority")
    eff = gauge("vrrpd_instance_effective_priority", "priority advertised now")
    held = gauge("vrrpd_instance_vips_held", "1 when this node holds the VIPs")
    age = gauge("vrrpd_master_advert_age_seconds",
                "seconds since the last advert of another router acting as master")
    mdi = gauge("vrrpd_master_down_interval_seconds", "Master_Down_Interval (RFC 5798 6.1)")
    trans = counter("vrrpd_transitions", "state transitions")
    sent = counter("vrrpd_adverts_sent", "adverts sent")
    rcvd = counter("vrrpd_adverts_received", "adverts received")
    drop = counter("vrrpd_dropped", "adverts refused by an instance", "reason")
    track = gauge("vrrpd_tracker_up", "1 while the tracker passes", "tracker")
    foreign = counter("vrrpd_foreign_adverts", "adverts obeyed from routers not in peers")
    foreign_master = gauge("vrrpd_foreign_master", "1 while the master is not a listed peer")
    for i in instances:
        name, c = i["name"], i["counters"]
        for s in STATES:
            state.add_metric([name, s], 1 if i["state"] == s else 0)
        prio.add_metric([name], i["priority"])
        eff.add_metric([name], i["effective_priority"])
        held.add_metric([name], 1 if i["vips_held"] else 0)
        if i.get("last_master_advert"):
            age.add_metric([name], round(now - i["last_master_advert"]["at"], 3))
        mdi.add_metric([name], i["master_down_interval"])
        trans.add_metric([name], c.get("transitions", 0))
        sent.add_metric([name], c.get("adverts_sent", 0))
        rcvd.add_metric([name], c.get("adverts_received", 0))
        foreign.add_metric([name], c.get("foreign_adverts", 0))
        foreign_master.add_metric([name], 1 if i.get("foreign_master") else 0)
        for reason, n in i["dropped"].items():
            drop.add_metric([name, reason], n)
        for t in i.get("trackers", []):
            track.add_metric([name, t["name"]], 1 if t["ok"] else 0)
    yield from (state, prio, eff, held, age, mdi, trans, sent, rcvd, drop, track, foreign,
                foreign_master)
    yield from drain_metrics(instances)


def drain_metrics(instances: list[dict[str, Any]]) -> Iterator[Metric]:
    """The draining hand-over of each instance that has one (``drain`` in its status)."""
    def gauge(name: str, text: str) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, text, labels=[INSTANCE])

    active = gauge("vrrpd_drain_active", "1 while this node drains its open connections")
    sessions = gauge("vrrpd_drain_sessions", "HAProxy's sessions left on the VIPs (draining)")
    left = gauge("vrrpd_drain_seconds_left", "seconds before drain_timeout (draining)")
    forwarding = gauge("vrrpd_drain_forwarding",
                       "1 while this node forwards unknown flows to a draining peer")
    drains = CounterMetricFamily("vrrpd_drains", "drains started here", labels=[INSTANCE])
    forwards = CounterMetricFamily("vrrpd_drain_forwards", "drains of a peer forwarded here",
                                   labels=[INSTANCE])
    for i in instances:
        name, d = i["name"], i.get("drain")
        if d is None:
            continue
        active.add_metric([name], 1 if d["draining"] else 0)
        if d["draining"]:
            if d["draining"]["sessions"] is not None:
                sessions.add_metric([name], d["draining"]["sessions"])
            left.add_metric([name], d["draining"]["left"])
        forwarding.add_metric([name], 1 if d["forwarding"] else 0)
        drains.add_metric([name], d["drains"])
        forwards.add_metric([name], d["forwards"])
    yield from (active, sessions, left, forwarding, drains, forwards)


def config_sync_metrics(s: dict[str, Any]) -> Iterator[Metric]:
    local = s.get("local") or {}
    gen = GaugeMetricFamily("vrrpd_config_sync_generation", "config sync generation held here")
    gen.add_metric([], local.get("generation", 0))
    diverged = GaugeMetricFamily("vrrpd_config_sync_diverged",
                                 "1 when the synced files were edited here since the last sync")
    diverged.add_metric([], 1 if local.get("diverged") else 0)
    yield from (gen, diverged)
    last = s.get("last_push")
    if last:
        at = GaugeMetricFamily("vrrpd_config_sync_last_push_timestamp_seconds",
                               "when the last push was sent or received (Unix time)")
        at.add_metric([], last["at"])
        ok = GaugeMetricFamily("vrrpd_config_sync_last_push_success", "1 when the last push worked")
        ok.add_metric([], 1 if last.get("ok") else 0)
        yield from (at, ok)
    up = GaugeMetricFamily("vrrpd_config_sync_peer_up", "1 when the peer answered the last poll",
                           labels=["peer"])
    peer_gen = GaugeMetricFamily("vrrpd_config_sync_peer_generation", "the peer's generation",
                                 labels=["peer"])
    peer_state = GaugeMetricFamily("vrrpd_config_sync_peer_state", "1 for the peer's sync state",
                                   labels=["peer", "state"])
    for peer, p in s.get("peers", {}).items():
        up.add_metric([peer], 0 if p.get("error") else 1)
        if "generation" in p:
            peer_gen.add_metric([peer], p["generation"])
        for state in SYNC_STATES:
            peer_state.add_metric([peer, state], 1 if p.get("sync") == state else 0)
    yield from (up, peer_gen, peer_state)


def anycast_metrics(groups: list[dict[str, Any]], bgp: dict[str, Any]) -> Iterator[Metric]:
    """Anycast groups (``anycast`` in the status) and the BGP speaker's sessions (``bgp``)."""
    def gauge(name: str, text: str, *extra: str) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, text, labels=["group", *extra])

    state = gauge("vrrpd_anycast_state", "1 for the group's announcement state", "state")
    med = gauge("vrrpd_anycast_med", "the MED announced now")
    prepend = gauge("vrrpd_anycast_prepend", "AS-path prepends announced now")
    draining = gauge("vrrpd_anycast_draining", "1 while vrrpctl demote's drain waits")
    sessions = gauge("vrrpd_anycast_drain_sessions", "HAProxy's sessions left (draining)")
    for g in groups:
        name = g["name"]
        for s in GROUP_STATES:
            state.add_metric([name, s], 1 if g["state"] == s else 0)
        if g["med"] is not None:
            med.add_metric([name], g["med"])
            prepend.add_metric([name], g["prepend"])
        waiting = g["draining"] is not None and g["draining"]["done"] is None
        draining.add_metric([name], 1 if waiting else 0)
        if waiting and g["draining"]["sessions"] is not None:
            sessions.add_metric([name], g["draining"]["sessions"])
    yield from (state, med, prepend, draining, sessions)
    up = GaugeMetricFamily("vrrpd_bgp_peer_up", "1 while the BGP session is Established",
                           labels=["router"])
    bfd = GaugeMetricFamily("vrrpd_bgp_peer_bfd_up", "1 while the BFD session is Up",
                            labels=["router"])
    for peer in bgp["peers"]:
        up.add_metric([peer["address"]], 1 if peer["state"] == ESTABLISHED else 0)
        if peer["bfd"] is not None:
            bfd.add_metric([peer["address"]], 1 if peer["bfd"] == BFD_UP else 0)
    error = GaugeMetricFamily("vrrpd_bgp_speaker_error",
                              "1 while the last change sent to the BGP speaker failed")
    error.add_metric([], 1 if bgp["error"] or bgp["peers_error"] else 0)
    yield from (up, bfd, error)
