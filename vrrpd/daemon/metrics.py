"""Optional Prometheus endpoint (``metrics: {listen: 127.0.0.1:9650}``).

Metrics are collected at scrape time from the same status dicts ``vrrpctl status`` shows, so
nothing on the VRRP critical path updates a metric.  Served by a tiny asyncio HTTP server on
the daemon's own loop (no thread touches daemon state).

Metric names:

* ``vrrpd_instance_state{instance,state}``: 1 for the current state (INIT/BACKUP/MASTER/FAULT)
* ``vrrpd_instance_priority{instance}``, ``vrrpd_instance_effective_priority{instance}``
* ``vrrpd_instance_vips_held{instance}``: 1 when this node holds the VIPs
* ``vrrpd_transitions_total{instance}``
* ``vrrpd_adverts_sent_total{instance}``, ``vrrpd_adverts_received_total{instance}``
* ``vrrpd_dropped_total{instance,reason}``: adverts refused by an instance
* ``vrrpd_endpoint_dropped_total{interface,family,reason}``: packets dropped before demux
* ``vrrpd_tracker_up{instance,tracker}``: 1 while a tracker passes
* ``vrrpd_foreign_adverts_total{instance}``: adverts obeyed from routers not in ``peers``
* ``vrrpd_foreign_master{instance}``: 1 while the master is not a listed peer
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from vrrpd.kernel.listen import listening_socket

STATES = ("INIT", "BACKUP", "MASTER", "FAULT")


class StatusCollector(Collector):
    def __init__(self, status: Callable[[], dict[str, Any]]) -> None:
        self._status = status

    def collect(self) -> Iterator[Metric]:
        doc = self._status()
        state = GaugeMetricFamily("vrrpd_instance_state", "1 for the instance's current state",
                                  labels=["instance", "state"])
        prio = GaugeMetricFamily("vrrpd_instance_priority", "configured priority",
                                 labels=["instance"])
        eff = GaugeMetricFamily("vrrpd_instance_effective_priority",
                                "priority advertised now", labels=["instance"])
        held = GaugeMetricFamily("vrrpd_instance_vips_held", "1 when this node holds the VIPs",
                                 labels=["instance"])
        trans = CounterMetricFamily("vrrpd_transitions", "state transitions",
                                    labels=["instance"])
        sent = CounterMetricFamily("vrrpd_adverts_sent", "adverts sent", labels=["instance"])
        rcvd = CounterMetricFamily("vrrpd_adverts_received", "adverts received",
                                   labels=["instance"])
        drop = CounterMetricFamily("vrrpd_dropped", "adverts refused by an instance",
                                   labels=["instance", "reason"])
        track = GaugeMetricFamily("vrrpd_tracker_up", "1 while the tracker passes",
                                  labels=["instance", "tracker"])
        foreign = CounterMetricFamily("vrrpd_foreign_adverts",
                                      "adverts obeyed from routers not in peers",
                                      labels=["instance"])
        foreign_master = GaugeMetricFamily("vrrpd_foreign_master",
                                           "1 while the master is not a listed peer",
                                           labels=["instance"])
        for i in doc["instances"]:
            name, c = i["name"], i["counters"]
            for s in STATES:
                state.add_metric([name, s], 1 if i["state"] == s else 0)
            prio.add_metric([name], i["priority"])
            eff.add_metric([name], i["effective_priority"])
            held.add_metric([name], 1 if i["vips_held"] else 0)
            trans.add_metric([name], c.get("transitions", 0))
            sent.add_metric([name], c.get("adverts_sent", 0))
            rcvd.add_metric([name], c.get("adverts_received", 0))
            foreign.add_metric([name], c.get("foreign_adverts", 0))
            foreign_master.add_metric([name], 1 if i.get("foreign_master") else 0)
            for reason, n in i["dropped"].items():
                drop.add_metric([name, reason], n)
            for t in i.get("trackers", []):
                track.add_metric([name, t["name"]], 1 if t["ok"] else 0)
        edrop = CounterMetricFamily("vrrpd_endpoint_dropped", "packets dropped before demux",
                                    labels=["interface", "family", "reason"])
        for e in doc["endpoints"]:
            for reason, n in e["dropped"].items():
                edrop.add_metric([e["interface"], str(e["family"]), reason], n)
        yield from (state, prio, eff, held, trans, sent, rcvd, drop, track, foreign,
                    foreign_master, edrop)


class MetricsServer:
    """``GET /metrics`` (any path, really) in Prometheus text format."""

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
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # request line and headers: every path serves the metrics
            body = generate_latest(self.registry)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                         b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
            await writer.drain()
        writer.close()
