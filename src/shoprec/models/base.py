# Generated from notebooks/lib/recommender_base.ipynb: edit the notebook, not this file.

"""The contract every shoprec recommender keeps: fit, recommend, similar items, plain arrays.

Every list follows `shoprec.ranking`'s total order: the score rounded to `SCORE_BITS` bits,
descending, then the item more popular in the training data, then the smaller item id.
"""

from typing import ClassVar, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator

from shoprec.errors import NotFittedError
from shoprec.models.topk import empty_lists, in_parallel, rank_dense, tie_places
from shoprec.params import check_k
from shoprec.ranking import round_scores, top_k

RECOMMENDATION_COLUMNS = {
    "user_id": "int64",
    "item_id": "int64",
    "rank": "int64",
    "score": "float64",
    "fallback": "bool",
}
SHARED_ARRAYS = (
    "user_ids_",
    "item_ids_",
    "seen_indptr_",
    "seen_indices_",
    "seen_weights_",
    "popularity_",
    "popular_items_",
)


def interaction_matrix(
    interactions: pd.DataFrame,
) -> tuple[np.ndarray, np.ndarray, sp.csr_matrix]:
    """The sorted user ids, the sorted item ids, and the users x items matrix of summed weights."""
    missing = {"user_id", "item_id"} - set(interactions.columns)
    if missing:
        raise ValueError(f"interactions: missing columns {sorted(missing)}")
    if interactions.empty:
        raise ValueError("interactions: no rows to fit on")
    users = interactions["user_id"].to_numpy(dtype=np.int64)
    items = interactions["item_id"].to_numpy(dtype=np.int64)
    user_ids, rows = np.unique(users, return_inverse=True)
    item_ids, cols = np.unique(items, return_inverse=True)
    weight = (
        interactions["weight"].to_numpy(dtype=np.float64)
        if "weight" in interactions
        else np.ones(len(interactions))
    )
    matrix = sp.csr_matrix((weight, (rows, cols)), shape=(len(user_ids), len(item_ids)))
    matrix.sum_duplicates()
    return user_ids, item_ids, matrix


def popularity_order(popularity: np.ndarray) -> np.ndarray:
    """Item indices by popularity, most popular first; equal popularity: smaller index first."""
    return np.lexsort((np.arange(len(popularity)), -round_scores(popularity)))


def recommendation_frame(
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    scores: np.ndarray,
    valid: np.ndarray,
    fallback: np.ndarray,
) -> pd.DataFrame:
    """Lists as rows (user, item, rank, score, fallback), keeping only the `valid` places.

    `item_ids`, `scores` and `valid` have one row per user and one column per place.
    """
    k = item_ids.shape[1]
    keep = valid.ravel()
    return pd.DataFrame(
        {
            "user_id": np.repeat(user_ids, k)[keep],
            "item_id": item_ids.ravel()[keep],
            "rank": np.tile(np.arange(1, k + 1), len(user_ids))[keep],
            "score": scores.ravel()[keep],
            "fallback": np.repeat(fallback, k)[keep],
        }
    ).astype(RECOMMENDATION_COLUMNS)


