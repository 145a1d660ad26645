"""One monitoring summary of a window: per version rates with intervals, diversity, latency,
drift against the training data (item popularity, and users' tastes against what the champion
learnt), CTR against the comparison window. Plain data, for JSON."""

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from shoprec.monitoring import metrics
from shoprec.monitoring.data import EventFrames
from shoprec.monitoring.policy import MonitorPolicy
from shoprec.monitoring.stats import jensen_shannon, psi, rate_interval


@dataclass(frozen=True)
class Catalogue:
    """What a version was trained on: its item ids and their training interactions."""

    item_ids: np.ndarray
    popularity: np.ndarray
    recommender: Any = None

    @classmethod
    def of(cls, model: Any) -> "Catalogue":
        """From a fitted `Recommender` (kept, to rank items for users' tastes)."""
        return cls(np.asarray(model.item_ids_), np.asarray(model.popularity_, dtype=float), model)


def _number(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _clicked(frames: EventFrames, attributed: pd.DataFrame) -> tuple[int, int]:
    clicked = set(attributed.loc[attributed["event_type"] == "click", "request_id"])
    return int(frames.impressions["request_id"].isin(clicked).sum()), len(frames.impressions)


def summarise(
    frames: EventFrames,
    catalogues: dict[str, Catalogue],
    policy: MonitorPolicy,
    comparison: EventFrames | None = None,
    errors: dict[str, tuple[int, int]] | None = None,
) -> dict[str, Any]:
    """The window's summary: `versions` (rates with intervals and the rest), `drift`,
    `ctr_change` against `comparison`, `problems` (feedback that fits no list), in plain data.

    `catalogues` maps a model version to what it was trained on; `errors` maps a version to
    (failed requests, requests) when the service's counters are known.
    """
    attributed, problems = metrics.attribute(frames.impressions, frames.feedback, policy.window)
    problems = {**frames.problems, **problems}
    table = metrics.rates_by_version(frames.impressions, attributed)
    latency = metrics.latency(frames.impressions).set_index("model_version")
    lists_hit = metrics.hit_lists(frames.impressions, frames.feedback, policy.window)
    versions: dict[str, Any] = {}
    for row in table.to_dict("records"):
        version = row["model_version"]
        shown = frames.impressions[frames.impressions["model_version"] == version]
        listed = set(shown["request_id"])
        mine = attributed[attributed["request_id"].isin(listed)]
        entry: dict[str, Any] = {"impressions": int(row["impressions"])}
        for name, kind in (("ctr", "click"), ("cart_rate", "add_to_cart"),
                           ("purchase_rate", "purchase")):  # fmt: skip
            hits = int(shown["request_id"].isin(set(mine.loc[mine["event_type"] == kind,
                                                             "request_id"])).sum())  # fmt: skip
            entry[name] = rate_interval(hits, len(shown)).as_dict()
        entry["hit_rate"] = rate_interval(int(shown["request_id"].isin(lists_hit).sum()),
                                          len(shown)).as_dict()  # fmt: skip
        entry["fallback_rate"] = rate_interval(int(shown["fallback"].sum()), len(shown)).as_dict()
        users = set(shown["user_id"])
        their_feedback = frames.feedback[frames.feedback["user_id"].isin(users)]
        catalogue = catalogues.get(version)
        if catalogue is not None:
            unknown, total = metrics.unknown_item_rate(their_feedback, catalogue.item_ids)
            entry["unknown_item_rate"] = rate_interval(unknown, total).as_dict()
            diversity = metrics.served_diversity(shown, catalogue.item_ids, catalogue.popularity)
            entry.update({name: _number(value) for name, value in diversity.items()})
        else:
            entry["unknown_item_rate"] = rate_interval(0, 0).as_dict()
        entry["latency_p50_ms"] = _number(float(latency.loc[version, "p50_ms"]))
        entry["latency_p99_ms"] = _number(float(latency.loc[version, "p99_ms"]))
        if errors and version in errors:
            entry["error_rate"] = rate_interval(*errors[version]).as_dict()
        versions[version] = entry
    summary: dict[str, Any] = {
        "impressions": len(frames.impressions),
        "feedback_events": len(frames.feedback),
        "attributed_events": len(attributed),
        "problems": dict(sorted(problems.items())),
        "versions": versions,
        "drift": drift(frames, catalogues),
        "ctr_change": None,
    }
    summary["drift"].update(taste(frames, comparison, catalogues, policy))
    if comparison is not None:
        before, _ = metrics.attribute(comparison.impressions, comparison.feedback, policy.window)
        clicked_before, trials_before = _clicked(comparison, before)
        clicked_after, trials_after = _clicked(frames, attributed)
        summary["ctr_change"] = {
            "clicked_before": clicked_before, "trials_before": trials_before,
            "clicked_after": clicked_after, "trials_after": trials_after,
        }  # fmt: skip
    return summary


def drift(frames: EventFrames, catalogues: dict[str, Catalogue]) -> dict[str, Any]:
    """Live behaviour against the training data of the version that served most lists (the
    champion): item-popularity PSI and Jensen-Shannon, unknown-user share, new items with events."""
    reference = _reference(frames, catalogues)
    if reference is None or frames.feedback.empty:
        return {"reference_version": None, "item_psi": None, "item_js": None,
                "unknown_user_share": None, "new_items_with_events": None}  # fmt: skip
    catalogue = catalogues[reference]
    training, live, new_items = metrics.item_distribution(
        frames.feedback, catalogue.item_ids, catalogue.popularity
    )
    return {
        "reference_version": reference,
        "item_psi": psi(training, live),
        "item_js": jensen_shannon(training, live),
        "unknown_user_share": float(frames.impressions["fallback"].mean())
        if len(frames.impressions)
        else None,
        "new_items_with_events": new_items,
    }


def _reference(frames: EventFrames, catalogues: dict[str, Catalogue]) -> str | None:
    """The version that served most lists (ties: the smaller label) and has a catalogue."""
    served = frames.impressions["model_version"].value_counts()
    known = [v for v in sorted(served.index, key=lambda v: (-served[v], v)) if v in catalogues]
    return known[0] if known else None


def taste(
    frames: EventFrames,
    comparison: EventFrames | None,
    catalogues: dict[str, Catalogue],
    policy: MonitorPolicy,
) -> dict[str, Any]:
    """Taste drift: the share of known users' organic choices the champion ranks in its top
    `taste_top_n`, in this window and in the comparison window, each with its interval."""
    reference = _reference(frames, catalogues)
    recommender = catalogues[reference].recommender if reference is not None else None
    top_n = int(policy.alerts["taste_top_n"])
    found: dict[str, Any] = {"taste_top_n": top_n, "taste_agreement": None,
                             "taste_agreement_before": None}  # fmt: skip
    if recommender is None:
        return found
    found["taste_agreement"] = rate_interval(
        *metrics.taste_agreement(_while_served(frames), recommender, top_n)
    ).as_dict()
    if comparison is not None:
        found["taste_agreement_before"] = rate_interval(
            *metrics.taste_agreement(_while_served(comparison), recommender, top_n)
        ).as_dict()
    return found


def _while_served(frames: EventFrames) -> pd.DataFrame:
    """The feedback that occurred while the window's lists were served (not the attribution
    window's tail after the last list, which belongs to the next window)."""
    served = frames.impressions["served_at"]
    if served.empty:
        return frames.feedback.iloc[:0]
    occurred = frames.feedback["occurred_at"]
    return frames.feedback[(occurred >= served.min()) & (occurred <= served.max())]


def rates_over_time(
    windows: list[EventFrames | None], policy: MonitorPolicy, bucket: timedelta
) -> pd.DataFrame:
    """CTR, add-to-cart and purchase rates with intervals per version and time bucket, over
    `windows` (oldest first, the first one given; None: no such window), in one table."""
    tables = []
    for frames in windows:
        if frames is not None:
            attributed, _ = metrics.attribute(frames.impressions, frames.feedback, policy.window)
            tables.append(metrics.rates_by_version(frames.impressions, attributed, bucket))
    filled = [table for table in tables if not table.empty]
    return pd.concat(filled, ignore_index=True) if filled else tables[0]
