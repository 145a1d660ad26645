# Generated from notebooks/lib/cooccurrence.ipynb: edit the notebook, not this file.

"""Item-to-item co-occurrence: recommend what users who share your items also interacted with."""

import numpy as np
import scipy.sparse as sp

from shoprec.models.base import Recommender

SIMILARITIES = ("cooccurrence", "jaccard", "cosine", "lift")


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


class CooccurrenceRecommender(Recommender):
    """Scores an item by its similarity to the items a user interacted with, weighted by strength.

    `similarity` normalises raw co-occurrence counts; `n_neighbours` keeps each item's most
    similar items only; `min_cooccurrence` drops pairs seen together by fewer users.
    """

    algorithm = "cooccurrence"
    fitted_arrays = ("similarity_indptr_", "similarity_indices_", "similarity_data_")

    def __init__(
        self, similarity: str = "jaccard", n_neighbours: int = 100, min_cooccurrence: int = 1
    ) -> None:
        self.similarity = similarity
        self.n_neighbours = n_neighbours
        self.min_cooccurrence = min_cooccurrence

    def _fit(self, matrix: sp.csr_matrix) -> None:
        if self.n_neighbours <= 0 or self.min_cooccurrence <= 0:
            raise ValueError(
                "n_neighbours and min_cooccurrence must be positive integers, got "
                f"{self.n_neighbours} and {self.min_cooccurrence}"
            )
        binary = (matrix > 0).astype(np.float64).tocsr()
        similarity = item_similarity(binary, self.similarity)
        if self.min_cooccurrence > 1:
            counts = (binary.T @ binary).tocsr()
            similarity = similarity.multiply(counts >= self.min_cooccurrence).tocsr()
        similarity = keep_top_neighbours(similarity, self.n_neighbours)
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

    def similar_items(self, item_ids: np.ndarray | list[int], k: int = 10) -> np.ndarray:
        """Each item's k most similar items, most similar first (-1 pads short lists)."""
        similarity = self._similarity_matrix()
        rows = self._item_rows(item_ids)
        result = np.full((len(rows), k), -1, dtype=np.int64)
        for i, row in enumerate(rows):
            start, end = similarity.indptr[row], similarity.indptr[row + 1]
            order = np.lexsort((similarity.indices[start:end], -similarity.data[start:end]))[:k]
            result[i, : len(order)] = self.item_ids_[similarity.indices[start:end][order]]
        return result
