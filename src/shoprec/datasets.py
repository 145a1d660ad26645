"""Datasets by name and run profiles: what each notebook loads, at which size.

`synthetic` is the generated shop; `movielens-100k`, `movielens-1m` and `movielens-latest-small`
are MovieLens releases (found locally or downloaded, see `shoprec.loaders.locate_movielens`);
`file` is the shop's own extract as CSV or Parquet (`path=`, `columns=`), `sql` the result of
a query (`url=`, `query=`, `columns=`) and `events` what shoppers did with the service's lists:
the event store's clicks, add-to-carts and purchases (`url=`, default the project's store;
`environment=`, default production), weighted as the synthetic shop's views, carts and
purchases. In the smoke profile real datasets keep a seeded sample of users; in the default
profile all of them.
"""

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from shoprec.interactions import EVENT_WEIGHTS, to_interactions
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
DATASETS = ("synthetic", *MOVIELENS, "file", "sql", "events")
OPTIONS: dict[str, tuple[set[str], set[str]]] = {
    "synthetic": (set(), set()),
    **{name: (set(), {"path"}) for name in MOVIELENS},
    "file": ({"path"}, {"columns"}),
    "sql": ({"url", "query"}, {"columns"}),
    "events": (set(), {"url", "environment"}),
}
EVENTS_FILE = "events.db"  # in the state folder, as shoprec.events.store (a layer above) names it
FEEDBACK_WEIGHTS = {
    "click": EVENT_WEIGHTS["view"],
    "add_to_cart": EVENT_WEIGHTS["add_to_cart"],
    "purchase": EVENT_WEIGHTS["purchase"],
}
"""A click on a list weighs what a view of the synthetic shop does."""
ENVIRONMENT_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
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
    environment: str | None = None,
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
    given = {"path": path, "columns": columns, "url": url, "query": query,
             "environment": environment}  # fmt: skip
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
    elif name == "events":
        rows = read_interactions_sql(events_query(environment), url or default_events_url())
    else:
        rows = read_interactions_sql(query, url, columns)
    return _real_dataset(name, rows, profile, seed, "interaction")


def default_events_url() -> str:
    """The event store: `SHOPREC_EVENTS_URL`, else the project's `.shoprec/events.db`."""
    from shoprec.runs import state_dir
    from shoprec.settings import get_settings

    configured = get_settings().events_url
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value()
    return str(state_dir() / EVENTS_FILE)


def events_query(environment: str | None) -> str:
    """The read-only query for one environment's feedback, weighted and summed per user-item."""
    environment = environment or "production"
    if not ENVIRONMENT_NAME.fullmatch(environment):
        raise ValueError(
            f"dataset 'events': environment={environment!r}; expected a name like 'production'"
        )
    weights = " ".join(f"when '{kind}' then {weight}" for kind, weight in FEEDBACK_WEIGHTS.items())
    return (
        "select user_id, item_id, max(occurred_at) as timestamp, "
        f"sum(case event_type {weights} else 0 end) as weight from feedback_events "
        f"where environment = '{environment}' group by user_id, item_id order by user_id, item_id"
    )


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
