"""Shared fixtures: a small deterministic shop, its split, and fitted models."""

from pathlib import Path

import pandas as pd
import pytest

from shoprec.datasets import Dataset, load_dataset
from shoprec.interactions import split_interactions
from shoprec.models import Recommender, make_model


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def smoke_data() -> Dataset:
    return load_dataset("synthetic", "smoke", seed=7)


@pytest.fixture(scope="session")
def smoke_split(smoke_data: Dataset) -> tuple[pd.DataFrame, pd.DataFrame]:
    return split_interactions(smoke_data.interactions, 0.2)


@pytest.fixture(scope="session")
def cooccurrence_model(smoke_split) -> Recommender:
    return make_model("cooccurrence").fit(smoke_split[0])


@pytest.fixture(scope="session")
def popularity_model(smoke_split) -> Recommender:
    return make_model("popularity").fit(smoke_split[0])
