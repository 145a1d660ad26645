"""What the MLflow UI shows of a pipeline run: a model-training experiment, the headline metrics
on the parent run (every metric on its notebook's run), the data as a dataset input, the source,
and the saved view that shows the headline metrics as the runs list's columns."""

import json
from pathlib import Path

import nbformat
import pytest

from shoprec.redact import MASK
from shoprec.runs import EVALUATION_FILE, RESULT_FILES, RUN_RECORD, executed_notebook, runs_dir
from shoprec.tracking import ui
from shoprec.tracking.data_input import DIGEST_LENGTH, data_fingerprint, source_of
from shoprec.tracking.results import headline_metrics
from shoprec.tracking.store import EXPERIMENT, EXPERIMENT_TAGS, client
from shoprec.tracking.sync import log_run

CANDIDATE = {"ndcg": 0.25, "precision": 0.08, "recall": 0.33, "map": 0.16, "mrr": 0.4}
BASELINE = {"ndcg": 0.1, "precision": 0.03, "recall": 0.15, "map": 0.07, "mrr": 0.2}


def fake_run(project: Path, run_id: str, *, k: int = 10, options: dict | None = None) -> Path:
    """A failed-evaluation run with the files tracking reads (no model: nothing to register)."""
    run_dir = runs_dir(project) / run_id
    data = {"dataset": "sql" if options else "synthetic", "profile": "smoke", "seed": 42,
            "dataset_options": options or {}}  # fmt: skip
    record = {
        "run_id": run_id, "status": "succeeded", "profile": "smoke", "dataset": data["dataset"],
        "git_commit": "a" * 40, "evaluation_passed": False,
        "data_fingerprint": {"train": "1" * 64, "test": "2" * 64},
        "parameters": {"01_explore_data": data, "04_evaluate": {"k": k}},
    }  # fmt: skip
    files = {
        RUN_RECORD: record,
        EVALUATION_FILE: {"status": "failed", "passed": False, "k": k, "checks": [],
                          "metrics": {"candidate": CANDIDATE, "baseline (popularity)": BASELINE}},
        RESULT_FILES["01_explore_data"]: {"n_users": 199, "n_items": 300, "n_interactions": 2535},
    }  # fmt: skip
    for relative, content in files.items():
        (run_dir / relative).parent.mkdir(parents=True, exist_ok=True)
        (run_dir / relative).write_text(json.dumps(content))
    for notebook in ("01_explore_data", "04_evaluate"):
        executed_notebook(run_dir, notebook).parent.mkdir(exist_ok=True)
        nbformat.write(nbformat.v4.new_notebook(), executed_notebook(run_dir, notebook))
    return run_dir


def test_headline_metrics_are_the_candidates_at_k_and_its_lift(tmp_path: Path) -> None:
    run_dir = fake_run(tmp_path, "r", k=5)
    assert headline_metrics(run_dir) == {
        "ndcg_at_5": 0.25, "precision_at_5": 0.08, "recall_at_5": 0.33, "map_at_5": 0.16,
        "lift_over_baseline": pytest.approx(2.5),
    }  # fmt: skip
    assert headline_metrics(tmp_path / "not-evaluated") == {}


