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
    relevant = test[["user_id", "item_id"]].drop_duplicates()
    if relevant.empty:
        raise ValueError("test: no interactions to evaluate against")
    users = np.sort(relevant["user_id"].unique())
    n_relevant = relevant.groupby("user_id").size().reindex(users).to_numpy(dtype=float)

    top = rank_recommendations(recommendations, k)
    per_user = _hits_per_user(top, relevant, users)
    n_hits = per_user["n_hits"].to_numpy(dtype=float)
    precision_sum = per_user["precision_sum"].to_numpy()
    ideal_hits = np.minimum(n_relevant, k).astype(int)
    idcg = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))[ideal_hits - 1]

    values = {
        "precision": lambda: np.mean(n_hits / k),
        "recall": lambda: np.mean(n_hits / n_relevant),
        "ndcg": lambda: np.mean(per_user["dcg"].to_numpy() / idcg),
        "map": lambda: np.mean(precision_sum / n_relevant),
        "map_at_k": lambda: np.mean(precision_sum / np.minimum(n_relevant, k)),
        "hit_rate": lambda: np.mean(n_hits > 0),
        "mrr": lambda: np.mean(per_user["reciprocal_rank"].to_numpy()),
        "coverage": lambda: top["item_id"].nunique() / n_items,
        "novelty": lambda: _novelty(top, train),
    }
    return {name: float(values[name]()) for name in ALL_METRIC_NAMES if name in names}
