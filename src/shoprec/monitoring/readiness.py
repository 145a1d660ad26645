"""What a monitoring report cannot judge yet, and from when it can: the states of a new deploy.

Right after a deploy the window may hold no lists at all, lists without feedback, one version,
one time bucket, an empty comparison window, or a canary with too few lists. Each is a state,
not a fault: the report names what it cannot judge yet and why, raises no alert for it
(`decisions.breaches` judges nothing it has no evidence for), and `shoprec monitor` exits 0.
"""

from typing import Any

from shoprec.monitoring.policy import MonitorPolicy


def not_judged(
    summary: dict[str, Any],
    policy: MonitorPolicy,
    *,
    champion: str,
    challenger: str,
    comparison_minutes: int,
    buckets: int,
    bucket_minutes: int,
) -> list[str]:
    """One line per thing the window's `summary` (see `report.summarise`) cannot judge yet.

    `buckets` is how many time buckets of `bucket_minutes` the window's lists fall in.
    """
    lists, feedback = summary["impressions"], summary["feedback_events"]
    if lists == 0:
        return ["no lists served in the window (no traffic yet): nothing to judge until the "
                "service answers /recommendations"]  # fmt: skip
    lines = []
    if feedback == 0:
        lines.append(
            f"no feedback events yet for the window's {lists} lists: CTR, add-to-cart, purchase "
            "and hit rates and drift cannot be judged until the shop sends clicks, carts and "
            "purchases to POST /events"
        )
    lines += _challenger(summary, policy, champion, challenger)
    lines += _comparison(summary, comparison_minutes)
    lines += _drift(summary, policy, feedback)
    if buckets < 2:
        lines.append(
            f"the window's lists fall in one time bucket ({bucket_minutes} minutes): no trend "
            "over time yet"
        )
    if not any("error_rate" in row for row in summary["versions"].values()):
        lines.append("error rate: the service's /metrics was not read")
    return lines


def _challenger(
    summary: dict[str, Any], policy: MonitorPolicy, champion: str, challenger: str
) -> list[str]:
    if not challenger:
        return [f"one version served (version {champion}): no challenger to promote or roll back"]
    minimum = int(policy.decision["min_impressions"])
    served = {v: summary["versions"][v]["impressions"] for v in (champion, challenger)}
    if min(served.values()) >= minimum:
        return []
    return [
        f"challenger version {challenger} has {served[challenger]} lists and champion version "
        f"{champion} {served[champion]}: promoting or rolling back needs {minimum} in each"
    ]


def _comparison(summary: dict[str, Any], minutes: int) -> list[str]:
    change = summary["ctr_change"]
    if change is None:
        return ["no comparison window (0 minutes): the CTR drop and taste drift are not judged"]
    if change["trials_before"] == 0:
        return [
            f"the comparison window (the {minutes} minutes before the window) holds no lists: "
            "the CTR drop and taste drift cannot be judged yet"
        ]
    return []


def _drift(summary: dict[str, Any], policy: MonitorPolicy, feedback: int) -> list[str]:
    alerts, lines = policy.alerts, []
    if feedback and feedback < alerts["min_drift_events"]:
        lines.append(
            f"item drift: {feedback} feedback events in the window; judged from "
            f"{int(alerts['min_drift_events'])}"
        )
    drift = summary["drift"]
    now, before = drift.get("taste_agreement"), drift.get("taste_agreement_before")
    minimum = int(alerts["min_taste_choices"])
    compared = bool(summary["ctr_change"] and summary["ctr_change"]["trials_before"])
    judged = feedback and compared and now is not None and before is not None
    if judged and min(now["trials"], before["trials"]) < minimum:
        lines.append(
            f"taste drift: {before['trials']} and {now['trials']} own choices in the "
            f"comparison window and the window; judged from {minimum} in each"
        )
    return lines
