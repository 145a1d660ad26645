"""Issue 11, fault 1: the evaluation gate could be talked around.

- thresholds were run parameters (`-p min_lift_over_baseline=0 -p max_regression=0.99`);
- production was "compared" on data it was not trained for (another profile): now its recipe
  is refit on the candidate's training data instead, or, without one, the comparison fails;
- with the store down, the production comparison was silently skipped and the run "passed".
"""

import json
import shutil
from pathlib import Path

import numpy as np
import papermill
import pytest

from shoprec.artifact import read_metadata, save_model
from shoprec.deploy.errors import GateRefused
from shoprec.deploy.gates import check_evaluation
from shoprec.interactions import split_interactions
from shoprec.kernels import AsyncUnixSocketKernelManager
from shoprec.models import make_model
from shoprec.pipeline.plan import ProductionUnavailable
from shoprec.pipeline.production import current_production_model
from shoprec.policy import (
    COMPARED,
    NO_PRODUCTION,
    NOT_COMPARABLE,
    PRODUCTION_RECIPE,
    UNAVAILABLE,
    PolicyError,
    comparability,
    decide,
    load_policy,
    seen_test_interactions,
)
from shoprec.runs import EVALUATION_FILE, MODEL_SUBDIR

pytestmark = pytest.mark.faults
EVALUATE = "04_evaluate"
TRAIN = "03_train"


def test_thresholds_given_as_parameters_are_refused(shoprec, project: Path) -> None:
    result = shoprec(
        "pipeline", "--profile", "smoke", "-p", "algorithm=popularity",
        "-p", "min_lift_over_baseline=0", "-p", "max_regression=0.99",
    )  # fmt: skip
    assert result.returncode == 1
    assert "max_regression, min_lift_over_baseline: deploy thresholds are not run parameters" in (
        result.stderr
    )
    assert "policy/deploy-policy.toml" in result.stderr
    assert not (project / "runs").exists()


def test_evaluation_notebook_takes_no_threshold_parameter(repo_root: Path) -> None:
    declared = papermill.inspect_notebook(str(repo_root / "notebooks" / f"{EVALUATE}.ipynb"))
    assert set(declared).isdisjoint({"k", "min_ndcg", "min_lift_over_baseline", "max_regression"})


def test_the_policy_file_is_versioned_and_checked(repo_root: Path, tmp_path: Path) -> None:
    policy = load_policy(repo_root / "policy" / "deploy-policy.toml")
    assert policy.version >= 1 and len(policy.sha256) == 64
    bad = tmp_path / "policy.toml"
    bad.write_text("version = 1\n[evaluation]\nk = 10\nmin_ndcg = 0.05\n")
    with pytest.raises(PolicyError, match="min_lift_over_baseline = None; expected a number"):
        load_policy(bad)


def _policy(tmp_path: Path, max_regression: float = 0.02):
    path = tmp_path / "deploy-policy.toml"
    path.write_text(
        "version = 7\n[evaluation]\nk = 10\nmin_ndcg = 0.05\nmin_lift_over_baseline = 1.1\n"
        f"max_regression = {max_regression}\n"
    )
    return load_policy(path)


def test_decision_outcomes(tmp_path: Path) -> None:
    policy = _policy(tmp_path)
    ndcg = {"candidate": 0.2, "baseline": 0.1, "production": 0.2}
    passed = decide(policy, ndcg, {"status": COMPARED})
    assert passed["status"] == "passed" and passed["passed"] is True
    assert passed["policy"]["sha256"] == policy.sha256 and passed["policy"]["version"] == 7
    regressed = decide(policy, {**ndcg, "production": 0.3}, {"status": COMPARED})
    assert regressed["status"] == "failed"
    assert regressed["checks"][-1]["threshold"] == pytest.approx(0.98 * 0.3)
    unavailable = {"status": UNAVAILABLE, "reason": "store down"}
    incomplete = decide(policy, {"candidate": 0.2, "baseline": 0.1}, unavailable)
    assert incomplete["status"] == "incomplete" and incomplete["passed"] is False
    assert incomplete["checks"][-1]["detail"] == "store down"
    other = {"status": NOT_COMPARABLE, "reason": "profile differs"}
    assert decide(policy, {"candidate": 0.2, "baseline": 0.1}, other)["status"] == "failed"
    alone = decide(policy, {"candidate": 0.2, "baseline": 0.1}, {"status": NO_PRODUCTION})
    assert alone["status"] == "passed" and len(alone["checks"]) == 2


