"""The ``/metrics`` scrape: django-prometheus's metrics plus the ``asteros_*`` ones.

Worker processes record run metrics (``cosmos.metrics``) in their own process. To bring them
into the API's scrape, every process of a machine shares ``PROMETHEUS_MULTIPROC_DIR``
(prometheus_client's multiprocess mode, on by default in distributed mode, see settings.py and
docs/http.md): the scrape then sums the files of every live and past process of the machine.
Without it (embedded mode) the worker is a thread of the serving process and the in-process
registry has everything.

``asteros_agents`` is computed at scrape time from the database, so it is right whichever
process created or removed agents.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

SCRAPE_TIME_METRICS = frozenset({"asteros_agents"})


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class _Without:
    """Every metric family of ``source`` except the ones computed at scrape time."""

    def __init__(self, source: CollectorRegistry, names: Iterable[str]) -> None:
        self.source = source
        self.names = frozenset(names)

    def collect(self) -> Iterator[Metric]:
        for family in self.source.collect():
            if family.name not in self.names:
                yield family


class AgentsCollector:
    def collect(self) -> Iterator[Metric]:
        from cosmos.models import Agent

        yield GaugeMetricFamily("asteros_agents", "Registered agents.", value=Agent.objects.count())


def scrape() -> bytes:
    """The Prometheus text exposition of this machine's processes."""
    directory = multiprocess_dir()
    if directory:
        source = CollectorRegistry()
        MultiProcessCollector(source, path=directory)
    else:
        source = REGISTRY
    registry = CollectorRegistry()
    registry.register(_Without(source, SCRAPE_TIME_METRICS))
    registry.register(AgentsCollector())
    return generate_latest(registry)
