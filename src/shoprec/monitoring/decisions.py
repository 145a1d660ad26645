"""What the monitor concludes: alerts against the policy, and promote / keep collecting / roll back.

The rollback test: a one-sided two-proportion z-test that the challenger's CTR (lists with at
least one click) is below the champion's, at the policy's `alpha`, only once each arm has
`min_impressions` lists. Because the monitor looks again and again, `alpha` is small (0.001):
over 20 looks the chance of a false alarm stays under about 2%. Promotion needs
`promote_min_impressions` lists in the challenger's arm and the lower end of the interval of
the difference above `-non_inferiority`.
"""

import math
from dataclasses import dataclass

from shoprec.monitoring.policy import MonitorPolicy
from shoprec.monitoring.stats import Comparison, compare_rates

PROMOTE, KEEP_COLLECTING, ROLL_BACK = "promote", "keep collecting", "roll back"


@dataclass(frozen=True)
class Decision:
    """The verdict on a challenger against a champion, why, and the comparison behind it."""

    verdict: str
    reason: str
    comparison: Comparison


def decide(
    champion: tuple[int, int], challenger: tuple[int, int], policy: MonitorPolicy
) -> Decision:
    """Promote, keep collecting or roll back, from each arm's (lists clicked, lists served)."""
    rules = policy.decision
    comparison = compare_rates(*champion, *challenger)
    n_champion, n_challenger = champion[1], challenger[1]
    minimum = int(rules["min_impressions"])
    described = (
        f"CTR {comparison.b.value:.4f} vs {comparison.a.value:.4f}, difference "
        f"{comparison.difference:+.4f} [{comparison.low:+.4f}, {comparison.high:+.4f}], "
        f"p={comparison.p_worse:.2g}"
        if n_champion and n_challenger
        else "no lists yet"
    )
    if n_champion and n_challenger and comparison.a.successes + comparison.b.successes == 0:
        return Decision(
            KEEP_COLLECTING,
            f"no click in either arm yet ({n_challenger} challenger and {n_champion} champion "
            "lists): no feedback to judge by",
            comparison,
        )
    if min(n_champion, n_challenger) < minimum:
        return Decision(
            KEEP_COLLECTING,
            f"{n_challenger} challenger and {n_champion} champion lists; the test needs "
            f"{minimum} in each ({described})",
            comparison,
        )
    if comparison.p_worse < rules["alpha"]:
        return Decision(
            ROLL_BACK,
            f"challenger significantly worse: {described} < alpha {rules['alpha']:g}",
            comparison,
        )
    if (
        n_challenger >= rules["promote_min_impressions"]
        and comparison.low > -rules["non_inferiority"]
    ):
        return Decision(
            PROMOTE,
            f"challenger not worse by more than {rules['non_inferiority']:g}: {described}",
            comparison,
        )
    return Decision(KEEP_COLLECTING, f"no conclusion yet: {described}", comparison)


@dataclass(frozen=True)
class Breach:
    """A metric beyond its threshold: value, interval (NaN when it has none) and threshold."""

    metric: str
    scope: str
    value: float
    low: float
    high: float
    threshold: float

    def describe(self) -> str:
        """One line naming the metric, its value, interval and threshold."""
        interval = "" if math.isnan(self.low) else f" [{self.low:.4f}, {self.high:.4f}]"
        return (
            f"{self.metric} ({self.scope}) = {self.value:.4f}{interval}, threshold "
            f"{self.threshold:g}"
        )


def breaches(summary: dict, policy: MonitorPolicy) -> list[Breach]:
    """Every breached alert threshold in a monitoring `summary` (see `report.summarise`).

    A rate breaches when its whole interval is beyond the threshold; a value without an
    interval (latency, drift) when it is beyond it. Nothing is judged without evidence: no CTR
    and no CTR drop while the window holds no feedback at all (`readiness` says so instead).
    """
    alerts = policy.alerts
    has_feedback = summary.get("feedback_events", 0) > 0
    found = []
    for version, row in summary["versions"].items():
        scope = f"version {version}"
        checks = [
            ("fallback_rate", "max_fallback_rate", row["fallback_rate"], False),
            ("unknown_item_rate", "max_unknown_item_rate", row["unknown_item_rate"], False),
        ]
        if has_feedback:
            checks.insert(0, ("ctr", "min_ctr", row["ctr"], True))
        if row.get("error_rate") is not None:
            checks.append(("error_rate", "max_error_rate", row["error_rate"], False))
        for metric, threshold_name, rate, lower_bound in checks:
            threshold = alerts[threshold_name]
            if rate["trials"] == 0:
                continue
            beyond = rate["high"] < threshold if lower_bound else rate["low"] > threshold
            if beyond:
                found.append(
                    Breach(metric, scope, rate["value"], rate["low"], rate["high"], threshold)
                )
        p99 = row.get("latency_p99_ms")
        if p99 is not None and not math.isnan(p99) and p99 > alerts["max_latency_p99_ms"]:
            found.append(Breach("latency_p99_ms", scope, p99, math.nan, math.nan,
                                alerts["max_latency_p99_ms"]))  # fmt: skip
    drift = summary.get("drift") or {}
    js = drift.get("item_js")
    enough = summary.get("feedback_events", 0) >= alerts["min_drift_events"]
    if enough and js is not None and not math.isnan(js) and js > alerts["max_item_drift_js"]:
        found.append(Breach("item_drift_js", "all versions", js, math.nan, math.nan,
                            alerts["max_item_drift_js"]))  # fmt: skip
    found.extend(_taste_drift(drift, policy))
    drop = summary.get("ctr_change")
    if has_feedback and drop is not None and drop["trials_before"] and drop["trials_after"]:
        comparison = compare_rates(
            drop["clicked_before"], drop["trials_before"], drop["clicked_after"],
            drop["trials_after"],
        )  # fmt: skip
        relative = -comparison.difference / comparison.a.value if comparison.a.value else 0.0
        if comparison.p_worse < policy.decision["alpha"] and relative > alerts["max_ctr_drop"]:
            found.append(
                Breach("ctr_drop", "against the comparison window", relative,
                       -comparison.high / comparison.a.value, -comparison.low / comparison.a.value,
                       alerts["max_ctr_drop"])
            )  # fmt: skip
    return found


def _taste_drift(drift: dict, policy: MonitorPolicy) -> list[Breach]:
    """A breach when the share of organic choices the champion ranks high dropped against the
    comparison window: significantly, by more than `max_taste_drop`, with enough choices."""
    alerts = policy.alerts
    now, before = drift.get("taste_agreement"), drift.get("taste_agreement_before")
    if now is None or before is None:
        return []
    if min(now["trials"], before["trials"]) < alerts["min_taste_choices"]:
        return []
    comparison = compare_rates(before["successes"], before["trials"], now["successes"],
                               now["trials"])  # fmt: skip
    if not comparison.a.value:
        return []
    relative = -comparison.difference / comparison.a.value
    if comparison.p_worse < policy.decision["alpha"] and relative > alerts["max_taste_drop"]:
        return [Breach("taste_drift", f"top {drift['taste_top_n']} of the champion", relative,
                       -comparison.high / comparison.a.value, -comparison.low / comparison.a.value,
                       alerts["max_taste_drop"])]  # fmt: skip
    return []