def test_a_logged_run_shows_in_the_ui_as_a_model_training_run(project: Path) -> None:
    tracked = log_run(fake_run(project, "run-1"))
    mlflow_client = client()
    experiment = mlflow_client.get_experiment_by_name(EXPERIMENT)
    assert EXPERIMENT_TAGS == {"mlflow.experimentKind": "custom_model_development"}
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"

    parent = mlflow_client.get_run(tracked.mlflow_run_id)
    assert parent.data.metrics == {
        "ndcg_at_10": 0.25, "precision_at_10": 0.08, "recall_at_10": 0.33, "map_at_10": 0.16,
        "lift_over_baseline": pytest.approx(2.5),
    }  # fmt: skip
    tags = parent.data.tags
    assert tags["mlflow.source.name"] == "shoprec pipeline"
    assert tags["mlflow.source.type"] == "JOB"
    assert tags["mlflow.source.git.commit"] == "a" * 40
    assert tags["shoprec.evaluation_passed"] == "false"  # a name with "pass" in it: not a secret

    (data,) = parent.inputs.dataset_inputs
    fingerprint = data_fingerprint(json.loads((project / "runs/run-1/run.json").read_text()))
    assert tags["shoprec.data_fingerprint"] == fingerprint and len(fingerprint) == 64
    assert data.dataset.name == "synthetic-smoke"
    assert data.dataset.digest == fingerprint[:DIGEST_LENGTH]
    assert data.dataset.source_type == "code"
    assert json.loads(data.dataset.source)["seed"] == 42
    profile = json.loads(data.dataset.profile)
    assert profile["fingerprint"] == fingerprint and profile["n_interactions"] == 2535
    assert profile["train_fingerprint"] == "1" * 64
    assert [(tag.key, tag.value) for tag in data.tags] == [
        ("mlflow.data.context", "train and test")
    ]

    children = mlflow_client.search_runs(
        [experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    by_notebook = {child.data.tags["shoprec.notebook"]: child for child in children}
    evaluate = by_notebook["04_evaluate"]
    assert evaluate.data.metrics["evaluation.candidate.mrr"] == 0.4  # every metric, there
    assert evaluate.data.tags["mlflow.source.name"] == "notebooks/04_evaluate.ipynb"
    assert evaluate.data.tags["mlflow.source.type"] == "NOTEBOOK"

    view = json.loads(experiment.tags[ui.VIEW_TAG])
    assert view["name"] == "Headline metrics"
    columns = json.loads(view["state"])["selectedColumns"]
    assert columns[:5] == [
        "metrics.`ndcg_at_10`", "metrics.`precision_at_10`", "metrics.`recall_at_10`",
        "metrics.`map_at_10`", "metrics.`lift_over_baseline`",
    ]  # fmt: skip
    url = ui.runs_url("http://127.0.0.1:5000/", experiment.experiment_id)
    assert url == (
        f"http://127.0.0.1:5000/#/experiments/{experiment.experiment_id}/runs"
        f"?workflowType=machine_learning&viewStateShareKey={ui.VIEW_ID}"
    )

    log_run(fake_run(project, "run-2", k=20))  # the newest run's k first, run-1's k kept
    experiment = mlflow_client.get_experiment(experiment.experiment_id)
    state = json.loads(json.loads(experiment.tags[ui.VIEW_TAG])["state"])
    assert state["selectedColumns"][:6] == [
        "metrics.`ndcg_at_20`", "metrics.`precision_at_20`", "metrics.`recall_at_20`",
        "metrics.`map_at_20`", "metrics.`lift_over_baseline`", "metrics.`ndcg_at_10`",
    ]  # fmt: skip
    assert state["selectedColumns"][-3:] == ["attributes.`Dataset`", "attributes.`Source`",
                                             "attributes.`Models`"]  # fmt: skip
    assert len(state["selectedColumns"]) == 5 + 4 + 3


def test_a_query_dataset_names_its_database_without_the_password() -> None:
    record = {"dataset": "sql", "parameters": {"01_explore_data": {"dataset": "sql",
              "dataset_options": {"url": "postgresql://reader:pw@db/shop", "query": "select 1",
                                  "columns": {"user_id": "customer"}}}}}  # fmt: skip
    assert source_of(record) == ("sql", {"url": f"postgresql://reader:{MASK}@db/shop",
                                         "query": "select 1"})  # fmt: skip
    events = {"parameters": {"01": {"dataset": "events", "dataset_options": {}}}}
    assert source_of(events) == ("sql", {"url": "the project's event store",
                                         "environment": "production"})  # fmt: skip
    movielens = {"parameters": {"01": {"dataset": "movielens-100k", "dataset_options": {}}}}
    assert source_of(movielens) == (
        "http",
        {"url": "https://files.grouplens.org/datasets/movielens/ml-100k.zip"},
    )
