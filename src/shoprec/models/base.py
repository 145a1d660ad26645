# Generated from notebooks/lib/recommender_base.ipynb: edit the notebook, not this file.

"""The shape every shoprec recommender shares: fit on interactions, recommend top-k per user."""

from typing import ClassVar, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator

RECOMMENDATION_COLUMNS = ["user_id", "item_id", "rank", "score", "fallback"]


class Recommender(BaseEstimator):
    """Base recommender: id maps, seen items and popularity fallback; subclasses score items.

    Subclasses implement `_fit(matrix)` and `_score(user_rows)` and list their fitted arrays
    in `fitted_arrays`, so models save to and load from plain NumPy arrays (no pickles).
    """

    algorithm: ClassVar[str] = ""
    fitted_arrays: ClassVar[tuple[str, ...]] = ()
    batch_size: ClassVar[int] = 1_024

    def fit(self, interactions: pd.DataFrame) -> Self:
        """Learn from interactions with columns user_id, item_id and (optionally) weight."""
        missing = {"user_id", "item_id"} - set(interactions.columns)
        if missing:
            raise ValueError(f"interactions: missing columns {sorted(missing)}")
        if interactions.empty:
            raise ValueError("interactions: no rows to fit on")
        self.user_ids_ = np.unique(interactions["user_id"].to_numpy(dtype=np.int64))
        self.item_ids_ = np.unique(interactions["item_id"].to_numpy(dtype=np.int64))
        rows = np.searchsorted(self.user_ids_, interactions["user_id"].to_numpy(dtype=np.int64))
        cols = np.searchsorted(self.item_ids_, interactions["item_id"].to_numpy(dtype=np.int64))
        weight = (
            interactions["weight"].to_numpy(dtype=np.float64)
            if "weight" in interactions
            else np.ones(len(interactions))
        )
        shape = (len(self.user_ids_), len(self.item_ids_))
        matrix = sp.csr_matrix((weight, (rows, cols)), shape=shape)
        matrix.sum_duplicates()
        self.seen_indptr_, self.seen_indices_, self.seen_weights_ = (
            matrix.indptr,
            matrix.indices,
            matrix.data,
        )
        popularity = np.asarray(matrix.sum(axis=0)).ravel()
        self.popular_items_ = np.lexsort((np.arange(len(popularity)), -popularity))
        self.popularity_ = popularity
        self._fit(matrix)
        return self

    def _fit(self, matrix: sp.csr_matrix) -> None:
        raise NotImplementedError

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _interaction_matrix(self) -> sp.csr_matrix:
        shape = (len(self.user_ids_), len(self.item_ids_))
        return sp.csr_matrix(
            (self.seen_weights_, self.seen_indices_, self.seen_indptr_), shape=shape
        )

    def _item_rows(self, item_ids: np.ndarray | list[int]) -> np.ndarray:
        item_ids = np.asarray(item_ids, dtype=np.int64)
        rows = np.searchsorted(self.item_ids_, item_ids).clip(0, len(self.item_ids_) - 1)
        unknown = item_ids[self.item_ids_[rows] != item_ids]
        if len(unknown):
            raise KeyError(f"unknown item ids {unknown[:10].tolist()}")
        return rows

    def recommend(
        self, user_ids: np.ndarray | list[int], k: int = 10, exclude_seen: bool = True
    ) -> pd.DataFrame:
        """Top-k items per user, best first; unknown users get popular items flagged `fallback`."""
        if k <= 0:
            raise ValueError(f"k must be a positive integer, got {k}")
        user_ids = np.asarray(user_ids, dtype=np.int64)
        rows = np.searchsorted(self.user_ids_, user_ids).clip(0, len(self.user_ids_) - 1)
        known = self.user_ids_[rows] == user_ids
        seen = self._interaction_matrix()
        frames = []
        for start in range(0, len(user_ids), self.batch_size):
            batch = slice(start, start + self.batch_size)
            frames.append(
                self._recommend_batch(
                    user_ids[batch], rows[batch], known[batch], seen, k, exclude_seen
                )
            )
        if not frames:
            return pd.DataFrame(
                {
                    c: pd.Series(dtype=t)
                    for c, t in zip(
                        RECOMMENDATION_COLUMNS,
                        ["int64", "int64", "int64", "float64", "bool"],
                        strict=True,
                    )
                }
            )
        return pd.concat(frames, ignore_index=True)

    def _recommend_batch(
        self,
        user_ids: np.ndarray,
        rows: np.ndarray,
        known: np.ndarray,
        seen: sp.csr_matrix,
        k: int,
        exclude_seen: bool,
    ) -> pd.DataFrame:
        n_items = len(self.item_ids_)
        popularity = self._popularity_score()
        scores = np.tile(popularity, (len(user_ids), 1))
        if known.any():
            scores[known] = self._score(rows[known])
        if exclude_seen and known.any():
            known_seen = seen[rows[known]].toarray() > 0
            block = scores[known]
            block[known_seen] = -np.inf
            scores[known] = block
        ranking = scores + 1e-9 * popularity  # equal scores: the more popular item first
        k_eff = min(k, n_items)
        top = np.argpartition(-ranking, k_eff - 1, axis=1)[:, :k_eff]
        order = np.lexsort((top, -np.take_along_axis(ranking, top, axis=1)), axis=1)
        top = np.take_along_axis(top, order, axis=1)
        top_scores = np.take_along_axis(scores, top, axis=1)
        valid = np.isfinite(top_scores)
        return pd.DataFrame(
            {
                "user_id": np.repeat(user_ids, k_eff)[valid.ravel()],
                "item_id": self.item_ids_[top[valid]],
                "rank": np.tile(np.arange(1, k_eff + 1), len(user_ids))[valid.ravel()],
                "score": top_scores[valid],
                "fallback": np.repeat(~known, k_eff)[valid.ravel()],
            }
        )

    def _popularity_score(self) -> np.ndarray:
        return self.popularity_ / max(self.popularity_.max(), 1e-12)

    def is_known_user(self, user_id: int) -> bool:
        """Whether the model saw this user at fit time."""
        row = np.searchsorted(self.user_ids_, user_id)
        return bool(row < len(self.user_ids_) and self.user_ids_[row] == user_id)

    @classmethod
    def array_names(cls) -> tuple[str, ...]:
        """Names of the fitted arrays that define a model of this class."""
        shared = (
            "user_ids_",
            "item_ids_",
            "seen_indptr_",
            "seen_indices_",
            "seen_weights_",
            "popularity_",
            "popular_items_",
        )
        return shared + cls.fitted_arrays

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Every fitted array, by name: what a saved model holds besides its parameters."""
        return {name: getattr(self, name) for name in self.array_names()}

    @classmethod
    def from_arrays(cls, params: dict, arrays: dict[str, np.ndarray]) -> Self:
        """Rebuild a fitted model from `get_params()` and `to_arrays()` output."""
        model = cls(**params)
        for name, value in arrays.items():
            setattr(model, name, value)
        return model
