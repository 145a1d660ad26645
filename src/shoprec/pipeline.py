"""The main job: run the notebooks in order with papermill into a fresh `runs/<run-id>/`."""

import argparse
import ast
import json
import logging
import os
import re
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import papermill
from papermill.exceptions import PapermillExecutionError

from shoprec.datasets import DATASETS, PROFILES
from shoprec.runs import RUN_RECORD, project_dir, runs_dir

PIPELINE_NOTEBOOKS = ("01_explore_data", "02_train", "03_evaluate")
NOTEBOOKS_DIR = Path("notebooks")
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


class PipelineError(RuntimeError):
    """A pipeline run that could not start or whose notebook failed."""


@dataclass
class PipelineRun:
    """One execution of the pipeline: where it lives and what it was given."""

    run_id: str
    directory: Path
    profile: str
    dataset: str
    overrides: dict[str, Any] = field(default_factory=dict)


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


def _git_commit(root: Path) -> str | None:
    result = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or None


def plan_parameters(
    run: PipelineRun, notebooks_dir: Path, production_model: Path | None
) -> dict[str, dict[str, Any]]:
    """Every parameter of every notebook in the run: its defaults overridden by what was given."""
    common = {"profile": run.profile, "dataset": run.dataset, **run.overrides}
    declared = {
        name: notebook_parameters(notebooks_dir / f"{name}.ipynb") for name in PIPELINE_NOTEBOOKS
    }
    unknown = set(run.overrides) - set().union(*declared.values())
    if unknown:
        known = sorted(set().union(*declared.values()) - {"output_dir"})
        raise PipelineError(
            f"-p {sorted(unknown)}: no notebook has such a parameter; known: {known}"
        )
    plan = {}
    for name, defaults in declared.items():
        given = {key: value for key, value in common.items() if key in defaults}
        plan[name] = {**defaults, **given, "output_dir": str(run.directory / name)}
    plan["03_evaluate"]["model_dir"] = str(run.directory / "02_train" / "model")
    if production_model is not None:
        plan["03_evaluate"]["production_model_dir"] = str(production_model)
    return plan


def _write_record(run: PipelineRun, record: dict[str, Any]) -> None:
    path = run.directory / RUN_RECORD
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def _point_latest(run: PipelineRun) -> None:
    latest = run.directory.parent / "latest"
    staging = run.directory.parent / f".latest-{run.run_id}"
    staging.symlink_to(run.directory.name)
    os.replace(staging, latest)


def _describe_failure(notebook: str, output: Path, error: PapermillExecutionError) -> str:
    evalue = ANSI_ESCAPE.sub("", str(error.evalue))
    return (
        f"notebook {notebook}.ipynb failed in cell {error.cell_index + 1} "
        f"(execution count {error.exec_count}): {error.ename}: {evalue}\n"
        f"the partially executed notebook is kept at {output}"
    )


def run_pipeline(
    run: PipelineRun, *, production_model: Path | None = None, progress: bool = True
) -> dict[str, Any]:
    """Execute the pipeline notebooks in order; return the run record (status, timings, params)."""
    root = project_dir()
    notebooks_dir = root / NOTEBOOKS_DIR
    plan = plan_parameters(run, notebooks_dir, production_model)
    (run.directory / "notebooks").mkdir(parents=True)
    log_handler = logging.FileHandler(run.directory / "pipeline.log")
    logging.getLogger("papermill").addHandler(log_handler)
    logging.getLogger("papermill").setLevel(logging.INFO)
    record: dict[str, Any] = {
        "run_id": run.run_id,
        "profile": run.profile,
        "dataset": run.dataset,
        "overrides": run.overrides,
        "parameters": plan,
        "git_commit": _git_commit(root),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "status": "running",
        "durations_s": {},
    }
    _write_record(run, record)
    try:
        for name, parameters in plan.items():
            output = run.directory / "notebooks" / f"{name}.ipynb"
            started = time.perf_counter()
            try:
                papermill.execute_notebook(
                    str(notebooks_dir / f"{name}.ipynb"),
                    str(output),
                    parameters=parameters,
                    cwd=str(notebooks_dir),
                    progress_bar=progress,
                    kernel_name="python3",
                )
            except PapermillExecutionError as error:
                record.update(status="failed", failed_notebook=name)
                record["error"] = _describe_failure(name, output, error)
                raise PipelineError(record["error"]) from None
            finally:
                record["durations_s"][name] = round(time.perf_counter() - started, 2)
        record["status"] = "succeeded"
        record["evaluation_passed"] = json.loads(
            (run.directory / "03_evaluate" / "evaluation.json").read_text()
        )["passed"]
        return record
    finally:
        record["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        _write_record(run, record)
        _point_latest(run)
        logging.getLogger("papermill").removeHandler(log_handler)
        log_handler.close()


def _command(args: argparse.Namespace) -> int:
    try:
        overrides = parse_overrides(args.parameter)
        run_id = new_run_id()
        run = PipelineRun(run_id, runs_dir() / run_id, args.profile, args.dataset, overrides)
        print(f"run {run_id}: profile={args.profile} dataset={args.dataset} -> {run.directory}")
        record = run_pipeline(run, production_model=_production_model(), progress=not args.quiet)
    except PipelineError as error:
        print(f"shoprec pipeline: {error}", file=sys.stderr)
        return 1
    verdict = "passed" if record["evaluation_passed"] else "did NOT pass"
    print(f"run {run_id} succeeded; evaluation {verdict} (see {run.directory / '03_evaluate'})")
    return 0


def _production_model() -> Path | None:
    from shoprec.deploy.state import serving_model_dir

    return serving_model_dir("production")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `shoprec pipeline` to the command line."""
    parser = subparsers.add_parser(
        "pipeline", help="run the notebooks in order into runs/<run-id>/"
    )
    parser.add_argument("--profile", choices=sorted(PROFILES), default="default")
    parser.add_argument("--dataset", choices=DATASETS, default="synthetic")
    parser.add_argument(
        "-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
        help="override a notebook parameter (repeatable); values are parsed as JSON when possible",
    )  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=_command)
