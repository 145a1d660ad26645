# Generated from notebooks/lib/ranking.ipynb: edit the notebook, not this file.

"""Top-k lists in `shoprec.ranking`'s total order, compiled for millions of users at a time.

Each row's scores are offered one by one to a heap of its k best, keyed by the rounded score and
the place in the tie order; a score below every one that could still enter costs one comparison.
The kernels are compiled by numba on first use and cached on disk. They release the GIL, so
threads rank different users at once; they round with `round_scores`' integer arithmetic and
never change the order of a sum, so the lists are `top_k`'s, on every CPU.
"""

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from shoprec import ranking

_DROPPED_BITS = 52 - ranking.SCORE_BITS
_HALF = np.int64(1 << (_DROPPED_BITS - 1))
_KEPT = np.int64(~((1 << _DROPPED_BITS) - 1))


@numba.njit(inline="always")
def rounded_score(score: float, scratch: np.ndarray, pattern: np.ndarray) -> float:
    """`round_scores` of one score; `scratch` holds one float64 and `pattern` is its int64 view."""
    if not np.isfinite(score):
        return score
    scratch[0] = score
    pattern[0] = (pattern[0] + _HALF) & _KEPT
    return scratch[0]


@numba.njit(inline="always")
def ranks_after(score: float, place: int, other_score: float, other_place: int) -> bool:
    """Whether (score, place) comes after (other_score, other_place): lower, or tied and later."""
    return score < other_score or (score == other_score and place > other_place)


@numba.njit(inline="always")
def offer(heap_scores: np.ndarray, heap_places: np.ndarray, size: int, score: float, place: int):
    """Offer a rounded score and its tie place to a heap of the best `len(heap_scores)`, the worst
    at the root; returns the heap's new size."""
    if size == len(heap_scores):
        if not ranks_after(heap_scores[0], heap_places[0], score, place):
            return size
        at = 0  # the new entry replaces the worst and sinks to its place
        while True:
            child = 2 * at + 1
            if child >= size:
                break
            right = child + 1
            if right < size and ranks_after(
                heap_scores[right], heap_places[right], heap_scores[child], heap_places[child]
            ):
                child = right
            if not ranks_after(heap_scores[child], heap_places[child], score, place):
                break
            heap_scores[at], heap_places[at] = heap_scores[child], heap_places[child]
            at = child
    else:
        at = size  # the new entry rises from the bottom
        size += 1
        while at > 0:
            parent = (at - 1) // 2
            if not ranks_after(score, place, heap_scores[parent], heap_places[parent]):
                break
            heap_scores[at], heap_places[at] = heap_scores[parent], heap_places[parent]
            at = parent
    heap_scores[at], heap_places[at] = score, place
    return size


@numba.njit(inline="always")
def entry_floor(heap_scores: np.ndarray, size: int) -> float:
    """The lowest raw score that may still enter the heap: -inf until it is full, then a margin
    below its worst, so that every score rounding to the worst's value is offered."""
    if size < len(heap_scores):
        return -np.inf
    worst = heap_scores[0]
    if not np.isfinite(worst):
        return worst
    return worst - abs(worst) * ranking.BOUND_SLACK - ranking.SUBNORMAL_SLACK


@numba.njit(inline="always")
def write_best_first(
    heap_scores: np.ndarray,
    heap_places: np.ndarray,
    size: int,
    order: np.ndarray,
    items_out: np.ndarray,
    scores_out: np.ndarray,
) -> None:
    """The heap's entries best first as items of the tie `order` and their scores; the places
    past `size` are empty (item 0, score -inf)."""
    for filled in range(size):  # insertion sort: k is small
        score, place = heap_scores[filled], heap_places[filled]
        at = filled
        while at > 0 and ranks_after(scores_out[at - 1], items_out[at - 1], score, place):
            scores_out[at], items_out[at] = scores_out[at - 1], items_out[at - 1]
            at -= 1
        scores_out[at], items_out[at] = score, place
    for at in range(len(items_out)):
        if at < size:
            items_out[at] = order[items_out[at]]  # from tie place to item
        else:
            items_out[at], scores_out[at] = 0, -np.inf


