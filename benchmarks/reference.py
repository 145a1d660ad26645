"""The path shoprec took before the fast paths, kept to compare with: lists and similarities.

`tests/test_scale_paths.py` checks that the fast paths give exactly these results;
`make benchmark-scale` times both side by side on the 10-million-event shop.
"""

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shoprec.models import Recommender
from shoprec.models.base import RECOMMENDATION_COLUMNS, recommendation_frame
from shoprec.models.cooccurrence import keep_top_neighbours
from shoprec.ranking import round_scores, top_k

BATCH = 1_024


def reference_recommend(
    model: Recommender, user_ids: np.ndarray, k: int, exclude_seen: bool = True
) -> pd.DataFrame:
    """`recommend` as it was: dense scores for a batch of users, seen items -inf, `top_k`."""
    user_ids = np.asarray(user_ids, dtype=np.int64)
    rows = np.searchsorted(model.user_ids_, user_ids).clip(0, len(model.user_ids_) - 1)
    known = model.user_ids_[rows] == user_ids
    frames = [pd.DataFrame(columns=list(RECOMMENDATION_COLUMNS))]
    for start in range(0, len(user_ids), BATCH):
        batch = slice(start, start + BATCH)
        batch_rows, batch_known = rows[batch], known[batch]
        scores = np.tile(model._popularity_score(), (len(batch_rows), 1))
        if batch_known.any():
            scores[batch_known] = model._score(batch_rows[batch_known])
        if exclude_seen and batch_known.any():
            seen_rows, seen_items = model._interaction_matrix()[batch_rows[batch_known]].nonzero()
            scores[np.flatnonzero(batch_known)[seen_rows], seen_items] = -np.inf
        columns, valid = top_k(scores, k, model.popular_items_)
        best = round_scores(np.take_along_axis(scores, columns, axis=1))
        lists = model.item_ids_[columns]
        frames.append(recommendation_frame(user_ids[batch], lists, best, valid, ~batch_known))
    return pd.concat(frames, ignore_index=True).astype(RECOMMENDATION_COLUMNS)


def blockwise_pruned_similarity(
    binary: sp.csr_matrix,
    similarity: str,
    n_neighbours: int,
    *,
    min_cooccurrence: int = 1,
    max_block_pairs: int = 20_000_000,
) -> sp.csr_matrix:
    """`pruned_item_similarity` as it was: `XᵀX` a block of items at a time by sparse products,
    each block's rows pruned by a sort (`keep_top_neighbours`)."""
    n_items = binary.shape[1]
    occurrences = np.asarray(binary.sum(axis=0)).ravel().astype(np.float64)
    by_item = binary.T.tocsr()
    cumulative = np.cumsum(by_item @ np.asarray(binary.sum(axis=1)).ravel())
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
