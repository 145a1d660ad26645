"""The main job: run the notebooks in order with papermill into a fresh `runs/<run-id>/`."""

import argparse
import ast
import json
import logging
import os
import re
import secrets
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import papermill
from papermill.exceptions import PapermillExecutionError

from shoprec import redact
from shoprec.datasets import DATASETS, PROFILES
from shoprec.errors import ShoprecError
from shoprec.execution import execute_notebook
from shoprec.params import check_choice, closest
from shoprec.policy import POLICY_FILE, THRESHOLDS
from shoprec.runs import COMPLETED, EVALUATION_FILE, MODEL_SUBDIR, RUN_RECORD, project_dir, runs_dir
from shoprec.tracking import provenance

PIPELINE_NOTEBOOKS = ("01_explore_data", "02_tune", "03_train", "04_evaluate")
# Parameters the pipeline sets to paths inside the run directory.
RUN_PATH_PARAMETERS = ("output_dir", "model_dir", "tuning_file")
# --- owned parameters (issue 11): what the pipeline alone may set; `-p` giving one is refused.
PRODUCTION_PARAMETERS = ("production_model_dir", "production_unavailable")
OWNED_PARAMETERS = (*RUN_PATH_PARAMETERS, *PRODUCTION_PARAMETERS)
EXIT_NOT_TRACKED = 3
NOTEBOOKS_DIR = Path("notebooks")
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
HEADLINE_METRICS = ("ndcg", "precision", "recall", "map")


class PipelineError(ShoprecError):
    """A pipeline run that could not start or whose notebook failed."""


@dataclass
class PipelineRun:
    """One execution of the pipeline: where it lives and what it was given.

    `fixed` holds per-notebook parameter values (e.g. a recorded run's) applied over the
    defaults and before `overrides`; `reproduces` names the run this one re-executes.
    """

    run_id: str
    directory: Path
    profile: str
    dataset: str
    overrides: dict[str, Any] = field(default_factory=dict)
    fixed: dict[str, dict[str, Any]] = field(default_factory=dict)
    reproduces: str | None = None


@dataclass(frozen=True)
class ProductionModel:
    """The registered model version production serves, fetched to a local directory."""

    version: str
    directory: Path


@dataclass(frozen=True)
class ProductionUnavailable:
    """Production could not be fetched (the store failed): the evaluation will be incomplete."""

    reason: str


class RunInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived while the pipeline ran."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def check_overrides(overrides: dict[str, Any]) -> None:
    """Refuse `-p` for parameters the pipeline owns and for the deploy policy's thresholds."""
    owned = sorted(set(overrides) & set(OWNED_PARAMETERS))
    if owned:
        raise PipelineError(
            f"-p {', '.join(owned)}: set by the pipeline itself (paths inside the run directory, "
            "the production model to compare with); it cannot be given"
        )
    thresholds = sorted(set(overrides) & set(THRESHOLDS) - {"k"})
    if thresholds:
        raise PipelineError(
            f"-p {', '.join(thresholds)}: deploy thresholds are not run parameters; they live in "
            f"{POLICY_FILE} (versioned with the code, recorded with every evaluation)"
        )


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus a random suffix."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`name=value` pairs to a dict; values are read as JSON when they parse, else as strings."""
    overrides = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name.isidentifier():
            raise PipelineError(
                f"-p {pair!r}: expected name=value with a Python identifier as name"
            )
        try:
            overrides[name] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[name] = raw
    return overrides


def notebook_parameters(notebook: Path) -> dict[str, Any]:
    """The parameters a notebook declares in its `parameters` cell, with their default values."""
    declared = papermill.inspect_notebook(str(notebook))
    return {name: ast.literal_eval(spec["default"]) for name, spec in declared.items()}


def plan_parameters(
    run: PipelineRun,
    notebooks_dir: Path,
    production: "ProductionModel | ProductionUnavailable | None" = None,
) -> dict[str, dict[str, Any]]:
    """Every parameter of every notebook in the run: its defaults overridden by what was given."""
    check_overrides(run.overrides)
    common = {"profile": run.profile, "dataset": run.dataset}
    declared = {
        name: notebook_parameters(notebooks_dir / f"{name}.ipynb") for name in PIPELINE_NOTEBOOKS
    }
    known = set().union(*declared.values()) - set(OWNED_PARAMETERS)
    for name in sorted(run.overrides):
        if name not in known:
            raise PipelineError(
                f"-p {name}: no notebook has such a parameter{closest(name, known)} "
                f"(known: {', '.join(sorted(known))})"
            )
    plan = {}
    for name, defaults in declared.items():
        fixed = {
            key: value
            for key, value in run.fixed.get(name, {}).items()
            if key in defaults and key not in OWNED_PARAMETERS
        }
        given = {
            key: value for key, value in {**common, **run.overrides}.items() if key in defaults
        }
        plan[name] = {**defaults, **fixed, **given, "output_dir": str(run.directory / name)}
    plan["03_train"]["tuning_file"] = str(run.directory / "02_tune" / "tuning.json")
    plan["04_evaluate"]["model_dir"] = str(run.directory / "03_train" / "model")
    if isinstance(production, ProductionModel):
        plan["04_evaluate"]["production_model_dir"] = str(production.directory)
    elif isinstance(production, ProductionUnavailable):
        plan["04_evaluate"]["production_unavailable"] = production.reason
    return plan


