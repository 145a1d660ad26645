import numpy as np
import pandas as pd
import pytest

from shoprec.models import make_model
from shoprec.models.ease import EASERecommender, ease_memory_bytes, ease_weights


@pytest.fixture
def tiny():
    return pd.DataFrame(
        {"user_id": [1, 1, 2, 2, 3], "item_id": [10, 20, 10, 30, 10], "weight": [1.0, 1, 1, 5, 1]}
    )


@pytest.fixture(scope="module")
def ease_model(smoke_split):
    return make_model("ease").fit(smoke_split[0])


def test_weights_match_the_closed_form_and_have_a_zero_diagonal():
    rng = np.random.default_rng(0)
    x = (rng.random((40, 12)) < 0.3).astype(float)
    expected = np.linalg.inv(x.T @ x + 5.0 * np.eye(12))
    expected = np.eye(12) - expected / np.diag(expected)
    np.fill_diagonal(expected, 0.0)
    weights = ease_weights(x.T @ x, 5.0)
    np.testing.assert_allclose(weights, expected, atol=1e-12)
    assert not np.diag(weights).any()


def test_scores_are_the_users_rows_times_the_weights(ease_model):
    rows = np.arange(5)
    binary = (ease_model._interaction_matrix()[rows] > 0).toarray().astype(float)
    np.testing.assert_allclose(ease_model._score(rows), binary @ ease_model.item_weights_)


def test_recommends_what_similar_users_had(tiny):
    model = EASERecommender(l2=1.0).fit(tiny)
    recs = model.recommend([3], k=5)
    assert set(recs["item_id"]) == {20, 30}
    assert recs["score"].is_monotonic_decreasing
    assert not recs["fallback"].any()
    assert model.item_weights_.shape == (3, 3)


def test_weighted_fit_uses_the_event_weights(tiny):
    binary = EASERecommender(l2=1.0).fit(tiny).item_weights_
    weighted = EASERecommender(l2=1.0, binary=False).fit(tiny).item_weights_
    assert not np.allclose(binary, weighted)


def test_similar_items_are_positive_weights_strongest_first(tiny, ease_model):
    model = EASERecommender(l2=1.0).fit(tiny)
    similar, scores = model.similar_items([20, 30], k=3)
    assert similar.shape == (2, 3)
    assert similar[:, 0].tolist() == [10, 10] and (scores[:, 0] > 0).all()
    assert (similar[:, 1:] == -1).all()  # 20 and 30 never meet: only positive weights count
    big, _ = ease_model.similar_items(ease_model.item_ids_[:3], k=5)
    assert big.shape == (3, 5)
    assert not (big == ease_model.item_ids_[:3, None]).any()


def test_too_many_items_is_refused_before_any_dense_matrix():
    n_items = 100_000  # a dense items x items float64 matrix would need 80 GB
    interactions = pd.DataFrame({"user_id": np.arange(n_items) % 50, "item_id": np.arange(n_items)})
    with pytest.raises(ValueError, match=r"100,000 items: over max_items=20,000.*160\.0 GB"):
        EASERecommender().fit(interactions)
    assert ease_memory_bytes(n_items) == 160_000_000_000


def test_max_items_is_a_parameter(tiny):
    with pytest.raises(ValueError, match="3 items: over max_items=2"):
        EASERecommender(max_items=2).fit(tiny)
    assert EASERecommender(max_items=3).fit(tiny).item_weights_.shape == (3, 3)
