"""Optional Prometheus endpoint (``metrics: {listen: 127.0.0.1:9650}``): ``GET /metrics``.

Metrics are collected at scrape time from the same status dict ``vrrpctl status`` shows (the
config sync part is the sync service's cache, see :meth:`ConfigSyncService.cached_status`), so
nothing on the VRRP critical path updates a metric.  Served by a tiny asyncio HTTP server on
the daemon's own loop (no thread touches daemon state); any other path is 404.

The VRRP instance's label is ``vrrp_instance``: Prometheus itself labels every series with the
scraped target as ``instance``.  Split brain and "no holder" are judged across the two nodes:
``sum by (vrrp_instance) (vrrpd_instance_vips_held)`` is 2 or 0 (etc/prometheus/
vrrpd-alerts.yml).  Metric names (the ``_total`` ones are counters):

* ``vrrpd_build_info{version,python}`` 1; ``vrrpd_health``: 0 OK, 1 WARNING, 2 CRITICAL
  (the verdict of ``vrrpctl check``, :mod:`vrrpd.control.health`)
* ``vrrpd_instance_state{vrrp_instance,state}``: 1 for the current state
  (INIT/BACKUP/MASTER/FAULT)
* ``vrrpd_instance_priority{vrrp_instance}``, ``vrrpd_instance_effective_priority{...}``
* ``vrrpd_instance_vips_held{vrrp_instance}``: 1 when this node holds the VIPs
* ``vrrpd_master_advert_age_seconds{vrrp_instance}``: since the last advert of another router
  acting as master (absent if none heard); ``vrrpd_master_down_interval_seconds{...}``
* ``vrrpd_transitions_total``, ``vrrpd_adverts_sent_total``, ``vrrpd_adverts_received_total``
  ``{vrrp_instance}``
* ``vrrpd_dropped_total{vrrp_instance,reason}``: adverts refused by an instance
* ``vrrpd_endpoint_dropped_total{interface,family,reason}``: packets dropped before demux
* ``vrrpd_tracker_up{vrrp_instance,tracker}``: 1 while a tracker passes
* ``vrrpd_foreign_adverts_total{vrrp_instance}``: adverts obeyed from routers not in ``peers``
* ``vrrpd_foreign_master{vrrp_instance}``: 1 while the master is not a listed peer
* config sync (with ``config_sync:``): ``vrrpd_config_sync_generation``,
  ``vrrpd_config_sync_diverged`` (files edited here since the last sync),
  ``vrrpd_config_sync_last_push_timestamp_seconds``, ``vrrpd_config_sync_last_push_success``,
  ``vrrpd_config_sync_peer_up{peer}`` (answered the last poll),
  ``vrrpd_config_sync_peer_generation{peer}``, ``vrrpd_config_sync_peer_state{peer,state}``
  (1 for one of :data:`SYNC_STATES`)
* draining hand-over (:mod:`vrrpd.drain`), per instance: ``vrrpd_drain_active`` (1 while this
  node, the old master, drains), ``vrrpd_drain_sessions`` (HAProxy's sessions left on the
  VIPs) and ``vrrpd_drain_seconds_left`` (before ``drain_timeout``) while it does;
  ``vrrpd_drain_forwarding`` (1 while this node, the new master, forwards unknown flows to a
  draining peer); ``vrrpd_drains_total``, ``vrrpd_drain_forwards_total``
"""

from __future__ import annotations

import asyncio
import contextlib
import platform
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from vrrpd import __version__
from vrrpd.control.health import assess
from vrrpd.kernel.listen import listening_socket

STATES = ("INIT", "BACKUP", "MASTER", "FAULT")
SYNC_STATES = ("in-sync", "ahead", "behind", "diverged", "never-synced", "unknown")
INSTANCE = "vrrp_instance"


class StatusCollector(Collector):
    def __init__(self, status: Callable[[], dict[str, Any]]) -> None:
        self._status = status

    def collect(self) -> Iterator[Metric]:
        doc = self._status()
        now = time.time()
        build = GaugeMetricFamily("vrrpd_build_info", "vrrpd version and Python, always 1",
                                  labels=["version", "python"])
        build.add_metric([__version__, platform.python_version()], 1)
        health = GaugeMetricFamily("vrrpd_health", "0 OK, 1 WARNING, 2 CRITICAL (vrrpctl check)")
        health.add_metric([], assess(doc, now)["code"])
        yield from (build, health)
        yield from _instances(doc["instances"], now)
        edrop = CounterMetricFamily("vrrpd_endpoint_dropped", "packets dropped before demux",
                                    labels=["interface", "family", "reason"])
        for e in doc["endpoints"]:
            for reason, n in e["dropped"].items():
                edrop.add_metric([e["interface"], str(e["family"]), reason], n)
        yield edrop
        if doc.get("config_sync"):
            yield from _config_sync(doc["config_sync"])


def _instances(instances: list[dict[str, Any]], now: float) -> Iterator[Metric]:
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
    yield from _drain(instances)


def _drain(instances: list[dict[str, Any]]) -> Iterator[Metric]:
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


def _config_sync(s: dict[str, Any]) -> Iterator[Metric]:
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


class MetricsServer:
    """``GET /metrics`` in Prometheus text format; other paths 404, other methods 405."""

    def __init__(self, status: Callable[[], dict[str, Any]], host: str, port: int) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(StatusCollector(status))
        self.host, self.port = host, port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client,
                                                  sock=listening_socket(self.host, self.port))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                request = await reader.readline()
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # headers
            method, _, rest = request.decode("latin-1").partition(" ")
            path = rest.split(" ", 1)[0].split("?", 1)[0]
            if method not in ("GET", "HEAD"):
                status, body = b"405 Method Not Allowed", b"only GET /metrics\n"
            elif path != "/metrics":
                status, body = b"404 Not Found", b"metrics are at /metrics\n"
            else:
                status, body = b"200 OK", generate_latest(self.registry)
            kind = b"text/plain; version=0.0.4" if status == b"200 OK" else b"text/plain"
            writer.write(b"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n" % (status, kind, len(body)))
            if method != "HEAD":
                writer.write(body)
            await writer.drain()
        writer.close()
