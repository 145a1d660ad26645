"""Issue 11, faults 2, 4 and 5: data access that could write, ids that were coerced, binary input.

- `dataset_options={"url": "shop_copy.db", "query": "drop table orders"}` dropped the table;
- a user id of 2**70 became -9223372036854775808, and 2**53 and 2**53+1 became one user;
- a PNG given as CSV crashed with a bare UnicodeDecodeError naming no file.
"""

import re
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy

from shoprec.loaders import (
    QueryRefused,
    database_url,
    read_interactions_file,
    read_interactions_sql,
    read_only_engine,
)
from shoprec.validation import DataValidationError

pytestmark = pytest.mark.faults
COLUMNS = {"user_id": "customer", "item_id": "sku", "timestamp": "ts"}
ORDERS = pd.DataFrame({"customer": [1, 1, 2, 3], "sku": [10, 11, 10, 12], "ts": [1, 2, 3, 4]})
WRITES = [
    "drop table orders",
    "DELETE FROM orders",
    "select 1; drop table orders",
    "with gone as (delete from orders returning *) select * from gone",
    "select * into orders_copy from orders",
    "select * from orders for update",
    "update orders set sku = 0",
    "pragma query_only = off",
    "",
]


@pytest.fixture
def shop_db(tmp_path: Path) -> Path:
    path = tmp_path / "shop_copy.db"
    with sqlite3.connect(path) as connection:
        ORDERS.to_sql("orders", connection, index=False)
    connection.close()
    return path


def _orders(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        (count,) = connection.execute("select count(*) from orders").fetchone()
    connection.close()
    return count


@pytest.mark.parametrize("query", WRITES)
def test_sqlite_query_that_writes_is_refused_before_it_runs(shop_db: Path, query: str) -> None:
    with pytest.raises(QueryRefused):
        read_interactions_sql(query, str(shop_db), COLUMNS)
    assert _orders(shop_db) == len(ORDERS)


def test_sqlite_select_and_with_select_read(shop_db: Path) -> None:
    plain = read_interactions_sql("select * from orders;", str(shop_db), COLUMNS)
    cte = read_interactions_sql(
        "with o as (select * from orders) select customer, sku, ts from o", str(shop_db), COLUMNS
    )
    assert plain.equals(cte) and len(plain) == len(ORDERS)


def test_sqlite_connection_itself_is_read_only(shop_db: Path) -> None:
    engine = read_only_engine(database_url(str(shop_db)))
    try:
        with engine.connect() as connection, pytest.raises(sqlalchemy.exc.OperationalError):
            connection.exec_driver_sql("delete from orders")
    finally:
        engine.dispose()
    assert _orders(shop_db) == len(ORDERS)


@pytest.fixture
def pg_shop(postgres_url: str) -> str:
    """A fresh `orders` table in the fixture's PostgreSQL server."""
    engine = sqlalchemy.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("drop table if exists orders_copy")
        ORDERS.to_sql("orders", connection, index=False, if_exists="replace")
    engine.dispose()
    return postgres_url


def _pg_orders(url: str) -> int:
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as connection:
        count = connection.exec_driver_sql("select count(*) from orders").scalar_one()
    engine.dispose()
    return count


@pytest.mark.postgres
@pytest.mark.parametrize("query", WRITES)
def test_postgres_query_that_writes_is_refused_before_it_runs(pg_shop: str, query: str) -> None:
    with pytest.raises(QueryRefused):
        read_interactions_sql(query, pg_shop, COLUMNS)
    assert _pg_orders(pg_shop) == len(ORDERS)


@pytest.mark.postgres
def test_postgres_select_reads_in_a_read_only_transaction(pg_shop: str) -> None:
    table = read_interactions_sql("SELECT customer, sku, ts FROM orders", pg_shop, COLUMNS)
    assert table["user_id"].tolist() == [1, 1, 2, 3]
    engine = read_only_engine(database_url(pg_shop))
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("show transaction_read_only").scalar_one() == "on"
            with pytest.raises(sqlalchemy.exc.DBAPIError, match="read-only transaction"):
                connection.exec_driver_sql("delete from orders")
    finally:
        engine.dispose()
    assert _pg_orders(pg_shop) == len(ORDERS)


@pytest.mark.postgres
def test_postgres_url_without_driver_and_with_masked_password(
    pg_shop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = sqlalchemy.make_url(pg_shop)
    masked = address.set(drivername="postgresql", password="***")
    url = masked.render_as_string(hide_password=False)
    with pytest.raises(FileNotFoundError, match="SHOPREC_DATABASE_PASSWORD"):
        read_interactions_sql("select * from orders", url, COLUMNS)
    monkeypatch.setenv("SHOPREC_DATABASE_PASSWORD", address.password)
    assert len(read_interactions_sql("select * from orders", url, COLUMNS)) == len(ORDERS)


def _csv(tmp_path: Path, customers: list[str]) -> Path:
    path = tmp_path / "orders.csv"
    rows = [f"{c},{10 + i},{i}" for i, c in enumerate(customers)]
    path.write_text("customer,sku,ts\n" + "\n".join(rows) + "\n")
    return path


def test_id_beyond_int64_is_an_error_naming_file_row_and_column(tmp_path: Path) -> None:
    path = _csv(tmp_path, ["1", "2", str(2**70)])
    with pytest.raises(DataValidationError) as caught:
        read_interactions_file(path, COLUMNS)
    assert str(caught.value) == (
        f"{path}, row 3 (line 4), column 'customer': '999999999999...' (22 characters) is "
        "outside the 64-bit integer "
        "range (ids 0 to 9223372036854775807)"
    )


def test_ids_are_never_read_through_float(tmp_path: Path) -> None:
    path = _csv(tmp_path, [str(2**53), str(2**53 + 1), str(2**63 - 1)])
    table = read_interactions_file(path, COLUMNS)
    assert table["user_id"].tolist() == [2**53, 2**53 + 1, 2**63 - 1]
    assert table["user_id"].nunique() == 3


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("1.0", "'9.9' is not written in digits 0-9"),
        ("+42", "'+99' is not written in digits 0-9"),
        ("4_2", "'9_9' is not written in digits 0-9"),
        ("1e3", "'9a9' is not written in digits 0-9"),
        ("1.5", "'9.9' is not a whole number"),
    ],
)
def test_ids_that_need_a_conversion_are_refused(tmp_path: Path, value: str, problem: str) -> None:
    expected = re.escape(f"row 2 (line 3), column 'customer': {problem}")
    with pytest.raises(DataValidationError, match=expected):
        read_interactions_file(_csv(tmp_path, ["1", value, "2"]), COLUMNS)


