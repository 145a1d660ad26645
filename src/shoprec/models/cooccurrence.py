# Generated from notebooks/lib/cooccurrence.ipynb: edit the notebook, not this file.

"""Item-to-item co-occurrence: recommend what users who share your items also interacted with."""

from typing import Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shoprec.models.base import Recommender
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


def pruned_item_similarity(
    binary: sp.csr_matrix,
    similarity: str,
    n_neighbours: int,
    *,
    min_cooccurrence: int = 1,
    max_block_pairs: int = 20_000_000,
) -> sp.csr_matrix:
    """`keep_top_neighbours(item_similarity(binary, similarity), n_neighbours)`, blockwise.

    Pairs seen together by fewer than `min_cooccurrence` users are dropped first. Items are
    taken in blocks whose co-occurrence rows hold at most about `max_block_pairs` pairs (one
    item's row can exceed it), so `XᵀX` is never held whole.
    """
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")
    n_items = binary.shape[1]
    occurrences = np.asarray(binary.sum(axis=0)).ravel().astype(np.float64)
    by_item = binary.T.tocsr()
    # An upper bound on each item's pairs: the items of all its users, summed.
    bound = by_item @ np.asarray(binary.sum(axis=1)).ravel()
    cumulative = np.cumsum(bound)
    rows, cols, values = [], [], []
    start = 0
    while start < n_items:
        base = cumulative[start - 1] if start else 0.0
        end = max(start + 1, int(np.searchsorted(cumulative, base + max_block_pairs, "right")))
        counts = (by_item[start:end] @ binary).tocoo()
        keep = (counts.col != counts.row + start) & (counts.data >= min_cooccurrence)
        row, col, count = counts.row[keep], counts.col[keep], counts.data[keep]
        left, right = occurrences[row + start], occurrences[col]
        if similarity == "cooccurrence":
            value = count
        elif similarity == "jaccard":
            value = count / (left + right - count)
        elif similarity == "cosine":
            value = count / np.sqrt(left * right)
        else:
            value = count / (left * right)
        block = sp.csr_matrix((value, (row, col)), shape=(end - start, n_items))
        pruned = keep_top_neighbours(block, n_neighbours).tocoo()
        rows.append(pruned.row + start)
        cols.append(pruned.col)
        values.append(pruned.data)
        start = end
    return sp.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_items, n_items),
    )


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


class CooccurrenceRecommender(Recommender):
    """Scores an item by its similarity to the items a user interacted with, weighted by strength.

    `similarity` normalises raw co-occurrence counts; `n_neighbours` keeps each item's most
    similar items only; `min_cooccurrence` drops pairs seen together by fewer users.
    `time_decay_days` (SAR's time decay) halves an interaction's weight for every that many days
    it is older than the latest interaction in training, so recent behaviour counts more; it
    needs a `timestamp` column. Decay changes the user's affinities (and the popularity
    fallback), not the item similarities, which count users regardless of when.
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
        binary = (matrix > 0).astype(np.float64).tocsr()
        similarity = pruned_item_similarity(
            binary, self.similarity, self.n_neighbours, min_cooccurrence=self.min_cooccurrence
        )
        self.similarity_indptr_ = similarity.indptr
        self.similarity_indices_ = similarity.indices
        self.similarity_data_ = similarity.data

    def _similarity_matrix(self) -> sp.csr_matrix:
        n_items = len(self.item_ids_)
        return sp.csr_matrix(
            (self.similarity_data_, self.similarity_indices_, self.similarity_indptr_),
            shape=(n_items, n_items),
        )

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        strength = self._interaction_matrix()[user_rows]
        return (strength @ self._similarity_matrix()).toarray()

    def _similarity(self, item_rows: np.ndarray) -> np.ndarray:
        # Each item's kept neighbours; items that are not its neighbours are not similar (-inf).
        neighbours = self._similarity_matrix()[item_rows].tocoo()
        dense = np.full(neighbours.shape, -np.inf)
        dense[neighbours.row, neighbours.col] = neighbours.data
        return dense
