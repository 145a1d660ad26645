# Generated from notebooks/lib/spark_engine.ipynb: edit the notebook, not this file.

"""Interactions on Spark: load and validate with the local engine's rules, weight, split."""

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from shoprec.interactions import EVENT_WEIGHTS, SPLIT_METHODS
from shoprec.validation import (
    EVENT_KEY,
    ID_COLUMNS,
    ISO_HINT,
    DataValidationError,
    _shown,
    columns_found,
    resolve_columns,
)

ROW = "_row"
"""A column holding each row's place in read order (a Spark `monotonically_increasing_id`)."""


def read_table(
    spark: SparkSession,
    path: str | None = None,
    *,
    jdbc_url: str | None = None,
    table: str | None = None,
    query: str | None = None,
    properties: Mapping[str, str] | None = None,
) -> tuple[DataFrame, str, int]:
    """A table read by Spark, a name for messages, and its header lines (1 for CSV).

    Either `path` (Parquet, or CSV with a header, read as text like the local engine does), or
    `jdbc_url` with a `table` or `query` (`properties` such as user, password, driver go to the
    JDBC driver and never into messages).
    """
    if (path is None) == (jdbc_url is None):
        raise ValueError("read_table: give either path or jdbc_url")
    if jdbc_url is not None:
        if (table is None) == (query is None):
            raise ValueError("read_table: with jdbc_url give either table or query")
        reader = spark.read.format("jdbc").option("url", jdbc_url)
        reader = reader.option("dbtable", table) if table else reader.option("query", query)
        for key, value in (properties or {}).items():
            reader = reader.option(key, value)
        source = f"{'table ' + table if table else 'query'} on {jdbc_url.split('?')[0]}"
        return reader.load(), source, 0
    name = str(path).lower().rstrip("/")
    if name.endswith((".parquet", ".pq")):
        return spark.read.parquet(str(path)), str(path), 0
    if name.endswith((".csv", ".csv.gz")):
        frame = spark.read.csv(str(path), header=True, inferSchema=False, mode="FAILFAST")
        return frame, str(path), 1
    raise ValueError(f"{path}: expected a .csv, .csv.gz, .parquet or .pq file or folder")


def _is_missing(column: Column, kind: T.DataType) -> Column:
    missing = column.isNull()
    if isinstance(kind, T.StringType):
        missing = missing | (F.trim(column) == "")
    elif isinstance(kind, T.FloatType | T.DoubleType):
        missing = missing | F.isnan(column)
    return missing


def _as_number(column: Column, kind: T.DataType) -> Column:
    if isinstance(kind, T.NumericType):
        return column.cast("double")
    if isinstance(kind, T.StringType):
        return F.trim(column).try_cast("double")
    if isinstance(kind, T.BooleanType):
        return column.cast("double")
    return F.lit(None).cast("double")


def _checks(name: str, column: Column, kind: T.DataType) -> list[tuple[str, Column, str]]:
    """(check, condition that marks a bad row, message template) in the local engine's order."""
    missing = _is_missing(column, kind)
    number = _as_number(column, kind)
    if name in ID_COLUMNS:
        return [
            ("missing", missing, "missing value (empty or NaN)"),
            ("nan", number.isNull(), "{shown} is not a number; expected a whole number >= 0"),
            ("whole", number % 1 != 0, "{shown} is not a whole number; ids are whole numbers >= 0"),
            ("negative", number < 0, "{shown} is negative; ids are whole numbers >= 0"),
        ]
    if name == "weight":
        return [
            ("missing", missing, "missing value (empty or NaN)"),
            ("nan", number.isNull(), "{shown} is not a number; expected a finite number >= 0"),
            (
                "range",
                F.isnan(number) | (F.abs(number) == float("inf")) | (number < 0),
                "{shown}: weights must be finite and >= 0",
            ),
        ]
    return [("missing", missing, f"missing value (empty or NaN); {ISO_HINT}")]


