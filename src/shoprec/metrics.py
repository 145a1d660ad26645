# Generated from notebooks/lib/metrics.ipynb: edit the notebook, not this file.

"""Ranking metrics at k for top-k recommendations against held-out interactions."""

import numpy as np
import pandas as pd

METRIC_NAMES = ("precision", "recall", "ndcg", "map", "coverage")


def _hits(recommendations: pd.DataFrame, test: pd.DataFrame, k: int) -> pd.DataFrame:
    top = recommendations[recommendations["rank"] <= k]
    relevant = test[["user_id", "item_id"]].drop_duplicates().assign(hit=1.0)
    return top.merge(relevant, on=["user_id", "item_id"], how="left").fillna({"hit": 0.0})


def ranking_metrics(
    recommendations: pd.DataFrame, test: pd.DataFrame, k: int, n_items: int
) -> dict[str, float]:
    """Precision, recall, nDCG and MAP at k averaged over test users, plus catalogue coverage.

    `recommendations` has columns user_id, item_id, rank (1 = best); `test` has user_id, item_id.
    A test user without recommendations counts as all misses.
    """
    if k <= 0:
        raise ValueError(f"k must be a positive integer, got {k}")
    users = np.sort(test["user_id"].unique())
    n_relevant = test.drop_duplicates(["user_id", "item_id"]).groupby("user_id").size()
    hits = _hits(recommendations[recommendations["user_id"].isin(users)], test, k)
    hits = hits.sort_values(["user_id", "rank"], kind="stable")
    hits["hits_so_far"] = hits.groupby("user_id")["hit"].cumsum()
    per_user = hits.groupby("user_id").agg(
        n_hits=("hit", "sum"),
        dcg=("hit", lambda h: float(np.sum(h.to_numpy() / np.log2(np.arange(2, len(h) + 2))))),
    )
    precision_sum = (
        (hits["hit"] * hits["hits_so_far"] / hits["rank"]).groupby(hits["user_id"]).sum()
    )
    per_user = per_user.reindex(users, fill_value=0.0)
    relevant = n_relevant.reindex(users).to_numpy(dtype=float)
    ideal_hits = np.minimum(relevant, k).astype(int)
    discounts = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))
    idcg = discounts[ideal_hits - 1]
    return {
        "precision": float(np.mean(per_user["n_hits"].to_numpy() / k)),
        "recall": float(np.mean(per_user["n_hits"].to_numpy() / relevant)),
        "ndcg": float(np.mean(per_user["dcg"].to_numpy() / idcg)),
        "map": float(np.mean(precision_sum.reindex(users, fill_value=0.0).to_numpy() / relevant)),
        "coverage": float(recommendations.loc[recommendations["rank"] <= k, "item_id"].nunique())
        / n_items,
    }
