import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from shoprec.artifact import save_model
from shoprec.models import make_model
from shoprec.models.als import ALSRecommender


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


def test_loading_and_scoring_do_not_import_implicit(tmp_path, als_model):
    save_model(als_model, tmp_path / "model")
    script = (
        "import sys; from shoprec.artifact import load_model; "
        f"load_model({str(tmp_path / 'model')!r}).recommend([0, 1], k=3); "
        "assert 'implicit' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
