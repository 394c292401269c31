"""Prometheus as a metric source: a small HTTP query client and the queries tuner runs."""

from tuner.providers.prometheus.client import PrometheusClient, Sample
from tuner.providers.prometheus.queries import ContainerQueries

__all__ = ["ContainerQueries", "PrometheusClient", "Sample"]
