"""Interaction tables are checked before any work; each failure names file, row and column."""

import numpy as np
import pandas as pd
import pytest

from shoprec.validation import (
    RATING_KEY,
    DataValidationError,
    resolve_columns,
    validate_interactions,
    validate_item_ids,
)

MAPPING = {"user_id": "customer", "item_id": "sku", "weight": "qty", "timestamp": "ts"}


@pytest.fixture
def extract() -> pd.DataFrame:
    """Three events as text, the way a CSV reader sees them."""
    return pd.DataFrame(
        {
            "customer": ["1", "1", "2"],
            "sku": ["10", "11", "10"],
            "qty": ["2", "1", "5"],
            "ts": ["1714557600", "1714557900", "1714636800"],
        }
    )


def failure(frame: pd.DataFrame, **options) -> DataValidationError:
    with pytest.raises(DataValidationError) as caught:
        validate_interactions(frame, "orders.csv", columns=MAPPING, header_lines=1, **options)
    assert str(caught.value).startswith("orders.csv")
    return caught.value


def test_clean_extract_becomes_the_canonical_table(extract):
    table = validate_interactions(extract, "orders.csv", columns=MAPPING)
    assert list(table.columns) == ["user_id", "item_id", "weight", "timestamp"]
    assert table.dtypes.to_dict() == {
        "user_id": np.int64,
        "item_id": np.int64,
        "weight": np.float64,
        "timestamp": np.int64,
    }
    assert table["weight"].tolist() == [2.0, 1.0, 5.0]
    assert table["timestamp"].tolist() == [1714557600, 1714557900, 1714636800]


def test_iso_text_and_datetime_columns_become_seconds_since_the_epoch(extract):
    iso = extract.assign(ts=["2024-05-01T10:00:00", "2024-05-01 10:05", "2024-05-02T08:00:00Z"])
    typed = extract.assign(ts=pd.to_datetime(iso["ts"], utc=True, format="ISO8601"))
    expected = [1714557600, 1714557900, 1714636800]
    for frame in (iso, typed):
        table = validate_interactions(frame, "orders.csv", columns=MAPPING)
        assert table["timestamp"].tolist() == expected


def test_weight_defaults_to_one_and_unmapped_names_map_to_themselves(extract):
    frame = extract.drop(columns="qty").rename(columns={"sku": "item_id"})
    table = validate_interactions(
        frame, "x.csv", columns={"user_id": "customer", "timestamp": "ts"}
    )
    assert table["weight"].tolist() == [1.0, 1.0, 1.0]
    assert table["item_id"].tolist() == [10, 11, 10]


def test_unknown_mapping_name_is_a_plain_value_error():
    with pytest.raises(ValueError, match=r"unknown name\(s\) \['user'\]") as caught:
        resolve_columns({"user": "customer"}, ["customer"])
    assert not isinstance(caught.value, DataValidationError)


def test_empty_data(extract):
    error = failure(extract.iloc[:0])
    assert "no data rows" in str(error)
    assert (error.row, error.column) == (None, None)


def test_missing_column_names_it_and_the_columns_found(extract):
    error = failure(extract.drop(columns="ts"))
    assert "missing column(s) ['ts']; found 3 column(s): 'aaaaaaaa', 'aaa', 'aaa'" in str(error)


def test_mapped_weight_column_that_is_absent_is_missing(extract):
    assert "missing column(s) ['qty']" in str(failure(extract.drop(columns="qty")))


def test_non_numeric_id(extract):
    error = failure(extract.assign(sku=["10", "11", "x10"]))
    assert (error.row, error.column) == (3, "sku")
    assert str(error) == (
        "orders.csv, row 3 (line 4), column 'sku': 'a99' is not a number; "
        "expected a whole number >= 0"
    )


def test_negative_id(extract):
    error = failure(extract.assign(customer=["1", "-1", "2"]))
    assert (error.row, error.column) == (2, "customer")
    assert "'-9' is negative" in str(error)


def test_fractional_id(extract):
    error = failure(extract.assign(customer=["1", "1.5", "2"]))
    assert (error.row, error.column) == (2, "customer")
    assert "not a whole number" in str(error)


def test_nan(extract):
    error = failure(extract.assign(qty=["2", np.nan, "5"]))
    assert (error.row, error.column) == (2, "qty")
    assert "missing value" in str(error)


def test_non_numeric_or_negative_weight(extract):
    assert failure(extract.assign(qty=["2", "1", "lots"])).row == 3
    assert "weights must be finite and >= 0" in str(failure(extract.assign(qty=["-2", "1", "5"])))


def test_unparseable_iso_timestamp(extract):
    error = failure(extract.assign(ts=["2024-05-01", "2024-05-02", "yesterday"]))
    assert (error.row, error.column) == (3, "ts")
    assert "cannot parse 'aaaaaaaaa' as a timestamp" in str(error)


def test_text_among_epoch_seconds_is_unparseable(extract):
    error = failure(extract.assign(ts=["1714557600", "2024-05-01", "1714636800"]))
    assert (error.row, error.column) == (2, "ts")
    assert "row 1 holds seconds since the Unix epoch" in str(error)


def test_duplicate_event_names_both_rows(extract):
    frame = pd.concat([extract, extract.iloc[[1]]], ignore_index=True)
    error = failure(frame)
    assert error.row == 4
    assert error.column == ("customer", "sku", "ts")
    assert "same customer + sku + ts as row 2" in str(error)


def test_same_item_at_another_time_is_not_a_duplicate_event_but_is_a_duplicate_rating(extract):
    frame = extract.assign(sku=["10", "10", "10"], customer=["1", "1", "2"])
    frame.loc[2, "sku"] = "11"
    assert len(validate_interactions(frame, "x.csv", columns=MAPPING)) == 3
    with pytest.raises(DataValidationError, match="row 2, columns 'customer', 'sku'"):
        validate_interactions(frame, "x.csv", columns=MAPPING, key=RATING_KEY)


@pytest.mark.parametrize(("column", "name"), [("customer", "user_id"), ("sku", "item_id")])
def test_constant_user_or_item_column(extract, column, name):
    frame = extract.assign(**{column: "1"}, ts=["1", "2", "3"])
    error = failure(frame)
    assert error.column == column
    assert f"holds one value ('9') in all 3 rows; is it really the {name} column?" in str(error)


def test_row_numbers_follow_the_file_order_not_the_frame_index(extract):
    error = failure(extract.set_index(pd.Index([7, 8, 9])).assign(sku=["10", "-11", "10"]))
    assert error.row == 2


def test_without_header_lines_the_message_gives_the_row_only(extract):
    with pytest.raises(DataValidationError) as caught:
        validate_interactions(extract.assign(sku=["1", "2", "x"]), "u.data", columns=MAPPING)
    assert str(caught.value).startswith("u.data, row 3, column 'sku':")


def test_item_ids_are_validated_and_unique():
    films = pd.DataFrame({"movieId": ["1", "2", "2"], "title": ["a", "b", "c"]})
    with pytest.raises(DataValidationError, match="row 3 \\(line 4\\), column 'movieId'"):
        validate_item_ids(films, "movies.csv", "movieId", header_lines=1)
    ids = validate_item_ids(films.iloc[:2], "movies.csv", "movieId")
    assert ids.tolist() == [1, 2]
