"""MovieLens from folders, zips and downloads; the shop's extracts from CSV, Parquet and SQL.

Every file here is written by the tests in MovieLens' formats; no MovieLens data is copied.
"""

import dataclasses
import gzip
import http.server
import sqlite3
import threading
import zipfile
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pandas as pd
import pytest

from shoprec import loaders
from shoprec.checksums import file_sha256
from shoprec.loaders import (
    MOVIELENS,
    ChecksumError,
    DataUnavailableError,
    download,
    item_table,
    locate_movielens,
    movielens_cache_path,
    read_interactions_file,
    read_interactions_sql,
    read_movielens_movies,
    read_movielens_ratings,
    sample_users,
    sum_by_user_item,
)
from shoprec.validation import DataValidationError

SHARED_ML100K = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"
RATINGS = [(1, 10, 5, 880000000), (1, 20, 3, 880000100), (2, 10, 4, 880000200), (3, 30, 1, 4)]
MAPPING = {"user_id": "customer", "item_id": "sku", "timestamp": "ts", "weight": "qty"}


def write_release(folder: Path, name: str, ratings=RATINGS, movies: bool = True) -> Path:
    """A tiny release of `name` in its own file formats, in `folder` (created)."""
    folder.mkdir(parents=True)
    if name == "movielens-100k":
        (folder / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in ratings))
        if movies:
            flags = {10: (1, 5), 20: (8,), 30: ()}
            lines = [
                f"{i}|Café {i} (1995)|01-Jan-1995||http://x/{i}|"
                + "|".join("1" if g in flags[i] else "0" for g in range(19))
                for i in flags
            ]
            (folder / "u.item").write_bytes("\n".join(lines).encode("latin-1") + b"\n")
    elif name == "movielens-1m":
        (folder / "ratings.dat").write_text(
            "".join(f"{u}::{i}::{r}::{t}\n" for u, i, r, t in ratings)
        )
        if movies:
            films = "10::Amélie: Part 1 (2001)::Comedy|Romance\n20::Heat (1995)::Action\n"
            (folder / "movies.dat").write_bytes(films.encode("latin-1"))
    else:
        rows = "".join(f"{u},{i},{r}.5,{t}\n" for u, i, r, t in ratings)
        (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + rows)
        if movies:
            films = 'movieId,title,genres\n10,"Heat, The (1995)",Action|Crime\n'
            films += "20,Up (2009),(no genres listed)\n"
            (folder / "movies.csv").write_text(films, encoding="utf-8")
    return folder


def zip_release(folder: Path, target: Path) -> Path:
    """`folder` zipped as GroupLens ships it: the files under `<folder name>/`."""
    with zipfile.ZipFile(target, "w") as archive:
        for file in sorted(folder.iterdir()):
            archive.write(file, f"{folder.name}/{file.name}")
    return target


pytestmark = pytest.mark.usefixtures("no_data_dirs")


@pytest.fixture
def release_zip(tmp_path) -> Path:
    """An ml-100k zip and a MOVIELENS entry whose URL and sha256 are those of that zip."""
    folder = write_release(tmp_path / "made" / "ml-100k", "movielens-100k")
    return zip_release(folder, tmp_path / "made" / "ml-100k.zip")


@pytest.fixture
def served(release_zip, monkeypatch) -> Path:
    """movielens-100k's URL points at `release_zip` (file://) and its sha256 is that zip's."""
    fake = dataclasses.replace(
        MOVIELENS["movielens-100k"], url=release_zip.as_uri(), sha256=file_sha256(release_zip)
    )
    monkeypatch.setitem(MOVIELENS, "movielens-100k", fake)
    return release_zip


# MovieLens readers


@pytest.mark.parametrize("name", list(MOVIELENS))
def test_each_release_reads_from_its_folder_and_its_zip(tmp_path, name):
    folder = write_release(tmp_path / MOVIELENS[name].folder, name)
    archive = zip_release(folder, tmp_path / f"{folder.name}.zip")
    from_folder = read_movielens_ratings(folder, name)
    assert from_folder.equals(read_movielens_ratings(archive, name))
    assert list(from_folder.columns) == ["user_id", "item_id", "weight", "timestamp"]
    assert from_folder["user_id"].tolist() == [1, 1, 2, 3]
    assert from_folder["timestamp"].tolist() == [880000000, 880000100, 880000200, 4]
    offset = 0.5 if name == "movielens-latest-small" else 0.0
    assert from_folder["weight"].tolist() == [r + offset for _, _, r, _ in RATINGS]
    assert read_movielens_movies(folder, name).equals(read_movielens_movies(archive, name))


