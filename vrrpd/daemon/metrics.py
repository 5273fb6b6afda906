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
* anycast (with ``anycast:``, :mod:`vrrpd.daemon.anycast`), per ``group``:
  ``vrrpd_anycast_state{group,state}`` (1 for announced, de-preferred or withdrawn),
  ``vrrpd_anycast_med`` and ``vrrpd_anycast_prepend`` (what is announced; absent while
  withdrawn), ``vrrpd_anycast_draining`` (1 while ``vrrpctl demote``'s drain waits) and
  ``vrrpd_anycast_drain_sessions``; per upstream ``router``: ``vrrpd_bgp_peer_up`` (1 while
  the BGP session is Established, RFC 4271 8.2.2), ``vrrpd_bgp_peer_bfd_up`` (1 while BFD is
  Up, RFC 5880 4.1; absent without BFD); ``vrrpd_bgp_speaker_error`` (1 while the last change
  sent to the speaker, or the last look at its sessions, failed)
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
from vrrpd.daemon import metric_families as families
from vrrpd.kernel.listen import listening_socket


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
        yield from families.instance_metrics(doc["instances"], now)
        edrop = CounterMetricFamily("vrrpd_endpoint_dropped", "packets dropped before demux",
                                    labels=["interface", "family", "reason"])
        for e in doc["endpoints"]:
            for reason, n in e["dropped"].items():
                edrop.add_metric([e["interface"], str(e["family"]), reason], n)
        yield edrop
        if doc.get("config_sync"):
            yield from families.config_sync_metrics(doc["config_sync"])
        if doc.get("anycast") is not None:
            yield from families.anycast_metrics(doc["anycast"], doc["bgp"])


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