def _timestamp_seconds(column: Column, kind: T.DataType, first_is_number: bool) -> Column:
    """Seconds since the Unix epoch (naive date-times are UTC), null where unparseable."""
    if isinstance(kind, T.TimestampType | T.TimestampNTZType | T.DateType):
        return F.unix_timestamp(column.cast("timestamp"))
    if first_is_number or isinstance(kind, T.NumericType):
        return F.floor(_as_number(column, kind)).cast("long")
    text = F.trim(column.cast("string"))
    parsed = F.coalesce(
        F.try_to_timestamp(text),
        F.try_to_timestamp(text, F.lit("yyyy-MM-dd'T'HH:mm:ss[.SSSSSS]XXX")),
    )
    return F.unix_timestamp(parsed)


def with_row_numbers(frame: DataFrame) -> DataFrame:
    """`frame` with a column `_row` that orders its rows as read (kept if already there)."""
    return frame if ROW in frame.columns else frame.withColumn(ROW, F.monotonically_increasing_id())


def _row_number(frame: DataFrame, row_id: int) -> int:
    """The 1-based place in read order of the row whose `_row` is `row_id`."""
    return frame.where(F.col(ROW) <= row_id).count()


Checks = dict[str, list[tuple[str, Column, str]]]
"""Each canonical column's checks, as `_checks` gives them."""


def _resolve(
    frame: DataFrame, source: str, columns: Mapping[str, str] | None
) -> tuple[dict[str, str], dict[str, T.DataType]]:
    """The data's column for each canonical name, and its Spark type; a missing one is an error."""
    available = [c for c in frame.columns if c != ROW]
    mapping = resolve_columns(columns, available)
    missing = [column for column in mapping.values() if column not in available]
    if missing:
        raise DataValidationError(
            source,
            f"missing column(s) {missing}; {columns_found(available)} "
            "(pass columns={canonical: name in the data} if they are named differently)",
        )
    return mapping, {name: frame.schema[column].dataType for name, column in mapping.items()}


def _first_bad_rows(
    frame: DataFrame, mapping: Mapping[str, str], kinds: Mapping[str, T.DataType]
) -> tuple[Checks, dict[str, object]]:
    """The checks, and from one Spark pass: the number of rows, the first row's timestamp, and
    for each check the `_row` of the first row failing it (None when no row does)."""
    checks = {
        name: _checks(name, F.col(f"`{column}`"), kinds[name]) for name, column in mapping.items()
    }
    ts_column, ts_kind = F.col(f"`{mapping['timestamp']}`"), kinds["timestamp"]
    aggregates = [F.count(F.lit(1)).alias("rows"), F.min_by(ts_column, F.col(ROW)).alias("first")]
    for name, named_checks in checks.items():
        for check, bad, _ in named_checks:
            aggregates.append(F.min(F.when(bad, F.col(ROW))).alias(f"{name}:{check}"))
    for first_is_number in (True, False):
        seconds = _timestamp_seconds(ts_column, ts_kind, first_is_number)
        aggregates.append(
            F.min(F.when(seconds.isNull(), F.col(ROW))).alias(f"timestamp:parse:{first_is_number}")
        )
    return checks, frame.agg(*aggregates).first().asDict()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _raise_first_problem(
    frame: DataFrame,
    source: str,
    mapping: Mapping[str, str],
    kinds: Mapping[str, T.DataType],
    checks: Checks,
    found: Mapping[str, object],
    header_lines: int,
) -> bool:
    """Raise DataValidationError for the first problem in `found`, in the local engine's order;
    without one, whether the timestamps are numbers (the first row decides, as locally)."""
    if found["rows"] == 0:
        raise DataValidationError(source, "no data rows: the table is empty")

    def fail(name: str, problem: str, row_id: int) -> None:
        value = frame.where(F.col(ROW) == row_id).select(F.col(f"`{mapping[name]}`")).first()[0]
        raise DataValidationError(
            source,
            problem.format(shown=_shown(value)),
            row=_row_number(frame, row_id),
            column=mapping[name],
            header_lines=header_lines,
        )

    ts_kind, first = kinds["timestamp"], found["first"]
    first_is_number = isinstance(ts_kind, T.NumericType) or (
        isinstance(first, str) and _is_number(first)
    )
    for name, named_checks in checks.items():
        for check, _, problem in named_checks:
            if found[f"{name}:{check}"] is not None:
                fail(name, problem, found[f"{name}:{check}"])
        if name == "timestamp" and found[f"timestamp:parse:{first_is_number}"] is not None:
            problem = (
                "cannot parse {shown} as a timestamp; row 1 holds seconds since the Unix epoch, "
                "so every row must"
                if first_is_number and not isinstance(ts_kind, T.NumericType)
                else "cannot parse {shown} as a timestamp; " + ISO_HINT
            )
            fail(name, problem, found[f"timestamp:parse:{first_is_number}"])
    return first_is_number


