"""The stratified split reproduces Microsoft Recommenders' MovieLens 100k split, row for row.

Recommenders' benchmark tables use `python_stratified_split(data, ratio=0.75, seed=42)`; its
test part has 25,008 rows with the checksum below. The data is read from a local copy outside
the repository (its licence forbids redistribution): the test skips when it is absent.
"""

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from shoprec.interactions import split_interactions, stratified_split

ML_100K = Path(__file__).resolve().parents[1].parent / "shared/data/ml-100k/u.data"
TEST_ROWS = 25_008
TEST_PAIRS_SHA256 = "155e82e6e482a30b225946ad003fa10533928db3c85b130e83ccdce0d9144d92"

pytestmark = pytest.mark.skipif(
    not ML_100K.is_file(),
    reason=f"MovieLens 100k not found at {ML_100K} (not redistributable, so not in the repo)",
)


@pytest.fixture(scope="module")
def ratings() -> pd.DataFrame:
    """u.data as it is in the file: user, item, rating, timestamp; rows in file order."""
    return pd.read_csv(
        ML_100K, sep="\t", header=None, names=["user_id", "item_id", "rating", "timestamp"]
    )


def pairs_sha256(frame: pd.DataFrame) -> str:
    """sha256 of `user,item` lines sorted numerically by user then item, each ending in \\n."""
    pairs = frame[["user_id", "item_id"]].sort_values(["user_id", "item_id"])
    text = "".join(f"{user},{item}\n" for user, item in pairs.itertuples(index=False))
    return hashlib.sha256(text.encode()).hexdigest()


def test_movielens_100k_is_the_expected_file(ratings):
    assert len(ratings) == 100_000
    assert ratings["user_id"].nunique() == 943 and ratings["item_id"].nunique() == 1682


def test_stratified_split_reproduces_recommenders_on_movielens_100k(ratings):
    train, test = split_interactions(ratings, 0.25, method="stratified", seed=42)
    assert len(test) == TEST_ROWS and len(train) == len(ratings) - TEST_ROWS
    assert pairs_sha256(test) == TEST_PAIRS_SHA256
    assert set(test["user_id"]) <= set(train["user_id"])


def test_train_share_form_gives_the_same_rows(ratings):
    """`stratified_split(ratio=0.75)` (Recommenders' spelling) equals `test_ratio=0.25`."""
    train, test = stratified_split(ratings, 0.75, seed=42)
    expected_train, expected_test = split_interactions(ratings, 0.25, method="stratified", seed=42)
    assert train.equals(expected_train) and test.equals(expected_test)
    assert pairs_sha256(test) == TEST_PAIRS_SHA256


@pytest.mark.notebook
def test_pipeline_evaluates_on_recommenders_exact_split(shoprec, project):
    """End to end: the audit file `04_evaluate` writes holds exactly Recommenders' test part."""
    result = shoprec(
        "pipeline", "--dataset", "movielens-100k", "--quiet",
        "-p", "algorithm=popularity", "-p", "split_method=stratified", "-p", "test_ratio=0.25",
        SHOPREC_MOVIELENS_DIR=str(ML_100K.parents[1]),
    )  # fmt: skip
    assert result.returncode in (0, 3), result.stderr  # 3: evaluated, but not registered
    audit = pd.read_csv(project / "runs" / "latest" / "04_evaluate" / "test_interactions.csv")
    assert len(audit) == TEST_ROWS
    assert pairs_sha256(audit) == TEST_PAIRS_SHA256