class FittedArrays:
    """A model's fitted state as named arrays: saving, loading, lookups and the fitted check."""

    fitted_arrays: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def array_names(cls) -> tuple[str, ...]:
        """Names of the fitted arrays that define a model of this class."""
        return SHARED_ARRAYS + cls.fitted_arrays

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Every fitted array, by name: what a saved model holds besides its parameters."""
        self.check_is_fitted()
        return {name: getattr(self, name) for name in self.array_names()}

    @classmethod
    def from_arrays(cls, params: dict, arrays: dict[str, np.ndarray]) -> Self:
        """Rebuild a fitted model from `get_params()` and `to_arrays()` output."""
        model = cls(**params)
        for name, value in arrays.items():
            setattr(model, name, value)
        model.check_is_fitted()
        return model

    def check_is_fitted(self) -> None:
        """Raise NotFittedError unless the model has every fitted array."""
        missing = [name for name in self.array_names() if not hasattr(self, name)]
        if missing:
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet (no {', '.join(missing)}): "
                "call fit(interactions) first, or load a saved model"
            )

    def is_known_user(self, user_id: int) -> bool:
        """Whether the model saw this user at fit time."""
        self.check_is_fitted()
        row = np.searchsorted(self.user_ids_, user_id)
        return bool(row < len(self.user_ids_) and self.user_ids_[row] == user_id)

    def _item_rows(self, item_ids: np.ndarray | list[int]) -> np.ndarray:
        item_ids = np.asarray(item_ids, dtype=np.int64)
        rows = np.searchsorted(self.item_ids_, item_ids).clip(0, len(self.item_ids_) - 1)
        unknown = item_ids[self.item_ids_[rows] != item_ids]
        if len(unknown):
            raise KeyError(f"unknown item ids {unknown[:10].tolist()}")
        return rows

    def _interaction_matrix(self) -> sp.csr_matrix:
        shape = (len(self.user_ids_), len(self.item_ids_))
        return sp.csr_matrix((self.seen_weights_, self.seen_indices_, self.seen_indptr_), shape)

    def _popularity_score(self) -> np.ndarray:
        return self.popularity_ / max(self.popularity_.max(), 1e-12)


class Recommender(FittedArrays, BaseEstimator):
    """Base of every model; subclasses implement `_fit`, `_score` and `_similarity`."""

    algorithm: ClassVar[str] = ""
    batch_size: ClassVar[int] = 1_024

    def _fit(self, matrix: sp.csr_matrix) -> None:
        raise NotImplementedError  # learn from the users x items matrix

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError  # (len(user_rows), n_items) scores, a new array

    def _similarity(self, item_rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError  # (len(item_rows), n_items); -inf: not similar

    def fit(self, interactions: pd.DataFrame) -> Self:
        """Learn from interactions with columns user_id, item_id and (optionally) weight."""
        self.user_ids_, self.item_ids_, matrix = interaction_matrix(interactions)
        self.seen_indptr_, self.seen_indices_ = matrix.indptr, matrix.indices
        self.seen_weights_ = matrix.data
        self.popularity_ = np.asarray(matrix.sum(axis=0)).ravel()
        self.popular_items_ = popularity_order(self.popularity_)
        self._fit(matrix)
        return self

    def recommend(
        self, user_ids: np.ndarray | list[int], k: int = 10, exclude_seen: bool = True
    ) -> pd.DataFrame:
        """Top-k items per user, best first; unknown users get popular items flagged `fallback`."""
        user_ids = np.asarray(user_ids, dtype=np.int64)
        columns, scores, known = self.ranked_lists(user_ids, k, exclude_seen)
        lists = self.item_ids_[columns]
        return recommendation_frame(user_ids, lists, scores, np.isfinite(scores), ~known)

    def ranked_lists(
        self, user_ids: np.ndarray | list[int], k: int = 10, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`recommend`'s lists as arrays: item columns (ids: `item_ids_[columns]`), scores
        (-inf: an empty place), one row per user, and whether each user is known."""
        return ranked_lists(self, user_ids, k, exclude_seen)

    def _ranked(
        self, rows: np.ndarray, k: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k best columns and rounded scores (-inf: an empty place) of the users at `rows`;
        by default their `_score` rows, ranked."""
        return rank_scores(self, rows, k, exclude_seen)

    def similar_items(
        self, item_ids: np.ndarray | list[int], k: int = 10
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each item's k most similar other items, most similar first, and their scores.

        Returns `(ids, scores)`, both of shape (len(item_ids), k); a list shorter than k is
        padded with id -1 and score NaN. Unknown item ids raise KeyError naming them.
        """
        return rank_similar_items(self, item_ids, k)


def popularity_list(model: Recommender, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The list of every user the model never met: the k best popularity scores (as columns
    and rounded scores, -inf: an empty place)."""
    popularity = model._popularity_score()[None, :]
    columns, valid = top_k(popularity, k, model.popular_items_)
    best = round_scores(np.take_along_axis(popularity, columns, axis=1))
    return columns[0], np.where(valid, best, -np.inf)[0]


def ranked_lists(
    model: Recommender, user_ids: np.ndarray | list[int], k: int, exclude_seen: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`model.ranked_lists`: the known users ranked by `_ranked`, the others given the
    popularity list; what `recommend` turns into rows, for callers that need no frame."""
    model.check_is_fitted()
    check_k(k)
    user_ids = np.asarray(user_ids, dtype=np.int64)
    rows = np.searchsorted(model.user_ids_, user_ids).clip(0, len(model.user_ids_) - 1)
    known = model.user_ids_[rows] == user_ids
    places = min(k, len(model.item_ids_))
    columns, scores = empty_lists(len(user_ids), places)
    if known.any():
        columns[known], scores[known] = model._ranked(rows[known], places, exclude_seen)
    if not known.all():
        columns[~known], scores[~known] = popularity_list(model, places)
    return columns, scores, known


def rank_scores(
    model: Recommender, rows: np.ndarray, k: int, exclude_seen: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Each user's k best columns and rounded scores (-inf: an empty place), best first.

    `rows` are users the model knows; their `_score` rows are computed a batch of users at a
    time, batches on every core, and ranked by `topk.rank_dense` (seen items excluded when
    `exclude_seen`), the model's popularity order breaking ties.
    """
    columns, scores = empty_lists(len(rows), k)
    order = model.popular_items_
    place = tie_places(order)
    seen = (model.seen_indptr_, model.seen_indices_, model.seen_weights_)

    def rank(batch: slice) -> None:
        dense = np.ascontiguousarray(model._score(rows[batch]), dtype=np.float64)
        rank_dense(dense, rows[batch], *seen, exclude_seen, order, place, columns[batch],
                   scores[batch])  # fmt: skip

    in_parallel(len(rows), model.batch_size, rank)
    return columns, scores


def rank_similar_items(
    model: Recommender, item_ids: np.ndarray | list[int], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """`model.similar_items`: rank each item's `_similarity` row by the total order, pad to k."""
    model.check_is_fitted()
    rows = model._item_rows(item_ids)
    similarity = round_scores(np.array(model._similarity(rows), dtype=np.float64, ndmin=2))
    similarity[np.arange(len(rows)), rows] = -np.inf  # never the item itself
    columns, valid = top_k(similarity, k, model.popular_items_)
    best = np.take_along_axis(similarity, columns, axis=1)
    ids = np.full((len(rows), k), -1, dtype=np.int64)
    scores = np.full((len(rows), k), np.nan)
    ids[:, : columns.shape[1]] = np.where(valid, model.item_ids_[columns], -1)
    scores[:, : columns.shape[1]] = np.where(valid, best, np.nan)
    return ids, scores
