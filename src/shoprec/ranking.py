# Generated from notebooks/lib/ranking.ipynb: edit the notebook, not this file.

"""The total order every ranking in shoprec follows: rounded score first, then a fixed tie-break.

Scores are compared after rounding to `SCORE_BITS` significant binary digits, so scores that
differ only in their last bits (the same sum computed by another BLAS kernel or SIMD path) rank
alike on every machine; equal rounded scores keep a fixed tie order given by the caller.
"""

import numpy as np

SCORE_BITS = 32
"""Significant binary digits a score keeps when ranked (about 9.6 decimal digits)."""


def round_scores(scores: np.ndarray, bits: int = SCORE_BITS) -> np.ndarray:
    """`scores` as float64 rounded to `bits` significant binary digits (infinities unchanged)."""
    mantissa, exponent = np.frexp(np.asarray(scores, dtype=np.float64))
    scale = 2.0**bits
    return np.ldexp(np.round(mantissa * scale) / scale, exponent)


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
    scores = np.where(np.isnan(scores), -np.inf, scores)
    order = np.arange(n_cols) if tie_order is None else np.asarray(tie_order)
    ranked = scores[:, order]  # columns in tie order: among equals, the earlier wins
    if k < n_cols:
        kth = -np.partition(-ranked, k - 1, axis=1)[:, k - 1 : k]
        chosen = ranked > kth
        equal = ranked == kth
        places_left = k - chosen.sum(axis=1, keepdims=True)
        chosen |= equal & (np.cumsum(equal, axis=1, dtype=np.int32) <= places_left)
        columns = np.nonzero(chosen)[1].reshape(n_rows, k)
    else:
        columns = np.broadcast_to(np.arange(n_cols), (n_rows, n_cols))
    best_first = np.argsort(-np.take_along_axis(ranked, columns, axis=1), axis=1, kind="stable")
    columns = np.take_along_axis(columns, best_first, axis=1)
    valid = np.isfinite(np.take_along_axis(ranked, columns, axis=1))
    return order[columns], valid
