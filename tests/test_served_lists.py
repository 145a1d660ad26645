"""The service answers with the model's own lists, whichever way it got them.

A served version answers a user from the precomputed lists, from a ranking made on request (one
user, arrays, no frame) while the background thread has not reached them yet, or from the
fallback list: each must be exactly `model.recommend`'s list for that user and k (items, scores,
order, fallback flag), for every user of the smoke and default synthetic shops (every 25th when
ranked on request) and every algorithm.
"""

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client import REGISTRY

from shoprec.artifact import save_model
from shoprec.datasets import load_dataset
from shoprec.models import ALGORITHMS, Recommender, make_model
from shoprec.service import served as served_module
from shoprec.service.served import MAX_K, ServedModel, load_served_model

PARAMS = {"als": {"factors": 16, "iterations": 5}, "ease": {"l2": 50.0}}
WAYS = ("precomputed", "on request", "background")
ON_REQUEST_EVERY = 25  # EASE ranks one user in ~50 ms on the default shop


@pytest.fixture(scope="module", params=["smoke", "default"])
def interactions(request: pytest.FixtureRequest) -> pd.DataFrame:
    return load_dataset("synthetic", request.param, seed=42).interactions


@pytest.fixture(scope="module", params=sorted(ALGORITHMS))
def model_dir(
    request: pytest.FixtureRequest, interactions: pd.DataFrame, tmp_path_factory
) -> tuple[Recommender, Path]:
    model = make_model(request.param, **PARAMS.get(request.param, {})).fit(interactions)
    return model, save_model(model, tmp_path_factory.mktemp("artifact") / "model")


def served_way(model_dir: Path, way: str) -> ServedModel:
    served = load_served_model(model_dir, None, "test", "1", prepare=False)
    if way == "on request":
        return served.prepare(budget=0)
    if way == "precomputed":
        return served.prepare(background=False)
    served.prepare()
    assert served.lists is not None and served.lists.done.wait(timeout=120)
    return served


def expected_lists(model: Recommender, users: np.ndarray, k: int) -> Iterator[tuple]:
    """Each user's (items, scores, fallback flags) from `model.recommend` (`users` sorted)."""
    frame = model.recommend(users, k=k)
    user_col = frame["user_id"].to_numpy()
    starts, ends = np.searchsorted(user_col, users), np.searchsorted(user_col, users, "right")
    items, scores = frame["item_id"].to_numpy(), frame["score"].to_numpy()
    flags = frame["fallback"].to_numpy()
    for user, start, end in zip(users.tolist(), starts, ends, strict=True):
        yield user, items[start:end].tolist(), scores[start:end].tolist(), set(flags[start:end])


@pytest.mark.parametrize("way", WAYS)
def test_every_user_gets_the_models_own_list(model_dir: tuple[Recommender, Path], way: str) -> None:
    model, directory = model_dir
    served = served_way(directory, way)
    if way != "on request":
        assert served.lists is not None and served.lists.complete
    else:
        assert served.lists is None
    unknown = int(model.user_ids_.max()) + 1
    # ranked on request: a sample (a batch's lists and one user's agree: test_scale_paths)
    known = model.user_ids_[:: ON_REQUEST_EVERY if way == "on request" else 1]
    users = np.append(known, unknown)
    for k in (1, 10, MAX_K):
        for user, items, scores, fallback in expected_lists(model, users, k):
            got_items, got_scores, got_fallback = served.recommend(user, k)
            assert (got_items, got_scores) == (items, scores), (way, user, k)
            assert got_fallback is (user == unknown) and fallback <= {got_fallback}


def test_precomputed_lists_are_compact(model_dir: tuple[Recommender, Path]) -> None:
    model, directory = model_dir
    lists = served_way(directory, "precomputed").lists
    assert lists is not None
    assert lists.columns.dtype == np.int32 and lists.scores.dtype == np.float64
    assert lists.columns.shape == (len(model.user_ids_), min(MAX_K, len(model.item_ids_)))


def test_a_version_no_longer_served_stops_being_precomputed(
    model_dir: tuple[Recommender, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    model, directory = model_dir
    monkeypatch.setattr(served_module, "PRECOMPUTE_USERS", 1)  # a block per user
    served = load_served_model(directory, None, "test", "1", prepare=False)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(30.0)  # this thread keeps the interpreter until it waits
    try:
        served.prepare()
        lists = served.lists
        del served  # the version is dropped: the thread sees it before its next block
        assert lists is not None and lists.done.wait(timeout=120)
    finally:
        sys.setswitchinterval(interval)
    assert not lists.complete and lists.ready < len(model.user_ids_)


def precomputed_gauge(label: str) -> float | None:
    return REGISTRY.get_sample_value("shoprec_precomputed_users", {"model_version": label})


def test_the_gauge_counts_the_precomputed_users(model_dir: tuple[Recommender, Path]) -> None:
    model, directory = model_dir
    label = f"gauge-{directory.parent.name}"  # this artifact's own series
    served = load_served_model(directory, None, "test", label, prepare=False).prepare()
    assert served.lists is not None and served.lists.done.wait(timeout=120)
    assert precomputed_gauge(label) == len(model.user_ids_)
    del served  # the version is no longer served: none of its lists are in use
    assert precomputed_gauge(label) == 0