def _data_fingerprint(run: PipelineRun) -> dict[str, str]:
    """The content hashes of the train and test interactions the model was trained on."""
    model_json = json.loads((run.directory / MODEL_SUBDIR / "model.json").read_text())
    training = model_json["metadata"]["training"]
    return {"train": training["train_fingerprint"], "test": training["test_fingerprint"]}


def _write_record(run: PipelineRun, record: dict[str, Any]) -> None:
    path = run.directory / RUN_RECORD
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def _point_latest(run: PipelineRun) -> None:
    """Point `runs/latest` at the run (only ever at a completed one: see run_pipeline)."""
    latest = run.directory.parent / "latest"
    staging = run.directory.parent / f".latest-{run.run_id}"
    staging.symlink_to(run.directory.name)
    os.replace(staging, latest)


def _bar(step: str, notebook: str) -> dict[str, Any]:
    """tqdm options for a live line per notebook on a terminal: `[2/4] 02_tune   7/12 cells`."""
    return {
        "desc": f"{step} {notebook:<16}",
        "bar_format": "{desc} {n_fmt:>3}/{total_fmt} cells [{elapsed}]",
        "leave": False,
    }


def _describe_failure(notebook: str, output: Path, error: PapermillExecutionError) -> str:
    evalue = ANSI_ESCAPE.sub("", str(error.evalue))
    return (
        f"notebook {notebook}.ipynb failed in cell {error.cell_index + 1} "
        f"(execution count {error.exec_count}): {error.ename}: {evalue}\n"
        f"the partially executed notebook is kept at {output}"
    )


def run_pipeline(
    run: PipelineRun,
    *,
    production_model: ProductionModel | ProductionUnavailable | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Execute the pipeline notebooks in order; return the run record (status, timings, params)."""
    root = project_dir()
    notebooks_dir = root / NOTEBOOKS_DIR
    plan = plan_parameters(run, notebooks_dir, production_model)
    # --- secrets (issue 11): nothing recorded holds a credential; the kernel gets it from env.
    try:
        plan, secret_env = redact.split_secrets(plan)
    except redact.SecretError as error:
        raise PipelineError(str(error)) from None
    scrub = redact.RedactingFilter([*secret_env.values(), *redact.secrets_in(run.overrides)])
    (run.directory / "notebooks").mkdir(parents=True)
    packages = provenance.installed_packages()
    packages_json = json.dumps(packages, indent=2) + "\n"
    (run.directory / provenance.PACKAGES_FILE).write_text(packages_json)
    log_handler = logging.FileHandler(run.directory / "pipeline.log")
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
    _write_record(run, record)
    started = time.perf_counter()
    saved_environment = {name: os.environ.get(name) for name in secret_env}
    os.environ.update(secret_env)
    previous_handlers = _catch_termination()
    try:
        for number, (name, parameters) in enumerate(plan.items(), start=1):
            step = f"[{number}/{len(plan)}]"
            output = run.directory / "notebooks" / f"{name}.ipynb"
            notebook_started = time.perf_counter()
            try:
                execute_notebook(
                    notebooks_dir / f"{name}.ipynb",
                    output,
                    parameters,
                    progress_bar=progress and sys.stderr.isatty() and _bar(step, name),
                )
            except PapermillExecutionError as error:
                if error.ename == "KeyboardInterrupt":  # Ctrl-C reached the kernel first
                    record.update(status="interrupted", interrupted_notebook=name)
                    record["error"] = f"interrupted by SIGINT in {name}.ipynb"
                    raise RunInterrupted(signal.SIGINT) from None
                record.update(status="failed", failed_notebook=name)
                record["error"] = redact.redact_text(_describe_failure(name, output, error))
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
        _write_record(run, record)
        if record["status"] in COMPLETED:
            _point_latest(run)
        logging.getLogger("papermill").removeHandler(log_handler)
        log_handler.close()


# --- interruption (issue 11): SIGINT and SIGTERM end the run as `interrupted`, not `running`.
def _raise_interrupted(signum: int, frame: object) -> None:
    raise RunInterrupted(signum)


def _catch_termination() -> dict[int, Any]:
    """Make SIGINT and SIGTERM raise RunInterrupted; the handlers they had before."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    return {
        signum: signal.signal(signum, _raise_interrupted)
        for signum in (signal.SIGINT, signal.SIGTERM)
    }


