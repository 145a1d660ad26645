"""Log a run directory to the tracking store: one MLflow run per pipeline run, one per notebook.

A run that passed evaluation also becomes a new version of the registered model, unless it is a
reproduction (`shoprec reproduce`), which checks a run and never ships. Logging is a
separate step from running: `shoprec runs sync` logs runs later, and logging a run twice is a
no-op (`runs/<id>/tracking.json` records where each run was logged).
"""

import contextlib
import json
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shoprec import __version__
from shoprec.artifact import ARTIFACT_KEY, METADATA_FILE
from shoprec.processes import process_alive
from shoprec.redact import redact
from shoprec.runs import (
    EVALUATION_FILE,
    INTERRUPTED,
    MODEL_SUBDIR,
    RUNNING,
    TRACKING_FILE,
    TRAINING_METRICS_FILE,
    executed_notebook,
    read_run,
)
from shoprec.tracking import registry, results
from shoprec.tracking.data_input import data_fingerprint, dataset_input
from shoprec.tracking.store import (
    TrackingError,
    client,
    experiment_id,
    tracking_uri,
    translated,
)
from shoprec.tracking.ui import save_headline_view

if TYPE_CHECKING:
    from mlflow import MlflowClient

MODEL_NAME = "model"
RUNTIME_PACKAGES = ("mlflow", "numpy", "pandas", "scipy", "scikit-learn")
STATUS = {"succeeded": "FINISHED", "failed": "FAILED"}
# What made each run, as the MLflow UI's Source column shows it.
PIPELINE_SOURCE = "shoprec pipeline"
SOURCE_TYPE = {"pipeline": "JOB", "notebook": "NOTEBOOK"}


class RunNotLoggable(TrackingError):
    """A run that is not logged at all: still running, or interrupted (its outputs are partial)."""


@dataclass(frozen=True)
class TrackedRun:
    """Where a run was logged: its MLflow run id and, if registered, its model version.

    `not_registered` says why a run whose model could have been registered was not.
    """

    run_id: str
    mlflow_run_id: str
    model_version: str | None
    already_logged: bool = False
    not_registered: str | None = None


def sync_hint(run_id: str) -> str:
    """The command that logs run `run_id` later."""
    return f"shoprec runs sync {run_id}"


