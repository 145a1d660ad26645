"""Datasets by name and run profiles: what each notebook loads, at which size.

`synthetic` is the generated shop; `movielens-100k`, `movielens-1m` and `movielens-latest-small`
are MovieLens releases (found locally or downloaded, see `shoprec.loaders.locate_movielens`);
`file` is the shop's own extract as CSV or Parquet (`path=`, `columns=`) and `sql` the result of
a query (`url=`, `query=`, `columns=`). In the smoke profile real datasets keep a seeded sample
of users; in the default profile all of them.
"""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from shoprec.interactions import to_interactions
from shoprec.loaders import (
    MOVIELENS,
    item_table,
    locate_movielens,
    read_interactions_file,
    read_interactions_sql,
    read_movielens_movies,
    read_movielens_ratings,
    sample_users,
    sum_by_user_item,
)
from shoprec.params import ParameterError
from shoprec.synthetic import ShopData, generate_shop

PROFILES: dict[str, dict[str, int]] = {
    "smoke": {"n_users": 200, "n_items": 300, "n_events": 6_000},
    "default": {"n_users": 1_000, "n_items": 2_000, "n_events": 100_000},
}
SAMPLE_USERS: dict[str, int | None] = {"smoke": 100, "default": None}
"""How many users of a real dataset each profile keeps (None: all)."""
DATASETS = ("synthetic", *MOVIELENS, "file", "sql")
OPTIONS: dict[str, tuple[set[str], set[str]]] = {
    "synthetic": (set(), set()),
    **{name: (set(), {"path"}) for name in MOVIELENS},
    "file": ({"path"}, {"columns"}),
    "sql": ({"url", "query"}, {"columns"}),
}
"""Each dataset's required and optional keyword options."""


@dataclass(frozen=True)
class Dataset:
    """A named dataset: catalogue, raw events and the interactions models learn from."""

    name: str
    items: pd.DataFrame
    events: pd.DataFrame
    interactions: pd.DataFrame
    shop: ShopData | None = None


def load_dataset(
    name: str,
    profile: str,
    seed: int = 42,
    *,
    path: str | Path | None = None,
    columns: Mapping[str, str] | None = None,
    url: str | None = None,
    query: str | None = None,
) -> Dataset:
    """Load dataset `name` at the size of `profile`, deterministically for a given seed.

    `path`: a MovieLens folder or zip (instead of looking for one), or the extract file for
    `file`; `url` (SQLAlchemy URL, or a path to an SQLite file) and `query` for `sql`;
    `columns` maps user_id, item_id, timestamp and weight to the extract's column names.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {list(DATASETS)}")
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {list(PROFILES)}")
    given = {"path": path, "columns": columns, "url": url, "query": query}
    check_options(name, {option for option, value in given.items() if value is not None})
    if name == "synthetic":
        shop = generate_shop(**PROFILES[profile], seed=seed)
        return Dataset(name, shop.items, shop.events, to_interactions(shop.events), shop)
    if name in MOVIELENS:
        source = Path(path) if path is not None else locate_movielens(name)
        rows, films = read_movielens_ratings(source, name), read_movielens_movies(source, name)
        return _real_dataset(name, rows, profile, seed, "rating", films)
    if name == "file":
        rows = read_interactions_file(path, columns)
    else:
        rows = read_interactions_sql(query, url, columns)
    return _real_dataset(name, rows, profile, seed, "interaction")


def fingerprint(frame: pd.DataFrame) -> str:
    """A content hash of a table: same rows, columns and values give the same hex digest."""
    digest = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def check_options(name: str, given: set[str]) -> None:
    """Fail unless `given` holds every option dataset `name` needs and no other."""
    required, optional = OPTIONS[name]
    if missing := sorted(required - given):
        raise ValueError(f"dataset {name!r} needs option(s) {', '.join(missing)}")
    if unexpected := sorted(given - required - optional):
        allowed = sorted(required | optional)
        raise ValueError(
            f"dataset {name!r} takes no option(s) {', '.join(unexpected)}; "
            f"it takes {', '.join(allowed) if allowed else 'none'}"
        )


def _real_dataset(
    name: str,
    rows: pd.DataFrame,
    profile: str,
    seed: int,
    event: str,
    catalogue: pd.DataFrame | None = None,
) -> Dataset:
    """From validated rows: the profile's sample of users, their interactions and items."""
    n_users = SAMPLE_USERS[profile]
    if n_users is not None:
        rows = sample_users(rows, n_users, seed)
    events = rows.assign(event=pd.Categorical([event] * len(rows)))
    events = events[["user_id", "item_id", "event", "weight", "timestamp"]]
    interactions = sum_by_user_item(rows)
    return Dataset(name, item_table(interactions["item_id"], catalogue), events, interactions)


def check_dataset_options(name: str, dataset: str, options: object) -> None:
    """Fail unless `options` are exactly what dataset `dataset` needs (e.g. `path` for `file`)."""
    if not isinstance(options, dict):
        raise ParameterError(f"parameter {name}={options!r} is not allowed; expected a dict")
    try:
        check_options(dataset, set(options))
    except ValueError as error:
        raise ParameterError(f"parameter {name}: {error}") from None
