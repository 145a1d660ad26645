# Generated from notebooks/lib/interactions.ipynb: edit the notebook, not this file.

"""From raw shop events to weighted user-item interactions, and train/test splits of them.

Splits (all deterministic; see `split_interactions`): `chronological` (each user's latest),
`stratified` (a seeded random share of each user, row for row the split of Microsoft Recommenders'
`python_stratified_split`), `random` (alias of `stratified`), `global_time` (one cutoff time for
everybody) and `leave_last_n` (each user's last n).
"""

from collections.abc import Callable

import numpy as np
import pandas as pd

EVENT_WEIGHTS = {"view": 1.0, "add_to_cart": 3.0, "purchase": 5.0}
SPLIT_METHODS = ("chronological", "stratified", "random", "global_time", "leave_last_n")


def to_interactions(
    events: pd.DataFrame, event_weights: dict[str, float] | None = None
) -> pd.DataFrame:
    """One row per (user, item): summed event weights and the time of the latest event."""
    weights = EVENT_WEIGHTS if event_weights is None else event_weights
    unknown = sorted(set(events["event"].astype(str)) - set(weights))
    if unknown:
        raise ValueError(
            f"events: unknown event types {unknown}; expected one of {sorted(weights)}"
        )
    weighted = events.assign(weight=events["event"].astype(str).map(weights).astype(float))
    interactions = weighted.groupby(["user_id", "item_id"], as_index=False, sort=True).agg(
        weight=("weight", "sum"), timestamp=("timestamp", "max")
    )
    return interactions.astype({"user_id": np.int64, "item_id": np.int64})


def _by_user_in_time(interactions: pd.DataFrame) -> pd.DataFrame:
    return interactions.sort_values(["user_id", "timestamp", "item_id"], kind="stable")


def _hold_out_last(
    ordered: pd.DataFrame, n_test: Callable[[np.ndarray], np.ndarray]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows ordered by user: the last `n_test(count)` rows of each user (of `count`) are test."""
    position = ordered.groupby("user_id").cumcount().to_numpy()
    count = ordered.groupby("user_id")["item_id"].transform("size").to_numpy()
    is_test = position >= count - n_test(count)
    return ordered[~is_test].reset_index(drop=True), ordered[is_test].reset_index(drop=True)


def chronological_split(
    interactions: pd.DataFrame, test_ratio: float = 0.2
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out each user's latest `round(count * test_ratio)` interactions (at least one).

    Ties in time are broken by item id. Users with a single interaction stay wholly in train.
    """
    return _hold_out_last(
        _by_user_in_time(interactions),
        lambda count: np.where(count > 1, np.maximum(1, np.round(count * test_ratio)), 0),
    )


def stratified_split(
    interactions: pd.DataFrame, train_ratio: float = 0.75, *, seed: int = 42
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Microsoft Recommenders 1.2 `python_stratified_split(ratio=train_ratio, seed=seed)`, exactly.

    A legacy-NumPy uniform key per row in input order, rows sorted by (user, key), and the first
    `round(train_ratio * count)` rows of each user (half to even) in train. Both parts come back
    in that (user, key) order, as Recommenders returns them.
    """
    if not 0.0 < train_ratio < 1.0:
        raise ValueError(f"train_ratio must be between 0 and 1 (exclusive), got {train_ratio}")
    key = np.random.RandomState(seed).random_sample(len(interactions))
    ordered = interactions.assign(_key=key).sort_values(["user_id", "_key"], kind="stable")
    position = ordered.groupby("user_id").cumcount().to_numpy() + 1
    count = ordered.groupby("user_id")["user_id"].transform("size").to_numpy()
    is_train = position <= np.round(train_ratio * count)
    ordered = ordered.drop(columns="_key")
    return ordered[is_train].reset_index(drop=True), ordered[~is_train].reset_index(drop=True)


def global_time_split(
    interactions: pd.DataFrame, test_ratio: float = 0.2, *, cutoff: float | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Interactions at or after one cutoff time are test, earlier ones train; sorted by user, time.

    `cutoff` defaults to the timestamp of the `max(1, round(n * test_ratio))`-th latest row.
    """
    ordered = _by_user_in_time(interactions)
    timestamps = ordered["timestamp"].to_numpy()
    if cutoff is None:
        if not len(timestamps):
            return ordered.reset_index(drop=True), ordered.reset_index(drop=True)
        n_test = max(1, int(np.round(len(timestamps) * test_ratio)))
        cutoff = np.sort(timestamps)[len(timestamps) - n_test]
    is_test = timestamps >= cutoff
    return ordered[~is_test].reset_index(drop=True), ordered[is_test].reset_index(drop=True)


def leave_last_n_split(interactions: pd.DataFrame, n: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out each user's last `n` interactions; users with at most `n` stay in train."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    return _hold_out_last(_by_user_in_time(interactions), lambda count: np.where(count > n, n, 0))


def split_interactions(
    interactions: pd.DataFrame,
    test_ratio: float = 0.2,
    *,
    method: str = "chronological",
    seed: int = 42,
    n: int = 1,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split interactions into (train, test) by one of `SPLIT_METHODS`.

    - `chronological`: each user's latest `test_ratio` share (at least one; single-interaction
      users stay in train).
    - `stratified` / `random`: a seeded random `test_ratio` share of each user; Microsoft
      Recommenders' `python_stratified_split(ratio=1 - test_ratio, seed=seed)` row for row.
    - `global_time`: everything at or after one cutoff time holding about `test_ratio` of rows.
    - `leave_last_n`: each user's last `n` interactions (`test_ratio` is not used).
    """
    if not 0.0 < test_ratio < 1.0:
        raise ValueError(f"test_ratio must be between 0 and 1 (exclusive), got {test_ratio}")
    if method not in SPLIT_METHODS:
        raise ValueError(f"method must be one of {SPLIT_METHODS}, got {method!r}")
    if method == "chronological":
        return chronological_split(interactions, test_ratio)
    if method in ("stratified", "random"):
        return stratified_split(interactions, round(1.0 - test_ratio, 12), seed=seed)
    if method == "global_time":
        return global_time_split(interactions, test_ratio)
    return leave_last_n_split(interactions, n)