def _canonical(
    frame: DataFrame,
    mapping: Mapping[str, str],
    kinds: Mapping[str, T.DataType],
    first_is_number: bool,
) -> DataFrame:
    """The checked rows in canonical columns (user_id, item_id, weight, timestamp) and `_row`."""
    ts_column, ts_kind = F.col(f"`{mapping['timestamp']}`"), kinds["timestamp"]
    return frame.select(
        _as_number(F.col(f"`{mapping['user_id']}`"), kinds["user_id"])
        .cast("long")
        .alias("user_id"),
        _as_number(F.col(f"`{mapping['item_id']}`"), kinds["item_id"])
        .cast("long")
        .alias("item_id"),
        (
            _as_number(F.col(f"`{mapping['weight']}`"), kinds["weight"])
            if "weight" in mapping
            else F.lit(1.0)
        ).alias("weight"),
        _timestamp_seconds(ts_column, ts_kind, first_is_number).alias("timestamp"),
        F.col(ROW),
    )


def _check_duplicates(
    table: DataFrame, frame: DataFrame, key, mapping, source: str, header_lines: int
) -> None:
    repeated = (
        table.groupBy(*key)
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.min(ROW).alias("first"),
            F.get(F.sort_array(F.collect_list(ROW)), 1).alias("second"),
        )
        .where(F.col("n") > 1)
        .orderBy("second")
        .first()
    )
    if repeated is None:
        return
    names = tuple(mapping[name] for name in key)
    original = frame.where(F.col(ROW) == repeated["second"]).first().asDict()
    values = ", ".join(f"{name}={_shown(original[name])}" for name in names)
    raise DataValidationError(
        source,
        f"same {' + '.join(names)} as row {_row_number(table, repeated['first'])} ({values}); "
        "each may occur once",
        row=_row_number(table, repeated["second"]),
        column=names,
        header_lines=header_lines,
    )


def _check_varies(table: DataFrame, mapping: Mapping[str, str], source: str) -> None:
    ranges = table.agg(
        F.count(F.lit(1)).alias("rows"),
        *(F.min(name).alias(f"min_{name}") for name in ID_COLUMNS),
        *(F.max(name).alias(f"max_{name}") for name in ID_COLUMNS),
    ).first()
    for name in ID_COLUMNS:
        if ranges[f"min_{name}"] == ranges[f"max_{name}"]:
            value = _shown(ranges[f"min_{name}"])
            raise DataValidationError(
                source,
                f"holds one value ({value}) in all {ranges['rows']} rows; is it "
                f"really the {name} column? Recommending needs several users and items",
                column=mapping[name],
            )


