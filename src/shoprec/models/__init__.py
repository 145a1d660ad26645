"""The recommenders shoprec can train, by algorithm name."""

from shoprec.models.als import ALSRecommender
from shoprec.models.base import Recommender
from shoprec.models.cooccurrence import CooccurrenceRecommender
from shoprec.models.ease import EASERecommender
from shoprec.models.popularity import PopularityRecommender

ALGORITHMS: dict[str, type[Recommender]] = {
    model.algorithm: model
    for model in (PopularityRecommender, CooccurrenceRecommender, EASERecommender, ALSRecommender)
}


def make_model(algorithm: str, **params: object) -> Recommender:
    """A new, unfitted recommender of the named algorithm with the given hyperparameters."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}; expected one of {sorted(ALGORITHMS)}")
    return ALGORITHMS[algorithm](**params)


__all__ = ["ALGORITHMS", "Recommender", "make_model"]
