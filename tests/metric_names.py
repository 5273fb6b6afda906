"""What vrrpd exports, for the tests of what reads it (alert rules, the Grafana dashboard)."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry
from status_docs import everything

from vrrpd.daemon.metrics import StatusCollector

METRIC = re.compile(r"\bvrrpd_[a-z_]+[a-z]\b")


def exported() -> set[str]:
    """Every sample name the collector produces for a status in which all families appear."""
    registry = CollectorRegistry()
    registry.register(StatusCollector(everything))
    names = {s.name for family in registry.collect() for s in family.samples}
    return names


def used_in(text: str) -> set[str]:
    """The ``vrrpd_*`` metric names a PromQL text (or a file full of it) refers to."""
    return set(METRIC.findall(text))
