"""The last step of the online loop: a model retrained on what shoppers did deploys through the
gates. Production (trained on the synthetic shop) cannot be scored on the event store's held-out
data, so the candidate is held against production's recipe refit on the candidate's training
data; a poor candidate is still refused."""

import json
import shutil
from pathlib import Path

import pytest
from deployment import Shoprec, aliases, live, project, shoprec  # noqa: F401 - fixtures

from shoprec.datasets import EVENTS_FILE
from shoprec.policy import COMPARED, PRODUCTION_RECIPE
from shoprec.runs import state_dir
from shoprec.simulation.database import simulated_database
from shoprec.tracking import registry
from shoprec.tracking.store import client

pytestmark = [pytest.mark.service, pytest.mark.notebook]


def _pipeline(shoprec: Shoprec, project: Path, *arguments: str) -> tuple[str, dict]:
    result = shoprec("pipeline", "--profile", "smoke", "--quiet", *arguments)
    assert result.code == 0, result.err
    run_dir = (project / "runs" / "latest").resolve()
    return run_dir.name, json.loads((run_dir / "04_evaluate" / "evaluation.json").read_text())


def _deploy(shoprec: Shoprec, run_id: str) -> list[int]:
    return [
        shoprec("deploy", "--env", "test", "--run", run_id).code,
        shoprec("deploy", "--env", "staging", "--run", run_id).code,
        shoprec("deploy", "--env", "production", "--run", run_id, "--approve").code,
    ]


def test_a_retrain_on_events_deploys_and_a_poor_one_is_refused(
    project: Path,
    shoprec: Shoprec,
    monkeypatch: pytest.MonkeyPatch,
    repo_root: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    monkeypatch.setenv("SHOPREC_WORKERS", "1")
    for name in ("notebooks", "requirements.lock"):
        (project / name).symlink_to(repo_root / name)
    simulated = simulated_database(tmp_path_factory.mktemp("shop"), drift=None)
    shutil.copyfile(simulated.url.removeprefix("sqlite:///"), state_dir() / EVENTS_FILE)

    synthetic_run, first = _pipeline(shoprec, project)
    assert first["status"] == "passed" and first["production"] == {"status": "none"}
    assert _deploy(shoprec, synthetic_run) == [0, 0, 0]
    assert live("production")[1] == synthetic_run

    retrained_run, evaluation = _pipeline(shoprec, project, "--dataset", "events")
    production = evaluation["production"]
    assert production["status"] == COMPARED and production["basis"] == PRODUCTION_RECIPE
    assert "dataset='synthetic', the candidate with dataset='events'" in production["basis_reason"]
    assert production["trained_on"] == {"dataset": "synthetic", "profile": "smoke"}
    synthetic_model = project / "runs" / synthetic_run / "03_train" / "model" / "model.json"
    recorded = json.loads(synthetic_model.read_text())
    assert production["recipe"] == {key: recorded[key] for key in ("algorithm", "params")}
    refit = evaluation["metrics"]["production (recipe refit)"]["ndcg"]
    regression = evaluation["checks"][-1]
    assert regression["check"] == "nDCG@10 >= (1 - 0.02) x production's recipe (refit)"
    assert regression["threshold"] == pytest.approx(0.98 * refit, abs=1e-6)
    assert evaluation["status"] == "passed", evaluation["checks"]

    # A deliberately poor candidate on the same events: popularity against a cooccurrence recipe.
    poor_run, poor = _pipeline(shoprec, project, "--dataset", "events", "-p",
                               "algorithm=popularity")  # fmt: skip
    assert poor["production"]["basis"] == PRODUCTION_RECIPE
    assert poor["status"] == "failed" and poor["checks"][-1]["passed"] is False
    assert poor["checks"][-1]["value"] < poor["checks"][-1]["threshold"]
    refused = shoprec("deploy", "--env", "test", "--run", poor_run)
    assert refused.code == 1 and f"run {poor_run} failed evaluation" in refused.err
    assert "x production's recipe (refit)" in refused.err

    assert _deploy(shoprec, retrained_run) == [0, 0, 0]
    assert live("production")[1] == retrained_run
    assert aliases()["production"] == "2"
    tags = {version: registry.get_version(client(), version).tags for version in ("1", "2")}
    assert tags["1"][registry.PRODUCTION_STATUS_TAG] == "none"
    assert registry.BASIS_TAG not in tags["1"]
    assert tags["2"][registry.PRODUCTION_STATUS_TAG] == COMPARED
    assert tags["2"][registry.BASIS_TAG] == PRODUCTION_RECIPE
    history = shoprec("history", "--env", "production").out
    assert retrained_run in history and synthetic_run in history
