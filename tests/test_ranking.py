"""The total order: top_k and every model's lists equal a full stable sort, ties included."""

import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from shoprec.models import ALGORITHMS, make_model
from shoprec.ranking import SCORE_BITS, round_scores, top_k

FAST_PARAMS = {"als": {"factors": 4, "iterations": 3}, "ease": {"l2": 5.0}}


def reference_top_k(scores: np.ndarray, k: int, tie_order: np.ndarray) -> tuple[np.ndarray, ...]:
    """A full stable sort of every row by (rounded score desc, place in tie_order asc)."""
    rounded = np.where(np.isnan(scores), -np.inf, round_scores(scores))
    place = np.empty(scores.shape[1], dtype=np.int64)
    place[tie_order] = np.arange(scores.shape[1])
    order = np.lexsort((np.broadcast_to(place, scores.shape), -rounded), axis=1)[:, :k]
    return order, np.isfinite(np.take_along_axis(rounded, order, axis=1))


tie_heavy_scores = st.integers(1, 6).flatmap(
    lambda rows: st.integers(1, 15).flatmap(
        lambda cols: arrays(
            np.float64,
            (rows, cols),
            elements=st.sampled_from([0.0, 1.0, 2.0, 0.5, -np.inf, np.nan, 1.0 + 2**-45]),
        )
    )
)


@settings(max_examples=300, deadline=None)
@given(scores=tie_heavy_scores, k=st.integers(1, 20), seed=st.integers(0, 2**16))
def test_top_k_equals_a_full_stable_sort(scores: np.ndarray, k: int, seed: int) -> None:
    tie_order = np.random.default_rng(seed).permutation(scores.shape[1])
    columns, valid = top_k(scores, k, tie_order)
    expected, expected_valid = reference_top_k(scores, min(k, scores.shape[1]), tie_order)
    np.testing.assert_array_equal(columns, expected)
    np.testing.assert_array_equal(valid, expected_valid)


def test_scores_differing_in_their_last_bits_rank_as_equals() -> None:
    noisy = np.array([[0.1 + 0.2, 0.3, 0.3 * (1 + 2**-50)]])
    assert len(set(round_scores(noisy).ravel())) == 1
    columns, _ = top_k(noisy, 3, np.array([2, 0, 1]))
    assert columns.tolist() == [[2, 0, 1]]  # the tie order decides, not the noise


@given(st.lists(st.floats(-1e300, 1e300, allow_nan=False), min_size=2))
def test_rounding_keeps_the_order_and_a_relative_precision(values: list[float]) -> None:
    values = np.sort(np.array(values))
    rounded = round_scores(values)
    assert (np.diff(rounded) >= 0).all()
    tiny = np.finfo(np.float64).tiny  # subnormals keep an absolute, not a relative, precision
    np.testing.assert_allclose(rounded, values, rtol=2.0**-SCORE_BITS, atol=tiny)
    np.testing.assert_array_equal(round_scores(rounded), rounded)


def tie_heavy_interactions(seed: int) -> pd.DataFrame:
    """Few users, few items and equal weights: co-occurrence counts and popularity tie a lot."""
    rng = np.random.default_rng(seed)
    pairs = rng.integers(0, [12, 9], size=(40, 2))
    frame = pd.DataFrame({"user_id": pairs[:, 0] * 7 + 3, "item_id": pairs[:, 1] * 5 + 100})
    return frame.drop_duplicates().assign(weight=1.0)


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
@pytest.mark.parametrize("seed", range(4))
def test_every_model_ranks_as_a_full_stable_sort(algorithm: str, seed: int) -> None:
    interactions = tie_heavy_interactions(seed)
    model = make_model(algorithm, **FAST_PARAMS.get(algorithm, {})).fit(interactions)
    users = np.append(model.user_ids_, 10**6)  # and one unknown user
    lists = model.recommend(users, k=4)

    rows = np.arange(len(model.user_ids_))
    scores = np.vstack([model._score(rows), model._popularity_score()[None, :]])
    seen = model._interaction_matrix().toarray() > 0
    scores[:-1][seen] = -np.inf
    expected, valid = reference_top_k(scores, 4, model.popular_items_)
    for row, user in enumerate(users):
        got = lists.loc[lists["user_id"] == user, "item_id"].tolist()
        assert got == model.item_ids_[expected[row][valid[row]]].tolist(), f"user {user}"

    ids, similarity_scores = model.similar_items(model.item_ids_, k=3)
    similarity = np.array(model._similarity(np.arange(len(model.item_ids_))), dtype=float)
    np.fill_diagonal(similarity, -np.inf)
    expected, valid = reference_top_k(similarity, 3, model.popular_items_)
    np.testing.assert_array_equal(ids, np.where(valid, model.item_ids_[expected], -1))
    assert np.isnan(similarity_scores[~valid]).all()


@pytest.mark.skipif(
    not os.environ.get("SHOPREC_EXPECT_SIMD_OFF"), reason="only in `make test-simd-off`"
)
def test_numpy_runs_with_its_optional_simd_dispatch_off() -> None:
    """Proves the second pass of .ci/run really takes numpy's baseline code path."""
    from numpy._core._multiarray_umath import __cpu_features__

    disabled = os.environ["SHOPREC_EXPECT_SIMD_OFF"].split()
    assert disabled == os.environ["NPY_DISABLE_CPU_FEATURES"].split()
    assert not [name for name in disabled if __cpu_features__[name]]
