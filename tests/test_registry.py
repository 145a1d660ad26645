"""The model registry: versions for runs that passed evaluation, tampering, pyfunc, history."""

import json
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from shoprec.artifact import ARRAYS_FILE, ArtifactError, save_model
from shoprec.deploy import state
from shoprec.models import Recommender
from shoprec.policy import POLICY_FILE, load_policy
from shoprec.service.app import create_app
from shoprec.tracking import registry
from shoprec.tracking.store import client, local_database
from shoprec.tracking.sync import log_run


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_store: Path) -> Path:
    """An empty project whose tracking store is its own `.shoprec/mlflow.db`."""
    monkeypatch.setenv("SHOPREC_PROJECT_DIR", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / '.shoprec' / 'mlflow.db'}")
    local_database().parent.mkdir()
    shutil.copyfile(empty_store, local_database())
    return tmp_path


def repo_policy() -> Path:
    return Path(__file__).resolve().parents[1] / POLICY_FILE


def make_run(project: Path, run_id: str, model: Recommender, passed: bool = True) -> Path:
    """A fake pipeline run: record, model artifact and evaluation."""
    run_dir = project / "runs" / run_id
    save_model(model, run_dir / "03_train" / "model", {"run_id": run_id})
    record = {
        "run_id": run_id,
        "status": "succeeded",
        "evaluation_passed": passed,
        "parameters": {"03_train": {"algorithm": model.algorithm, "seed": 42, "k": 10}},
        "started_at": "2026-01-01T00:00:00+00:00",
        "finished_at": "2026-01-01T00:00:09+00:00",
    }
    (run_dir / "run.json").write_text(json.dumps(record))
    (run_dir / "04_evaluate").mkdir()
    checks = [{"check": "beats_popularity", "passed": passed}]
    evaluation = {
        "status": "passed" if passed else "failed",
        "passed": passed,
        "policy": load_policy(repo_policy()).record(),
        "checks": checks,
        "metrics": {"candidate": {"ndcg": 0.25}},
    }
    (run_dir / "04_evaluate" / "evaluation.json").write_text(json.dumps(evaluation))
    return run_dir


def registered_file(project: Path, name: str) -> Path:
    """A file of the logged model (not the run's copy) in the project's artifact store."""
    (path,) = (project / ".shoprec" / "mlartifacts" / "models").rglob(name)
    return path


def test_only_runs_that_passed_evaluation_are_registered(
    project: Path, cooccurrence_model: Recommender
) -> None:
    passed = log_run(make_run(project, "run-a", cooccurrence_model))
    failed = log_run(make_run(project, "run-bad", cooccurrence_model, passed=False))
    assert passed.model_version == "1" and failed.model_version is None
    versions = registry.versions(client())
    assert [(v.version, v.tags[registry.RUN_TAG]) for v in versions] == [(1, "run-a")]
    tags = versions[0].tags
    assert tags["evaluation.passed"] == "True" and tags["evaluation.ndcg"] == "0.25"
    assert json.loads(tags["evaluation.checks"]) == [{"check": "beats_popularity", "passed": True}]
    run = client().get_run(failed.mlflow_run_id)
    assert run.info.status == "FINISHED" and run.data.tags["shoprec.run_id"] == "run-bad"


def test_pyfunc_from_the_registry_predicts_what_the_service_serves(
    project: Path, cooccurrence_model: Recommender
) -> None:
    version = log_run(make_run(project, "run-a", cooccurrence_model)).model_version
    registry.move_alias(client(), "production", version)
    pyfunc = mlflow.pyfunc.load_model(registry.model_uri("production"))
    users = [int(cooccurrence_model.user_ids_[0]), int(cooccurrence_model.user_ids_.max()) + 1]
    predicted = pyfunc.predict(pd.DataFrame({"user_id": users, "k": [5, 5]}))
    with TestClient(create_app(registry.model_uri("production"), environment="test")) as service:
        assert service.get("/health").json()["model_version"] == version
        for user in users:
            body = service.get("/recommendations", params={"user_id": user, "k": 5}).json()
            mine = predicted[predicted["user_id"] == user]
            assert [item["item_id"] for item in body["items"]] == mine["item_id"].tolist()
            np.testing.assert_array_equal([item["score"] for item in body["items"]], mine["score"])
            assert body["model"]["run_id"] == "run-a"


def test_tampered_registry_artifact_is_refused(
    project: Path, cooccurrence_model: Recommender
) -> None:
    version = log_run(make_run(project, "run-a", cooccurrence_model)).model_version
    stored = registered_file(project, ARRAYS_FILE)
    stored.write_bytes(stored.read_bytes()[:100])  # truncated
    with pytest.raises(ArtifactError, match="sha256 does not match"):
        create_app(registry.model_uri(version))


def test_replaced_model_json_is_refused(project: Path, cooccurrence_model: Recommender) -> None:
    version = log_run(make_run(project, "run-a", cooccurrence_model)).model_version
    stored = registered_file(project, "model.json")
    stored.write_text(stored.read_text().replace('"run-a"', '"run-z"'))
    with pytest.raises(ArtifactError, match="model.json: sha256 does not match the registry's"):
        create_app(registry.model_uri(version))


def test_unknown_alias_is_a_clear_error(project: Path) -> None:
    with pytest.raises(ArtifactError, match="alias 'staging' is not set"):
        create_app(registry.model_uri("staging"))


def test_history_is_a_stack_rollbacks_pop(project: Path, cooccurrence_model: Recommender) -> None:
    for run_id in ("run-a", "run-b", "run-c"):
        log_run(make_run(project, run_id, cooccurrence_model))
    mlflow_client = client()
    one, two, three = registry.versions(mlflow_client)
    for version, action in [(one, "deploy"), (two, "deploy"), (three, "deploy")]:
        state.record_event(mlflow_client, version, "production", action)
    state.record_event(
        mlflow_client, registry.get_version(mlflow_client, "2"), "production", "rollback"
    )
    assert state.served_versions("production") == ["1", "2"]
    assert [(e.version, e.action) for e in state.history("production")] == [
        ("1", "deploy"), ("2", "deploy"), ("3", "deploy"), ("2", "rollback"),
    ]  # fmt: skip
    assert state.history("staging") == []
