"""The monitoring policy, `policy/monitor-policy.toml`: alert thresholds and decision rules.

Versioned with the code; every report records its version and sha256.
"""

import math
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from shoprec.errors import EXIT_BAD_INPUT, ShoprecError
from shoprec.policy import read_versioned_toml
from shoprec.runs import project_dir

MONITOR_POLICY_FILE = Path("policy") / "monitor-policy.toml"
FIELDS: dict[str, dict[str, tuple[float, float]]] = {
    "attribution": {"window_minutes": (1, 7 * 24 * 60)},
    "alerts": {
        "min_ctr": (0, 1),
        "max_fallback_rate": (0, 1),
        "max_unknown_item_rate": (0, 1),
        "max_error_rate": (0, 1),
        "max_latency_p99_ms": (0, math.inf),
        "max_item_drift_js": (0, 1),
        "min_drift_events": (0, math.inf),
        "max_ctr_drop": (0, 1),
        "taste_top_n": (1, 10_000),
        "max_taste_drop": (0, 1),
        "min_taste_choices": (1, math.inf),
    },
    "decision": {
        "alpha": (1e-9, 0.5),
        "min_impressions": (1, math.inf),
        "promote_min_impressions": (1, math.inf),
        "non_inferiority": (0, 1),
    },
}


class MonitorPolicyError(ShoprecError, ValueError):
    """A monitoring policy file that is missing or malformed; names the file and field."""

    exit_code = EXIT_BAD_INPUT


@dataclass(frozen=True)
class MonitorPolicy:
    """The thresholds and decision rules in force, and which file (version, sha256) they are."""

    version: int
    attribution: dict[str, float]
    alerts: dict[str, float]
    decision: dict[str, float]
    sha256: str
    path: Path

    @property
    def window(self) -> timedelta:
        """The attribution window."""
        return timedelta(minutes=self.attribution["window_minutes"])

    def record(self) -> dict[str, Any]:
        """What a report records of the policy."""
        found = asdict(self)
        found["path"] = MONITOR_POLICY_FILE.as_posix()
        return found


def load_monitor_policy(path: Path | str | None = None) -> MonitorPolicy:
    """The monitoring policy at `path` (default: the project's), checked field by field."""
    path = Path(path) if path else project_dir() / MONITOR_POLICY_FILE
    document, version, sha256 = read_versioned_toml(
        path, "monitoring policy", MONITOR_POLICY_FILE, MonitorPolicyError
    )
    tables = {}
    for name, fields in FIELDS.items():
        table = document.get(name)
        if not isinstance(table, dict):
            raise MonitorPolicyError(f"{path}: missing the [{name}] table")
        if unknown := sorted(set(table) - set(fields)):
            raise MonitorPolicyError(f"{path}: [{name}] has unknown field(s) {unknown}")
        values = {}
        for field, (low, high) in fields.items():
            value = table.get(field)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise MonitorPolicyError(f"{path}: [{name}] {field} = {value!r}; expected a number")
            if not low <= value <= high:
                raise MonitorPolicyError(
                    f"{path}: [{name}] {field} = {value!r}; expected {low} to {high}"
                )
            values[field] = float(value)
        tables[name] = values
    return MonitorPolicy(version, sha256=sha256, path=path, **tables)
