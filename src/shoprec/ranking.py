# Generated from notebooks/lib/ranking.ipynb: edit the notebook, not this file.

"""The total order every ranking in shoprec follows: rounded score first, then a fixed tie-break.

Scores are compared after rounding their mantissa to `SCORE_BITS` bits, so scores that
differ only in their last bits (the same sum computed by another BLAS kernel or SIMD path) rank
alike on every machine; equal rounded scores keep a fixed tie order given by the caller.
"""

import numpy as np

SCORE_BITS = 32
"""Mantissa bits a score keeps when ranked (relative precision 2^-33, about 10 decimal digits)."""


def round_scores(scores: np.ndarray, bits: int = SCORE_BITS) -> np.ndarray:
    """`scores` as float64 with the mantissa rounded to `bits` bits (infinities, NaN unchanged).

    Integer operations on the IEEE-754 bit pattern: exact, and the same on every CPU.
    """
    scores = np.array(scores, dtype=np.float64)
    dropped = 52 - bits
    pattern = scores.view(np.int64)
    rounded = ((pattern + (1 << (dropped - 1))) & ~((1 << dropped) - 1)).view(np.float64)
    return np.where(np.isfinite(scores), rounded, scores)


def top_k(
    scores: np.ndarray, k: int, tie_order: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The column indices of each row's `k` best scores, best first, and which are finite.

    Order: rounded score descending; among equal rounded scores, the column that comes first
    in `tie_order` (a permutation of the columns; default: column index). The result equals a
    full stable sort on every machine. Returns `(columns, valid)`, both of shape
    (rows, min(k, columns)); NaN scores rank as -inf.
    """
    scores = np.atleast_2d(round_scores(scores))
    n_rows, n_cols = scores.shape
    k = min(int(k), n_cols)
    if k <= 0 or n_rows == 0:
        return np.empty((n_rows, 0), dtype=np.int64), np.empty((n_rows, 0), dtype=bool)
    np.copyto(scores, -np.inf, where=np.isnan(scores))
    order = np.arange(n_cols) if tie_order is None else np.asarray(tie_order)
    place = np.empty(n_cols, dtype=np.int64)
    place[order] = np.arange(n_cols)  # each column's place in the tie order
    if k < n_cols:
        kth = np.partition(scores, n_cols - k, axis=1)[:, n_cols - k, None]  # k-th best value
        chosen = scores > kth
        equal = scores == kth
        places_left = k - chosen.sum(axis=1, keepdims=True)
        crowded = (equal.sum(axis=1, keepdims=True) > places_left).ravel()
        if crowded.any():  # more equal scores than places: the first in tie order get them
            in_order = equal[crowded][:, order]
            in_order &= np.cumsum(in_order, axis=1, dtype=np.int32) <= places_left[crowded]
            equal[crowded] = in_order[:, place]
        chosen |= equal
        columns = np.nonzero(chosen)[1].reshape(n_rows, k)
    else:
        columns = np.broadcast_to(np.arange(n_cols), (n_rows, n_cols))
    best = np.take_along_axis(scores, columns, axis=1)
    best_first = np.lexsort((place[columns], -best), axis=1)
    columns = np.take_along_axis(columns, best_first, axis=1)
    return columns, np.isfinite(np.take_along_axis(best, best_first, axis=1))
