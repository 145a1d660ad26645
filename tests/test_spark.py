"""The Spark engine against the local engine: same rows, arrays, lists, metrics and messages.

All tests share one `local[2]` Spark session (the `spark` fixture of conftest.py; starting one
takes seconds); they are marked `spark` and skipped, saying why, where pyspark or a suitable Java
is missing.
"""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pyspark = pytest.importorskip("pyspark", reason="the Spark engine needs the 'spark' extra")

from shoprec.artifact import load_model, save_model  # noqa: E402
from shoprec.datasets import load_dataset  # noqa: E402
from shoprec.interactions import split_interactions  # noqa: E402
from shoprec.metrics import ranking_metrics  # noqa: E402
from shoprec.models import make_model  # noqa: E402
from shoprec.params import ParameterError  # noqa: E402
from shoprec.spark import data as spark_data  # noqa: E402
from shoprec.spark import metrics as spark_metrics  # noqa: E402
from shoprec.spark import models as spark_models  # noqa: E402
from shoprec.spark.session import (  # noqa: E402
    engine_metadata,
    java_problem,
    resolve_master,
)
from shoprec.validation import DataValidationError, validate_interactions  # noqa: E402

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]
METRICS = ["precision", "recall", "ndcg", "map", "map_at_k", "hit_rate", "mrr", "coverage"]
COLUMNS = ["user_id", "item_id", "weight", "timestamp"]


def _pairs(frame) -> set[tuple[int, int]]:
    if isinstance(frame, pd.DataFrame):
        return set(map(tuple, frame[["user_id", "item_id"]].to_numpy().tolist()))
    return {(row.user_id, row.item_id) for row in frame.select("user_id", "item_id").collect()}


@pytest.mark.parametrize("method", ["chronological", "stratified"])
def test_splits_partition_the_same_rows_as_locally(spark, smoke_data, method):
    interactions = smoke_data.interactions[COLUMNS]
    local_train, local_test = split_interactions(interactions, 0.25, method=method, seed=3)
    train, test = spark_data.split_interactions(
        spark.createDataFrame(interactions), 0.25, method=method, seed=3
    )
    assert _pairs(train) == _pairs(local_train)
    assert _pairs(test) == _pairs(local_test)
    assert len(_pairs(test)) > 0


def test_split_refuses_methods_it_does_not_have(spark, smoke_frames):
    with pytest.raises(ValueError, match="not available on Spark"):
        spark_data.split_interactions(smoke_frames[0], 0.2, method="global_time")


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"similarity": "cosine", "n_neighbours": 15, "min_cooccurrence": 2},
        {"similarity": "lift", "time_decay_days": 20.0},
    ],
    ids=["jaccard", "cosine-pruned", "lift-decayed"],
)
def test_cooccurrence_gives_the_local_arrays_and_top_k_lists(
    spark, smoke_split, smoke_frames, params
):
    local = make_model("cooccurrence", **params).fit(smoke_split[0])
    model, fitted = spark_models.fit_cooccurrence(smoke_frames[0], **params)
    for name in local.array_names():
        np.testing.assert_array_equal(getattr(model, name), getattr(local, name), err_msg=name)
    on_spark = spark_models.recommend_all(model, fitted, 10).toPandas()
    on_spark = on_spark.sort_values(["user_id", "rank"]).reset_index(drop=True)
    expected = local.recommend(local.user_ids_, 10)
    pd.testing.assert_frame_equal(on_spark, expected, check_dtype=False)
    assert len(on_spark) == 10 * len(local.user_ids_)


def test_metrics_match_the_local_ones_to_1e9(spark, smoke_split, smoke_frames):
    local = make_model("cooccurrence").fit(smoke_split[0])
    recommendations = local.recommend(local.user_ids_, 10)
    # shuffled rows, a duplicate and ties in score: the ranking rule must agree as well
    shuffled = pd.concat([recommendations, recommendations.head(3)]).sample(frac=1, random_state=1)
    expected = ranking_metrics(shuffled, smoke_split[1], 10, 300, metrics=METRICS)
    got = spark_metrics.ranking_metrics(
        spark.createDataFrame(shuffled), smoke_frames[1], 10, 300, metrics=METRICS
    )
    assert set(got) == set(METRICS)
    for name in METRICS:
        assert got[name] == pytest.approx(expected[name], abs=1e-9), name


