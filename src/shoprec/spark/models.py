# Generated from notebooks/lib/spark_engine.ipynb: edit the notebook, not this file.

"""Models trained on Spark, saved as the local engine's models: same artifact, same service.

Co-occurrence computes its item similarities (the costly X^T X) in Spark tasks, a block of items
each, with the local kernel; ALS is Spark MLlib's. Either way the result is the local model class
with its plain arrays, so `shoprec.artifact.save_model`, the registry, the deploy gates and the
service work unchanged.
"""

from collections.abc import Iterator

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from shoprec.models import ALGORITHMS, Recommender
from shoprec.models.als import ALSRecommender
from shoprec.models.cooccurrence import (
    SECONDS_PER_DAY,
    SIMILARITIES,
    CooccurrenceRecommender,
    block_rows,
    pruned_similarity_rows,
    similarity_matrix,
)
from shoprec.params import check_k, check_positive_int, check_positive_number
from shoprec.spark.session import default_parallelism

PER_USER_ARRAYS = {"als": ("user_factors_",)}
"""Fitted arrays with one row per user, besides the shared seen-items arrays."""


def decayed_weights(interactions: DataFrame, half_life_days: float) -> DataFrame:
    """`interactions` with each weight times 2^-(t_ref - t) / half_life (the local `time_decayed`).

    `t_ref` is the latest timestamp (Unix seconds); the factor is computed with NumPy's `exp2` in
    a pandas UDF, so it equals the local engine's bit for bit.
    """
    check_positive_number(
        "time_decay_days", half_life_days, "a number of days > 0, or None to turn time decay off"
    )
    latest = float(interactions.agg(F.max("timestamp")).first()[0])
    tiny = float(np.finfo(np.float64).tiny)

    @F.pandas_udf(T.DoubleType())
    def decay(weight: pd.Series, timestamp: pd.Series) -> pd.Series:
        age_days = (latest - timestamp.to_numpy(dtype=np.float64)) / SECONDS_PER_DAY
        factor = np.maximum(np.exp2(-age_days / half_life_days), tiny)
        return pd.Series(weight.to_numpy(dtype=np.float64) * factor)

    return interactions.withColumn("weight", decay(F.col("weight"), F.col("timestamp")))