@numba.njit(nogil=True, cache=True)
def offer_rows(
    scores: np.ndarray,
    first_item: int,
    rows: np.ndarray,
    seen_indptr: np.ndarray,
    seen_indices: np.ndarray,
    seen_weights: np.ndarray,
    exclude_seen: bool,
    place: np.ndarray,
    heap_scores: np.ndarray,
    heap_places: np.ndarray,
    sizes: np.ndarray,
) -> None:
    """Offer each row of `scores` (one user's scores for the items from `first_item` on) to that
    user's heap: the rows of `heap_scores`, `heap_places` and `sizes` (`empty_heaps`).

    `rows` are the users' rows of the seen items (CSR): with `exclude_seen`, their items seen
    with a nonzero weight are left out (set to -inf in `scores`). `place` is each item's place
    in the tie order. A user's items may come in several calls, a block of items each.
    """
    scratch = np.empty(1)
    pattern = scratch.view(np.int64)
    last_item = first_item + scores.shape[1]
    for row in range(scores.shape[0]):
        user_scores, best, best_places = scores[row], heap_scores[row], heap_places[row]
        if exclude_seen:
            for at in range(seen_indptr[rows[row]], seen_indptr[rows[row] + 1]):
                item = seen_indices[at]
                if seen_weights[at] != 0 and first_item <= item < last_item:
                    user_scores[item - first_item] = -np.inf
        size = sizes[row]
        floor = entry_floor(best, size)
        for column in range(len(user_scores)):
            score = user_scores[column]
            if score >= floor and score > -np.inf:  # NaN and -inf never enter
                rounded = rounded_score(score, scratch, pattern)
                size = offer(best, best_places, size, rounded, place[first_item + column])
                floor = entry_floor(best, size)
        sizes[row] = size


@numba.njit(nogil=True, cache=True)
def write_lists(
    heap_scores: np.ndarray,
    heap_places: np.ndarray,
    sizes: np.ndarray,
    order: np.ndarray,
    items_out: np.ndarray,
    scores_out: np.ndarray,
) -> None:
    """Each user's heap as a list, best first: items of the tie `order` and rounded scores
    (-inf: an empty place)."""
    for row in range(len(sizes)):
        write_best_first(heap_scores[row], heap_places[row], sizes[row], order, items_out[row],
                         scores_out[row])  # fmt: skip


def empty_heaps(n_rows: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Heaps of the k best for `n_rows` users, all empty: scores, tie places and sizes."""
    return np.empty((n_rows, k)), np.empty((n_rows, k), dtype=np.int64), np.zeros(n_rows, np.int64)


def rank_dense(
    scores: np.ndarray,
    rows: np.ndarray,
    seen_indptr: np.ndarray,
    seen_indices: np.ndarray,
    seen_weights: np.ndarray,
    exclude_seen: bool,
    order: np.ndarray,
    place: np.ndarray,
    items_out: np.ndarray,
    scores_out: np.ndarray,
) -> None:
    """Each row of `scores` (one user's every item) as its best `items_out.shape[1]` items and
    rounded scores, best first (-inf: an empty place): `offer_rows`, then `write_lists`."""
    heaps = empty_heaps(len(rows), items_out.shape[1])
    seen = (seen_indptr, seen_indices, seen_weights)
    offer_rows(scores, 0, rows, *seen, exclude_seen, place, *heaps)
    write_lists(*heaps, order, items_out, scores_out)


def tie_places(tie_order: np.ndarray) -> np.ndarray:
    """Each item's place in `tie_order` (a permutation of the items)."""
    place = np.empty(len(tie_order), dtype=np.int64)
    place[tie_order] = np.arange(len(tie_order))
    return place


def empty_lists(n_rows: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Item and score arrays for `n_rows` lists of `k` places, all empty (score -inf)."""
    return np.zeros((n_rows, k), dtype=np.int64), np.full((n_rows, k), -np.inf)


def worker_threads() -> int:
    """How many threads rank at once: the cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def in_parallel(n_rows: int, chunk: int, work: Callable[[slice], None]) -> None:
    """Call `work` on consecutive slices of at most `chunk` rows, on every core at once (BLAS
    on one thread in each, so no core runs two); a single slice runs in the calling thread."""
    slices = [slice(first, min(first + chunk, n_rows)) for first in range(0, n_rows, chunk)]
    threads = min(len(slices), worker_threads())
    if threads <= 1:
        for rows in slices:
            work(rows)
        return
    with threadpool_limits(1, "blas"), ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(work, slices):
            pass
