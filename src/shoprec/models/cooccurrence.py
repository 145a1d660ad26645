# Generated from notebooks/lib/cooccurrence.ipynb: edit the notebook, not this file.

"""Item-to-item co-occurrence: recommend what users who share your items also interacted with."""

from typing import Self

import numba
import numpy as np
import pandas as pd
import scipy.sparse as sp

from shoprec.models.base import Recommender
from shoprec.models.topk import (
    empty_lists,
    entry_floor,
    in_parallel,
    offer,
    ranks_after,
    rounded_score,
    tie_places,
    write_best_first,
)
from shoprec.params import check_positive_int, check_positive_number

SIMILARITIES = ("cooccurrence", "jaccard", "cosine", "lift")
SECONDS_PER_DAY = 86_400.0


def item_similarity(binary: sp.csr_matrix, similarity: str) -> sp.csr_matrix:
    """Item x item similarity from a binary user x item matrix, with a zero diagonal."""
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")
    counts = (binary.T @ binary).tocsr().astype(np.float64)
    counts.setdiag(0.0)
    counts.eliminate_zeros()
    if similarity == "cooccurrence":
        return counts
    occurrences = np.asarray(binary.sum(axis=0)).ravel().astype(np.float64)
    coo = counts.tocoo()
    left, right = occurrences[coo.row], occurrences[coo.col]
    if similarity == "jaccard":
        values = coo.data / (left + right - coo.data)
    elif similarity == "cosine":
        values = coo.data / np.sqrt(left * right)
    else:
        values = coo.data / (left * right)
    return sp.csr_matrix((values, (coo.row, coo.col)), shape=counts.shape)


def keep_top_neighbours(similarity: sp.csr_matrix, n_neighbours: int) -> sp.csr_matrix:
    """Keep only each item's `n_neighbours` most similar items (ties: lower index first)."""
    rows, cols, values = [], [], []
    for item in range(similarity.shape[0]):
        start, end = similarity.indptr[item], similarity.indptr[item + 1]
        neighbours, scores = similarity.indices[start:end], similarity.data[start:end]
        keep = np.lexsort((neighbours, -scores))[:n_neighbours]
        rows.append(np.full(len(keep), item))
        cols.append(neighbours[keep])
        values.append(scores[keep])
    return sp.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
        shape=similarity.shape,
    )


@numba.njit(inline="always")
def _neighbour_after(value: float, item: int, other_value: float, other_item: int) -> bool:
    """Whether `item` comes after `other_item` as a neighbour: less similar, or tied and larger."""
    return value < other_value or (value == other_value and item > other_item)


