# Generated from notebooks/lib/ease.ipynb: edit the notebook, not this file.

"""EASE: a closed-form linear item-to-item model (Steck 2019), strong on mid-size catalogues."""

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from shoprec.models.base import Recommender
from shoprec.params import ParameterError, check_positive_int, check_positive_number

DENSE_BYTES_PER_ITEM_PAIR = 16  # two dense float64 items x items matrices live at the peak of fit


def ease_weights(gram: np.ndarray, l2: float) -> np.ndarray:
    """EASE item weights B = I - P / diag(P), P = (G + l2 I)^-1, from a dense Gram matrix G = XᵀX.

    Column j of B holds the weights with which the other items predict item j; the diagonal is
    zero, so an item never predicts itself. Overwrites `gram` to keep the peak at two dense
    items x items matrices.
    """
    gram[np.diag_indices_from(gram)] += l2
    factor = scipy.linalg.cho_factor(gram, overwrite_a=True, check_finite=False)
    weights = scipy.linalg.cho_solve(
        factor, np.eye(len(gram)), overwrite_b=True, check_finite=False
    )
    weights /= -np.diag(weights).copy()
    np.fill_diagonal(weights, 0.0)
    return weights


def ease_memory_bytes(n_items: int) -> int:
    """About how many bytes fitting EASE on `n_items` items needs at its peak."""
    return DENSE_BYTES_PER_ITEM_PAIR * n_items**2


def _readable_bytes(size: int) -> str:
    return f"{size / 1e9:.1f} GB" if size >= 1e8 else f"{size / 1e6:.1f} MB"


class EASERecommender(Recommender):
    """Scores items with a dense item x item weight matrix learnt in closed form (no iterations).

    `l2` is the ridge penalty on the weights (larger: smoother, more popular items); `binary`
    fits and scores on 0/1 interactions (Steck's setting) instead of the event weights. Fitting
    costs O(n_items³) time and two dense n_items² float64 matrices, so catalogues with more than
    `max_items` items are refused before any dense matrix is allocated.
    """

    algorithm = "ease"
    fitted_arrays = ("item_weights_",)

    def __init__(self, l2: float = 250.0, binary: bool = True, max_items: int = 20_000) -> None:
        self.l2 = l2
        self.binary = binary
        self.max_items = max_items

    def _fit(self, matrix: sp.csr_matrix) -> None:
        check_positive_number("l2", self.l2)
        check_positive_int("max_items", self.max_items)
        if not isinstance(self.binary, bool | np.bool_):
            raise ParameterError(
                f"parameter binary={self.binary!r} is not allowed; expected True or False"
            )
        n_items = matrix.shape[1]
        if n_items > self.max_items:
            raise ValueError(
                f"EASE refuses to fit {n_items:,} items: over max_items={self.max_items:,}. "
                f"It needs dense items x items matrices, about "
                f"{_readable_bytes(ease_memory_bytes(n_items))} for {n_items:,} items; raise "
                "max_items if the machine has the memory, or use 'als' or 'cooccurrence'"
            )
        design = self._design_matrix(matrix)
        gram = (design.T @ design).toarray()
        self.item_weights_ = ease_weights(gram, float(self.l2))

    def _design_matrix(self, matrix: sp.csr_matrix) -> sp.csr_matrix:
        return (matrix > 0).astype(np.float64) if self.binary else matrix

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        design = self._design_matrix(self._interaction_matrix()[user_rows])
        return np.asarray(design @ self.item_weights_)

    def _similarity(self, item_rows: np.ndarray) -> np.ndarray:
        # The items an item predicts: only a positive weight counts as similar.
        weights = self.item_weights_[item_rows]
        return np.where(weights > 0, weights, -np.inf)