def test_production_trained_on_other_data_cannot_be_compared(smoke_data) -> None:
    train, test = split_interactions(smoke_data.interactions, 0.2)
    training = {"dataset": "synthetic", "profile": "smoke", "dataset_options": {}}
    assert comparability(training, {**training, "profile": "default"}, 0).startswith(
        "production was trained with profile='default', the candidate with profile='smoke'"
    )
    on_everything = make_model("popularity").fit(smoke_data.interactions)
    seen = seen_test_interactions(on_everything, test)
    assert seen == len(test.drop_duplicates(["user_id", "item_id"]))
    assert "trained on" in comparability(training, training, seen)
    on_train = make_model("popularity").fit(train)
    assert seen_test_interactions(on_train, test) == 0
    assert comparability(training, training, 0) is None


@pytest.fixture(scope="module")
def candidate(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> Path:
    """A smoke-profile model trained by 03_train (no tuning file)."""
    output = tmp_path_factory.mktemp("candidate")
    papermill.execute_notebook(
        str(repo_root / "notebooks" / f"{TRAIN}.ipynb"),
        str(output / f"{TRAIN}.ipynb"),
        parameters={"profile": "smoke", "output_dir": str(output), "timing_repeats": 1},
        cwd=str(repo_root / "notebooks"),
        progress_bar=False,
        kernel_name="python3",
        kernel_manager_class=AsyncUnixSocketKernelManager,
    )
    return output / "model"


def _evaluate(repo_root: Path, model_dir: Path, output: Path, **parameters: str) -> dict:
    output.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(
        str(repo_root / "notebooks" / f"{EVALUATE}.ipynb"),
        str(output / f"{EVALUATE}.ipynb"),
        parameters={"model_dir": str(model_dir), "output_dir": str(output), **parameters},
        cwd=str(repo_root / "notebooks"),
        progress_bar=False,
        kernel_name="python3",
        kernel_manager_class=AsyncUnixSocketKernelManager,
    )
    return json.loads((output / "evaluation.json").read_text())


def _production_like(candidate: Path, target: Path, **training: object) -> Path:
    shutil.copytree(candidate, target)
    record = json.loads((target / "model.json").read_text())
    record["metadata"]["training"].update(training)
    (target / "model.json").write_text(json.dumps(record))
    return target


@pytest.mark.notebook
def test_production_from_another_profile_is_compared_through_its_recipe_refit(
    candidate: Path, repo_root: Path, tmp_path: Path
) -> None:
    """Production's own score on another profile's data is never used: its recipe (here the
    candidate's own) is refit on the candidate's training split and scores exactly the same."""
    production = _production_like(candidate, tmp_path / "production", profile="default")
    evaluation = _evaluate(
        repo_root, candidate, tmp_path / "out", production_model_dir=str(production)
    )
    assert evaluation["status"] == "passed"
    assert evaluation["production"]["status"] == COMPARED
    assert evaluation["production"]["basis"] == PRODUCTION_RECIPE
    assert "profile='default'" in evaluation["production"]["basis_reason"]
    assert evaluation["production"]["recipe"] == {
        key: read_metadata(candidate)[key] for key in ("algorithm", "params")
    }
    assert "production" not in evaluation["metrics"]
    refit = evaluation["metrics"]["production (recipe refit)"]
    assert refit == evaluation["metrics"]["candidate"]  # deterministic refit, same recipe
    assert evaluation["checks"][-1]["check"].endswith("x production's recipe (refit)")


@pytest.mark.notebook
def test_production_whose_recipe_cannot_be_refit_fails_the_comparison(
    candidate: Path, repo_root: Path, tmp_path: Path
) -> None:
    production = _production_like(candidate, tmp_path / "production", profile="default")
    record = json.loads((production / "model.json").read_text())
    record["params"]["n_neighbours"] = 0  # loads, but cannot be fit again
    (production / "model.json").write_text(json.dumps(record))
    evaluation = _evaluate(
        repo_root, candidate, tmp_path / "out", production_model_dir=str(production)
    )
    assert evaluation["status"] == "failed" and evaluation["passed"] is False
    assert evaluation["production"]["status"] == NOT_COMPARABLE
    reason = evaluation["checks"][-1]["detail"]
    assert "profile='default'" in reason and "recipe cannot be refit instead" in reason
    assert "n_neighbours" in reason
    assert not any(name.startswith("production") for name in evaluation["metrics"])


@pytest.mark.notebook
def test_production_that_saw_the_held_out_data_is_held_to_its_recipe(
    candidate: Path, repo_root: Path, tmp_path: Path, smoke_data
) -> None:
    metadata = read_metadata(candidate)["metadata"]
    model = make_model("popularity").fit(smoke_data.interactions)  # the whole shop, test included
    seed = metadata["training"]["seed"]
    assert seed == 42  # the candidate's data: synthetic smoke, seed 42
    production = save_model(model, tmp_path / "production", metadata)
    evaluation = _evaluate(
        repo_root, candidate, tmp_path / "out", production_model_dir=str(production)
    )
    assert "held-out interactions" in evaluation["production"]["basis_reason"]
    assert evaluation["production"]["recipe"] == {"algorithm": "popularity", "params": {}}
    metrics = evaluation["metrics"]
    # popularity refit on the training split is the baseline, not the leaky model's score
    assert metrics["production (recipe refit)"] == metrics["baseline (popularity)"]
    assert evaluation["status"] == "passed"


@pytest.mark.notebook
def test_store_down_gives_an_incomplete_evaluation_that_deploy_refuses(
    candidate: Path, repo_root: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "runs" / "run-x"
    evaluation = _evaluate(
        repo_root,
        candidate,
        run_dir / "04_evaluate",
        production_unavailable="cannot fetch the production model (store down)",
    )
    assert evaluation["status"] == "incomplete" and evaluation["passed"] is False
    assert len(evaluation["checks"]) == 3
    assert (run_dir / EVALUATION_FILE).is_file()
    with pytest.raises(GateRefused, match="evaluation incomplete"):
        check_evaluation(run_dir)


def test_unreachable_store_makes_production_unavailable(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "blocked").write_text("a file, not a directory\n")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'blocked' / 'x.db'}")
    production = current_production_model()
    assert isinstance(production, ProductionUnavailable)
    assert "cannot fetch the production model" in production.reason
    assert "the evaluation will be incomplete" in capsys.readouterr().err


def test_incomplete_run_is_logged_but_never_registered(
    store_project: Path, cooccurrence_model, shoprec, fake_run
) -> None:
    run_dir = fake_run(store_project, "run-inc", cooccurrence_model, status="incomplete")
    named = shoprec("runs", "sync", "run-inc")
    assert named.returncode == 1
    assert "run-inc: logged as MLflow run" in named.stdout and "model version" not in named.stdout
    assert "evaluation incomplete (store down), so it is not registered" in named.stderr
    assert "shoprec pipeline --rerun run-inc" in named.stderr
    every = shoprec("runs", "sync", "--all")
    assert every.returncode == 0 and "not registered" in every.stderr
    assert json.loads((run_dir / "tracking.json").read_text())
    assert np.all([v is None for v in _versions(store_project)])


def _versions(project: Path) -> list:
    tracked = json.loads((project / "runs" / "run-inc" / "tracking.json").read_text())
    return [entry["model_version"] for entry in tracked.values()]


def test_deploy_refuses_a_run_evaluated_under_another_policy(
    store_project: Path, cooccurrence_model, shoprec, repo_root: Path, fake_run
) -> None:
    fake_run(store_project, "run-ok", cooccurrence_model)
    assert shoprec("runs", "sync", "run-ok").returncode == 0
    (store_project / "policy").unlink()
    (store_project / "policy").mkdir()
    text = (repo_root / "policy" / "deploy-policy.toml").read_text()
    old = load_policy(repo_root / "policy" / "deploy-policy.toml").version
    (store_project / "policy" / "deploy-policy.toml").write_text(
        text.replace(f"version = {old}", f"version = {old + 1}").replace(
            "min_ndcg = 0.05", "min_ndcg = 0.5"
        )
    )
    result = shoprec("deploy", "--env", "test", "--run", "run-ok")
    assert result.returncode == 1
    assert f"run run-ok was evaluated under deploy policy version {old}" in result.stderr
    assert f"not under the policy in force, version {old + 1}" in result.stderr
    assert (store_project / "runs" / "run-ok" / MODEL_SUBDIR).is_dir()
    # Editing the run's own record does not help: the registry recorded the old policy.
    path = store_project / "runs" / "run-ok" / EVALUATION_FILE
    evaluation = json.loads(path.read_text())
    evaluation["policy"] = load_policy(store_project / "policy" / "deploy-policy.toml").record()
    path.write_text(json.dumps(evaluation))
    again = shoprec("deploy", "--env", "test", "--run", "run-ok")
    assert again.returncode == 1
    assert f"version {old} (run run-ok)" not in again.stderr
    assert f"run run-ok was evaluated under deploy policy version {old}" in again.stderr