def logged_runs(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Where the run was logged so far, by tracking URI (from `tracking.json`)."""
    path = Path(run_dir) / TRACKING_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def _process_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return True  # not recorded: assume it may still run
    return process_alive(pid)


def check_loggable(record: dict[str, Any]) -> None:
    """Raise RunNotLoggable for a run that is interrupted or still running."""
    run_id, status = record["run_id"], record.get("status")
    if status == INTERRUPTED:
        raise RunNotLoggable(
            f"run {run_id} was interrupted ({record.get('error', 'SIGINT or SIGTERM')}); its "
            "outputs are partial and are not logged"
        )
    if status == RUNNING:
        if _process_alive(record.get("pid")):
            raise RunNotLoggable(f"run {run_id} is still running; sync it when it ends")
        raise RunNotLoggable(
            f"run {run_id} never finished (its process {record.get('pid')} is gone: killed?); "
            "its outputs are partial and are not logged"
        )


def incomplete_evaluation(run_dir: Path) -> str | None:
    """Why the run's evaluation is incomplete (production could not be compared), if it is."""
    path = Path(run_dir) / EVALUATION_FILE
    if not path.is_file():
        return None
    evaluation = json.loads(path.read_text())
    if evaluation.get("status") != "incomplete":
        return None
    reason = (evaluation.get("production") or {}).get("reason", "production was not compared")
    return (
        f"evaluation incomplete ({reason}), so it is not registered; evaluate it again with "
        f"the store reachable: shoprec pipeline --rerun {Path(run_dir).name}"
    )


def log_run(run_dir: Path) -> TrackedRun:
    """Log the run at `run_dir` unless it already is; raises TrackingError when the store fails.

    Raises RunNotLoggable for interrupted and running runs. A run whose evaluation is
    incomplete is logged but not registered (`not_registered` says why).
    """
    run_dir = Path(run_dir)
    record = read_run(run_dir)
    check_loggable(record)
    uri = tracking_uri()
    known = logged_runs(run_dir).get(uri)
    if known:
        return TrackedRun(
            record["run_id"],
            known["mlflow_run_id"],
            known["model_version"],
            True,
            incomplete_evaluation(run_dir),
        )
    with translated():  # the store failing in any way: unreachable, full, locked
        tracked = _log(client(), run_dir, record)
    logged = {
        **logged_runs(run_dir),
        uri: {"mlflow_run_id": tracked.mlflow_run_id, "model_version": tracked.model_version},
    }
    (run_dir / TRACKING_FILE).write_text(json.dumps(logged, indent=2, sort_keys=True) + "\n")
    return tracked


def log_or_explain(run_dir: Path) -> TrackedRun | None:
    """Log the run; on failure print why and how to log it later, and return None."""
    try:
        return log_run(run_dir)
    except TrackingError as error:
        run_id = Path(run_dir).name
        print(
            f"shoprec: run {run_id} was not tracked: {error}\n"
            f"its outputs are kept in {run_dir}; log them later with: {sync_hint(run_id)}",
            file=sys.stderr,
        )
        return None


def _millis(timestamp: str | None) -> int | None:
    return int(datetime.fromisoformat(timestamp).timestamp() * 1000) if timestamp else None


def _merged_parameters(plan: dict[str, dict[str, Any]]) -> dict[str, str]:
    """One flat parameter table: plain names, `<notebook>.<name>` where notebooks disagree."""
    values: dict[str, dict[str, Any]] = {}
    for notebook, parameters in plan.items():
        for name, value in parameters.items():
            values.setdefault(name, {})[notebook] = value
    merged = {}
    for name, by_notebook in values.items():
        distinct = {json.dumps(value, sort_keys=True) for value in by_notebook.values()}
        if len(distinct) == 1:
            merged[name] = _param(next(iter(by_notebook.values())))
        else:
            merged.update({f"{nb}.{name}": _param(value) for nb, value in by_notebook.items()})
    return redact(merged)


def _param(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _engine(run_dir: Path) -> dict[str, Any]:
    """The engine that trained the run's model (`local`, or `spark` with Spark's version)."""
    path = run_dir / TRAINING_METRICS_FILE
    return json.loads(path.read_text()).get("engine", {}) if path.is_file() else {}


def source_tags(record: dict[str, Any], role: str, name: str) -> dict[str, str]:
    """MLflow's source tags: what made the run (`name`), its kind and the git commit."""
    tags = {"mlflow.source.name": name, "mlflow.source.type": SOURCE_TYPE[role]}
    if record.get("git_commit"):
        tags["mlflow.source.git.commit"] = record["git_commit"]
    return tags


def _tags(record: dict[str, Any], run_dir: Path) -> dict[str, str]:
    fingerprint = record.get("data_fingerprint") or {}
    engine = _engine(run_dir)
    seeds = {
        notebook: parameters["seed"]
        for notebook, parameters in record.get("parameters", {}).items()
        if "seed" in parameters
    }
    tags = {
        "mlflow.runName": record["run_id"],
        **source_tags(record, "pipeline", PIPELINE_SOURCE),
        "shoprec.role": "pipeline",
        "shoprec.run_id": record["run_id"],
        "shoprec.status": record.get("status"),
        "shoprec.profile": record.get("profile"),
        "shoprec.dataset": record.get("dataset"),
        "shoprec.git_commit": record.get("git_commit"),
        "shoprec.git_dirty": record.get("git_dirty"),
        "shoprec.lock_sha256": record.get("lock_sha256"),
        "shoprec.packages_sha256": record.get("packages_sha256"),
        "shoprec.python": record.get("python"),
        "shoprec.platform": record.get("platform"),
        "shoprec.seeds": json.dumps(seeds, sort_keys=True),
        "shoprec.duration_s": record.get("duration_s"),
        "shoprec.evaluation_passed": record.get("evaluation_passed"),
        "shoprec.reproduces": record.get("reproduces"),
        "shoprec.production_model_version": record.get("production_model_version"),
        "shoprec.version": __version__,
        "shoprec.engine": engine.get("engine"),
        "shoprec.spark_version": engine.get("spark_version"),
        "shoprec.spark_master": engine.get("spark_master"),
    }
    if fingerprint:
        tags["shoprec.data_fingerprint"] = data_fingerprint(record)
        tags["shoprec.train_fingerprint"] = fingerprint["train"]
        tags["shoprec.test_fingerprint"] = fingerprint["test"]
    return redact({name: _param(value) for name, value in tags.items() if value is not None})


def _log_batch(
    mlflow_client: "MlflowClient",
    run_id: str,
    params: dict[str, str],
    metrics: dict[str, float],
    tags: dict[str, str],
) -> None:
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    mlflow_client.log_batch(
        run_id,
        metrics=[Metric(key, value, now, 0) for key, value in metrics.items()],
        params=[Param(key, value) for key, value in params.items()],
        tags=[RunTag(key, value) for key, value in tags.items()],
    )


def _log_notebooks(
    mlflow_client: "MlflowClient", experiment: str, parent: str, run_dir: Path, record: dict
) -> None:
    failed = record.get("failed_notebook")
    for notebook, parameters in record.get("parameters", {}).items():
        executed = executed_notebook(run_dir, notebook)
        if not executed.is_file():
            continue
        child = mlflow_client.create_run(
            experiment,
            run_name=f"{record['run_id']}/{notebook}",
            tags={
                "mlflow.parentRunId": parent,
                "shoprec.role": "notebook",
                **source_tags(record, "notebook", f"notebooks/{notebook}.ipynb"),
            },
        )
        duration = record.get("durations_s", {}).get(notebook)
        tags = {"shoprec.run_id": record["run_id"], "shoprec.notebook": notebook}
        if duration is not None:
            tags["shoprec.duration_s"] = str(duration)
        params = redact({name: _param(value) for name, value in parameters.items()})
        _log_batch(
            mlflow_client, child.info.run_id, params, results.metrics(run_dir, notebook), tags
        )
        mlflow_client.log_artifact(child.info.run_id, str(executed), "notebooks")
        status = "FAILED" if notebook == failed else "FINISHED"
        mlflow_client.set_terminated(child.info.run_id, status)


def _log_model(mlflow_run_id: str, model_dir: Path) -> str:
    """Log the model as an MLflow pyfunc from code; return its model URI."""
    from importlib import metadata

    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    import shoprec

    code = Path(shoprec.__file__).parent / "mlflow_model.py"
    requirements = [f"{name}=={metadata.version(name)}" for name in RUNTIME_PACKAGES]
    signature = ModelSignature(
        inputs=Schema([ColSpec("long", "user_id"), ColSpec("long", "k", required=False)]),
        outputs=Schema(
            [
                ColSpec("long", "user_id"),
                ColSpec("long", "item_id"),
                ColSpec("long", "rank"),
                ColSpec("double", "score"),
                ColSpec("boolean", "fallback"),
            ]
        ),
    )
    with mlflow.start_run(run_id=mlflow_run_id):
        info = mlflow.pyfunc.log_model(
            name=MODEL_NAME,
            python_model=str(code),
            artifacts={ARTIFACT_KEY: str(model_dir)},
            pip_requirements=requirements,
            signature=signature,
        )
    return info.model_uri


def _register(mlflow_client: "MlflowClient", uri: str, run_id: str, run_dir: Path) -> str:
    existing = registry.version_of_run(mlflow_client, run_id)
    if existing is not None:
        return str(existing.version)
    evaluation = json.loads((run_dir / EVALUATION_FILE).read_text())
    return registry.register(mlflow_client, uri, run_id, run_dir / MODEL_SUBDIR, evaluation)


def _log(mlflow_client: "MlflowClient", run_dir: Path, record: dict[str, Any]) -> TrackedRun:
    experiment = experiment_id(mlflow_client)
    run = mlflow_client.create_run(
        experiment, start_time=_millis(record.get("started_at")), run_name=record["run_id"]
    )
    mlflow_run_id = run.info.run_id
    try:
        # The parent holds the headline metrics (the runs list's columns); each notebook's run
        # holds every metric of its notebook.
        params = _merged_parameters(record.get("parameters", {}))
        metrics, tags = results.headline_metrics(run_dir), _tags(record, run_dir)
        _log_batch(mlflow_client, mlflow_run_id, params, metrics, tags)
        if metrics:
            save_headline_view(mlflow_client, experiment, list(metrics))
        if (data := dataset_input(record, run_dir)) is not None:
            mlflow_client.log_inputs(mlflow_run_id, datasets=[data])
        _log_notebooks(mlflow_client, experiment, mlflow_run_id, run_dir, record)
        for path in sorted(run_dir.iterdir()):
            if path.name != TRACKING_FILE:
                log = mlflow_client.log_artifacts if path.is_dir() else mlflow_client.log_artifact
                log(mlflow_run_id, str(path), path.name if path.is_dir() else None)
        version = None
        model_dir = run_dir / MODEL_SUBDIR
        if (model_dir / METADATA_FILE).is_file():
            uri = _log_model(mlflow_run_id, model_dir)
            # A reproduction checks a run; it never ships (its original was registered).
            if record.get("evaluation_passed") is True and not record.get("reproduces"):
                version = _register(mlflow_client, uri, record["run_id"], run_dir)
    except BaseException:
        with contextlib.suppress(Exception):  # the store may be what failed
            mlflow_client.set_terminated(mlflow_run_id, "FAILED")
            mlflow_client.delete_run(mlflow_run_id)
        raise
    status = STATUS.get(record.get("status", ""), "FAILED")
    mlflow_client.set_terminated(mlflow_run_id, status, end_time=_millis(record.get("finished_at")))
    return TrackedRun(
        record["run_id"], mlflow_run_id, version, False, incomplete_evaluation(run_dir)
    )