def validate_interactions(
    frame: DataFrame,
    source: str,
    *,
    columns: Mapping[str, str] | None = None,
    key: Sequence[str] = EVENT_KEY,
    header_lines: int = 0,
) -> DataFrame:
    """The rows of `frame` as canonical interactions (plus `_row`), or DataValidationError.

    The local engine's rules (`shoprec.validation.validate_interactions`) and messages, checked
    in a few Spark passes: rows are numbered from 1 in the order Spark reads them (for one file,
    the file's order), `header_lines` turns a row into a line number.
    """
    frame = with_row_numbers(frame)
    mapping, kinds = _resolve(frame, source, columns)
    checks, found = _first_bad_rows(frame, mapping, kinds)
    first_is_number = _raise_first_problem(
        frame, source, mapping, kinds, checks, found, header_lines
    )
    table = _canonical(frame, mapping, kinds, first_is_number)
    _check_duplicates(table, frame, key, mapping, source, header_lines)
    _check_varies(table, mapping, source)
    return table


def read_interactions(
    spark: SparkSession,
    path: str | None = None,
    *,
    columns: Mapping[str, str] | None = None,
    jdbc_url: str | None = None,
    table: str | None = None,
    query: str | None = None,
    properties: Mapping[str, str] | None = None,
) -> DataFrame:
    """The validated events of a Parquet/CSV file or folder, or of a JDBC table or query."""
    frame, source, header_lines = read_table(
        spark, path, jdbc_url=jdbc_url, table=table, query=query, properties=properties
    )
    return validate_interactions(frame, source, columns=columns, header_lines=header_lines)


def to_interactions(
    events: DataFrame, event_weights: Mapping[str, float] | None = None
) -> DataFrame:
    """One row per (user, item): summed event weights and the latest event's time.

    Events with an `event` column are weighted by `event_weights` (default EVENT_WEIGHTS; an
    unknown type is an error naming it) and come out in (user, item) order, as the local
    `to_interactions`; without one, their `weight` column is summed and each pair keeps the
    read order of its first row (`_row`), as the local loaders' `sum_by_user_item`. The
    `stratified` split follows that order.
    """
    if "event" in events.columns:
        weights = dict(EVENT_WEIGHTS if event_weights is None else event_weights)
        names = {
            row[0] for row in events.select(F.col("event").cast("string")).distinct().collect()
        }
        unknown = sorted(str(name) for name in names - set(weights))
        if unknown:
            raise ValueError(
                f"events: unknown event types {unknown}; expected one of {sorted(weights)}"
            )
        mapping = F.create_map(
            *(x for k, v in weights.items() for x in (F.lit(k), F.lit(float(v))))
        )
        events = events.withColumn("weight", mapping[F.col("event").cast("string")])
    keep_order = "event" not in events.columns and ROW in events.columns
    return events.groupBy("user_id", "item_id").agg(
        F.sum("weight").alias("weight"),
        F.max("timestamp").alias("timestamp"),
        *([F.min(ROW).alias(ROW)] if keep_order else []),
    )


def chronological_split(
    interactions: DataFrame, test_ratio: float = 0.2
) -> tuple[DataFrame, DataFrame]:
    """Hold out each user's latest `round(count * test_ratio)` interactions (at least one).

    The local engine's `chronological_split`: ties in time broken by item id, rounding half to
    even, users with a single interaction wholly in train.
    """
    by_user = Window.partitionBy("user_id")
    in_time = by_user.orderBy("timestamp", "item_id")
    count = F.count(F.lit(1)).over(by_user)
    n_test = F.when(
        count > 1, F.greatest(F.lit(1.0), F.bround(count * F.lit(test_ratio)))
    ).otherwise(0)
    marked = interactions.withColumn("_test", (F.row_number().over(in_time) - 1) >= count - n_test)
    return _parts(marked, "_test")


def _parts(marked: DataFrame, test: str, drop: Sequence[str] = ()) -> tuple[DataFrame, DataFrame]:
    marked = marked.drop(*drop)
    return (
        marked.where(~F.col(test)).drop(test),
        marked.where(F.col(test)).drop(test),
    )


