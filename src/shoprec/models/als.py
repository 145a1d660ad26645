# Generated from notebooks/lib/als.ipynb: edit the notebook, not this file.

"""Implicit-feedback matrix factorisation by alternating least squares, via `implicit`."""

import warnings

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from shoprec.models.base import Recommender
from shoprec.models.topk import (
    empty_heaps,
    empty_lists,
    in_parallel,
    offer_rows,
    tie_places,
    write_lists,
)
from shoprec.params import (
    check_non_negative_int,
    check_positive_int,
    check_positive_number,
)


def _cpu_als(**params: object) -> object:
    """`implicit`'s CPU ALS model, imported on first fit: loading and scoring never need it."""
    with warnings.catch_warnings():
        # tqdm, imported by implicit, warns in notebooks without ipywidgets; fit shows no bar.
        warnings.filterwarnings("ignore", message="IProgress not found")
        from implicit.cpu.als import AlternatingLeastSquares
    return AlternatingLeastSquares(**params)


def _als_factors(
    matrix: sp.csr_matrix,
    *,
    factors: int,
    regularization: float,
    alpha: float,
    iterations: int,
    seed: int,
    num_threads: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The user and item vectors `implicit`'s CPU ALS fits to a user x item `matrix`."""
    # One BLAS thread: implicit parallelises over users itself and warns otherwise.
    with threadpool_limits(1, "blas"):
        als = _cpu_als(
            factors=factors,
            regularization=float(regularization),
            alpha=float(alpha),
            iterations=iterations,
            num_threads=num_threads,
            random_state=int(seed),
            dtype=np.float64,  # BLAS noise then stays far below the ranking's rounding
        )
        als.fit(matrix.astype(np.float64), show_progress=False)
    return np.ascontiguousarray(als.user_factors), np.ascontiguousarray(als.item_factors)


class ALSRecommender(Recommender):
    """Learns a vector per user and per item; a user's score for an item is their dot product.

    Hu, Koren & Volinsky (2008): every user x item cell is a 0/1 preference with confidence
    1 + `alpha` x weight, so unseen items count as weak negatives and strong events (purchases)
    pull hardest. `factors` is the vector length, `iterations` the number of ALS sweeps.
    `regularization` is the L2 penalty on the vectors; `implicit` does not scale it with the
    data, so useful values are far above 0.1 (its default is 0.01): on MovieLens-100k the best
    lie in the 1-100 range. Fitting runs on the CPU (`implicit.cpu`, never the GPU) with
    `num_threads` threads (0: all cores); each thread solves different users, so the result
    depends only on `seed`, not on the thread count.
    """

    algorithm = "als"
    fitted_arrays = ("user_factors_", "item_factors_")

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 10.0,
        alpha: float = 1.0,
        iterations: int = 15,
        seed: int = 42,
        num_threads: int = 0,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.seed = seed
        self.num_threads = num_threads

    def _fit(self, matrix: sp.csr_matrix) -> None:
        check_positive_int("factors", self.factors)
        check_positive_number("regularization", self.regularization)
        check_positive_number("alpha", self.alpha)
        check_positive_int("iterations", self.iterations)
        check_non_negative_int("seed", self.seed)
        check_non_negative_int("num_threads", self.num_threads)
        # get_params(): the six parameters of __init__, which are _als_factors' keywords.
        self.user_factors_, self.item_factors_ = _als_factors(matrix, **self.get_params())

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        return self.user_factors_[user_rows] @ self.item_factors_.T

    def _ranked(
        self, rows: np.ndarray, k: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        return rank_by_factors(self, rows, k, exclude_seen)  # `_score`, a block at a time

    def _similarity(self, item_rows: np.ndarray) -> np.ndarray:
        # The cosine of the item vectors.
        norms = np.linalg.norm(self.item_factors_, axis=1)
        unit = self.item_factors_ / np.where(norms > 0, norms, 1.0)[:, None]
        return unit[item_rows] @ unit.T


USERS_PER_BLOCK = 256
ITEMS_PER_BLOCK = 2_048
"""A block of scores, 256 x 2,048 float64 (4 MB), stays in cache between BLAS and the heaps."""


def rank_by_factors(
    model: ALSRecommender, rows: np.ndarray, k: int, exclude_seen: bool
) -> tuple[np.ndarray, np.ndarray]:
    """`rank_scores` for ALS: each user's k best columns and rounded scores (-inf: an empty
    place). The products of `_score` are computed a block of users x a block of items at a
    time, each block offered to the users' heaps while in cache; blocks of users on every core.
    """
    columns, scores = empty_lists(len(rows), k)
    order = model.popular_items_
    place = tie_places(order)
    seen = (model.seen_indptr_, model.seen_indices_, model.seen_weights_)
    items = model.item_factors_

    def rank(batch: slice) -> None:
        users, heaps = model.user_factors_[rows[batch]], empty_heaps(batch.stop - batch.start, k)
        for first in range(0, len(items), ITEMS_PER_BLOCK):
            block = users @ items[first : first + ITEMS_PER_BLOCK].T
            offer_rows(block, first, rows[batch], *seen, exclude_seen, place, *heaps)
        write_lists(*heaps, order, columns[batch], scores[batch])

    in_parallel(len(rows), USERS_PER_BLOCK, rank)
    return columns, scores
