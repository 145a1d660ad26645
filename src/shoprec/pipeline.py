"""The main job: run the notebooks in order with papermill into a fresh `runs/<run-id>/`."""

import argparse
import ast
import json
import logging
import os
import re
import secrets
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import papermill
from papermill.exceptions import PapermillExecutionError

from shoprec.datasets import DATASETS, PROFILES
from shoprec.errors import ShoprecError
from shoprec.execution import execute_notebook
from shoprec.params import check_choice, closest
from shoprec.runs import EVALUATION_FILE, MODEL_SUBDIR, RUN_RECORD, project_dir, runs_dir
from shoprec.tracking import provenance

PIPELINE_NOTEBOOKS = ("01_explore_data", "02_tune", "03_train", "04_evaluate")
# Parameters the pipeline sets to paths inside the run directory.
RUN_PATH_PARAMETERS = ("output_dir", "model_dir", "tuning_file")
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
    run: PipelineRun, notebooks_dir: Path, production_model: Path | None
) -> dict[str, dict[str, Any]]:
    """Every parameter of every notebook in the run: its defaults overridden by what was given."""
    common = {"profile": run.profile, "dataset": run.dataset}
    declared = {
        name: notebook_parameters(notebooks_dir / f"{name}.ipynb") for name in PIPELINE_NOTEBOOKS
    }
    known = set().union(*declared.values()) - set(RUN_PATH_PARAMETERS)
    for name in sorted(run.overrides):
        if name in RUN_PATH_PARAMETERS:
            raise PipelineError(
                f"-p {name}: the pipeline sets {name} to a path inside the run; it cannot be given"
            )
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
            if key in defaults and key not in RUN_PATH_PARAMETERS
        }
        given = {
            key: value for key, value in {**common, **run.overrides}.items() if key in defaults
        }
        plan[name] = {**defaults, **fixed, **given, "output_dir": str(run.directory / name)}
    plan["03_train"]["tuning_file"] = str(run.directory / "02_tune" / "tuning.json")
    plan["04_evaluate"]["model_dir"] = str(run.directory / "03_train" / "model")
    if production_model is not None:
        plan["04_evaluate"]["production_model_dir"] = str(production_model)
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
    run: PipelineRun, *, production_model: ProductionModel | None = None, progress: bool = True
) -> dict[str, Any]:
    """Execute the pipeline notebooks in order; return the run record (status, timings, params)."""
    root = project_dir()
    notebooks_dir = root / NOTEBOOKS_DIR
    plan = plan_parameters(run, notebooks_dir, production_model and production_model.directory)
    (run.directory / "notebooks").mkdir(parents=True)
    packages = provenance.installed_packages()
    packages_json = json.dumps(packages, indent=2) + "\n"
    (run.directory / provenance.PACKAGES_FILE).write_text(packages_json)
    log_handler = logging.FileHandler(run.directory / "pipeline.log")
    logging.getLogger("papermill").addHandler(log_handler)
    logging.getLogger("papermill").setLevel(logging.INFO)
    record: dict[str, Any] = {
        "run_id": run.run_id,
        "profile": run.profile,
        "dataset": run.dataset,
        "overrides": run.overrides,
        "parameters": plan,
        "production_model_version": production_model and production_model.version,
        "reproduces": run.reproduces,
        **provenance.environment(root, packages),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "status": "running",
        "durations_s": {},
    }
    _write_record(run, record)
    started = time.perf_counter()
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
                record.update(status="failed", failed_notebook=name)
                record["error"] = _describe_failure(name, output, error)
                raise PipelineError(record["error"]) from None
            finally:
                record["durations_s"][name] = round(time.perf_counter() - notebook_started, 2)
            if progress:
                print(f"{step} {name:<16} done in {record['durations_s'][name]:.1f} s", flush=True)
        record["status"] = "succeeded"
        record["data_fingerprint"] = _data_fingerprint(run)
        record["evaluation_passed"] = json.loads((run.directory / EVALUATION_FILE).read_text())[
            "passed"
        ]
        return record
    finally:
        record["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        record["duration_s"] = round(time.perf_counter() - started, 2)
        _write_record(run, record)
        _point_latest(run)
        logging.getLogger("papermill").removeHandler(log_handler)
        log_handler.close()


def execute(
    run: PipelineRun, production_model: ProductionModel | None, *, progress: bool = True
) -> tuple[dict[str, Any], bool]:
    """Run the pipeline, then log it to the tracking store.

    Returns the run record and whether it was tracked; a run that could not be tracked keeps
    its outputs, and the error printed says how to log it later. Raises PipelineError when a
    notebook fails (the failed run is still tracked).
    """
    from shoprec.tracking.sync import log_or_explain

    try:
        record = run_pipeline(run, production_model=production_model, progress=progress)
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
    durations = ", ".join(
        f"{name} {seconds:.1f} s" for name, seconds in record["durations_s"].items()
    )
    return [
        f"run {record['run_id']} succeeded in {record['duration_s']:.1f} s ({durations})",
        *lines,
        f"evaluation {verdict} (see {run_dir / EVALUATION_FILE})",
    ]


def current_production_model() -> ProductionModel | None:
    """The model production serves, to evaluate against; None (with a warning) if unknown."""
    from shoprec.tracking import registry
    from shoprec.tracking.store import client, describe

    try:
        mlflow_client = client()
        version = registry.alias_version(mlflow_client, "production")
        if version is None:
            return None
        return ProductionModel(str(version.version), registry.fetch(version))
    except Exception as error:  # the store failing in any way
        print(
            f"shoprec pipeline: warning: cannot fetch the production model ({describe(error)}); "
            "evaluating without the comparison against production",
            file=sys.stderr,
        )
        return None
