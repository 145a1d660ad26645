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

    def _similarity(self, item_rows: np.ndarray) -> np.ndarray:
        # Popularity knows no similarity: every item's "similar items" are the most popular.
        return np.tile(self._popularity_score(), (len(item_rows), 1))