def test_float_ids_above_2_53_are_lossy_and_refused(tmp_path: Path) -> None:
    path = tmp_path / "orders.parquet"
    ORDERS.astype({"customer": float}).assign(customer=[1.0, 2.0**60, 2.0, 3.0]).to_parquet(path)
    with pytest.raises(DataValidationError, match="row 2, column 'customer'.*above 2\\*\\*53"):
        read_interactions_file(path, COLUMNS)


def test_binary_file_given_as_csv_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "picture.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10" + bytes(range(256)))
    with pytest.raises(DataValidationError, match=f"^{path}: is a binary file"):
        read_interactions_file(path, COLUMNS)


def test_non_utf8_csv_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("customer,sku,ts\n1,10,1\nJos\xe9,11,2\n".encode("latin-1"))
    with pytest.raises(DataValidationError, match=f"^{path}: is not UTF-8 text"):
        read_interactions_file(path, COLUMNS)


@pytest.mark.notebook
def test_pipeline_fails_on_an_id_beyond_int64(shoprec, project: Path, tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    rows = [f"{u},{i},{t}" for t, (u, i) in enumerate([(1, 1), (2, 2), (2**70, 3), (3, 1)])]
    path.write_text("user_id,item_id,timestamp\n" + "\n".join(rows) + "\n")
    options = f'dataset_options={{"path": "{path}"}}'
    result = shoprec(
        "pipeline", "--profile", "smoke", "--dataset", "file", "--quiet", "-p", options
    )
    assert result.returncode == 1
    assert "notebook 01_explore_data.ipynb failed" in result.stderr
    assert f"{path}, row 3 (line 4), column 'user_id'" in result.stderr