def test_ml100k_films_are_latin1_with_genre_flags(tmp_path):
    folder = write_release(tmp_path / "ml-100k", "movielens-100k")
    films = read_movielens_movies(folder, "movielens-100k")
    assert films.to_dict("list") == {
        "item_id": [10, 20, 30],
        "title": ["Café 10 (1995)", "Café 20 (1995)", "Café 30 (1995)"],
        "category": ["Action", "Drama", "unknown"],
        "genres": ["Action|Comedy", "Drama", ""],
    }


def test_ml1m_films_keep_single_colons_in_titles(tmp_path):
    folder = write_release(tmp_path / "ml-1m", "movielens-1m")
    films = read_movielens_movies(folder, "movielens-1m")
    assert films["title"].tolist() == ["Amélie: Part 1 (2001)", "Heat (1995)"]
    assert films["category"].tolist() == ["Comedy", "Action"]


def test_latest_small_films_are_quoted_csv(tmp_path):
    folder = write_release(tmp_path / "ml-latest-small", "movielens-latest-small")
    films = read_movielens_movies(folder, "movielens-latest-small")
    assert films["title"].tolist() == ["Heat, The (1995)", "Up (2009)"]
    assert films["genres"].tolist() == ["Action|Crime", "(no genres listed)"]


def test_without_a_film_file_items_get_placeholder_titles(tmp_path):
    folder = write_release(tmp_path / "ml-1m", "movielens-1m", movies=False)
    assert read_movielens_movies(folder, "movielens-1m") is None
    items = item_table(read_movielens_ratings(folder, "movielens-1m")["item_id"])
    assert items.to_dict("list") == {
        "item_id": [10, 20, 30],
        "title": ["item 10", "item 20", "item 30"],
        "category": ["unknown"] * 3,
        "genres": [""] * 3,
    }


def test_item_table_lists_rated_items_with_catalogue_titles_where_known(tmp_path):
    folder = write_release(tmp_path / "ml-1m", "movielens-1m")
    items = item_table(pd.Series([30, 10, 10]), read_movielens_movies(folder, "movielens-1m"))
    assert items["item_id"].tolist() == [10, 30]
    assert items["title"].tolist() == ["Amélie: Part 1 (2001)", "item 30"]


def test_bad_rating_inside_a_zip_names_the_member_row_and_column(tmp_path):
    ratings = [*RATINGS[:2], (2, 10, "five", 880000200)]
    folder = write_release(tmp_path / "ml-1m", "movielens-1m", ratings=ratings)
    archive = zip_release(folder, tmp_path / "ml-1m.zip")
    with pytest.raises(DataValidationError) as caught:
        read_movielens_ratings(archive, "movielens-1m")
    assert str(caught.value).startswith(f"{archive}:ml-1m/ratings.dat, row 3, column 'Rating':")


def test_header_line_counts_in_the_line_number(tmp_path):
    ratings = [*RATINGS[:2], (-2, 10, 4, 880000200)]
    folder = write_release(tmp_path / "ml", "movielens-latest-small", ratings=ratings)
    with pytest.raises(DataValidationError, match=r"row 3 \(line 4\), column 'userId'"):
        read_movielens_ratings(folder, "movielens-latest-small")


def test_duplicate_rating_is_an_error(tmp_path):
    ratings = [*RATINGS, (1, 20, 4, 990000000)]
    folder = write_release(tmp_path / "ml-100k", "movielens-100k", ratings=ratings)
    with pytest.raises(DataValidationError, match="row 5, columns 'user id', 'item id'"):
        read_movielens_ratings(folder, "movielens-100k")


def test_blank_line_is_reported_where_it_is(tmp_path):
    folder = write_release(tmp_path / "ml-100k", "movielens-100k")
    (folder / "u.data").write_text("1\t10\t5\t1\n\n2\t10\t4\t2\n")
    with pytest.raises(DataValidationError, match="row 2, column 'user id': missing value"):
        read_movielens_ratings(folder, "movielens-100k")