def _restore_termination(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def execute(
    run: PipelineRun,
    production_model: ProductionModel | ProductionUnavailable | None,
    *,
    progress: bool = True,
) -> tuple[dict[str, Any], bool]:
    """Run the pipeline, then log it to the tracking store.

    Returns the run record and whether it was tracked; a run that could not be tracked keeps
    its outputs, and the error printed says how to log it later. Raises PipelineError when a
    notebook fails (the failed run is still tracked).
    """
    from shoprec.tracking.sync import log_or_explain

    try:
        record = run_pipeline(run, production_model=production_model, progress=progress)
    except KeyboardInterrupt:
        raise  # an interrupted run is not logged; `runs sync --all` skips it with a note
    except PipelineError:
        if (run.directory / RUN_RECORD).is_file():
            log_or_explain(run.directory)
        raise
    return record, log_or_explain(run.directory) is not None


def pipeline_command(args: argparse.Namespace) -> int:
    """`shoprec pipeline`: run the notebooks into a new run, track it, print the outcome."""
    check_choice("--profile", args.profile, sorted(PROFILES))
    check_choice("--dataset", args.dataset, DATASETS)
    try:
        overrides = parse_overrides(args.parameter)
        plan_parameters(
            PipelineRun("check", Path("check"), args.profile, args.dataset, overrides),
            project_dir() / NOTEBOOKS_DIR,
            None,
        )  # unknown or pipeline-owned names are refused before anything runs
        run_id = new_run_id()
        run = PipelineRun(run_id, runs_dir() / run_id, args.profile, args.dataset, overrides)
        print(f"run {run_id}: profile={args.profile} dataset={args.dataset} -> {run.directory}")
        record, tracked = execute(run, current_production_model(), progress=not args.quiet)
    except PipelineError as error:
        print(f"shoprec pipeline: {error}", file=sys.stderr)
        return 1
    except RunInterrupted as interruption:
        print(
            f"shoprec pipeline: run {run_id} interrupted by {interruption}; its partial outputs "
            f"are kept in {run.directory} (status: interrupted)",
            file=sys.stderr,
        )
        return 128 + interruption.signum
    print("\n".join(outcome_lines(run.directory, record)))
    return 0 if tracked else EXIT_NOT_TRACKED


def outcome_lines(run_dir: Path, record: dict[str, Any]) -> list[str]:
    """The end of a run's output: headline metrics, each gate check, and the decision."""
    evaluation = json.loads((run_dir / EVALUATION_FILE).read_text())
    k = evaluation.get("k", "k")
    lines = []
    for model, metrics in evaluation.get("metrics", {}).items():
        shown = [f"{name}@{k} {metrics[name]:.4f}" for name in HEADLINE_METRICS if name in metrics]
        lines.append(f"  {model:<22} " + "  ".join(shown))
    for check in evaluation.get("checks", []):
        lines.append(f"  {'pass' if check['passed'] else 'FAIL'}  {check['check']}")
    verdict = "PASSED: it may be deployed" if record["evaluation_passed"] else "did NOT pass"
    if record.get("evaluation_status") == "incomplete":
        verdict = "is INCOMPLETE: production could not be compared, so it cannot be deployed"
    durations = ", ".join(
        f"{name} {seconds:.1f} s" for name, seconds in record["durations_s"].items()
    )
    return [
        f"run {record['run_id']} succeeded in {record['duration_s']:.1f} s ({durations})",
        *lines,
        f"evaluation {verdict} (see {run_dir / EVALUATION_FILE})",
    ]


def current_production_model() -> ProductionModel | ProductionUnavailable | None:
    """The model production serves, to evaluate against; None when nothing is in production.

    When the store fails, a warning is printed and the evaluation will be `incomplete`.
    """
    from shoprec.tracking import registry
    from shoprec.tracking.store import client, describe

    try:
        mlflow_client = client()
        version = registry.alias_version(mlflow_client, "production")
        if version is None:
            return None
        return ProductionModel(str(version.version), registry.fetch(version))
    except Exception as error:  # the store failing in any way
        reason = f"cannot fetch the production model ({describe(error)})"
        print(
            f"shoprec pipeline: warning: {reason}; the evaluation will be incomplete and the "
            "run cannot be deployed",
            file=sys.stderr,
        )
        return ProductionUnavailable(redact.redact_text(reason))
