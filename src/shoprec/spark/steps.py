# Generated from notebooks/lib/spark_engine.ipynb: edit the notebook, not this file.

"""The pipeline notebooks' steps on Spark: datasets, fingerprints, fitting, top-k, tuning.

What `engine=spark` runs in `01_explore_data` to `04_evaluate` where the local engine calls
`shoprec.datasets`, `shoprec.interactions`, `shoprec.models` and `shoprec.tuning`: the data stay
Spark DataFrames; models come back as the local model classes (see `shoprec.spark.models`).
"""

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from sklearn.model_selection import ParameterGrid

from shoprec.datasets import (
    PROFILES,
    SAMPLE_USERS,
    check_options,
    default_events_url,
    events_query,
)
from shoprec.loaders import (
    MOVIELENS,
    check_read_only_query,
    database_url,
    item_table,
    locate_movielens,
    read_interactions_sql,
    read_movielens_movies,
    read_movielens_ratings,
)
from shoprec.models import Recommender
from shoprec.params import ParameterError
from shoprec.spark import data as spark_data
from shoprec.spark import metrics as spark_metrics
from shoprec.spark import models as spark_models
from shoprec.spark.params import SPARK_ALGORITHMS, SPARK_METRIC_NAMES
from shoprec.synthetic import ShopData, generate_shop

CANONICAL = ["user_id", "item_id", "weight", "timestamp"]


@dataclass(frozen=True)
class SparkDataset:
    """`shoprec.datasets.Dataset` on Spark: the catalogue (small) in pandas, events and
    interactions as Spark DataFrames."""

    name: str
    items: pd.DataFrame
    events: DataFrame
    interactions: DataFrame
    shop: ShopData | None = None


def _in_read_order(spark: SparkSession, rows: pd.DataFrame) -> DataFrame:
    return spark.createDataFrame(rows[CANONICAL].assign(**{spark_data.ROW: np.arange(len(rows))}))


def _real_dataset(
    spark: SparkSession,
    name: str,
    rows: DataFrame,
    profile: str,
    seed: int,
    catalogue: pd.DataFrame | None,
) -> SparkDataset:
    """The local `_real_dataset`: the same sample of users, their events and interactions."""
    n_users = SAMPLE_USERS[profile]
    if n_users is not None:
        users = rows.select("user_id").distinct().toPandas()["user_id"].to_numpy(np.int64)
        users = np.sort(users)
        if len(users) > n_users:
            chosen = np.random.default_rng(seed).choice(users, size=n_users, replace=False)
            keep = spark.createDataFrame(pd.DataFrame({"user_id": chosen}))
            rows = rows.join(F.broadcast(keep), "user_id")
    event = "rating" if name in MOVIELENS else "interaction"
    events = rows.select("user_id", "item_id", F.lit(event).alias("event"), "weight", "timestamp")
    interactions = spark_data.to_interactions(rows.select(*CANONICAL, spark_data.ROW))
    item_ids = interactions.select("item_id").distinct().toPandas()["item_id"]
    return SparkDataset(name, item_table(item_ids, catalogue), events, interactions)