def test_line_with_too_many_fields_cannot_be_parsed(tmp_path):
    folder = write_release(tmp_path / "ml-1m", "movielens-1m")
    (folder / "ratings.dat").write_text("1::10::5::1\n2::10::4::2::9\n")
    with pytest.raises(DataValidationError, match="ratings.dat: cannot parse the file"):
        read_movielens_ratings(folder, "movielens-1m")


def test_empty_ratings_file(tmp_path):
    folder = write_release(tmp_path / "ml-100k", "movielens-100k")
    (folder / "u.data").write_text("")
    with pytest.raises(DataValidationError, match="u.data: no data rows"):
        read_movielens_ratings(folder, "movielens-100k")


def test_folder_of_another_release_and_non_zip_are_clear_errors(tmp_path):
    folder = write_release(tmp_path / "ml-1m", "movielens-1m")
    with pytest.raises(DataValidationError, match="no u.data in it: is it the ml-100k release?"):
        read_movielens_ratings(folder, "movielens-100k")
    (tmp_path / "fake.zip").write_text("not a zip")
    with pytest.raises(DataValidationError, match="not a readable zip archive"):
        read_movielens_ratings(tmp_path / "fake.zip", "movielens-100k")
    with pytest.raises(DataUnavailableError, match="no such folder or zip"):
        read_movielens_ratings(tmp_path / "nowhere", "movielens-100k")


@pytest.mark.skipif(
    not (SHARED_ML100K / "u.data").is_file(),
    reason=f"MovieLens 100k is not at {SHARED_ML100K} (shared data; never copied into the repo)",
)
def test_real_movielens_100k():
    ratings = read_movielens_ratings(SHARED_ML100K, "movielens-100k")
    assert len(ratings) == 100_000
    assert ratings["user_id"].nunique() == 943
    assert ratings["item_id"].nunique() == 1_682
    assert ratings["weight"].between(1, 5).all()
    films = read_movielens_movies(SHARED_ML100K, "movielens-100k")
    assert len(films) == 1_682 and films["title"].str.len().gt(0).all()


# Download and checksum


def test_official_checksums_are_recorded_for_every_release():
    for release in MOVIELENS.values():
        assert len(release.sha256) == 64 and int(release.sha256, 16) >= 0
        assert release.url == f"https://files.grouplens.org/datasets/movielens/{release.folder}.zip"


def test_download_keeps_a_file_whose_checksum_matches(tmp_path, release_zip):
    target = download(
        release_zip.as_uri(), tmp_path / "dl" / "ml-100k.zip", file_sha256(release_zip)
    )
    assert target.read_bytes() == release_zip.read_bytes()
    assert sorted(p.name for p in target.parent.iterdir()) == ["ml-100k.zip"]


def test_download_with_wrong_checksum_keeps_nothing(tmp_path, release_zip):
    with pytest.raises(ChecksumError, match="expected 0000.*nothing was kept"):
        download(release_zip.as_uri(), tmp_path / "dl" / "ml-100k.zip", "0" * 64)
    assert list((tmp_path / "dl").iterdir()) == []


@pytest.mark.service
def test_download_over_http_from_a_local_server(tmp_path, release_zip):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(release_zip.parent), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/ml-100k.zip"
        target = download(
            url, tmp_path / "dl" / "ml-100k.zip", file_sha256(release_zip), timeout=10
        )
        assert file_sha256(target) == file_sha256(release_zip)
        with pytest.raises(URLError):
            download(url.replace("ml-100k", "nope"), tmp_path / "dl" / "x.zip", "0" * 64)
    finally:
        server.shutdown()
        server.server_close()


# Where MovieLens is looked for


def test_env_dir_comes_first_as_parent_zip_or_release_folder(tmp_path, monkeypatch):
    env = tmp_path / "movielens"
    folder = write_release(env / "ml-100k", "movielens-100k")
    write_release(tmp_path / "work" / "shared" / "data" / "ml-100k", "movielens-100k")
    monkeypatch.setenv("SHOPREC_MOVIELENS_DIR", str(env))
    assert locate_movielens("movielens-100k") == folder
    zip_release(write_release(tmp_path / "z" / "ml-1m", "movielens-1m"), env / "ml-1m.zip")
    assert locate_movielens("movielens-1m") == env / "ml-1m.zip"
    monkeypatch.setenv("SHOPREC_MOVIELENS_DIR", str(folder))
    assert locate_movielens("movielens-100k") == folder


