# Generated from notebooks/lib/popularity.ipynb: edit the notebook, not this file.

"""Most-popular items: the baseline every personalised model must beat."""

import numpy as np
import scipy.sparse as sp

from shoprec.models.base import Recommender


class PopularityRecommender(Recommender):
    """Recommends the items with the highest total interaction weight, the same for everyone."""

    algorithm = "popularity"

    def _fit(self, matrix: sp.csr_matrix) -> None:
        pass

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        return np.tile(self._popularity_score(), (len(user_rows), 1))

    def similar_items(self, item_ids: np.ndarray | list[int], k: int = 10) -> np.ndarray:
        """The k most popular other items for each item (popularity knows no similarity)."""
        ranked = self.item_ids_[self.popular_items_]
        rows = self._item_rows(item_ids)
        return np.array([ranked[ranked != self.item_ids_[row]][:k] for row in rows])
