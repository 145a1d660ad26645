"""Execute a planned run: papermill runs each notebook, the run record follows every step."""

import json
import logging
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

from shoprec import redact
from shoprec.artifact import METADATA_FILE
from shoprec.execution import NotebookFailed, execute_notebook
from shoprec.pipeline.plan import (
    PipelineError,
    PipelineRun,
    ProductionModel,
    ProductionUnavailable,
    plan_parameters,
)
from shoprec.runs import (
    COMPLETED,
    EVALUATION_FILE,
    EXECUTED_NOTEBOOKS,
    MODEL_SUBDIR,
    PACKAGES_FILE,
    PIPELINE_LOG,
    executed_notebook,
    notebooks_dir,
    point_latest,
    project_dir,
    write_run,
)
from shoprec.tracking import provenance


class RunInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived while the pipeline ran."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _data_fingerprint(run: PipelineRun) -> dict[str, str]:
    """The content hashes of the train and test interactions the model was trained on."""
    model_json = json.loads((run.directory / MODEL_SUBDIR / METADATA_FILE).read_text())
    training = model_json["metadata"]["training"]
    return {"train": training["train_fingerprint"], "test": training["test_fingerprint"]}


def _bar(step: str, notebook: str) -> dict[str, Any]:
    """tqdm options for a live line per notebook on a terminal: `[2/4] 02_tune   7/12 cells`."""
    return {
        "desc": f"{step} {notebook:<16}",
        "bar_format": "{desc} {n_fmt:>3}/{total_fmt} cells [{elapsed}]",
        "leave": False,
    }


def run_pipeline(
    run: PipelineRun,
    *,
    production_model: ProductionModel | ProductionUnavailable | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Execute the pipeline notebooks in order; return the run record (status, timings, params)."""
    root = project_dir()
    notebooks = notebooks_dir()
    plan = plan_parameters(run, notebooks, production_model)
    # Nothing recorded holds a credential: the kernel gets secrets from its environment.
    try:
        plan, secret_env = redact.split_secrets(plan)
    except redact.SecretError as error:
        raise PipelineError(str(error)) from None
    scrub = redact.RedactingFilter([*secret_env.values(), *redact.secrets_in(run.overrides)])
    (run.directory / EXECUTED_NOTEBOOKS).mkdir(parents=True)
    packages = provenance.installed_packages()
    (run.directory / PACKAGES_FILE).write_text(json.dumps(packages, indent=2) + "\n")
    log_handler = logging.FileHandler(run.directory / PIPELINE_LOG)
    log_handler.addFilter(scrub)
    logging.getLogger("papermill").addHandler(log_handler)
    logging.getLogger("papermill").setLevel(logging.INFO)
    record: dict[str, Any] = {
        "run_id": run.run_id,
        "profile": run.profile,
        "dataset": run.dataset,
        "overrides": redact.redact(run.overrides),
        "parameters": plan,
        "production_model_version": getattr(production_model, "version", None),
        "reproduces": run.reproduces,
        **provenance.environment(root, packages),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "status": "running",
        "pid": os.getpid(),
        "durations_s": {},
    }
    write_run(run.directory, record)
    started = time.perf_counter()
    saved_environment = {name: os.environ.get(name) for name in secret_env}
    os.environ.update(secret_env)
    previous_handlers = _catch_termination()
    try:
        for number, (name, parameters) in enumerate(plan.items(), start=1):
            step = f"[{number}/{len(plan)}]"
            output = executed_notebook(run.directory, name)
            notebook_started = time.perf_counter()
            try:
                execute_notebook(
                    notebooks / f"{name}.ipynb",
                    output,
                    parameters,
                    progress_bar=progress and sys.stderr.isatty() and _bar(step, name),
                )
            except NotebookFailed as error:
                if error.interrupted:  # Ctrl-C reached the kernel first
                    record.update(status="interrupted", interrupted_notebook=name)
                    record["error"] = f"interrupted by SIGINT in {name}.ipynb"
                    raise RunInterrupted(signal.SIGINT) from None
                record.update(status="failed", failed_notebook=name)
                record["error"] = redact.redact_text(str(error))
                raise PipelineError(record["error"]) from None
            except KeyboardInterrupt as interruption:
                record.update(status="interrupted", interrupted_notebook=name)
                record["error"] = f"interrupted by {interruption} in {name}.ipynb"
                raise
            finally:
                record["durations_s"][name] = round(time.perf_counter() - notebook_started, 2)
            if progress:
                print(f"{step} {name:<16} done in {record['durations_s'][name]:.1f} s", flush=True)
        record["status"] = "succeeded"
        record["data_fingerprint"] = _data_fingerprint(run)
        evaluation = json.loads((run.directory / EVALUATION_FILE).read_text())
        record["evaluation_passed"] = evaluation["passed"] is True
        record["evaluation_status"] = evaluation.get("status")
        return record
    finally:
        _restore_termination(previous_handlers)
        for name, value in saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if record["status"] == "running":  # an error of our own, not a notebook's
            record["status"] = "failed"
        record["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        record["duration_s"] = round(time.perf_counter() - started, 2)
        write_run(run.directory, record)
        if record["status"] in COMPLETED and run.ships:
            point_latest(run.directory)
        logging.getLogger("papermill").removeHandler(log_handler)
        log_handler.close()


# SIGINT and SIGTERM end the run as `interrupted`, not `running`.
def _raise_interrupted(signum: int, frame: object) -> None:
    raise RunInterrupted(signum)


def _catch_termination() -> dict[int, Any]:
    """Make SIGINT and SIGTERM raise RunInterrupted; the handlers they had before."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {
        signum: signal.signal(signum, _raise_interrupted)
        for signum in (signal.SIGINT, signal.SIGTERM)
    }


def _restore_termination(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