def _random_keys(seed: int) -> callable:
    """A mapInPandas function giving row i (column `_index`) the i-th draw of
    `np.random.RandomState(seed).random_sample`, whatever partition holds it."""

    def keys(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        state, position = None, 0
        for batch in batches:
            if batch.empty:
                continue
            start = int(batch["_index"].iloc[0])
            if state is None or start != position:
                state, position = np.random.RandomState(seed), 0
                while position < start:  # skip the draws of the rows before this partition
                    step = min(start - position, 1 << 22)
                    state.random_sample(step)
                    position += step
            expected = np.arange(start, start + len(batch))
            if not np.array_equal(batch["_index"].to_numpy(), expected):
                raise RuntimeError("stratified split: rows are not in read order in a partition")
            yield batch.assign(_key=state.random_sample(len(batch)))
            position += len(batch)

    return keys


def in_read_order(interactions: DataFrame) -> DataFrame:
    """`interactions` with `_index` 0, 1, ... in input order, consecutive within partitions.

    Input order is `_row` (read order) when present, else (user_id, item_id): the order of the
    local engine's `to_interactions`.
    """
    if ROW in interactions.columns:
        ordered = interactions.orderBy(ROW)
    else:
        ordered = interactions.orderBy("user_id", "item_id")
    ordered = ordered.withColumn("_mid", F.monotonically_increasing_id()).cache()
    partition = F.shiftright(F.col("_mid"), 33)
    counts = ordered.groupBy(partition.alias("p")).count().orderBy("p").collect()
    offsets, total = [], 0
    for row in counts:
        offsets += [F.lit(row["p"]), F.lit(total)]
        total += row["count"]
    start = F.create_map(*offsets)[partition] if offsets else F.lit(0)
    within = F.col("_mid").bitwiseAND(F.lit((1 << 33) - 1))
    return ordered.withColumn("_index", start + within).drop("_mid")


def stratified_split(
    interactions: DataFrame, train_ratio: float = 0.75, *, seed: int = 42
) -> tuple[DataFrame, DataFrame]:
    """The local `stratified_split` (Recommenders' python_stratified_split), row for row.

    Row i in input order (see `in_read_order`) gets the i-th legacy-NumPy uniform key; each user's
    rows sorted by key, the first `round(train_ratio * count)` (half to even) go to train.
    """
    if not 0.0 < train_ratio < 1.0:
        raise ValueError(f"train_ratio must be between 0 and 1 (exclusive), got {train_ratio}")
    indexed = in_read_order(interactions)
    schema = T.StructType([*indexed.schema.fields, T.StructField("_key", T.DoubleType())])
    keyed = indexed.mapInPandas(_random_keys(seed), schema)
    by_user = Window.partitionBy("user_id")
    position = F.row_number().over(by_user.orderBy("_key", "_index"))
    count = F.count(F.lit(1)).over(by_user)
    marked = keyed.withColumn("_test", position > F.bround(F.lit(train_ratio) * count))
    # Both parts come back in (user, key) order locally: splitting a part again follows it.
    marked = marked.withColumn(ROW, F.struct("user_id", "_key", "_index"))
    return _parts(marked, "_test", drop=("_key", "_index"))


def split_interactions(
    interactions: DataFrame,
    test_ratio: float = 0.2,
    *,
    method: str = "chronological",
    seed: int = 42,
) -> tuple[DataFrame, DataFrame]:
    """Split into (train, test) like the local `split_interactions`: `chronological` or
    `stratified` (alias `random`); the other local methods are not on Spark yet."""
    if not 0.0 < test_ratio < 1.0:
        raise ValueError(f"test_ratio must be between 0 and 1 (exclusive), got {test_ratio}")
    supported = ("chronological", "stratified", "random")
    if method not in supported:
        extra = (
            " (the other local methods are not available on Spark)"
            if method in SPLIT_METHODS
            else ""
        )
        raise ValueError(f"method must be one of {supported} on Spark, got {method!r}{extra}")
    if method == "chronological":
        return chronological_split(interactions, test_ratio)
    return stratified_split(interactions, round(1.0 - test_ratio, 12), seed=seed)
