"""The fast paths give the reference path's lists, scores, tie order and fitted arrays, exactly.

The reference is the path shoprec took before the fast paths (`benchmarks.reference`, which
`make benchmark-scale` times beside them): every known user's score for every item (seen items
-inf, unknown users popularity), ranked by `shoprec.ranking.top_k`; and item similarities from the
whole `XᵀX`, each item's neighbours picked by a full sort (`keep_top_neighbours`). The fast
paths (compiled heaps in `shoprec.models.topk`, co-occurrence scored without dense rows, ALS in
cache-sized blocks, similarities without `XᵀX`, blocks on every core) must agree bit for bit on
the smoke and default synthetic shops and on MovieLens-100k (skipped when absent), and on rows
built to be hard: ties, signed zeros, subnormals, NaN and infinities.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.reference import reference_recommend
from shoprec.datasets import Dataset, load_dataset
from shoprec.models import Recommender, make_model
from shoprec.models.cooccurrence import (
    SIMILARITIES,
    CooccurrenceRecommender,
    item_similarity,
    keep_top_neighbours,
)
from shoprec.models.topk import empty_lists, rank_dense, tie_places
from shoprec.ranking import round_scores, top_k

ML_100K = Path(__file__).resolve().parents[1].parent / "shared/data/ml-100k"
DATASETS = ("smoke", "default", "movielens-100k")
K = 10


def reference_similarity(
    matrix: sp.csr_matrix, similarity: str, n_neighbours: int, min_cooccurrence: int
) -> sp.csr_matrix:
    """The pruned similarity from the whole `XᵀX`: every pair, then each item's best by a sort."""
    binary = (matrix > 0).astype(np.float64).tocsr()
    whole = item_similarity(binary, similarity)
    if min_cooccurrence > 1:
        shared = item_similarity(binary, "cooccurrence") >= min_cooccurrence
        whole = whole.multiply(shared).tocsr()
        whole.eliminate_zeros()
    return keep_top_neighbours(whole, n_neighbours)


def full_sort(scores: np.ndarray, k: int, tie_order: np.ndarray) -> list[list[int]]:
    """Each row's k best finite columns by a full stable sort of (rounded score, tie place)."""
    keys = round_scores(scores)
    keys[np.isnan(keys)] = -np.inf
    place = tie_places(tie_order)
    lists = []
    for row in keys:
        best = np.lexsort((place, -row))[:k]
        lists.append([int(column) for column in best if np.isfinite(row[column])])
    return lists


@pytest.fixture(scope="module", params=DATASETS)
def dataset(request: pytest.FixtureRequest) -> Dataset:
    if request.param == "movielens-100k":
        if not (ML_100K / "u.data").is_file():
            pytest.skip(f"MovieLens 100k not found at {ML_100K} (not redistributable)")
        return load_dataset("movielens-100k", "default", path=ML_100K)
    return load_dataset("synthetic", request.param, seed=42)


def assert_same_lists(model: Recommender, users: np.ndarray, exclude_seen: bool = True) -> None:
    fast = model.recommend(users, K, exclude_seen=exclude_seen)
    expected = reference_recommend(model, users, K, exclude_seen=exclude_seen)
    pd.testing.assert_frame_equal(fast, expected, check_exact=True)


def with_unknown_user(model: Recommender) -> np.ndarray:
    return np.append(model.user_ids_, model.user_ids_.max() + 1)


@pytest.mark.parametrize("similarity", SIMILARITIES)
def test_cooccurrence_fits_the_reference_arrays_and_gives_its_lists(
    dataset: Dataset, similarity: str
) -> None:
    model = make_model("cooccurrence", similarity=similarity).fit(dataset.interactions)
    expected = reference_similarity(model._interaction_matrix(), similarity, 100, 1)
    for name, array in [
        ("similarity_indptr_", expected.indptr),
        ("similarity_indices_", expected.indices),
        ("similarity_data_", expected.data),
    ]:
        fitted = getattr(model, name)
        assert fitted.dtype == array.dtype, name
        np.testing.assert_array_equal(fitted, array, err_msg=name)
    assert_same_lists(model, with_unknown_user(model))


@pytest.mark.parametrize(
    "params",
    [
        {"similarity": "jaccard", "n_neighbours": 20, "min_cooccurrence": 2},
        {"similarity": "cosine", "n_neighbours": 1, "min_cooccurrence": 3},
        {"similarity": "lift", "time_decay_days": 7.0},
    ],
    ids=["pruned-harder", "one-neighbour", "time-decay"],
)
def test_cooccurrence_options_keep_the_reference_results(dataset: Dataset, params: dict) -> None:
    model = make_model("cooccurrence", **params).fit(dataset.interactions)
    expected = reference_similarity(
        model._interaction_matrix(),
        params["similarity"],
        params.get("n_neighbours", 100),
        params.get("min_cooccurrence", 1),
    )
    np.testing.assert_array_equal(model.similarity_indices_, expected.indices)
    np.testing.assert_array_equal(model.similarity_data_, expected.data)
    assert_same_lists(model, with_unknown_user(model))