def test_metrics_refuse_unknown_names_and_bad_k(spark, smoke_frames):
    with pytest.raises(ValueError, match="unknown metrics"):
        spark_metrics.ranking_metrics(smoke_frames[1], smoke_frames[1], 10, 300, metrics=["auc"])
    with pytest.raises(ValueError, match="k must be a positive integer"):
        spark_metrics.ranking_metrics(smoke_frames[1], smoke_frames[1], 0, 300)


def test_spark_model_is_saved_loaded_and_served_as_a_local_model(spark, smoke_frames, tmp_path):
    model, fitted = spark_models.fit_cooccurrence(smoke_frames[0], n_neighbours=20)
    directory = save_model(model, tmp_path / "model", {"engine": "spark"})
    loaded = load_model(directory)
    users = model.user_ids_[:5]
    pd.testing.assert_frame_equal(loaded.recommend(users, 5), model.recommend(users, 5))


def test_als_on_spark_reaches_95_percent_of_local_ndcg_on_the_default_shop(spark):
    data = load_dataset("synthetic", "default", seed=7)
    train, test = split_interactions(data.interactions[COLUMNS], 0.2)
    local = make_model("als").fit(train)
    n_items = data.interactions["item_id"].nunique()
    local_ndcg = ranking_metrics(local.recommend(test["user_id"].unique(), 10), test, 10, n_items)
    model, fitted = spark_models.fit_als(
        spark.createDataFrame(train).repartition(2),
        factors=32,
        regularization=0.05,
        alpha=1.0,
        iterations=10,
        seed=42,
    )
    recommendations = spark_models.recommend_all(model, fitted, 10)
    spark_ndcg = spark_metrics.ranking_metrics(
        recommendations, spark.createDataFrame(test), 10, n_items, metrics=["ndcg"]
    )["ndcg"]
    assert spark_ndcg >= 0.95 * local_ndcg["ndcg"], (spark_ndcg, local_ndcg["ndcg"])


def _error(run) -> str:
    with pytest.raises(DataValidationError) as caught:
        run()
    return str(caught.value)


GOOD = "user_id,item_id,timestamp\n1,10,1700000000\n2,11,1700000100\n3,10,1700000200\n"


@pytest.mark.parametrize(
    "text",
    [
        "user_id,item_id,timestamp\n1,10,1700000000\n2,-3,1700000100\n",
        "user_id,item_id,timestamp\n1,10,1700000000\n2,x7,1700000100\n",
        "user_id,item_id,timestamp\n1,10,1700000000\n2,7.5,1700000100\n",
        "user_id,item_id,timestamp\n1,10,1700000000\n,7,1700000100\n",
        "user_id,item_id,timestamp\n1,10,1700000000\n2,7,yesterday\n",
        "user_id,item_id,timestamp\n1,10,2024-05-01T12:30:00\n2,7,not a date\n",
        "user_id,item_id,weight,timestamp\n1,10,1,1700000000\n2,7,-2,1700000100\n",
        "user_id,item_id,timestamp\n1,10,1700000000\n2,7,1700000100\n1,10,1700000000\n",
        "user_id,item_id,timestamp\n1,10,1700000000\n1,7,1700000100\n",
        "user_id,sku,timestamp\n1,10,1700000000\n2,7,1700000100\n",
        "user_id,item_id,timestamp\n",
    ],
    ids=[
        "negative-id",
        "not-a-number",
        "not-whole",
        "missing-id",
        "bad-seconds",
        "bad-iso",
        "negative-weight",
        "duplicate",
        "one-user",
        "missing-column",
        "empty",
    ],
)
def test_bad_csv_fails_with_the_local_engines_message(spark, tmp_path, text):
    path = tmp_path / "events.csv"
    path.write_text(text)
    local = _error(
        lambda: validate_interactions(pd.read_csv(path, dtype=str), str(path), header_lines=1)
    )
    on_spark = _error(lambda: spark_data.read_interactions(spark, str(path)))
    assert on_spark == local


