# Generated from notebooks/lib/metrics.ipynb: edit the notebook, not this file.

"""Ranking metrics at k for top-k recommendations against held-out interactions.

Definitions follow Microsoft Recommenders' `python_evaluation` (binary relevance); see
`ranking_metrics`.
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd

from shoprec.params import check_k

METRIC_NAMES = ("precision", "recall", "ndcg", "map", "coverage")
# The metrics each test user has a value of (coverage and novelty describe whole lists).
PER_USER_METRIC_NAMES = ("precision", "recall", "ndcg", "map", "map_at_k", "hit_rate", "mrr")
ALL_METRIC_NAMES = (
    "precision",
    "recall",
    "ndcg",
    "map",
    "map_at_k",
    "hit_rate",
    "mrr",
    "coverage",
    "novelty",
)


def rank_recommendations(recommendations: pd.DataFrame, k: int | None = None) -> pd.DataFrame:
    """Each user's list in order, `rank` renumbered 1, 2, ...; only the first `k` if given.

    Order: `rank` ascending (if present), `score` descending (if present), `item_id` ascending.
    """
    keys = [column for column in ("rank", "score") if column in recommendations]
    if not keys:
        raise ValueError("recommendations need a rank or a score column")
    ordered = recommendations.sort_values(
        ["user_id", *keys, "item_id"],
        ascending=[True, *(column == "rank" for column in keys), True],
        kind="stable",
    ).drop_duplicates(["user_id", "item_id"])
    ordered = ordered.assign(rank=ordered.groupby("user_id").cumcount().to_numpy() + 1)
    if k is not None:
        ordered = ordered[ordered["rank"] <= k]
    return ordered.reset_index(drop=True)


def _requested(
    k: int, metrics: Sequence[str] | None, train: pd.DataFrame | None
) -> tuple[str, ...]:
    """The metric names asked for (`METRIC_NAMES` by default), once `k` and `train` suit them."""
    check_k(k)
    names = METRIC_NAMES if metrics is None else tuple(metrics)
    unknown = sorted(set(names) - set(ALL_METRIC_NAMES))
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; expected some of {list(ALL_METRIC_NAMES)}")
    if "novelty" in names and train is None:
        raise ValueError("novelty needs the train interactions: pass train=")
    return names


def _hits_per_user(top: pd.DataFrame, relevant: pd.DataFrame, users: np.ndarray) -> pd.DataFrame:
    """n_hits, dcg, precision_sum and reciprocal_rank of each of `users`, in that order."""
    hits = top[["user_id", "item_id", "rank"]].merge(relevant, on=["user_id", "item_id"])
    hits = hits.sort_values(["user_id", "rank"], kind="stable")
    rank = hits["rank"].to_numpy(dtype=float)
    hits = hits.assign(
        gain=1.0 / np.log2(rank + 1.0),
        precision_at_hit=(hits.groupby("user_id").cumcount().to_numpy() + 1) / rank,
        reciprocal_rank=1.0 / rank,
    )
    return (
        hits.groupby("user_id")
        .agg(
            n_hits=("rank", "size"),
            dcg=("gain", "sum"),
            precision_sum=("precision_at_hit", "sum"),
            reciprocal_rank=("reciprocal_rank", "max"),
        )
        .reindex(users, fill_value=0.0)
    )


def _relevant(test: pd.DataFrame) -> pd.DataFrame:
    """The distinct (user, item) pairs of `test`; an error if there are none."""
    relevant = test[["user_id", "item_id"]].drop_duplicates()
    if relevant.empty:
        raise ValueError("test: no interactions to evaluate against")
    return relevant


def _per_user_values(top: pd.DataFrame, relevant: pd.DataFrame, k: int) -> pd.DataFrame:
    """Every `PER_USER_METRIC_NAMES` column for each user of `relevant`, from the ranked `top`."""
    users = np.sort(relevant["user_id"].unique())
    n_relevant = relevant.groupby("user_id").size().reindex(users).to_numpy(dtype=float)
    per_user = _hits_per_user(top, relevant, users)
    n_hits = per_user["n_hits"].to_numpy(dtype=float)
    precision_sum = per_user["precision_sum"].to_numpy()
    ideal_hits = np.minimum(n_relevant, k).astype(int)
    idcg = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))[ideal_hits - 1]
    values = {
        "precision": n_hits / k,
        "recall": n_hits / n_relevant,
        "ndcg": per_user["dcg"].to_numpy() / idcg,
        "map": precision_sum / n_relevant,
        "map_at_k": precision_sum / np.minimum(n_relevant, k),
        "hit_rate": (n_hits > 0).astype(float),
        "mrr": per_user["reciprocal_rank"].to_numpy(),
    }
    return pd.DataFrame(values, index=pd.Index(users, name="user_id"))


def per_user_metrics(
    recommendations: pd.DataFrame,
    test: pd.DataFrame,
    k: int,
    *,
    metrics: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Each test user's ranking metrics at k: one row per test user (ids ascending), one column
    per name of `metrics` (default `PER_USER_METRIC_NAMES`). Inputs as for `ranking_metrics`."""
    check_k(k)
    names = PER_USER_METRIC_NAMES if metrics is None else tuple(metrics)
    unknown = sorted(set(names) - set(PER_USER_METRIC_NAMES))
    if unknown:
        raise ValueError(
            f"unknown per-user metrics {unknown}; expected some of {list(PER_USER_METRIC_NAMES)} "
            "(coverage and novelty describe whole lists, not users)"
        )
    relevant = _relevant(test)
    top = rank_recommendations(recommendations, k)
    return _per_user_values(top, relevant, k)[list(names)]


def _novelty(top: pd.DataFrame, train: pd.DataFrame) -> float:
    counts = train["item_id"].value_counts()
    self_information = -np.log2(counts / len(train))
    values = top["item_id"].map(self_information).dropna()
    return float(values.mean()) if len(values) else float("nan")


def ranking_metrics(
    recommendations: pd.DataFrame,
    test: pd.DataFrame,
    k: int,
    n_items: int,
    *,
    train: pd.DataFrame | None = None,
    metrics: Sequence[str] | None = None,
) -> dict[str, float]:
    """Ranking metrics at k averaged over test users, plus catalogue coverage and novelty.

    `recommendations` has user_id, item_id and rank (1 = best) and/or score (higher = better);
    ties are broken by score descending, then item_id ascending (see `rank_recommendations`).
    `test` (and `train`, needed only for novelty) have user_id, item_id. A test user without
    recommendations counts as all misses. `metrics` picks names from `ALL_METRIC_NAMES`, in that
    order; the default is `METRIC_NAMES`.
    """
    names = _requested(k, metrics, train)
    relevant = _relevant(test)
    top = rank_recommendations(recommendations, k)
    per_user = _per_user_values(top, relevant, k)
    values = {
        **{name: lambda name=name: np.mean(per_user[name].to_numpy()) for name in per_user},
        "coverage": lambda: top["item_id"].nunique() / n_items,
        "novelty": lambda: _novelty(top, train),
    }
    return {name: float(values[name]()) for name in ALL_METRIC_NAMES if name in names}