def load_dataset(
    spark: SparkSession,
    name: str,
    profile: str,
    seed: int = 42,
    *,
    path: str | Path | None = None,
    columns: Mapping[str, str] | None = None,
    url: str | None = None,
    query: str | None = None,
    environment: str | None = None,
) -> SparkDataset:
    """`shoprec.datasets.load_dataset` on Spark: same options, same rows and users.

    `file` is read and validated by Spark (Parquet or CSV, a file or a folder); `sql` with a
    `jdbc:` URL is read by Spark's JDBC source (the query checked read-only first), with any
    other URL by the local read-only loader; `events` reads the event store (PostgreSQL through
    Spark's JDBC source, SQLite through the local loader). The synthetic shop and MovieLens are
    read on the driver and handed to Spark. The smoke profile keeps the local engine's sample
    of users.
    """
    given = {"path": path, "columns": columns, "url": url, "query": query,
             "environment": environment}  # fmt: skip
    check_options(name, {option for option, value in given.items() if value is not None})
    if name == "synthetic":
        shop = generate_shop(**PROFILES[profile], seed=seed)
        events = spark.createDataFrame(shop.events.astype({"event": str}))
        return SparkDataset(name, shop.items, events, spark_data.to_interactions(events), shop)
    catalogue = None
    if name in MOVIELENS:
        source = Path(path) if path is not None else locate_movielens(name)
        rows = _in_read_order(spark, read_movielens_ratings(source, name))
        catalogue = read_movielens_movies(source, name)
    elif name == "file":
        rows = spark_data.read_interactions(spark, str(path), columns=columns)
    elif name == "events":
        rows = event_store_rows(spark, url, environment)
    elif name != "sql":
        raise ParameterError(
            f"dataset {name!r} is not available with engine='spark'; expected one of "
            f"synthetic, {', '.join(MOVIELENS)}, file, sql, events (or engine='local')"
        )
    elif str(url).startswith("jdbc:"):
        rows = spark_data.read_interactions(
            spark, jdbc_url=str(url), query=check_read_only_query(query), columns=columns
        )
    else:
        rows = _in_read_order(spark, read_interactions_sql(query, url, columns))
    return _real_dataset(spark, name, rows, profile, seed, catalogue)


POSTGRES_JDBC_DRIVER = "org.postgresql.Driver"
READ_ONLY_PROPERTIES = {"readOnly": "true", "readOnlyMode": "always"}
"""pgjdbc connection properties: every transaction read-only, as the local loader's."""


def jdbc_source(address: sqlalchemy.URL) -> tuple[str, dict[str, str]]:
    """A PostgreSQL URL as a JDBC URL (no credentials) and its driver properties, read-only."""
    if address.get_backend_name() != "postgresql":
        raise ValueError(f"{address.render_as_string()}: expected a PostgreSQL URL for JDBC")
    host = f"[{address.host}]" if ":" in (address.host or "") else address.host or "127.0.0.1"
    jdbc_url = f"jdbc:postgresql://{host}:{address.port or 5432}/{address.database or ''}"
    properties = {"driver": POSTGRES_JDBC_DRIVER, **READ_ONLY_PROPERTIES}
    properties.update({key: str(value) for key, value in address.query.items()})
    if address.username:
        properties["user"] = address.username
    if address.password:
        properties["password"] = str(address.password)
    return jdbc_url, properties


def event_store_rows(
    spark: SparkSession, url: str | None = None, environment: str | None = None
) -> DataFrame:
    """The `events` dataset's rows (user, item, weight, latest time) from the event store."""
    url = url or default_events_url()
    query = check_read_only_query(events_query(environment))
    address = database_url(url)
    if address.get_backend_name() == "postgresql":
        jdbc_url, properties = jdbc_source(address)
        return spark_data.read_interactions(
            spark, jdbc_url=jdbc_url, query=query, properties=properties
        )
    return _in_read_order(spark, read_interactions_sql(query, url))


def fingerprint(frame: DataFrame) -> str:
    """A content hash of a Spark table, whatever its order or partitioning: same rows, columns
    and values give the same hex digest. (Not the local engine's `fingerprint`, which hashes
    rows in order: a split is checked against the engine that recorded it.)"""
    columns = [name for name in frame.columns if name != spark_data.ROW]
    hashed = F.xxhash64(*(F.col(f"`{name}`") for name in columns))
    row = frame.agg(
        F.count(F.lit(1)),
        F.sum(hashed.bitwiseAND(F.lit(0xFFFFFFFF))),
        F.sum(F.shiftrightunsigned(hashed, 32)),
        F.bit_xor(hashed),
    ).first()
    digest = hashlib.sha256(("spark:" + ",".join(columns)).encode())
    digest.update(json.dumps([int(value or 0) for value in row]).encode())
    return digest.hexdigest()


