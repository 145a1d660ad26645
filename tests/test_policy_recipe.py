"""The regression check when production's own score means nothing: production's recipe, refit.

After a retrain on the shop's events, production (trained on another dataset) cannot be scored on
the candidate's held-out data; the candidate is held against production's algorithm and
hyperparameters refit on the candidate's training split instead, under the same threshold.
"""

from pathlib import Path

import pytest

from shoprec.models import ALGORITHMS
from shoprec.policy import (
    COMPARED,
    NOT_COMPARABLE,
    PRODUCTION_MODEL,
    PRODUCTION_RECIPE,
    Recipe,
    decide,
    load_policy,
    production_basis,
    production_recipe,
)

RECORD = {
    "format": "shoprec-model/1",
    "algorithm": "cooccurrence",
    "params": {"similarity": "cooccurrence", "n_neighbours": 100, "min_cooccurrence": 1,
               "time_decay_days": None},
    "metadata": {"training": {"dataset": "synthetic", "profile": "smoke"}},
}  # fmt: skip
TRAINED_ON = {"dataset": "synthetic", "profile": "smoke"}
OTHER_DATA = "production was trained with dataset='synthetic', the candidate with dataset='events'"


@pytest.fixture
def policy(tmp_path: Path):
    path = tmp_path / "deploy-policy.toml"
    path.write_text(
        "version = 3\n[evaluation]\nk = 10\nmin_ndcg = 0.05\nmin_lift_over_baseline = 1.1\n"
        "max_regression = 0.02\n"
    )
    return load_policy(path)


def test_the_recipe_is_the_artifacts_algorithm_and_every_hyperparameter():
    recipe = production_recipe(RECORD, ALGORITHMS)
    assert recipe == Recipe("cooccurrence", RECORD["params"])
    assert recipe.record() == {"algorithm": "cooccurrence", "params": RECORD["params"]}
    assert recipe.params is not RECORD["params"]  # a copy: refitting cannot change the record


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ({**RECORD, "algorithm": None}, "records no algorithm (algorithm=None)"),
        ({k: v for k, v in RECORD.items() if k != "algorithm"}, "records no algorithm"),
        ({**RECORD, "algorithm": ""}, "records no algorithm (algorithm='')"),
        ({**RECORD, "algorithm": "deep-magic"},
         "production's algorithm 'deep-magic' is unknown here; expected one of ['als', "),
        ({k: v for k, v in RECORD.items() if k != "params"},
         "records no hyperparameters for 'cooccurrence' (params=None)"),
        ({**RECORD, "params": [1, 2]}, "(params=[1, 2]); expected a table of name = value"),
    ],
)  # fmt: skip
def test_a_recipe_that_cannot_be_refit_says_why(record, problem):
    found = production_recipe(record, ALGORITHMS)
    assert isinstance(found, str) and problem in found


def test_an_algorithm_this_engine_cannot_fit_is_no_recipe():
    found = production_recipe({**RECORD, "algorithm": "ease"}, ("popularity", "cooccurrence"))
    assert found == (
        "production's algorithm 'ease' is unknown here; expected one of "
        "['cooccurrence', 'popularity']"
    )


def test_a_recipe_fit_by_another_engine_is_not_refit():
    found = production_recipe(RECORD, ALGORITHMS, engine="spark")
    assert found == (
        "production's model was fit by engine='local', the candidate by engine='spark': its "
        "hyperparameters need not mean the same there"
    )
    on_spark = {**RECORD, "metadata": {"training": {"engine": "spark"}}}
    assert production_recipe(on_spark, ALGORITHMS, engine="spark") == Recipe(
        "cooccurrence", RECORD["params"]
    )
    assert isinstance(production_recipe(on_spark, ALGORITHMS), str)


def test_comparable_production_is_compared_as_the_production_model():
    basis = production_basis(None, None, TRAINED_ON)
    assert basis == {"status": COMPARED, "basis": PRODUCTION_MODEL, "trained_on": TRAINED_ON}


def test_incomparable_production_is_compared_through_its_recipe():
    recipe = production_recipe(RECORD, ALGORITHMS)
    basis = production_basis(OTHER_DATA, recipe, TRAINED_ON)
    assert basis["status"] == COMPARED and basis["basis"] == PRODUCTION_RECIPE
    assert basis["basis_reason"] == f"production's own score means nothing here: {OTHER_DATA}"
    assert basis["recipe"] == {"algorithm": "cooccurrence", "params": RECORD["params"]}
    assert basis["trained_on"] == TRAINED_ON and "reason" not in basis


@pytest.mark.parametrize(
    ("recipe", "problem"),
    [("production's algorithm 'x' is unknown here", "production's algorithm 'x' is unknown here"),
     ("fitting als with {} failed (boom)", "fitting als with {} failed (boom)"),
     (None, "no recipe was given")],
)  # fmt: skip
def test_incomparable_production_without_a_recipe_is_not_comparable(recipe, problem):
    basis = production_basis(OTHER_DATA, recipe, TRAINED_ON)
    assert basis["status"] == NOT_COMPARABLE and "basis" not in basis
    assert basis["reason"] == (
        f"{OTHER_DATA}; and production's recipe cannot be refit instead: {problem}"
    )


def test_the_refit_recipe_faces_the_same_regression_threshold(policy):
    basis = production_basis(OTHER_DATA, production_recipe(RECORD, ALGORITHMS), TRAINED_ON)
    ndcg = {"candidate": 0.20, "baseline": 0.10, "production": 0.20 / 0.98}
    held = decide(policy, ndcg, basis)
    assert held["status"] == "passed" and held["passed"] is True
    check = held["checks"][-1]
    assert check["check"] == "nDCG@10 >= (1 - 0.02) x production's recipe (refit)"
    assert check["basis"] == PRODUCTION_RECIPE and check["threshold"] == pytest.approx(0.20)
    assert held["production"]["basis"] == PRODUCTION_RECIPE
    worse = decide(policy, {**ndcg, "production": 0.21 / 0.98}, basis)
    assert worse["status"] == "failed" and worse["passed"] is False
    assert [c["passed"] for c in worse["checks"]] == [True, True, False]


def test_the_production_model_basis_keeps_its_check_name(policy):
    basis = production_basis(None, None, TRAINED_ON)
    decided = decide(policy, {"candidate": 0.2, "baseline": 0.1, "production": 0.3}, basis)
    assert decided["status"] == "failed"
    assert decided["checks"][-1]["check"] == "nDCG@10 >= (1 - 0.02) x production"
    assert decided["checks"][-1]["basis"] == PRODUCTION_MODEL


def test_no_recipe_fails_the_evaluation_however_good_the_candidate(policy):
    basis = production_basis(OTHER_DATA, "production's model.json records no algorithm", {})
    decided = decide(policy, {"candidate": 0.9, "baseline": 0.1}, basis)
    assert decided["status"] == "failed" and decided["passed"] is False
    check = decided["checks"][-1]
    assert check["passed"] is False and check["threshold"] is None
    assert check["detail"].endswith("cannot be refit instead: production's model.json records "
                                    "no algorithm")  # fmt: skip