def test_shared_data_beside_the_project_comes_next(tmp_path, monkeypatch):
    shared = write_release(tmp_path / "work" / "shared" / "data" / "ml-100k", "movielens-100k")
    monkeypatch.setenv("SHOPREC_MOVIELENS_DIR", str(tmp_path / "empty"))
    assert locate_movielens("movielens-100k") == shared


def test_missing_release_is_downloaded_into_the_cache_once(tmp_path, served):
    cached = movielens_cache_path("movielens-100k")
    assert cached == tmp_path / "cache" / "movielens" / "ml-100k.zip"
    assert locate_movielens("movielens-100k") == cached
    assert cached.read_bytes() == served.read_bytes()
    served.unlink()  # a second call uses the cache, not the URL
    assert locate_movielens("movielens-100k") == cached
    assert read_movielens_ratings(cached, "movielens-100k")["user_id"].tolist() == [1, 1, 2, 3]


def test_cached_zip_with_wrong_checksum_is_refused(tmp_path, served):
    cached = movielens_cache_path("movielens-100k")
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"tampered")
    with pytest.raises(ChecksumError, match="delete it so that it is downloaded again"):
        locate_movielens("movielens-100k")


def test_download_of_a_changed_release_is_refused(monkeypatch, served):
    changed = dataclasses.replace(MOVIELENS["movielens-100k"], sha256="f" * 64)
    monkeypatch.setitem(MOVIELENS, "movielens-100k", changed)
    with pytest.raises(ChecksumError):
        locate_movielens("movielens-100k")
    assert not movielens_cache_path("movielens-100k").exists()


def test_offline_without_a_copy_says_where_it_looked(tmp_path, monkeypatch):
    closed = dataclasses.replace(MOVIELENS["movielens-1m"], url="http://127.0.0.1:9/ml-1m.zip")
    monkeypatch.setitem(MOVIELENS, "movielens-1m", closed)
    with pytest.raises(DataUnavailableError) as caught:
        locate_movielens("movielens-1m")
    message = str(caught.value)
    assert "movielens-1m: no copy found" in message and "offline?" in message
    assert str(tmp_path / "work" / "shared" / "data" / "ml-1m") in message
    assert str(tmp_path / "cache" / "movielens" / "ml-1m.zip") in message
    assert "SHOPREC_MOVIELENS_DIR" in message


def test_no_download_when_not_allowed(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("must not download")

    monkeypatch.setattr(loaders, "download", fail)
    with pytest.raises(DataUnavailableError, match="no copy found"):
        locate_movielens("movielens-latest-small", allow_download=False)


def test_cache_dir_defaults_to_the_home_cache(monkeypatch):
    monkeypatch.delenv("SHOPREC_CACHE_DIR")
    assert loaders.cache_dir() == Path.home() / ".cache" / "shoprec"


# The shop's extract


@pytest.fixture
def orders() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer": [7, 7, 8, 9],
            "sku": [100, 101, 100, 102],
            "qty": [1, 2, 1, 3],
            "ts": ["2024-05-01 10:00", "2024-05-01 10:05", "2024-05-02 09:00", "2024-05-03 18:30"],
        }
    )


def test_csv_parquet_and_gzipped_csv_read_the_same(tmp_path, orders):
    orders.to_csv(tmp_path / "orders.csv", index=False)
    orders.to_parquet(tmp_path / "orders.parquet", index=False)
    with gzip.open(tmp_path / "orders.csv.gz", "wt") as file:
        orders.to_csv(file, index=False)
    tables = [read_interactions_file(tmp_path / f"orders.{s}", MAPPING) for s in ("csv", "csv.gz")]
    tables.append(read_interactions_file(tmp_path / "orders.parquet", MAPPING))
    assert tables[0].equals(tables[1]) and tables[0].equals(tables[2])
    assert tables[0]["weight"].tolist() == [1.0, 2.0, 1.0, 3.0]
    assert tables[0]["timestamp"].iloc[0] == 1714557600


