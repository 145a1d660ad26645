"""Online metrics per model version and time bucket, each rate with its confidence interval.

Attribution: a click counts for the list whose `request_id` it carries, when the item was in
that list and the click came within the attribution window after the list was served. An
add-to-cart or purchase counts for the list whose request id it carries or, without one, for
the user's latest list that showed the item within the window before the event. Feedback that
fits no list is counted by reason (`attribution_problems`), never silently dropped.
"""

import math
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from shoprec.monitoring.stats import gini, rate_interval

DEFAULT_WINDOW = timedelta(hours=1)
EVENT_TYPES = ("click", "add_to_cart", "purchase")


def _shown(impressions: pd.DataFrame) -> pd.DataFrame:
    """One row per (impression, position): request_id, user_id, item_id, position, served_at."""
    exploded = impressions[["request_id", "user_id", "served_at", "model_version", "items"]]
    exploded = exploded.explode("items").dropna(subset=["items"])
    exploded["position"] = exploded.groupby("request_id").cumcount() + 1
    return exploded.rename(columns={"items": "item_id"}).astype({"item_id": "int64"})


def attribute(
    impressions: pd.DataFrame, feedback: pd.DataFrame, window: timedelta = DEFAULT_WINDOW
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Each attributable feedback event with its list's request id, version and position.

    Returns the attributed events (event_id, event_type, request_id, model_version, position)
    and the count of events that fit no list, by reason.
    """
    shown = _shown(impressions)
    columns = ["event_id", "event_type", "request_id", "model_version", "position", "user_id",
               "item_id", "occurred_at"]  # fmt: skip
    problems: dict[str, int] = {}
    if feedback.empty:
        return pd.DataFrame(columns=columns), problems
    tagged = feedback[feedback["request_id"].notna()]
    by_id = tagged.merge(shown, on=["request_id", "item_id"], how="left", suffixes=("", "_shown"))
    known_ids = set(impressions["request_id"])
    unknown_request = ~tagged["request_id"].isin(known_ids)
    if unknown_request.any():
        problems["request_id of no list in the window (served before it, or unknown)"] = int(
            unknown_request.sum()
        )
    matched = by_id[by_id["position"].notna()]
    in_ids = tagged[tagged["request_id"].isin(known_ids)]
    not_listed = len(in_ids) - len(set(matched["event_id"]))
    if not_listed:
        problems["item not in the list its request_id names"] = int(not_listed)
    delay = matched["occurred_at"] - matched["served_at"]
    early, late = delay < timedelta(0), delay > window
    if early.any():
        problems["event before its list was served"] = int(early.sum())
    if late.any():
        problems["event after the attribution window"] = int(late.sum())
    matched = matched[~early & ~late].drop_duplicates("event_id")
    # Carts and purchases without a request id: the user's latest list showing the item.
    loose = feedback[feedback["request_id"].isna() & (feedback["event_type"] != "click")]
    if not loose.empty and not shown.empty:
        candidates = loose.merge(shown, on=["user_id", "item_id"], suffixes=("", "_shown"))
        delay = candidates["occurred_at"] - candidates["served_at"]
        candidates = candidates[(delay >= timedelta(0)) & (delay <= window)]
        candidates = candidates.sort_values(["event_id", "served_at", "request_id_shown"])
        latest = candidates.drop_duplicates("event_id", keep="last")
        latest = latest.assign(request_id=latest["request_id_shown"])
        matched = pd.concat([matched, latest], ignore_index=True)
    attributed = matched[columns].sort_values(["occurred_at", "event_id"], kind="stable")
    return attributed.reset_index(drop=True), problems


def bucket_of(moments: pd.Series, bucket: timedelta) -> pd.Series:
    """The start of each moment's time bucket."""
    return moments.dt.floor(pd.Timedelta(bucket))


def rates_by_version(
    impressions: pd.DataFrame,
    attributed: pd.DataFrame,
    bucket: timedelta | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Impressions, CTR, add-to-cart and purchase rates per version (and bucket), with intervals.

    CTR is the share of lists with at least one attributed click; add-to-cart and purchase
    rates are the share of lists with at least one attributed event of that type.
    """
    keys = ["model_version"] + (["bucket"] if bucket is not None else [])
    lists = impressions[["request_id", "model_version", "served_at", "fallback"]].copy()
    if bucket is not None:
        lists["bucket"] = bucket_of(lists["served_at"], bucket)
    for kind in EVENT_TYPES:
        hit = set(attributed.loc[attributed["event_type"] == kind, "request_id"])
        lists[kind] = lists["request_id"].isin(hit)
    grouped = lists.groupby(keys, sort=True)
    rows = []
    for key, group in grouped:
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(keys, key, strict=True))
        row["impressions"] = len(group)
        for kind, name in zip(EVENT_TYPES, ("ctr", "cart_rate", "purchase_rate"), strict=True):
            rate = rate_interval(int(group[kind].sum()), len(group), confidence)
            row[name], row[f"{name}_low"], row[f"{name}_high"] = rate.value, rate.low, rate.high
        fallback = rate_interval(int(group["fallback"].sum()), len(group), confidence)
        row["fallback_rate"] = fallback.value
        row["fallback_rate_low"], row["fallback_rate_high"] = fallback.low, fallback.high
        rows.append(row)
    rates = ["ctr", "ctr_low", "ctr_high", "cart_rate", "cart_rate_low", "cart_rate_high",
             "purchase_rate", "purchase_rate_low", "purchase_rate_high", "fallback_rate",
             "fallback_rate_low", "fallback_rate_high"]  # fmt: skip
    table = pd.DataFrame(rows, columns=[*keys, "impressions", *rates])
    return table.astype({"impressions": "int64", **dict.fromkeys(rates, "float64")})


def clicks_by_position(impressions: pd.DataFrame, attributed: pd.DataFrame) -> pd.DataFrame:
    """Per version and position: lists that had the position, clicks on it, and the click rate."""
    shown = _shown(impressions)
    lists = shown.groupby(["model_version", "position"]).size().rename("lists")
    clicks = attributed[attributed["event_type"] == "click"]
    clicks = clicks.groupby(["model_version", "position"]).size().rename("clicks")
    table = pd.concat([lists, clicks], axis=1).fillna(0).astype(int).reset_index()
    table["click_rate"] = table["clicks"] / table["lists"].where(table["lists"] > 0)
    return table


def served_diversity(
    impressions: pd.DataFrame, catalogue: np.ndarray, popularity: np.ndarray
) -> dict[str, float]:
    """Catalogue coverage, Gini of served items and novelty of what one version served.

    `catalogue` holds the model's item ids and `popularity` their training interactions; novelty
    is the mean -log2 of a served item's share of training interactions (unknown items: skipped).
    """
    shown = _shown(impressions)
    if shown.empty:
        return {"coverage": math.nan, "gini": math.nan, "novelty": math.nan}
    counts = shown["item_id"].value_counts()
    full = pd.Series(0, index=pd.Index(catalogue)).add(counts, fill_value=0)
    share = pd.Series(np.asarray(popularity, dtype=float), index=pd.Index(catalogue))
    share = share / share.sum()
    known = shown["item_id"][shown["item_id"].isin(share.index)]
    positive = share.reindex(known).to_numpy()
    positive = positive[positive > 0]
    return {
        "coverage": float(counts.index.isin(catalogue).sum() / len(catalogue)),
        "gini": gini(full.to_numpy()),
        "novelty": float(np.mean(-np.log2(positive))) if len(positive) else math.nan,
    }


def latency(impressions: pd.DataFrame) -> pd.DataFrame:
    """Latency p50 and p99 (milliseconds) per version."""
    grouped = impressions.groupby("model_version")["latency_ms"]
    return pd.DataFrame(
        {"p50_ms": grouped.quantile(0.5), "p99_ms": grouped.quantile(0.99)}
    ).reset_index()


def unknown_item_rate(feedback: pd.DataFrame, catalogue: np.ndarray) -> tuple[int, int]:
    """Feedback events on items the model does not know, and all feedback events."""
    unknown = ~feedback["item_id"].isin(np.asarray(catalogue))
    return int(unknown.sum()), len(feedback)


def item_distribution(
    feedback: pd.DataFrame, catalogue: np.ndarray, popularity: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """Training and live item counts over the same bins: the catalogue, plus one bin for all
    unknown items; and how many distinct unknown items received events."""
    live = feedback["item_id"].value_counts()
    known = live.reindex(catalogue, fill_value=0).to_numpy()
    unknown = live[~live.index.isin(catalogue)]
    training = np.append(np.asarray(popularity, dtype=float), 0.0)
    return training, np.append(known, unknown.sum()).astype(float), len(unknown)


def organic_choices(feedback: pd.DataFrame, user_ids: np.ndarray) -> pd.DataFrame:
    """Distinct (user_id, item_id) that known users chose on their own: feedback without a
    request id (search, browsing), of users in `user_ids`."""
    organic = feedback["request_id"].isna() & feedback["user_id"].isin(np.asarray(user_ids))
    chosen = feedback.loc[organic, ["user_id", "item_id"]].drop_duplicates()
    return chosen.astype("int64").sort_values(["user_id", "item_id"]).reset_index(drop=True)


def taste_agreement(feedback: pd.DataFrame, recommender: Any, top_n: int) -> tuple[int, int]:
    """How many of known users' organic choices `recommender` ranks in its top `top_n` for them
    (seen items included), and how many organic choices there were.

    When shoppers' tastes move away from what the model learnt, this share drops, even while
    the catalogue's item totals stay alike.
    """
    chosen = organic_choices(feedback, recommender.user_ids_)
    if chosen.empty:
        return 0, 0
    ranked = recommender.recommend(np.unique(chosen["user_id"]), k=int(top_n), exclude_seen=False)
    hits = chosen.merge(ranked[["user_id", "item_id"]].astype("int64"), on=["user_id", "item_id"])
    return len(hits), len(chosen)


def hit_lists(
    impressions: pd.DataFrame, feedback: pd.DataFrame, window: timedelta = DEFAULT_WINDOW
) -> set[str]:
    """Request ids of the lists that hit: their user clicked, carted or bought a listed item,
    from the list or found on their own, after the list was served and before the user's next
    list (within `window`): the online counterpart of the offline hit rate."""
    lists = impressions[["request_id", "user_id", "served_at"]].sort_values(
        ["user_id", "served_at", "request_id"], kind="stable"
    )
    following = lists.groupby("user_id")["served_at"].shift(-1)
    until = (lists["served_at"] + window).where(following.isna(), following)
    until = until.where(until <= lists["served_at"] + window, lists["served_at"] + window)
    shown = _shown(impressions).merge(lists[["request_id"]].assign(until=until.to_numpy()))
    acted = feedback[["user_id", "item_id", "occurred_at"]].astype({"item_id": "int64"})
    joined = shown.merge(acted, on=["user_id", "item_id"])
    inside = (joined["occurred_at"] >= joined["served_at"]) & (
        joined["occurred_at"] < joined["until"]
    )
    return set(joined.loc[inside, "request_id"])
