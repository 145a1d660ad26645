"""Request outcomes per model version from a live service's `/metrics` (Prometheus text).

The service counts every answered request by endpoint, status and model version
(`shoprec_requests_total`, summed over its workers since they started). The monitor reads the
counts of `/recommendations` answers: a status of 500 or more is an error.
"""

import httpx
from prometheus_client.parser import text_string_to_metric_families

from shoprec.service.metrics import REQUESTS_METRIC

UNKNOWN_VERSION = "-"


def request_counts(
    exposition: str, endpoint: str = "/recommendations"
) -> dict[str, tuple[int, int]]:
    """(failed requests, requests) per model version for `endpoint`, from `/metrics` text.

    Requests answered before a version was chosen are under `UNKNOWN_VERSION`.
    """
    counts: dict[str, list[int]] = {}
    for family in text_string_to_metric_families(exposition):
        if family.name != REQUESTS_METRIC:
            continue
        for sample in family.samples:
            if sample.name != f"{REQUESTS_METRIC}_total" or sample.labels["endpoint"] != endpoint:
                continue
            entry = counts.setdefault(sample.labels["model_version"], [0, 0])
            requests = int(sample.value)
            entry[1] += requests
            if int(sample.labels["status"]) >= 500:
                entry[0] += requests
    return {version: (failed, total) for version, (failed, total) in sorted(counts.items())}


def scrape(url: str, timeout: float = 5.0) -> str:
    """The service's `/metrics` text. Raises httpx.HTTPError when it cannot be read."""
    response = httpx.get(f"{url.rstrip('/')}/metrics", timeout=timeout)
    response.raise_for_status()
    return response.text