def pruned_similarity_on_spark(
    spark: SparkSession,
    seen: sp.csr_matrix,
    similarity: str,
    n_neighbours: int,
    *,
    min_cooccurrence: int = 1,
    partitions: int | None = None,
) -> sp.csr_matrix:
    """The local `pruned_item_similarity` of the users x items matrix `seen`, computed by Spark.

    The items are cut in blocks (`block_rows`); each Spark task counts, normalises and prunes its
    blocks' rows with the local kernel (`pruned_similarity_rows`) on its copy of the matrix's
    structure, shipped with the task, and only the kept neighbours come back. Over `partitions`
    tasks (default: the session's default parallelism); the values are the local ones, bit for
    bit.
    """
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")
    by_user = sp.csr_matrix(seen > 0)
    by_item = by_user.T.tocsr()
    n_items = by_user.shape[1]
    firsts = np.arange(0, n_items, block_rows(n_neighbours))
    blocks = pd.DataFrame({"first": firsts, "last": np.append(firsts[1:], n_items)})
    tasks = partitions or default_parallelism(spark)

    def prune(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            for first, last in zip(batch["first"], batch["last"], strict=True):
                rows = slice(int(first), int(last))
                counts, neighbours, values = pruned_similarity_rows(
                    by_user, by_item, rows, similarity, n_neighbours, min_cooccurrence
                )
                items = np.repeat(np.arange(rows.start, rows.stop, dtype=np.int32), counts)
                yield pd.DataFrame({"item": items, "neighbour": neighbours, "value": values})

    schema = "item int, neighbour int, value double"
    kept = spark.createDataFrame(blocks).repartition(tasks).mapInPandas(prune, schema).toPandas()
    item = kept["item"].to_numpy()
    neighbour = kept["neighbour"].to_numpy(dtype=np.int32)
    in_order = np.lexsort((neighbour, item))
    counts = np.bincount(item, minlength=n_items)
    values = kept["value"].to_numpy(dtype=np.float64)[in_order]
    return similarity_matrix([(counts, neighbour[in_order], values)], n_items)


def _with_shared_arrays(model: Recommender, interactions: pd.DataFrame) -> Recommender:
    """`model` given the base class's fitted arrays (ids, seen items, popularity) for
    `interactions`, computed by the local code itself; the model's own `_fit` is skipped."""
    model._fit = lambda matrix: None  # the model's own arrays come from Spark
    try:
        Recommender.fit(model, interactions)
    finally:
        del model._fit
    return model


def _collect_interactions(interactions: DataFrame) -> pd.DataFrame:
    return interactions.select("user_id", "item_id", "weight").toPandas()


def fit_cooccurrence(
    interactions: DataFrame,
    *,
    similarity: str = "jaccard",
    n_neighbours: int = 100,
    min_cooccurrence: int = 1,
    time_decay_days: float | None = None,
) -> tuple[CooccurrenceRecommender, DataFrame]:
    """The local `CooccurrenceRecommender` with its similarities computed on Spark.

    Returns the model (the same arrays as fitting locally: the per-user and popularity arrays
    by the local code on the collected interactions, the item similarities by Spark tasks with
    `pruned_similarity_on_spark`) and the interactions as fitted (decayed weights with
    `time_decay_days`), which `recommend_all` scores.
    """
    model = CooccurrenceRecommender(similarity, n_neighbours, min_cooccurrence, time_decay_days)
    check_positive_int("n_neighbours", n_neighbours)
    check_positive_int("min_cooccurrence", min_cooccurrence)
    if time_decay_days is not None:
        interactions = decayed_weights(interactions, time_decay_days)
    _with_shared_arrays(model, _collect_interactions(interactions))
    matrix = pruned_similarity_on_spark(
        interactions.sparkSession,
        model._interaction_matrix(),
        similarity,
        n_neighbours,
        min_cooccurrence=min_cooccurrence,
    )
    model.similarity_indptr_ = matrix.indptr
    model.similarity_indices_ = matrix.indices
    model.similarity_data_ = matrix.data
    return model, interactions


def _factors(frame: DataFrame, n: int, factors: int) -> np.ndarray:
    """Spark's (id, features) rows as an (n, factors) float64 array by id; missing ids: zeros."""
    rows = frame.toPandas()
    result = np.zeros((n, factors), dtype=np.float64)
    if len(rows):
        result[rows["id"].to_numpy()] = np.stack(rows["features"].to_numpy()).astype(np.float64)
    return result


def fit_als(
    interactions: DataFrame,
    *,
    factors: int = 64,
    regularization: float = 0.1,
    alpha: float = 1.0,
    iterations: int = 15,
    seed: int = 42,
) -> tuple[ALSRecommender, DataFrame]:
    """The local `ALSRecommender` shape, trained by Spark MLlib's implicit-feedback ALS.

    Spark's `regParam` (`regularization` here) is scaled by each user's and item's number of
    interactions (ALS-WR), so its useful values are far smaller than the local engine's
    (which `implicit` does not scale): about 0.01-1. Confidence is 1 + `alpha` x weight, as
    locally. Cold start: users unseen in training get the popularity fallback, like every model;
    Spark's `coldStartStrategy="drop"` keeps NaN factors out.
    """
    from pyspark.ml.recommendation import ALS

    check_positive_int("factors", factors)
    check_positive_int("iterations", iterations)
    check_positive_number("regularization", regularization)
    check_positive_number("alpha", alpha)
    model = ALSRecommender(factors, float(regularization), float(alpha), iterations, seed)
    _with_shared_arrays(model, _collect_interactions(interactions))
    spark = interactions.sparkSession
    users = spark.createDataFrame(
        pd.DataFrame(
            {"user_id": model.user_ids_, "u": np.arange(len(model.user_ids_), dtype=np.int32)}
        )
    )
    items = spark.createDataFrame(
        pd.DataFrame(
            {"item_id": model.item_ids_, "i": np.arange(len(model.item_ids_), dtype=np.int32)}
        )
    )
    indexed = interactions.join(F.broadcast(items), "item_id").join(users, "user_id")
    als = ALS(
        rank=factors,
        maxIter=iterations,
        regParam=float(regularization),
        alpha=float(alpha),
        implicitPrefs=True,
        seed=seed,
        userCol="u",
        itemCol="i",
        ratingCol="weight",
        coldStartStrategy="drop",
    ).fit(indexed.select("u", "i", "weight"))
    model.user_factors_ = _factors(als.userFactors, len(model.user_ids_), factors)
    model.item_factors_ = _factors(als.itemFactors, len(model.item_ids_), factors)
    return model, interactions


def fit_popularity(interactions: DataFrame) -> tuple[Recommender, DataFrame]:
    """The local popularity model (the baseline) for `interactions` on Spark; it has no
    arrays of its own, only the shared ones (ids, seen items, popularity)."""
    model = ALGORITHMS["popularity"]()
    return _with_shared_arrays(model, _collect_interactions(interactions)), interactions


def _recommend_partition(
    algorithm: str, params: dict, arrays: dict[str, np.ndarray], k: int, exclude_seen: bool
):
    """A mapInPandas function: the local model's `recommend` for the users of one partition.

    The partition's rows hold all interactions of its users; they become the seen-items arrays of
    a model restricted to those users, which ranks with the local code (the same total order).
    """
    per_user = PER_USER_ARRAYS.get(algorithm, ())

    def recommend(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        frames = [batch for batch in batches if len(batch)]
        if not frames:
            return
        rows = pd.concat(frames, ignore_index=True)
        user_ids, user_rows = np.unique(
            rows["user_id"].to_numpy(dtype=np.int64), return_inverse=True
        )
        item_rows = np.searchsorted(arrays["item_ids_"], rows["item_id"].to_numpy(dtype=np.int64))
        shape = (len(user_ids), len(arrays["item_ids_"]))
        seen = sp.csr_matrix(
            (rows["weight"].to_numpy(dtype=np.float64), (user_rows, item_rows)), shape=shape
        )
        seen.sum_duplicates()
        local = dict(arrays)
        global_rows = np.searchsorted(arrays["user_ids_"], user_ids)
        for name in per_user:
            local[name] = arrays[name][global_rows]
        local.update(
            user_ids_=user_ids,
            seen_indptr_=seen.indptr,
            seen_indices_=seen.indices,
            seen_weights_=seen.data,
        )
        model = ALGORITHMS[algorithm].from_arrays(params, local)
        for start in range(0, len(user_ids), model.batch_size * 8):
            yield model.recommend(user_ids[start : start + model.batch_size * 8], k, exclude_seen)

    return recommend


RECOMMENDATION_SCHEMA = T.StructType(
    [
        T.StructField("user_id", T.LongType()),
        T.StructField("item_id", T.LongType()),
        T.StructField("rank", T.LongType()),
        T.StructField("score", T.DoubleType()),
        T.StructField("fallback", T.BooleanType()),
    ]
)


def recommend_all(
    model: Recommender,
    interactions: DataFrame,
    k: int = 10,
    *,
    exclude_seen: bool = True,
    partitions: int | None = None,
) -> DataFrame:
    """Top-k for every user in `interactions` (those `model` was fitted on), computed on Spark.

    Users are spread over `partitions` (default: the session's shuffle partitions); each task
    scores its users with the local model's own code and arrays, so the lists, scores and tie
    order are the local engine's, while no machine holds more than its share of users.
    """
    check_k(k)
    arrays = {
        name: value for name, value in model.to_arrays().items() if not name.startswith("seen_")
    }
    spark = interactions.sparkSession
    n = partitions or int(spark.conf.get("spark.sql.shuffle.partitions"))
    rows = interactions.select("user_id", "item_id", "weight").repartition(n, "user_id")
    function = _recommend_partition(model.algorithm, model.get_params(), arrays, k, exclude_seen)
    return rows.mapInPandas(function, RECOMMENDATION_SCHEMA)
