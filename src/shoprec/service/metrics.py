"""Prometheus metrics of the service, aggregated over every worker process.

When `PROMETHEUS_MULTIPROC_DIR` is set (the service launcher sets it, and empties the folder,
before any worker starts), each worker writes its samples to files there and `/metrics`
collects them all (prometheus-client's multiprocess mode); otherwise the process's own
registry is exposed.
"""

import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

MULTIPROC_VAR = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

REQUESTS_METRIC = "shoprec_requests"
REQUESTS = Counter(
    REQUESTS_METRIC, "HTTP requests answered", ["endpoint", "status", "model_version"]
)
LATENCY = Histogram(
    "shoprec_request_duration_seconds",
    "Time to answer an HTTP request",
    ["endpoint", "status", "model_version"],
    buckets=LATENCY_BUCKETS,
)
IMPRESSIONS = Counter(
    "shoprec_impressions", "Served lists logged as impressions", ["environment", "model_version"]
)
IMPRESSION_LOG_METRIC = "shoprec_impression_records"
IMPRESSION_LOG = Counter(
    IMPRESSION_LOG_METRIC,
    "Impression records by what happened to them: received, queued, written, spooled, "
    "replayed, dropped",
    ["outcome"],
)
FEEDBACK = Counter("shoprec_feedback_events", "Feedback events stored", ["event_type"])
SERVED_VERSION = Gauge(
    "shoprec_model_version_workers",
    "Worker processes serving each model version",
    ["model_version"],
    multiprocess_mode="livesum",
)
PRECOMPUTED_USERS = Gauge(
    "shoprec_precomputed_users",
    "Known users whose lists are precomputed, by model version (the fewest of any live worker)",
    ["model_version"],
    multiprocess_mode="livemin",
)
KNOWN_ENDPOINTS = frozenset(
    {"/recommendations", "/similar-items", "/events", "/health", "/metrics", "/"}
)


def exposition() -> tuple[bytes, str]:
    """Every worker's metrics in Prometheus' text format, and its content type."""
    directory = os.environ.get(MULTIPROC_VAR)
    if directory:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def impression_counts(samples_file: Path) -> dict[str, int]:
    """The impression-log counters (received, written, ...) one process left in its
    multiprocess samples file (`counter_<pid>.db`), readable after the process ended."""
    from prometheus_client import multiprocess

    counts: dict[str, int] = {}
    for metric in multiprocess.MultiProcessCollector.merge([str(samples_file)], accumulate=False):
        if metric.name != IMPRESSION_LOG_METRIC:
            continue
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                counts[sample.labels["outcome"]] = int(sample.value)
    return counts


def worker_exited() -> None:
    """Drop this process's live gauges (its counters keep counting in the totals)."""
    if os.environ.get(MULTIPROC_VAR):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())


Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable, Callable], Awaitable[None]]


class RequestMetrics:
    """ASGI middleware counting requests and timing them by endpoint, status and model version.

    The model version is read from the response's `x-model-version` header or, for a request
    that failed before answering, from the version its route chose (`request.state`).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        seen: dict[str, str] = {"status": "500", "version": "-"}
        # a route records the version it chose (request.state) before answering, so a
        # request that fails after that is counted under its version, not under "-"
        state = scope.setdefault("state", {})

        async def sending(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = str(message["status"])
                for name, value in message.get("headers", ()):
                    if name == b"x-model-version":
                        seen["version"] = value.decode()
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            path = scope.get("path", "")
            endpoint = path if path in KNOWN_ENDPOINTS else "other"
            version = seen["version"] if seen["version"] != "-" else state.get("model_version", "-")
            labels = (endpoint, seen["status"], str(version))
            REQUESTS.labels(*labels).inc()
            LATENCY.labels(*labels).observe(time.perf_counter() - start)
