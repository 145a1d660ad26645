"""Tracking: every pipeline run becomes an MLflow run; a failing store loses nothing."""

import json
from pathlib import Path

import pytest

from shoprec.cli import main
from shoprec.runs import MODEL_SUBDIR
from shoprec.tracking import registry
from shoprec.tracking.store import TrackingError, client
from shoprec.tracking.sync import log_or_explain, log_run

pytestmark = pytest.mark.notebook


def broken_store(project: Path) -> str:
    """A tracking URI that cannot work: its database would live under a regular file."""
    (project / "blocked").write_text("a file, not a directory\n")
    return f"sqlite:///{project / 'blocked' / 'mlflow.db'}"


def test_untracked_run_keeps_its_outputs_and_syncs_later(
    shoprec, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = shoprec(
        "pipeline", "--profile", "smoke", "--quiet", MLFLOW_TRACKING_URI=broken_store(project)
    )
    assert result.returncode == 3, result.stderr
    run_dir = (project / "runs" / "latest").resolve()
    assert f"run {run_dir.name} was not tracked: tracking store sqlite:///" in result.stderr
    assert f"log them later with: shoprec runs sync {run_dir.name}" in result.stderr
    # Production could not be fetched either: the evaluation is incomplete, never "passed".
    assert "evaluation is INCOMPLETE" in result.stdout
    assert "the evaluation will be incomplete" in result.stderr
    assert (run_dir / MODEL_SUBDIR / "model.json").is_file() and not (
        run_dir / "tracking.json"
    ).exists()

    synced = shoprec("runs", "sync", run_dir.name)
    assert synced.returncode == 1, synced.stderr  # logged, but refused as a model version
    assert synced.stdout.startswith(f"{run_dir.name}: logged as MLflow run ")
    assert "model version" not in synced.stdout
    assert "evaluation incomplete" in synced.stderr and "not registered" in synced.stderr
    again = shoprec("runs", "sync", "--all")
    assert again.returncode == 0 and f"{run_dir.name}: already logged" in again.stdout

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / '.shoprec' / 'mlflow.db'}")
    mlflow_client = client()
    record = json.loads((run_dir / "run.json").read_text())
    (parent,) = mlflow_client.search_runs(
        [mlflow_client.get_experiment_by_name("shoprec").experiment_id],
        "tags.`shoprec.role` = 'pipeline'",
    )
    data = parent.data
    assert parent.info.status == "FINISHED"
    assert data.params["algorithm"] == "cooccurrence" and data.params["profile"] == "smoke"
    assert data.params["03_train.output_dir"].endswith("03_train")  # notebooks disagree: qualified
    # the parent holds the headline metrics; each notebook's run holds all of its own
    assert set(data.metrics) == {"ndcg_at_10", "precision_at_10", "recall_at_10", "map_at_10",
                                 "lift_over_baseline"}  # fmt: skip
    assert 0 < data.metrics["ndcg_at_10"] <= 1 and data.metrics["lift_over_baseline"] > 1
    tags = data.tags
    assert tags["shoprec.run_id"] == run_dir.name
    assert tags["shoprec.engine"] == "local" and "shoprec.spark_version" not in tags
    assert tags["shoprec.train_fingerprint"] == record["data_fingerprint"]["train"]
    assert len(tags["shoprec.data_fingerprint"]) == 64
    assert tags["shoprec.lock_sha256"] == record["lock_sha256"] and record["lock_sha256"]
    for field in ("git_commit", "git_dirty"):  # None (not logged) outside a git work tree
        recorded = record[field]
        logged = recorded if recorded is None or isinstance(recorded, str) else json.dumps(recorded)
        assert tags.get(f"shoprec.{field}") == logged
    assert {"shoprec.python", "shoprec.platform", "shoprec.duration_s"} <= set(tags)
    seeds = {nb: p["seed"] for nb, p in record["parameters"].items() if "seed" in p}
    assert json.loads(tags["shoprec.seeds"]) == seeds and "03_train" in seeds
    artifacts = {item.path for item in mlflow_client.list_artifacts(parent.info.run_id)}
    assert {"notebooks", "03_train", "04_evaluate", "run.json", "pipeline.log"} <= artifacts
    children = mlflow_client.search_runs(
        [parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    assert sorted(child.data.tags["shoprec.notebook"] for child in children) == [
        "01_explore_data", "02_tune", "03_train", "04_evaluate",
    ]  # fmt: skip
    assert {child.data.params.get("seed") for child in children} >= {"42"}
    evaluated = next(c for c in children if c.data.tags["shoprec.notebook"] == "04_evaluate")
    assert evaluated.data.metrics["evaluation.passed"] == 0.0
    assert evaluated.data.metrics["evaluation.candidate.ndcg"] == data.metrics["ndcg_at_10"]
    explored = next(c for c in children if c.data.tags["shoprec.notebook"] == "01_explore_data")
    assert "data.n_users" in explored.data.metrics

    assert registry.versions(mlflow_client) == []


def test_unreachable_server_fails_fast_with_the_sync_hint(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = project / "runs" / "run-1"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"run_id": "run-1", "status": "failed"}))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with pytest.raises(TrackingError, match="tracking store http://127.0.0.1:9"):
        log_run(run_dir)
    assert log_or_explain(run_dir) is None
    error = capsys.readouterr().err
    assert "run run-1 was not tracked" in error and "shoprec runs sync run-1" in error
    assert not (run_dir / "tracking.json").exists()


def test_sync_needs_a_run(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "sync"]) == 2
    assert "give a RUN_ID or --all" in capsys.readouterr().err
    assert main(["runs", "sync", "nope"]) == 2
    assert "run 'nope' not found" in capsys.readouterr().err