@numba.njit(inline="always")
def _keep_neighbour(values: np.ndarray, items: np.ndarray, size: int, value: float, item: int):
    """Offer a neighbour to a heap of the best `len(values)`, the worst at the root; new size."""
    if size == len(values):
        if not _neighbour_after(values[0], items[0], value, item):
            return size
        at = 0
        while 2 * at + 1 < size:
            child = 2 * at + 1
            if child + 1 < size and _neighbour_after(
                values[child + 1], items[child + 1], values[child], items[child]
            ):
                child += 1
            if not _neighbour_after(values[child], items[child], value, item):
                break
            values[at], items[at] = values[child], items[child]
            at = child
    else:
        at, size = size, size + 1
        while at > 0 and _neighbour_after(value, item, values[(at - 1) // 2], items[(at - 1) // 2]):
            values[at], items[at] = values[(at - 1) // 2], items[(at - 1) // 2]
            at = (at - 1) // 2
    values[at], items[at] = value, item
    return size


@numba.njit(nogil=True, cache=True)
def _similarity_rows(
    first: int,
    users_indptr: np.ndarray,
    users: np.ndarray,
    items_indptr: np.ndarray,
    items: np.ndarray,
    occurrences: np.ndarray,
    measure: int,
    min_cooccurrence: int,
    neighbours_out: np.ndarray,
    values_out: np.ndarray,
    counts_out: np.ndarray,
) -> None:
    """Rows `first`, `first + 1`, ... of the pruned similarity, one per row of `counts_out`.

    For each item: how many users share it with every other item (`users` of each item and
    `items` of each user, as CSR), normalised by `SIMILARITIES[measure]` with the float64
    operations of `item_similarity`, and the best `neighbours_out.shape[1]` in column order.
    """
    n_best = neighbours_out.shape[1]
    shared = np.zeros(len(occurrences), dtype=np.int64)
    counted = np.empty(len(occurrences) + 1, dtype=np.int64)
    values, neighbours = np.empty(n_best), np.empty(n_best, dtype=np.int64)
    for row in range(len(counts_out)):
        item = first + row
        n_counted = 0
        for user in users[users_indptr[item] : users_indptr[item + 1]]:
            for other in items[items_indptr[user] : items_indptr[user + 1]]:
                counted[n_counted] = other  # kept only if new: no branch to mispredict
                n_counted += shared[other] == 0
                shared[other] += 1
        size = 0
        for other in counted[:n_counted]:
            count, shared[other] = np.float64(shared[other]), 0
            if other == item or count < min_cooccurrence:
                continue
            left, right = occurrences[item], occurrences[other]
            if measure == 0:
                value = count
            elif measure == 1:
                value = count / (left + right - count)
            elif measure == 2:
                value = count / np.sqrt(left * right)
            else:
                value = count / (left * right)
            size = _keep_neighbour(values, neighbours, size, value, other)
        by_column = np.argsort(neighbours[:size])
        neighbours_out[row, :size] = neighbours[:size][by_column]
        values_out[row, :size] = values[:size][by_column]
        counts_out[row] = size


def pruned_similarity_rows(
    by_user: sp.csr_matrix,
    by_item: sp.csr_matrix,
    rows: slice,
    similarity: str,
    n_neighbours: int,
    min_cooccurrence: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows `rows` of the pruned item similarity: how many neighbours each item keeps, then
    the kept neighbours and their values, item after item, each item's in column order.

    `by_user` is the binary users x items matrix (CSR), `by_item` its transpose (CSR).
    """
    n_items, n_rows = by_user.shape[1], rows.stop - rows.start
    width = max(1, min(n_neighbours, n_items - 1))
    neighbours = np.empty((n_rows, width), dtype=np.int32)
    values, counts = np.empty((n_rows, width)), np.empty(n_rows, dtype=np.int64)
    occurrences = np.diff(by_item.indptr).astype(np.float64)  # users per item
    _similarity_rows(rows.start, by_item.indptr, by_item.indices, by_user.indptr,
                     by_user.indices, occurrences, SIMILARITIES.index(similarity),
                     min_cooccurrence, neighbours, values, counts)  # fmt: skip
    kept = np.arange(width) < counts[:, None]
    return counts, neighbours[kept], values[kept]


def pruned_item_similarity(
    binary: sp.csr_matrix,
    similarity: str,
    n_neighbours: int,
    *,
    min_cooccurrence: int = 1,
) -> sp.csr_matrix:
    """`keep_top_neighbours(item_similarity(binary, similarity), n_neighbours)`, without `XᵀX`.

    Pairs seen together by fewer than `min_cooccurrence` users are dropped first. Each item's row
    is counted, normalised and pruned at once (`pruned_similarity_rows`), blocks of items on
    every core, so memory stays at `n_neighbours` per item whatever the number of pairs.
    """
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")
    by_user = sp.csr_matrix(binary > 0)
    by_item = by_user.T.tocsr()
    n_items = by_user.shape[1]
    parts: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def prune(rows: slice) -> None:
        parts[rows.start] = pruned_similarity_rows(
            by_user, by_item, rows, similarity, n_neighbours, min_cooccurrence
        )

    in_parallel(n_items, block_rows(n_neighbours), prune)
    return similarity_matrix([parts[first] for first in sorted(parts)], n_items)


def block_rows(n_neighbours: int) -> int:
    """How many items a block prunes at once: about 4 million kept values, 16 to 2,048 items."""
    return max(16, min(2_048, 4_000_000 // max(1, n_neighbours)))


def similarity_matrix(
    blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]], n_items: int
) -> sp.csr_matrix:
    """The items x items similarity (CSR) from `pruned_similarity_rows` of consecutive blocks of
    rows that cover every item, in item order."""
    counts, neighbours, values = (np.concatenate(part) for part in zip(*blocks, strict=True))
    indptr = np.concatenate([[0], np.cumsum(counts)])
    return sp.csr_matrix((values, neighbours, indptr), shape=(n_items, n_items))


def time_decayed(interactions: pd.DataFrame, half_life_days: float) -> pd.DataFrame:
    """The interactions with each weight multiplied by 2^-(t_ref - t) / half_life (SAR's decay).

    `t_ref` is the latest timestamp in `interactions`; timestamps are datetimes or Unix seconds.
    A missing `weight` column counts as weight 1. Weights stay positive: an interaction decayed
    below the smallest float is kept at that float, so it still counts as seen.
    """
    check_positive_number(
        "time_decay_days", half_life_days, "a number of days > 0, or None to turn time decay off"
    )
    if "timestamp" not in interactions.columns:
        raise ValueError(
            f"time_decay_days={half_life_days} needs a 'timestamp' column in interactions, got "
            f"columns {list(interactions.columns)}; pass time_decay_days=None to turn decay off"
        )
    timestamp = interactions["timestamp"]
    if pd.api.types.is_datetime64_any_dtype(timestamp):
        age_days = (timestamp.max() - timestamp).dt.total_seconds().to_numpy() / SECONDS_PER_DAY
    elif pd.api.types.is_numeric_dtype(timestamp) and not pd.api.types.is_bool_dtype(timestamp):
        seconds = timestamp.to_numpy(dtype=np.float64)
        age_days = (seconds.max() - seconds) / SECONDS_PER_DAY
    else:
        raise ValueError(
            f"interactions: column 'timestamp' has dtype {timestamp.dtype}; "
            "expected datetimes or Unix seconds"
        )
    weight = (
        interactions["weight"].to_numpy(dtype=np.float64)
        if "weight" in interactions
        else np.ones(len(interactions))
    )
    decay = np.maximum(np.exp2(-age_days / half_life_days), np.finfo(np.float64).tiny)
    return interactions.assign(weight=weight * decay)


@numba.njit(nogil=True, cache=True)
def _rank_users(
    rows: np.ndarray,
    seen_indptr: np.ndarray,
    seen_indices: np.ndarray,
    seen_weights: np.ndarray,
    similarity_indptr: np.ndarray,
    similarity_indices: np.ndarray,
    similarity_data: np.ndarray,
    exclude_seen: bool,
    order: np.ndarray,
    place: np.ndarray,
    items_out: np.ndarray,
    scores_out: np.ndarray,
) -> None:
    """Each user's best items (`rows`: the users' rows of the seen items, CSR), best first.

    A user's score for an item is the sum of weight x similarity over the items they have, added
    in the order of `strength @ similarity`; only the items some of theirs are similar to get
    one, and the rest score 0, of which only the first in the tie `order` can place.
    """
    n_items, k = len(place), items_out.shape[1]
    score_of = np.zeros(n_items)
    scored_for = np.full(n_items, -1, dtype=np.int64)  # the row whose sum `score_of` holds
    scored = np.empty(n_items + 1, dtype=np.int64)
    scratch = np.empty(1)
    pattern = scratch.view(np.int64)
    heap_scores, heap_places = np.empty(k), np.empty(k, dtype=np.int64)
    for row, user in enumerate(rows):
        history = range(seen_indptr[user], seen_indptr[user + 1])
        if exclude_seen:  # a seen item's sum starts at -inf, and stays there
            for at in history:
                if seen_weights[at] != 0:
                    scored_for[seen_indices[at]], score_of[seen_indices[at]] = row, -np.inf
        n_scored = 0
        for at in history:
            item, weight = seen_indices[at], seen_weights[at]
            for neighbour_at in range(similarity_indptr[item], similarity_indptr[item + 1]):
                other = similarity_indices[neighbour_at]
                first_time = scored_for[other] != row  # no branch to mispredict
                scored[n_scored] = other
                n_scored += first_time
                scored_for[other] = row
                sum_so_far = 0.0 if first_time else score_of[other]
                score_of[other] = sum_so_far + weight * similarity_data[neighbour_at]
        size, floor = 0, -np.inf
        for item in scored[:n_scored]:
            score = score_of[item]
            if score != 0 and score >= floor and score > -np.inf:
                rounded = rounded_score(score, scratch, pattern)
                size = offer(heap_scores, heap_places, size, rounded, place[item])
                floor = entry_floor(heap_scores, size)
        for at in range(n_items):  # items scored 0, in tie order, while one can still place
            if size == k and not ranks_after(heap_scores[0], heap_places[0], 0.0, at):
                break
            item = order[at]
            if scored_for[item] != row or score_of[item] == 0:
                size = offer(heap_scores, heap_places, size, 0.0, at)
        write_best_first(heap_scores, heap_places, size, order, items_out[row], scores_out[row])


class CooccurrenceRecommender(Recommender):
    """Scores an item by its similarity to the items a user interacted with, weighted by strength.

    `similarity` normalises raw co-occurrence counts; `n_neighbours` keeps each item's most
    similar items; `min_cooccurrence` drops pairs fewer users share. `time_decay_days` (SAR's
    time decay) halves an interaction's weight for every that many days it is older than the
    latest in training (it needs a `timestamp` column), so recent behaviour counts more: it
    changes the users' affinities and the popularity fallback, not the item similarities.
    """

    algorithm = "cooccurrence"
    fitted_arrays = ("similarity_indptr_", "similarity_indices_", "similarity_data_")

    def __init__(
        self,
        similarity: str = "jaccard",
        n_neighbours: int = 100,
        min_cooccurrence: int = 1,
        time_decay_days: float | None = None,
    ) -> None:
        self.similarity = similarity
        self.n_neighbours = n_neighbours
        self.min_cooccurrence = min_cooccurrence
        self.time_decay_days = time_decay_days

    def fit(self, interactions: pd.DataFrame) -> Self:
        """Learn from interactions; with `time_decay_days`, decay their weights by age first."""
        if self.time_decay_days is not None:
            interactions = time_decayed(interactions, self.time_decay_days)
        return super().fit(interactions)

    def _fit(self, matrix: sp.csr_matrix) -> None:
        check_positive_int("n_neighbours", self.n_neighbours)
        check_positive_int("min_cooccurrence", self.min_cooccurrence)
        similarity = pruned_item_similarity(
            matrix > 0, self.similarity, self.n_neighbours, min_cooccurrence=self.min_cooccurrence
        )
        self.similarity_indptr_ = similarity.indptr
        self.similarity_indices_ = similarity.indices
        self.similarity_data_ = similarity.data

    def _similarity_matrix(self) -> sp.csr_matrix:
        arrays = (self.similarity_data_, self.similarity_indices_, self.similarity_indptr_)
        return sp.csr_matrix(arrays, shape=(len(self.item_ids_),) * 2)

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        strength = self._interaction_matrix()[user_rows]
        return (strength @ self._similarity_matrix()).toarray()

    def _ranked(
        self, rows: np.ndarray, k: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        return rank_by_cooccurrence(self, rows, k, exclude_seen)  # `_score`, never dense

    def _similarity(self, item_rows: np.ndarray) -> np.ndarray:
        # Each item's kept neighbours; items that are not its neighbours are not similar (-inf).
        neighbours = self._similarity_matrix()[item_rows].tocoo()
        dense = np.full(neighbours.shape, -np.inf)
        dense[neighbours.row, neighbours.col] = neighbours.data
        return dense


def rank_by_cooccurrence(
    model: CooccurrenceRecommender, rows: np.ndarray, k: int, exclude_seen: bool
) -> tuple[np.ndarray, np.ndarray]:
    """`rank_scores` for a co-occurrence model: each user's k best columns and rounded scores
    (-inf: an empty place), scored and ranked by `_rank_users`, blocks of users on every core."""
    columns, scores = empty_lists(len(rows), k)
    order = model.popular_items_
    place = tie_places(order)
    seen = (model.seen_indptr_, model.seen_indices_, model.seen_weights_)
    similar = (model.similarity_indptr_, model.similarity_indices_, model.similarity_data_)

    def rank(users: slice) -> None:
        _rank_users(rows[users], *seen, *similar, exclude_seen, order, place, columns[users],
                    scores[users])  # fmt: skip

    in_parallel(len(rows), model.batch_size, rank)
    return columns, scores
