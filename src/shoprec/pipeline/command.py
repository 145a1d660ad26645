"""`shoprec pipeline`: plan a run, execute it, track it, and print its outcome."""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from shoprec.datasets import DATASETS, PROFILES
from shoprec.errors import EXIT_NOT_TRACKED, exit_code_of_signal
from shoprec.params import check_choice
from shoprec.pipeline.execute import RunInterrupted, run_pipeline
from shoprec.pipeline.plan import (
    PipelineError,
    PipelineRun,
    ProductionModel,
    ProductionUnavailable,
    parse_overrides,
    plan_parameters,
)
from shoprec.pipeline.production import current_production_model
from shoprec.runs import (
    EVALUATION_FILE,
    RUN_RECORD,
    new_run_id,
    notebooks_dir,
    read_run,
    resolve_run,
    runs_dir,
)
from shoprec.tracking.results import HEADLINE_METRICS


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
    try:
        overrides = parse_overrides(args.parameter)
        recipe = _recipe(args)
        check_choice("--profile", recipe["profile"], sorted(PROFILES))
        check_choice("--dataset", recipe["dataset"], DATASETS)
        plan_parameters(
            PipelineRun("check", Path("check"), overrides=overrides, **recipe),
            notebooks_dir(),
            None,
        )  # unknown or pipeline-owned names are refused before anything runs
        run_id = new_run_id()
        run = PipelineRun(run_id, runs_dir() / run_id, overrides=overrides, **recipe)
        rerun = f" (re-running run {args.rerun})" if args.rerun else ""
        print(
            f"run {run_id}: profile={run.profile} dataset={run.dataset}{rerun} -> {run.directory}"
        )
        record, tracked = execute(run, current_production_model(), progress=not args.quiet)
    except RunInterrupted as interruption:
        print(
            f"shoprec pipeline: run {run_id} interrupted by {interruption}; its partial outputs "
            f"are kept in {run.directory} (status: interrupted)",
            file=sys.stderr,
        )
        return exit_code_of_signal(interruption.signum)
    print("\n".join(outcome_lines(run.directory, record)))
    return 0 if tracked else EXIT_NOT_TRACKED


def _recipe(args: argparse.Namespace) -> dict[str, Any]:
    """The profile, dataset and recorded parameters a new run starts from: with `--rerun`, those
    the named run recorded; `--profile` and `--dataset` when given; else the defaults."""
    recorded: dict[str, Any] = {"profile": "default", "dataset": "synthetic", "fixed": {}}
    if args.rerun:
        record = read_run(resolve_run(args.rerun))
        recorded = {key: record[key] for key in ("profile", "dataset")}
        recorded["fixed"] = record["parameters"]
    given = {"profile": args.profile, "dataset": args.dataset}
    return {**recorded, **{key: value for key, value in given.items() if value is not None}}


def outcome_lines(run_dir: Path, record: dict[str, Any]) -> list[str]:
    """The end of a run's output: headline metrics, each gate check, and the decision."""
    evaluation = json.loads((run_dir / EVALUATION_FILE).read_text())
    k = evaluation.get("k", "k")
    rows = evaluation.get("metrics", {})
    width = max(map(len, rows), default=0)  # one column of model names, however long
    lines = []
    for model, metrics in rows.items():
        shown = [f"{name}@{k} {metrics[name]:.4f}" for name in HEADLINE_METRICS if name in metrics]
        lines.append(f"  {model:<{width}}  " + "  ".join(shown))
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
