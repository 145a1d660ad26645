import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from shoprec.artifact import load_model, save_model
from shoprec.metrics import ranking_metrics
from shoprec.models import make_model
from shoprec.models.als import ALSRecommender
from shoprec.params import ParameterError


@pytest.fixture
def tiny():
    return pd.DataFrame(
        {"user_id": [1, 1, 2, 2, 3], "item_id": [10, 20, 10, 30, 10], "weight": [1.0, 1, 1, 5, 1]}
    )


@pytest.fixture(scope="module")
def als_model(smoke_split):
    return make_model("als").fit(smoke_split[0])


def test_factors_are_saved_as_arrays_and_scores_are_their_products(als_model):
    n_users, n_items = len(als_model.user_ids_), len(als_model.item_ids_)
    assert als_model.user_factors_.shape == (n_users, 64)
    assert als_model.item_factors_.shape == (n_items, 64)
    rows = np.array([0, 3, 5])
    np.testing.assert_allclose(
        als_model._score(rows), als_model.user_factors_[rows] @ als_model.item_factors_.T
    )


def test_recommends_unseen_items_best_first(tiny):
    model = ALSRecommender(factors=4, regularization=0.1, iterations=5).fit(tiny)
    recs = model.recommend([3], k=5)
    assert set(recs["item_id"]) == {20, 30}
    assert recs["score"].is_monotonic_decreasing
    assert not recs["fallback"].any()


def test_the_same_seed_gives_the_same_factors_for_any_thread_count(smoke_split, als_model):
    for num_threads in (1, 2):
        again = ALSRecommender(num_threads=num_threads).fit(smoke_split[0])
        assert np.array_equal(again.user_factors_, als_model.user_factors_)
        assert np.array_equal(again.item_factors_, als_model.item_factors_)
    other = ALSRecommender(seed=43).fit(smoke_split[0])
    assert not np.array_equal(other.item_factors_, als_model.item_factors_)


def test_fitting_does_not_warn_about_blas_threads(tiny):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ALSRecommender(factors=4, iterations=2).fit(tiny)


def test_alpha_scales_the_confidence(smoke_split, als_model):
    stronger = ALSRecommender(alpha=5.0).fit(smoke_split[0])
    assert not np.allclose(stronger.item_factors_, als_model.item_factors_)


def test_similar_items_exclude_the_item_and_pad_short_catalogues(tiny, als_model):
    similar, scores = ALSRecommender(factors=4, iterations=5).fit(tiny).similar_items([10, 20], k=4)
    assert similar.shape == scores.shape == (2, 4)
    assert set(similar[0, :2]) == {20, 30} and set(similar[1, :2]) == {10, 30}
    assert (similar[:, 2:] == -1).all() and np.isnan(scores[:, 2:]).all()
    items = als_model.item_ids_[:3]
    big, big_scores = als_model.similar_items(items, k=5)
    assert big.shape == (3, 5) and not (big == items[:, None]).any()
    unit = als_model.item_factors_ / np.linalg.norm(als_model.item_factors_, axis=1)[:, None]
    cosine = unit[0] @ unit[als_model._item_rows(big[0])].T
    np.testing.assert_allclose(big_scores[0], cosine, rtol=1e-9)
    assert (np.diff(big_scores[0]) <= 0).all()


def test_save_and_load_round_trip(tmp_path, smoke_split, als_model):
    loaded = load_model(save_model(als_model, tmp_path / "model"))
    assert isinstance(loaded, ALSRecommender)
    assert loaded.get_params() == als_model.get_params()
    assert np.array_equal(loaded.item_factors_, als_model.item_factors_)
    users = smoke_split[1]["user_id"].unique()[:20]
    pd.testing.assert_frame_equal(loaded.recommend(users, k=5), als_model.recommend(users, k=5))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"factors": 0}, "parameter factors=0 is not allowed; expected an integer > 0"),
        ({"factors": 8.5}, "parameter factors=8.5 is not allowed"),
        ({"regularization": 0}, "parameter regularization=0 is not allowed; expected a number > 0"),
        ({"regularization": "high"}, "parameter regularization='high' is not allowed"),
        ({"alpha": -1.0}, "parameter alpha=-1.0 is not allowed; expected a number > 0"),
        ({"iterations": 0}, "parameter iterations=0 is not allowed; expected an integer > 0"),
        ({"seed": -1}, "parameter seed=-1 is not allowed; expected an integer >= 0"),
        ({"seed": None}, "parameter seed=None is not allowed"),
        ({"num_threads": -2}, "parameter num_threads=-2 is not allowed; expected an integer >= 0"),
    ],
)
def test_bad_parameters_are_named(tiny, params, message):
    with pytest.raises(ParameterError, match=message):
        ALSRecommender(**params).fit(tiny)


def test_beats_popularity_on_the_synthetic_shop(
    smoke_data, smoke_split, popularity_model, als_model
):
    users = smoke_split[1]["user_id"].unique()
    n_items = len(smoke_data.items)
    pop = ranking_metrics(popularity_model.recommend(users, k=10), smoke_split[1], 10, n_items)
    als = ranking_metrics(als_model.recommend(users, k=10), smoke_split[1], 10, n_items)
    assert als["ndcg"] > 1.2 * pop["ndcg"]
    assert als["precision"] > 1.2 * pop["precision"]
    assert als["coverage"] > 3 * pop["coverage"]


def test_loading_and_scoring_do_not_import_implicit(tmp_path, als_model):
    save_model(als_model, tmp_path / "model")
    script = (
        "import sys; from shoprec.artifact import load_model; "
        f"load_model({str(tmp_path / 'model')!r}).recommend([0, 1], k=3); "
        "assert 'implicit' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