@pytest.mark.parametrize(
    ("algorithm", "params"),
    [("als", {"factors": 16, "iterations": 5}), ("ease", {}), ("popularity", {})],
)
def test_dense_models_give_the_reference_lists(
    dataset: Dataset, algorithm: str, params: dict
) -> None:
    model = make_model(algorithm, **params).fit(dataset.interactions)
    assert_same_lists(model, with_unknown_user(model))


@pytest.mark.parametrize("algorithm", ["cooccurrence", "als"])
def test_lists_without_excluding_seen_items_and_with_k_over_the_catalogue(
    smoke_split: tuple[pd.DataFrame, pd.DataFrame], algorithm: str
) -> None:
    params = {"factors": 8, "iterations": 3} if algorithm == "als" else {}
    model = make_model(algorithm, **params).fit(smoke_split[0])
    users = with_unknown_user(model)
    assert_same_lists(model, users, exclude_seen=False)
    many = len(model.item_ids_) + 5
    pd.testing.assert_frame_equal(
        model.recommend(users[:7], many),
        reference_recommend(model, users[:7], many),
        check_exact=True,
    )


@pytest.mark.parametrize("algorithm", ["cooccurrence", "als"])
def test_blocks_and_threads_do_not_change_any_list(
    smoke_split: tuple[pd.DataFrame, pd.DataFrame],
    algorithm: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    params = {"factors": 8, "iterations": 3} if algorithm == "als" else {}
    model = make_model(algorithm, **params).fit(smoke_split[0])
    whole = model.recommend(model.user_ids_, K)
    monkeypatch.setattr(type(model), "batch_size", 7)  # many blocks, on every core
    pd.testing.assert_frame_equal(model.recommend(model.user_ids_, K), whole, check_exact=True)


def test_similarities_do_not_depend_on_the_block_size(
    smoke_split: tuple[pd.DataFrame, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    from shoprec.models import cooccurrence

    model = make_model("cooccurrence").fit(smoke_split[0])
    monkeypatch.setattr(cooccurrence, "block_rows", lambda n_neighbours: 5)
    blocked = make_model("cooccurrence").fit(smoke_split[0])
    np.testing.assert_array_equal(blocked.similarity_indptr_, model.similarity_indptr_)
    np.testing.assert_array_equal(blocked.similarity_indices_, model.similarity_indices_)
    np.testing.assert_array_equal(blocked.similarity_data_, model.similarity_data_)


HARD_SCORES = [0.0, -0.0, 5e-324, -5e-324, 1e-310, 1.0, 1.0 + 2.0**-40, 0.3, 0.1 + 0.2, -1.0]
"""Scores that tie after rounding, signed zeros and subnormals that round to zero."""


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(1, 40),
    st.integers(1, 12),
    st.lists(st.sampled_from([*HARD_SCORES, np.nan, np.inf, -np.inf]), min_size=240, max_size=240),
    st.randoms(use_true_random=False),
)
def test_compiled_ranking_is_a_full_stable_sort(
    n_rows: int, n_items: int, k: int, pool: list[float], random
) -> None:
    scores = np.array(pool[: n_rows * n_items]).reshape(n_rows, n_items)
    order = np.array(random.sample(range(n_items), n_items))
    places = min(k, n_items)
    items, ranked = empty_lists(n_rows, places)
    nobody = np.zeros(n_rows + 1, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)
    rank_dense(scores.copy(), np.arange(n_rows), *nobody, True, order, tie_places(order), items,
               ranked)  # fmt: skip
    valid = np.isfinite(ranked)
    reference, reference_valid = top_k(scores, k, order)
    sorted_lists = full_sort(scores, k, order)
    for row in range(n_rows):
        got = items[row][valid[row]].tolist()
        assert got == reference[row][reference_valid[row]].tolist() == sorted_lists[row]
        expected_scores = round_scores(scores[row, got])
        np.testing.assert_array_equal(ranked[row][valid[row]], expected_scores)


@pytest.mark.parametrize("seed", range(6))
def test_cooccurrence_ranks_zero_negative_and_subnormal_weights_as_the_reference(
    seed: int,
) -> None:
    """Weights a direct `fit` accepts: stored zeros (not seen), negative sums, scores that round
    to zero, and few similar items, so that items scored 0 fill the lists in tie order."""
    rng = np.random.default_rng(seed)
    pairs = rng.integers(0, [30, 25], size=(120, 2))
    interactions = pd.DataFrame({"user_id": pairs[:, 0] * 3 + 1, "item_id": pairs[:, 1] * 2})
    interactions = interactions.drop_duplicates()
    weights = rng.choice([0.0, 1e-310, 5e-324, -1.0, 1.0, 2.0, 3.5], size=len(interactions))
    model = CooccurrenceRecommender(similarity="cosine", n_neighbours=3).fit(
        interactions.assign(weight=weights)
    )
    users = with_unknown_user(model)
    for exclude_seen in (True, False):
        assert_same_lists(model, users, exclude_seen=exclude_seen)
