"""Datasets by name: the synthetic shop, MovieLens releases and the shop's own extracts."""

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shoprec.datasets import DATASETS, SAMPLE_USERS, load_dataset
from shoprec.loaders import MOVIELENS

SHARED_ML100K = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"
MAPPING = {"user_id": "customer", "item_id": "sku", "timestamp": "ts", "weight": "qty"}


pytestmark = pytest.mark.usefixtures("no_data_dirs")


@pytest.fixture
def ml100k(tmp_path) -> Path:
    """A made-up release in ml-100k's format: 150 users rating some of 40 films."""
    rng = np.random.default_rng(0)
    lines = [
        f"{user}\t{item}\t{rng.integers(1, 6)}\t{880_000_000 + user * 100 + item}\n"
        for user in range(1, 151)
        for item in rng.choice(np.arange(1, 41), size=5, replace=False)
    ]
    folder = tmp_path / "movielens" / "ml-100k"
    folder.mkdir(parents=True)
    (folder / "u.data").write_text("".join(lines))
    (folder / "u.item").write_text(
        "".join(
            f"{i}|Film {i}||||" + "|".join(["0"] * 5 + ["1"] + ["0"] * 13) + "\n"
            for i in range(1, 41)
        )
    )
    return folder


@pytest.fixture
def orders(tmp_path) -> Path:
    """The shop's extract as CSV: customer 7 bought sku 100 twice, at different times."""
    frame = pd.DataFrame(
        {
            "customer": [7, 7, 7, 8, 9],
            "sku": [100, 100, 101, 100, 102],
            "qty": [1, 2, 2, 1, 3],
            "ts": [1_714_557_600, 1_714_600_000, 1_714_557_900, 1_714_640_400, 1_714_761_000],
        }
    )
    frame.to_csv(tmp_path / "orders.csv", index=False)
    return tmp_path / "orders.csv"


def test_names_start_with_synthetic_and_include_every_source():
    assert DATASETS[0] == "synthetic"
    assert set(DATASETS) == {"synthetic", *MOVIELENS, "file", "sql", "events"}
    assert set(MOVIELENS) == {"movielens-100k", "movielens-1m", "movielens-latest-small"}


def test_synthetic_keeps_its_positional_signature():
    data = load_dataset("synthetic", "smoke", 7)
    assert data.shop is not None
    assert data.interactions.equals(load_dataset("synthetic", "smoke", seed=7).interactions)


def test_movielens_from_a_path_in_the_default_profile_is_whole(ml100k):
    data = load_dataset("movielens-100k", "default", path=ml100k)
    assert data.name == "movielens-100k" and data.shop is None
    assert len(data.interactions) == 750 and data.interactions["user_id"].nunique() == 150
    assert list(data.interactions.columns) == ["user_id", "item_id", "weight", "timestamp"]
    assert set(data.events["event"]) == {"rating"}
    assert (
        len(data.events) == 750 and data.events["weight"].sum() == data.interactions["weight"].sum()
    )
    assert {"item_id", "title", "category"} <= set(data.items.columns)
    assert data.items["category"].eq("Comedy").all()
    assert set(data.items["item_id"]) == set(data.interactions["item_id"])


def test_movielens_smoke_is_a_seeded_sample_of_users(ml100k):
    smoke = load_dataset("movielens-100k", "smoke", path=ml100k, seed=1)
    assert smoke.interactions["user_id"].nunique() == SAMPLE_USERS["smoke"] == 100
    assert len(smoke.interactions) == 500
    again = load_dataset("movielens-100k", "smoke", path=ml100k, seed=1)
    assert smoke.interactions.equals(again.interactions)
    other = load_dataset("movielens-100k", "smoke", path=ml100k, seed=2)
    assert not smoke.interactions.equals(other.interactions)
    assert set(smoke.items["item_id"]) == set(smoke.interactions["item_id"])


def test_movielens_without_a_path_is_looked_for(ml100k, monkeypatch):
    monkeypatch.setenv("SHOPREC_MOVIELENS_DIR", str(ml100k.parent))
    found = load_dataset("movielens-100k", "default")
    assert found.interactions.equals(
        load_dataset("movielens-100k", "default", path=ml100k).interactions
    )


def test_file_extract_sums_repeat_purchases(orders):
    data = load_dataset("file", "default", path=orders, columns=MAPPING)
    assert len(data.events) == 5 and set(data.events["event"]) == {"interaction"}
    first = data.interactions.iloc[0].to_dict()
    assert first == {"user_id": 7, "item_id": 100, "weight": 3.0, "timestamp": 1_714_600_000}
    assert data.items["title"].tolist() == ["item 100", "item 101", "item 102"]


def test_sql_extract(orders, tmp_path):
    with sqlite3.connect(tmp_path / "shop.db") as connection:
        pd.read_csv(orders).to_sql("orders", connection, index=False)
    connection.close()
    data = load_dataset(
        "sql", "smoke", url=str(tmp_path / "shop.db"), query="SELECT * FROM orders", columns=MAPPING
    )
    expected = load_dataset("file", "smoke", path=orders, columns=MAPPING)
    assert data.interactions.equals(expected.interactions)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("file", {}, "dataset 'file' needs option(s) path"),
        ("sql", {"url": "x.db"}, "dataset 'sql' needs option(s) query"),
        ("synthetic", {"path": "x"}, "dataset 'synthetic' takes no option(s) path; it takes none"),
        ("movielens-1m", {"query": "q"}, "takes no option(s) query; it takes path"),
        ("movielens-10m", {}, "unknown dataset 'movielens-10m'"),
    ],
)
def test_options_are_checked(name, options, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_dataset(name, "smoke", **options)


def test_unknown_profile():
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        load_dataset("synthetic", "huge")


@pytest.mark.skipif(
    not (SHARED_ML100K / "u.data").is_file(),
    reason=f"MovieLens 100k is not at {SHARED_ML100K} (shared data; never copied into the repo)",
)
def test_real_movielens_100k_found_beside_the_project(monkeypatch):
    monkeypatch.setenv("SHOPREC_PROJECT_DIR", str(SHARED_ML100K.parents[2] / "main"))
    data = load_dataset("movielens-100k", "default")
    assert len(data.interactions) == 100_000
    assert data.interactions["user_id"].nunique() == 943
    assert len(data.items) == 1_682
    assert data.items.loc[data.items["item_id"] == 1, "title"].item() == "Toy Story (1995)"
    smoke = load_dataset("movielens-100k", "smoke", seed=42)
    assert smoke.interactions["user_id"].nunique() == 100
