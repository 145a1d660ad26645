# Generated from notebooks/lib/spark_engine.ipynb: edit the notebook, not this file.

"""Ranking metrics at k computed on Spark, equal to `shoprec.metrics.ranking_metrics` to 1e-9."""

from collections.abc import Sequence

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from shoprec.metrics import METRIC_NAMES
from shoprec.params import check_k
from shoprec.spark.params import SPARK_METRIC_NAMES


def rank_recommendations(recommendations: DataFrame, k: int | None = None) -> DataFrame:
    """Each user's list in order with `rank` renumbered 1, 2, ...; only the first `k` if given.

    The local `rank_recommendations` order: `rank` ascending (if present), `score` descending
    (if present), `item_id` ascending; a repeated (user, item) keeps its best place.
    """
    keys = [F.asc("rank")] if "rank" in recommendations.columns else []
    keys += [F.desc("score")] if "score" in recommendations.columns else []
    if not keys:
        raise ValueError("recommendations need a rank or a score column")
    keys.append(F.asc("item_id"))
    first = Window.partitionBy("user_id", "item_id").orderBy(*keys)
    place = Window.partitionBy("user_id").orderBy(*keys)
    ranked = (
        recommendations.withColumn("_first", F.row_number().over(first))
        .where(F.col("_first") == 1)
        .drop("_first")
        .withColumn("rank", F.row_number().over(place))
    )
    return ranked if k is None else ranked.where(F.col("rank") <= k)


def _per_user(recommendations: DataFrame, test: DataFrame, k: int) -> tuple[DataFrame, DataFrame]:
    """One row per test user (its relevant items, hits in the top `k`, DCG and ideal DCG, the
    precisions at its hits summed, its best reciprocal rank), and the top-`k` lists."""
    relevant = test.select("user_id", "item_id").distinct()
    per_user_relevant = relevant.groupBy("user_id").agg(F.count(F.lit(1)).alias("n_relevant"))
    top = rank_recommendations(recommendations, k).select("user_id", "item_id", "rank")
    hits = top.join(relevant, ["user_id", "item_id"])
    order = Window.partitionBy("user_id").orderBy("rank")
    rank = F.col("rank").cast("double")
    hits = hits.select(
        "user_id",
        (1.0 / F.log2(rank + 1.0)).alias("gain"),
        (F.row_number().over(order) / rank).alias("precision_at_hit"),
        (1.0 / rank).alias("reciprocal_rank"),
    )
    per_hit_user = hits.groupBy("user_id").agg(
        F.count(F.lit(1)).cast("double").alias("n_hits"),
        F.sum("gain").alias("dcg"),
        F.sum("precision_at_hit").alias("precision_sum"),
        F.max("reciprocal_rank").alias("reciprocal_rank"),
    )
    ideal = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))
    spark = recommendations.sparkSession
    idcg = spark.createDataFrame(pd.DataFrame({"ideal_hits": np.arange(1, k + 1), "idcg": ideal}))
    per_user = (
        per_user_relevant.join(per_hit_user, "user_id", "left")
        .fillna(0.0, ["n_hits", "dcg", "precision_sum", "reciprocal_rank"])
        .withColumn("ideal_hits", F.least(F.col("n_relevant"), F.lit(k)))
        .join(F.broadcast(idcg), "ideal_hits")
    )
    return per_user, top


def ranking_metrics(
    recommendations: DataFrame,
    test: DataFrame,
    k: int,
    n_items: int,
    *,
    metrics: Sequence[str] | None = None,
) -> dict[str, float]:
    """The local `ranking_metrics` (all but novelty), computed with Spark aggregations.

    Per-user values come from Spark; only one row per metric returns to the driver.
    """
    check_k(k)
    names = METRIC_NAMES if metrics is None else tuple(metrics)
    unknown = sorted(set(names) - set(SPARK_METRIC_NAMES))
    if unknown:
        raise ValueError(
            f"unknown metrics {unknown} on Spark; expected some of {list(SPARK_METRIC_NAMES)}"
        )
    per_user, top = _per_user(recommendations, test, k)
    n_rel = F.col("n_relevant").cast("double")
    expressions = {
        "precision": F.avg(F.col("n_hits") / k),
        "recall": F.avg(F.col("n_hits") / n_rel),
        "ndcg": F.avg(F.col("dcg") / F.col("idcg")),
        "map": F.avg(F.col("precision_sum") / n_rel),
        "map_at_k": F.avg(F.col("precision_sum") / F.least(n_rel, F.lit(float(k)))),
        "hit_rate": F.avg((F.col("n_hits") > 0).cast("double")),
        "mrr": F.avg("reciprocal_rank"),
    }
    wanted = [name for name in SPARK_METRIC_NAMES if name in names]
    row = per_user.agg(
        F.count(F.lit(1)).alias("_users"),
        *(expressions[name].alias(name) for name in wanted if name != "coverage"),
    ).first()
    if row["_users"] == 0:
        raise ValueError("test: no interactions to evaluate against")
    values = {name: float(row[name]) for name in wanted if name != "coverage"}
    if "coverage" in wanted:
        values["coverage"] = top.select("item_id").distinct().count() / n_items
    return {name: values[name] for name in wanted}
