"""Segments the report compares within: users by history length, items by popularity.

- Users: a test user's history is their number of training interactions (distinct items).
  `short` holds the users at or below the median history of the test users (the lower median,
  a history length that occurs), `long` those above it: two halves, whatever the dataset.
- Items: the `head` is the most popular items (by training interactions; ties: the smaller item
  id first) that together hold at least half of all training interactions; the `tail` is every
  other catalogue item, never-seen ones included.

A user segment scores its users' lists as usual. An item segment scores every list against the
held-out items of that segment only, over the users who have any (a tail hit is a hit on a
held-out tail item); its coverage is the share of the segment's items that those users' lists show.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

HEAD_SHARE = 0.5  # the head holds at least this share of training interactions
SHORT, LONG, HEAD, TAIL = "short history", "long history", "head items", "tail items"
SEGMENTS = (SHORT, LONG, HEAD, TAIL)


@dataclass(frozen=True)
class Population:
    """Who and what a segment scores: its users, and the held-out items counted as hits."""

    name: str
    users: np.ndarray  # test user ids, ascending
    items: np.ndarray | None  # held-out items that count (None: all); also coverage's universe
    definition: str


def history_lengths(train: pd.DataFrame, users: np.ndarray) -> np.ndarray:
    """Each of `users`' number of distinct training items (0 for none)."""
    counts = train.drop_duplicates(["user_id", "item_id"]).groupby("user_id").size()
    return counts.reindex(users, fill_value=0).to_numpy()


def item_popularity(train: pd.DataFrame, catalogue: np.ndarray) -> pd.Series:
    """Training interactions per catalogue item, most popular first (ties: smaller id first)."""
    counts = train.drop_duplicates(["user_id", "item_id"]).groupby("item_id").size()
    counts = counts.reindex(catalogue, fill_value=0).rename("interactions")
    frame = counts.rename_axis("item_id").reset_index()
    frame = frame.sort_values(["interactions", "item_id"], ascending=[False, True], kind="stable")
    return frame.set_index("item_id")["interactions"]


def populations(test: pd.DataFrame, train: pd.DataFrame, catalogue: np.ndarray) -> list[Population]:
    """The four segments of the test users and catalogue, each with its definition in words."""
    return [*user_segments(test, train), *item_segments(test, train, catalogue)]


def user_segments(test: pd.DataFrame, train: pd.DataFrame) -> list[Population]:
    """Short and long histories: at most, and more than, the test users' median history."""
    users = np.sort(test["user_id"].unique())
    lengths = history_lengths(train, users)
    cut = int(np.quantile(lengths, 0.5, method="lower"))
    return [
        Population(SHORT, users[lengths <= cut], None, f"at most {cut} training items (median)"),
        Population(LONG, users[lengths > cut], None, f"more than {cut} training items"),
    ]


def item_segments(
    test: pd.DataFrame, train: pd.DataFrame, catalogue: np.ndarray
) -> list[Population]:
    """Head and tail items, each scored over the users holding such held-out items."""
    popularity = item_popularity(train, catalogue)
    cumulative = np.cumsum(popularity.to_numpy())
    in_head = int(np.searchsorted(cumulative, HEAD_SHARE * cumulative[-1]) + 1)
    ranked = popularity.index.to_numpy()
    floor = int(popularity.iloc[in_head - 1])
    share = in_head / len(catalogue)
    found = []
    for name, items, definition in (
        (
            HEAD,
            np.sort(ranked[:in_head]),
            f"the {in_head} most popular items ({share:.1%} of the catalogue, {floor}+ "
            f"training interactions each), holding {HEAD_SHARE:.0%} of training interactions",
        ),
        (
            TAIL,
            np.sort(ranked[in_head:]),
            f"the other {len(ranked) - in_head} items ({1 - share:.1%} of the catalogue)",
        ),
    ):
        holders = np.sort(test.loc[test["item_id"].isin(items), "user_id"].unique())
        found.append(Population(name, holders, items, definition))
    return found
