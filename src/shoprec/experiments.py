"""Commands on experiments: `reproduce`, `runs list`, `runs sync` and `runs compare` (handlers)."""

import argparse
import sys

from shoprec.errors import EXIT_NOT_TRACKED, UsageError
from shoprec.pipeline.plan import parse_overrides
from shoprec.runs import PIPELINE_NOTEBOOKS, RUN_RECORD, RunError, resolve_run, runs_dir
from shoprec.tracking.compare import Comparison


def list_command(args: argparse.Namespace) -> int:
    """The runs, newest first, as a table (or JSON)."""
    from shoprec.tracking.listing import as_json, as_table, list_runs

    if args.limit < 0:
        raise UsageError(f"--limit {args.limit}: expected a number of runs >= 0 (0: all)")
    rows, total, note = list_runs(args.limit or None)
    if note:
        print(f"shoprec runs list: {note}", file=sys.stderr)
    if args.json:
        print(as_json(rows))
        return 0
    if not rows:
        print(f"no runs yet under {runs_dir()}: make pipeline")
        return 0
    print("\n".join(as_table(rows)))
    if len(rows) < total:
        print(f"({len(rows)} of {total} runs; --limit 0 shows all)")
    return 0


def sync_command(args: argparse.Namespace) -> int:
    """Log runs that are not in the tracking store yet."""
    from shoprec.tracking.store import TrackingError, tracking_uri
    from shoprec.tracking.sync import RunNotLoggable, log_run, sync_hint

    if args.all:
        found = runs_dir().glob(f"*/{RUN_RECORD}")
        run_dirs = sorted(p.parent for p in found if not p.parent.is_symlink())
    elif args.run_id:
        run_dirs = [resolve_run(args.run_id)]
    else:
        raise RunError("give a RUN_ID or --all")
    failed = refused = 0
    for run_dir in run_dirs:
        try:
            tracked = log_run(run_dir)
        except RunNotLoggable as error:
            # --all skips interrupted and running runs with a note; naming one is a refusal.
            refused += 0 if args.all else 1
            print(f"{run_dir.name}: skipped: {error}", file=sys.stderr)
            continue
        except TrackingError as error:
            failed += 1
            print(f"{run_dir.name}: not logged: {error}", file=sys.stderr)
            continue
        outcome = "already logged" if tracked.already_logged else "logged"
        registered = f", model version {tracked.model_version}" if tracked.model_version else ""
        print(f"{run_dir.name}: {outcome} as MLflow run {tracked.mlflow_run_id}{registered}")
        if tracked.not_registered:
            refused += 0 if args.all else 1
            print(f"{run_dir.name}: {tracked.not_registered}", file=sys.stderr)
    print(f"tracking store: {tracking_uri()}")
    if failed:
        print(f"{failed} run(s) not logged; retry with: {sync_hint('RUN_ID')}", file=sys.stderr)
    return 1 if failed or refused else 0


def compare_command(args: argparse.Namespace) -> int:
    """What changed between two runs: headline metrics, parameters, notebooks (--full: all)."""
    from shoprec.devtools.nbdiff_html import text_diff, write_diff_page
    from shoprec.tracking import compare
    from shoprec.tracking.compare_page import NotebookPage, write_index

    run_a, run_b = resolve_run(args.run_a), resolve_run(args.run_b)
    parameters, _ = compare.compare_runs(run_a, run_b)
    metrics = compare.compare_metrics(run_a, run_b)
    headlines = compare.headlines(run_a, run_b)
    print(f"run A {run_a.name} -> run B {run_b.name}")
    print("headline metrics (candidate, evaluation):")
    print("\n".join(line.line() for line in headlines) or "  (none)")
    changed = compare.changed_parameters(parameters)
    print(f"parameters: {len(changed)} changed" + (":" if changed else ""))
    print("\n".join(changed), end="\n" if changed else "")
    counts = f"{metrics.identical} identical, {len(metrics.differences)} different"
    print(f"metrics: {counts}")
    pages = []
    if args.full:
        print("\n".join(compare.report("  all metrics", metrics)[1:]))
    for notebook in PIPELINE_NOTEBOOKS:
        base = compare.executed_notebook(run_a, notebook)
        remote = compare.executed_notebook(run_b, notebook)
        diff = text_diff(base, remote)
        print(f"notebook {notebook}.ipynb: {'changed' if diff else 'unchanged'}")
        if diff and args.full:
            print(diff, end="" if diff.endswith("\n") else "\n")
        if args.html:
            title = f"{notebook}.ipynb: run {run_a.name} → run {run_b.name}"
            page = write_diff_page(base, remote, args.html / notebook, title=title)
            pages.append(NotebookPage(notebook, f"{notebook}/{page.name}", bool(diff)))
    if args.html:
        index = write_index(args.html, run_a=run_a.name, run_b=run_b.name, headlines=headlines,
                            parameters=changed, metrics=counts, pages=pages)  # fmt: skip
        print(f"wrote {index} (and a diff page per notebook beside it)", file=sys.stderr)
    if not args.full:
        print("(--full: every metric and the notebook diffs)")
    return 0


def reproduce_command(args: argparse.Namespace) -> int:
    """Re-execute a run and report whether parameters and metrics are identical."""
    from shoprec.reproduce import reproduce
    from shoprec.tracking import compare

    outcome = reproduce(args.run_id, parse_overrides(args.parameter), progress=not args.quiet)
    lines = compare.report("parameters", outcome.parameters)
    lines += compare.report("metrics", outcome.metrics)
    print("\n".join(lines))
    if outcome.identical:
        print(f"reproduced: run {outcome.run_id} is identical to run {outcome.original_id}")
        return 0 if outcome.tracked else EXIT_NOT_TRACKED
    parts = [
        f"{title} {_names(comparison)}"
        for title, comparison in (("parameters", outcome.parameters), ("metrics", outcome.metrics))
        if comparison.differences
    ]
    print(
        f"NOT reproduced: run {outcome.run_id} differs from run {outcome.original_id} in "
        + "; ".join(parts)
    )
    return 1


def _names(comparison: Comparison, shown: int = 5) -> str:
    names = [item.name for item in comparison.differences]
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
