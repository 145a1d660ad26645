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


BOUND_SLACK = 2.0**-30
"""Relative margin below a bound that holds every score rounding to the bound's value (2^-33)."""
SUBNORMAL_SLACK = 2.0**-1050
"""The same margin for subnormal scores (below 2^-1022): they round in absolute steps, 2^-1054."""
CANDIDATES_PER_PLACE = 8
"""A row ranks only its candidates when it has at most this many per place; else it is whole."""


def score_bound(scores: np.ndarray, k: int) -> np.ndarray:
    """Per row, a score that at least `k` of its columns reach (NaN ignored; -inf if none):
    the k-th best of the maxima of column blocks."""
    n_cols = scores.shape[1]
    width = max(1, min(64, n_cols // (8 * k)))
    block_max = np.fmax.reduceat(scores, np.arange(0, n_cols, width), axis=1)
    np.copyto(block_max, -np.inf, where=np.isnan(block_max))
    n_blocks = block_max.shape[1]
    return np.partition(block_max, n_blocks - k, axis=1)[:, n_blocks - k]


def _whole_rows(scores: np.ndarray, k: int, order: np.ndarray, place: np.ndarray) -> np.ndarray:
    """Each row's k best columns, unsorted, choosing among the whole row."""
    scores = round_scores(scores)
    np.copyto(scores, -np.inf, where=np.isnan(scores))
    n_rows, n_cols = scores.shape
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
    return np.nonzero(chosen)[1].reshape(n_rows, k)


def _best_first(scores: np.ndarray, columns: np.ndarray, k: int, place: np.ndarray) -> np.ndarray:
    """The k best of each row's candidate `columns` (-1: no candidate), in the total order."""
    present = np.maximum(columns, 0)
    keys = round_scores(np.take_along_axis(scores, present, axis=1))
    np.copyto(keys, -np.inf, where=np.isnan(keys) | (columns < 0))
    ties = np.where(columns < 0, len(place), place[present])
    order = np.lexsort((ties, -keys), axis=1)[:, :k]
    return np.take_along_axis(columns, order, axis=1)


def _candidates(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows that rank only their candidates, and those candidates' columns (padded with -1)."""
    bound = score_bound(scores, k)
    finite = np.isfinite(bound)
    threshold = np.full(len(bound), np.inf)
    threshold[finite] = bound[finite] - np.abs(bound[finite]) * BOUND_SLACK - SUBNORMAL_SLACK
    candidate = scores >= threshold[:, None]
    counts = candidate.sum(axis=1)
    few = finite & (counts <= CANDIDATES_PER_PLACE * k)
    rows, columns = np.nonzero(candidate[few])
    counts = counts[few]
    slot = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    padded = np.full((int(few.sum()), int(counts.max(initial=0))), -1, dtype=np.int64)
    padded[rows, slot] = columns
    return few, padded


def top_k(
    scores: np.ndarray, k: int, tie_order: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The column indices of each row's `k` best scores, best first, and which are finite.

    Order: rounded score descending; among equal rounded scores, the column that comes first
    in `tie_order` (a permutation of the columns; default: column index). The result equals a
    full stable sort on every machine. Returns `(columns, valid)`, both of shape
    (rows, min(k, columns)); NaN scores rank as -inf.
    """
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    n_rows, n_cols = scores.shape
    k = min(int(k), n_cols)
    if k <= 0 or n_rows == 0:
        return np.empty((n_rows, 0), dtype=np.int64), np.empty((n_rows, 0), dtype=bool)
    order = np.arange(n_cols) if tie_order is None else np.asarray(tie_order)
    place = np.empty(n_cols, dtype=np.int64)
    place[order] = np.arange(n_cols)  # each column's place in the tie order
    columns = np.empty((n_rows, k), dtype=np.int64)
    whole = np.ones(n_rows, dtype=bool)
    if k < n_cols:
        few, candidates = _candidates(scores, k)
        if few.any():
            columns[few] = _best_first(scores[few], candidates, k, place)
        whole = ~few
    if whole.any():
        chosen = (
            _whole_rows(scores[whole], k, order, place)
            if k < n_cols
            else np.tile(np.arange(n_cols), (int(whole.sum()), 1))
        )
        columns[whole] = _best_first(scores[whole], chosen, k, place)
    best = round_scores(np.take_along_axis(scores, columns, axis=1))
    return columns, np.isfinite(best)