def fit_model(
    algorithm: str, interactions: DataFrame, **hyperparameters: Any
) -> tuple[Recommender, DataFrame]:
    """`make_model(algorithm, **hyperparameters).fit(...)` on Spark: the fitted local model and
    the interactions as fitted (what `recommend` scores known users from)."""
    if algorithm == "cooccurrence":
        return spark_models.fit_cooccurrence(interactions, **hyperparameters)
    if algorithm == "als":
        hyperparameters.pop("num_threads", None)  # a local setting: Spark has its own tasks
        return spark_models.fit_als(interactions, **hyperparameters)
    if algorithm == "popularity" and not hyperparameters:
        return spark_models.fit_popularity(interactions)
    if algorithm == "popularity":
        raise ParameterError(f"popularity takes no hyperparameters, got {sorted(hyperparameters)}")
    raise ParameterError(
        f"algorithm {algorithm!r} is not available on Spark; expected one of "
        f"{list(SPARK_ALGORITHMS)}"
    )


def seen_interactions(spark: SparkSession, model: Recommender) -> DataFrame:
    """The interactions a fitted or loaded model holds (user, item, weight as fitted)."""
    counts = np.diff(model.seen_indptr_)
    return spark.createDataFrame(
        pd.DataFrame(
            {
                "user_id": np.repeat(model.user_ids_, counts),
                "item_id": model.item_ids_[model.seen_indices_],
                "weight": np.asarray(model.seen_weights_, dtype=np.float64),
            }
        )
    )


def seen_test_interactions(model: Recommender, test: DataFrame) -> int:
    """`shoprec.policy.seen_test_interactions` on Spark: how many of the (user, item) pairs in
    `test` the fitted model `model` trained on."""
    seen = seen_interactions(test.sparkSession, model).select("user_id", "item_id")
    return test.select("user_id", "item_id").distinct().join(seen, ["user_id", "item_id"]).count()


def recommend(
    model: Recommender, users: DataFrame, k: int, *, fitted: DataFrame | None = None
) -> DataFrame:
    """`model.recommend(users, k)` on Spark, for the distinct `user_id`s of `users`.

    Known users are scored on Spark (`shoprec.spark.models.recommend_all`) from `fitted`, else
    from the model's own seen items; users it never saw get its popularity fallback, as locally.
    """
    spark = users.sparkSession
    wanted = users.select("user_id").distinct()
    known = spark.createDataFrame(pd.DataFrame({"user_id": model.user_ids_}))
    rows = fitted if fitted is not None else seen_interactions(spark, model)
    lists = spark_models.recommend_all(model, rows.join(wanted, "user_id", "left_semi"), k)
    cold = wanted.join(known, "user_id", "left_anti").toPandas()["user_id"].to_numpy(np.int64)
    if len(cold):
        fallback = model.recommend(np.sort(cold), k)
        lists = lists.unionByName(
            spark.createDataFrame(fallback, spark_models.RECOMMENDATION_SCHEMA)
        )
    return lists


def grid_search(
    algorithm: str,
    space: dict[str, list],
    fit_part: DataFrame,
    validation: DataFrame,
    *,
    k: int,
    n_items: int,
    metric: str = "ndcg",
) -> pd.DataFrame:
    """`shoprec.tuning.grid_search` on Spark: every point fitted on `fit_part` and scored on
    `validation` with the Spark metrics (all but novelty), best first."""
    fit_part, validation = fit_part.cache(), validation.cache()
    rows = []
    for point in ParameterGrid(space):
        model, fitted = fit_model(algorithm, fit_part, **point)
        lists = recommend(model, validation, k, fitted=fitted)
        scores = spark_metrics.ranking_metrics(
            lists, validation, k, n_items, metrics=SPARK_METRIC_NAMES
        )
        rows.append({**point, **scores})
    results = pd.DataFrame(rows)
    return results.sort_values(metric, ascending=False, kind="stable").reset_index(drop=True)
