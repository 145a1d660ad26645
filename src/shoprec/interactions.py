# Generated from notebooks/lib/interactions.ipynb: edit the notebook, not this file.

"""From raw shop events to weighted user-item interactions, and train/test splits of them."""

import numpy as np
import pandas as pd

EVENT_WEIGHTS = {"view": 1.0, "add_to_cart": 3.0, "purchase": 5.0}
SPLIT_METHODS = ("random", "chronological")


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


def split_interactions(
    interactions: pd.DataFrame,
    test_ratio: float = 0.2,
    *,
    method: str = "chronological",
    seed: int = 42,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out about `test_ratio` of every user's interactions: their latest, or a random share.

    Users with a single interaction stay wholly in train, so every test user is known at fit time.
    """
    if not 0.0 < test_ratio < 1.0:
        raise ValueError(f"test_ratio must be between 0 and 1 (exclusive), got {test_ratio}")
    if method not in SPLIT_METHODS:
        raise ValueError(f"method must be one of {SPLIT_METHODS}, got {method!r}")
    if method == "chronological":
        order_key = interactions["timestamp"].to_numpy()
    else:
        order_key = np.random.default_rng(seed).random(len(interactions))
    ordered = interactions.assign(_key=order_key).sort_values(
        ["user_id", "_key", "item_id"], kind="stable"
    )
    position = ordered.groupby("user_id").cumcount().to_numpy()
    count = ordered.groupby("user_id")["item_id"].transform("size").to_numpy()
    n_test = np.where(count > 1, np.maximum(1, np.round(count * test_ratio)), 0)
    is_test = position >= count - n_test
    ordered = ordered.drop(columns="_key")
    return ordered[~is_test].reset_index(drop=True), ordered[is_test].reset_index(drop=True)