def test_csv_errors_count_the_header_line(tmp_path, orders):
    orders.assign(sku=[100, 101, -5, 102]).to_csv(tmp_path / "orders.csv", index=False)
    with pytest.raises(DataValidationError) as caught:
        read_interactions_file(tmp_path / "orders.csv", MAPPING)
    assert str(caught.value).startswith(f"{tmp_path / 'orders.csv'}, row 3 (line 4), column 'sku'")


def test_file_errors(tmp_path):
    with pytest.raises(DataUnavailableError, match="no such file"):
        read_interactions_file(tmp_path / "none.csv")
    (tmp_path / "orders.xlsx").write_text("")
    with pytest.raises(ValueError, match="expected a .csv, .csv.gz, .parquet or .pq file"):
        read_interactions_file(tmp_path / "orders.xlsx")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataValidationError, match="no data rows"):
        read_interactions_file(tmp_path / "empty.csv")


def test_sql_from_an_sqlite_path_or_url(tmp_path, orders):
    with sqlite3.connect(tmp_path / "shop.db") as connection:
        orders.to_sql("orders", connection, index=False)
    connection.close()
    query = "SELECT customer, sku, qty, ts FROM orders ORDER BY ts"
    from_path = read_interactions_sql(query, str(tmp_path / "shop.db"), MAPPING)
    from_url = read_interactions_sql(query, f"sqlite:///{tmp_path / 'shop.db'}", MAPPING)
    assert from_path.equals(from_url)
    orders.to_csv(tmp_path / "orders.csv", index=False)
    assert from_path.equals(read_interactions_file(tmp_path / "orders.csv", MAPPING))


def test_sql_result_is_validated_and_a_missing_database_is_not_created(tmp_path, orders):
    with sqlite3.connect(tmp_path / "shop.db") as connection:
        orders.assign(customer=[7, None, 8, 9]).to_sql("orders", connection, index=False)
    connection.close()
    with pytest.raises(
        DataValidationError, match="query on sqlite:///.*, row 2, column 'customer'"
    ):
        read_interactions_sql("SELECT * FROM orders", str(tmp_path / "shop.db"), MAPPING)
    with pytest.raises(DataUnavailableError, match="no such SQLite database file"):
        read_interactions_sql("SELECT 1", str(tmp_path / "none.db"))
    assert not (tmp_path / "none.db").exists()


# From rows to a dataset


def test_sample_users_keeps_whole_users_deterministically():
    rng = np.random.default_rng(0)
    rows = pd.DataFrame({"user_id": rng.integers(0, 500, 5_000), "item_id": np.arange(5_000)})
    sample = sample_users(rows, 100, seed=3)
    assert sample["user_id"].nunique() == 100
    kept = rows[rows["user_id"].isin(sample["user_id"])]
    assert len(sample) == len(kept)
    assert sample.equals(sample_users(rows, 100, seed=3))
    assert not sample.equals(sample_users(rows, 100, seed=4))
    assert sample_users(rows.iloc[:50], 100, seed=3).equals(rows.iloc[:50])


def test_sum_by_user_item_sums_weights_and_keeps_the_latest_time():
    rows = pd.DataFrame(
        {
            "user_id": [1, 1, 2],
            "item_id": [5, 5, 5],
            "weight": [1.0, 2.0, 4.0],
            "timestamp": [3, 9, 1],
        }
    )
    assert sum_by_user_item(rows).to_dict("list") == {
        "user_id": [1, 2],
        "item_id": [5, 5],
        "weight": [3.0, 4.0],
        "timestamp": [9, 1],
    }


def test_sum_by_user_item_keeps_the_source_order_of_pairs():
    """The stratified split draws one key per row in this order, as Recommenders does."""
    rows = pd.DataFrame(
        {"user_id": [7, 2, 7, 2], "item_id": [1, 9, 1, 3], "weight": 1.0, "timestamp": 0}
    )
    summed = sum_by_user_item(rows)
    assert list(zip(summed["user_id"], summed["item_id"], strict=True)) == [(7, 1), (2, 9), (2, 3)]
