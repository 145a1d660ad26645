# Generated from notebooks/lib/tuning.ipynb: edit the notebook, not this file.

"""Grid search of recommender hyperparameters on a validation split."""

import pandas as pd
from sklearn.model_selection import ParameterGrid

from shoprec.metrics import ALL_METRIC_NAMES, ranking_metrics
from shoprec.models import make_model

SEARCH_SPACES: dict[str, dict[str, list]] = {
    "popularity": {},
    "cooccurrence": {
        "similarity": ["cooccurrence", "jaccard", "cosine", "lift"],
        "n_neighbours": [50, 200],
    },
    "ease": {"l2": [10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0]},
    "als": {
        "factors": [32, 64, 128],
        "regularization": [0.1, 1.0, 5.0, 20.0, 50.0, 100.0],
        "alpha": [1.0, 5.0, 20.0],
    },
}
SMOKE_SEARCH_SPACES: dict[str, dict[str, list]] = {
    "popularity": {},
    "cooccurrence": {"similarity": ["cooccurrence", "cosine"]},
    "ease": {"l2": [50.0, 500.0]},
    "als": {"factors": [16], "regularization": [1.0, 20.0]},
}


def default_search_space(algorithm: str, profile: str) -> dict[str, list]:
    """The search space used when none is given: small for the smoke profile, wide otherwise."""
    spaces = SMOKE_SEARCH_SPACES if profile == "smoke" else SEARCH_SPACES
    if algorithm not in spaces:
        raise ValueError(f"no search space for algorithm {algorithm!r}; known: {sorted(spaces)}")
    return spaces[algorithm]


def grid_search(
    algorithm: str,
    space: dict[str, list],
    fit_part: pd.DataFrame,
    validation: pd.DataFrame,
    *,
    k: int,
    n_items: int,
    metric: str = "ndcg",
) -> pd.DataFrame:
    """Every point of `space` fitted on `fit_part` and scored on `validation`, best first."""
    users = validation["user_id"].unique()
    rows = []
    for point in ParameterGrid(space):
        model = make_model(algorithm, **point).fit(fit_part)
        lists = model.recommend(users, k=k)
        scores = ranking_metrics(
            lists, validation, k=k, n_items=n_items, train=fit_part, metrics=ALL_METRIC_NAMES
        )
        rows.append({**point, **scores})
    results = pd.DataFrame(rows)
    return results.sort_values(metric, ascending=False, kind="stable").reset_index(drop=True)