def test_good_csv_and_parquet_load_like_locally(spark, tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(GOOD)
    expected = validate_interactions(pd.read_csv(path, dtype=str), str(path), header_lines=1)
    parquet = tmp_path / "events.parquet"
    expected.to_parquet(parquet)
    for source in (path, parquet):
        got = spark_data.read_interactions(spark, str(source)).drop(spark_data.ROW).toPandas()
        pd.testing.assert_frame_equal(
            got.sort_values(["user_id", "item_id"]).reset_index(drop=True),
            expected,
            check_dtype=False,
        )


def test_events_are_weighted_like_locally_and_unknown_types_named(spark, smoke_data):
    from shoprec.interactions import to_interactions

    events = smoke_data.events
    expected = to_interactions(events)
    got = spark_data.to_interactions(spark.createDataFrame(events.astype({"event": str})))
    got = got.toPandas().sort_values(["user_id", "item_id"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected[got.columns], check_dtype=False)
    bad = spark.createDataFrame(
        pd.DataFrame({"user_id": [1], "item_id": [2], "event": ["wish"], "timestamp": [0]})
    )
    with pytest.raises(ValueError, match=r"unknown event types \['wish'\]"):
        spark_data.to_interactions(bad)


def test_master_comes_from_parameter_then_environment(monkeypatch):
    monkeypatch.delenv("SHOPREC_SPARK_MASTER", raising=False)
    assert resolve_master() == "local[*]"
    monkeypatch.setenv("SHOPREC_SPARK_MASTER", "sc://spark.example:15002")
    assert resolve_master() == "sc://spark.example:15002"
    assert resolve_master("local[2]") == "local[2]"
    with pytest.raises(ParameterError, match="spark_master='htp://x'"):
        resolve_master("htp://x")


def test_an_unusable_java_home_is_named(tmp_path: Path):
    assert "does not exist or is not executable" in java_problem(str(tmp_path / "no-jdk"))


def test_engine_metadata_names_spark_and_hides_credentials(spark):
    recorded = engine_metadata(spark, "sc://reader:secret@spark.example:15002/;token=abc")
    assert recorded == {
        "engine": "spark",
        "spark_version": pyspark.__version__,
        "spark_master": "sc://spark.example:15002/",
    }


# --- the pipeline's steps on Spark (shoprec.spark.steps, what engine=spark runs in 01-04) ---


def test_synthetic_dataset_on_spark_has_the_local_rows(spark):
    from shoprec.spark import steps

    local = load_dataset("synthetic", "smoke", seed=5)
    on_spark = steps.load_dataset(spark, "synthetic", "smoke", seed=5)
    pd.testing.assert_frame_equal(on_spark.items, local.items)
    got = on_spark.interactions.toPandas().sort_values(["user_id", "item_id"])
    pd.testing.assert_frame_equal(
        got.reset_index(drop=True), local.interactions[got.columns], check_dtype=False
    )
    assert on_spark.events.count() == len(local.events)


def test_file_dataset_on_spark_keeps_the_local_sample_and_split(spark, tmp_path, smoke_data):
    from shoprec.spark import steps

    path = tmp_path / "orders.csv"
    events = smoke_data.events[["user_id", "item_id", "timestamp"]]
    events.drop_duplicates(["user_id", "item_id", "timestamp"]).to_csv(path, index=False)
    local = load_dataset("file", "smoke", seed=3, path=str(path))
    on_spark = steps.load_dataset(spark, "file", "smoke", seed=3, path=str(path))
    assert _pairs(on_spark.interactions) == _pairs(local.interactions)
    assert on_spark.events.count() == len(local.events)
    pd.testing.assert_frame_equal(on_spark.items, local.items)
    # the stratified split follows the file's order, and splitting a part again the local one
    local_train, _ = split_interactions(local.interactions, 0.2, method="stratified", seed=3)
    train, _ = spark_data.split_interactions(
        on_spark.interactions, 0.2, method="stratified", seed=3
    )
    assert _pairs(train) == _pairs(local_train)
    local_fit, local_validation = split_interactions(local_train, 0.25, method="stratified", seed=4)
    fit, validation = spark_data.split_interactions(train, 0.25, method="stratified", seed=4)
    assert _pairs(fit) == _pairs(local_fit) and _pairs(validation) == _pairs(local_validation)


def test_dataset_options_are_checked_on_spark_too(spark):
    from shoprec.spark import steps

    with pytest.raises(ValueError, match="dataset 'file' needs option\\(s\\) path"):
        steps.load_dataset(spark, "file", "smoke")


@pytest.fixture(scope="module")
def shop_feedback(tmp_path_factory) -> list[dict]:
    """What simulated shoppers did: the feedback rows of a small simulated event store."""
    import sqlalchemy

    from shoprec.simulation.database import simulated_database

    simulated = simulated_database(tmp_path_factory.mktemp("events"), drift=None, visits=500)
    engine = sqlalchemy.create_engine(simulated.url)
    with engine.connect() as connection:
        feedback = pd.read_sql("select * from feedback_events", connection)
    engine.dispose()
    for column in ("occurred_at", "received_at"):
        feedback[column] = pd.to_datetime(feedback[column], utc=True)
    return feedback.astype(object).where(feedback.notna(), None).to_dict("records")


@pytest.mark.postgres
def _by_pair(frame) -> pd.DataFrame:
    """A Spark frame's rows in (user, item) order, as the local events dataset gives them."""
    rows = frame.toPandas()[COLUMNS].sort_values(["user_id", "item_id"], kind="stable")
    return rows.reset_index(drop=True)


def test_events_dataset_reads_a_postgres_event_store_through_jdbc(
    spark, postgres_database, shop_feedback, tmp_path
):
    from shoprec.events.store import EventStore
    from shoprec.spark import steps
    from shoprec.spark.session import JDBC_DRIVER_JARS, driver_jars

    if not driver_jars():
        reason = f"no PostgreSQL JDBC driver at {JDBC_DRIVER_JARS}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{reason}; CI must install it with .ci/install-jdbc")
        pytest.skip(f"{reason}; install it with: bash .ci/install-jdbc")
    store = EventStore(postgres_database)
    store.add_feedback(shop_feedback)
    store.dispose()
    local = load_dataset("events", "default", url=postgres_database).interactions[COLUMNS]
    on_spark = steps.load_dataset(spark, "events", "default", url=postgres_database)
    pd.testing.assert_frame_equal(_by_pair(on_spark.interactions), local, check_dtype=False)
    assert len(local) > 100
    # the same events through a SQLite store: the local read-only loader hands them to Spark
    sqlite = EventStore(f"sqlite:///{tmp_path / 'events.db'}")
    sqlite.add_feedback(shop_feedback)
    sqlite.dispose()
    from_file = steps.load_dataset(spark, "events", "default", url=str(tmp_path / "events.db"))
    pd.testing.assert_frame_equal(_by_pair(from_file.interactions), local, check_dtype=False)
    with pytest.raises(DataValidationError, match="no data rows"):
        steps.load_dataset(spark, "events", "default", url=postgres_database, environment="test")
    with pytest.raises(ValueError, match='environment="x\';drop"; expected a name'):
        steps.load_dataset(spark, "events", "default", url=postgres_database, environment="x';drop")


def test_jdbc_source_keeps_credentials_out_of_the_url():
    import sqlalchemy

    from shoprec.spark.steps import jdbc_source

    url, properties = jdbc_source(sqlalchemy.make_url(
        "postgresql+psycopg://shop:S3cret@db.internal:5433/events?sslmode=require"))  # fmt: skip
    assert url == "jdbc:postgresql://db.internal:5433/events"
    assert properties == {"driver": "org.postgresql.Driver", "readOnly": "true",
                          "readOnlyMode": "always", "sslmode": "require", "user": "shop",
                          "password": "S3cret"}  # fmt: skip
    with pytest.raises(ValueError, match="expected a PostgreSQL URL"):
        jdbc_source(sqlalchemy.make_url("sqlite:///events.db"))


def test_fingerprint_depends_on_content_not_order(spark, smoke_frames):
    from shoprec.spark import steps

    train, test = smoke_frames
    shuffled = train.repartition(3).orderBy("timestamp")
    assert steps.fingerprint(train) == steps.fingerprint(shuffled)
    assert steps.fingerprint(train) != steps.fingerprint(test)
    changed = train.withColumn("weight", train["weight"] + (train["user_id"] == 0).cast("double"))
    assert steps.fingerprint(changed) != steps.fingerprint(train)


def test_recommend_gives_the_local_lists_and_fallback_for_unseen_users(
    spark, smoke_split, smoke_frames
):
    from shoprec.spark import steps

    local = make_model("cooccurrence", time_decay_days=10.0).fit(smoke_split[0])
    model, fitted = steps.fit_model("cooccurrence", smoke_frames[0], time_decay_days=10.0)
    users = np.array([*local.user_ids_[:5], 10**9])  # the last one was never seen
    wanted = spark.createDataFrame(pd.DataFrame({"user_id": users}))
    for source in (fitted, None):  # the fitted interactions, or the model's own seen items
        got = steps.recommend(model, wanted, 7, fitted=source).toPandas()
        got = got.sort_values(["user_id", "rank"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, local.recommend(users, 7), check_dtype=False)
    assert steps.seen_test_interactions(model, smoke_frames[0]) == len(smoke_split[0])
    assert steps.seen_test_interactions(model, smoke_frames[1]) == 0


def test_popularity_and_unknown_algorithms_on_spark(spark, smoke_split, smoke_frames):
    from shoprec.spark import steps

    model, _ = steps.fit_model("popularity", smoke_frames[0])
    local = make_model("popularity").fit(smoke_split[0])
    users = local.user_ids_[:4]
    pd.testing.assert_frame_equal(model.recommend(users, 5), local.recommend(users, 5))
    with pytest.raises(ParameterError, match="algorithm 'ease' is not available on Spark"):
        steps.fit_model("ease", smoke_frames[0])


def test_grid_search_on_spark_scores_like_the_local_one(spark, smoke_split, smoke_frames):
    from shoprec.spark import steps
    from shoprec.tuning import grid_search

    space = {"similarity": ["jaccard", "cosine"], "n_neighbours": [10]}
    local = grid_search("cooccurrence", space, *smoke_split, k=10, n_items=300)
    got = steps.grid_search("cooccurrence", space, *smoke_frames, k=10, n_items=300)
    assert list(got["similarity"]) == list(local["similarity"])
    for name in METRICS:
        np.testing.assert_allclose(got[name], local[name], rtol=0, atol=1e-9, err_msg=name)
    assert "novelty" not in got


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"engine": "dask"}, "parameter engine='dask' is not allowed"),
        ({"spark_master": None}, "parameter spark_master=None is not allowed"),
        ({"engine": "spark", "spark_master": "spork://x"}, "spark_master='spork://x'"),
        ({"engine": "spark", "algorithm": "ease"}, "algorithm='ease' is not available"),
        ({"engine": "spark", "split_method": "leave_last_n"}, "split_method='leave_last_n'"),
    ],
)
def test_engine_parameters_are_checked_without_starting_spark(given, message):
    from shoprec.spark.params import check_engine

    arguments = {"engine": "local", "spark_master": "", **given}
    with pytest.raises(ParameterError, match=message.replace("(", "\\(").replace(")", "\\)")):
        check_engine(arguments.pop("engine"), arguments.pop("spark_master"), **arguments)
    check_engine("local", "", algorithm="ease")  # the local engine has every algorithm
    check_engine("spark", "local[2]", algorithm="als", split_method="stratified", metric="mrr")
