"""`shoprec report`: run base and head, compare them, write the report."""

import argparse
import shutil
import signal
import sys
import time
from pathlib import Path

from shoprec.datasets import DATASETS, PROFILES
from shoprec.errors import exit_code_of_signal
from shoprec.params import check_choice
from shoprec.pipeline.plan import check_overrides, parse_overrides
from shoprec.report import git
from shoprec.report.bootstrap import WORSE
from shoprec.report.cache import SideCache, data_fingerprint
from shoprec.report.changes import DIFF_PAGES, changed
from shoprec.report.comparison import compare
from shoprec.report.errors import ReportError, SideFailed
from shoprec.report.inputs import load_side
from shoprec.report.plots import PLOTS, write_plots
from shoprec.report.render import (
    REPORT_FILES,
    REPORT_MD,
    Sides,
    estimate_line,
    report_json,
    write_failure,
    write_report,
)
from shoprec.report.sides import KEPT_RUNS_DIR, LOGS_DIR, Side, Spec, key_of, read_side, run_sides
from shoprec.runs import project_dir
from shoprec.settings import get_settings

REPORTS_DIR = Path("reports")
CACHE_SUBDIR = Path("report")


def cache_root() -> Path:
    """Where side results and venvs are kept: `$SHOPREC_CACHE_DIR/report/`."""
    return get_settings().cache_dir / CACHE_SUBDIR


def side_cache() -> SideCache:
    """The cache of side results (`$SHOPREC_CACHE_DIR/report/sides/<key>/`)."""
    return SideCache(cache_root() / "sides")


def resolve_sides(repo: Path, base_ref: str, head_ref: str | None) -> tuple[Side, Side, list[str]]:
    """Base and head, and the uncommitted changes head leaves out (when head is the work tree's).

    Without `--head`, head is the commit checked out: the report runs commits, so uncommitted
    changes are not part of it (they are listed, to be committed first if they should be).
    """
    base_commit = git.resolve_commit(repo, base_ref, "--base")
    head_commit = git.resolve_commit(repo, head_ref or "HEAD", "--head")
    uncommitted = git.uncommitted_paths(repo) if head_ref is None else []
    base = read_side(repo, "base", base_ref, base_commit)
    head = read_side(repo, "head", head_ref or "HEAD", head_commit)
    return base, head, uncommitted


def build_spec(args: argparse.Namespace) -> Spec:
    """The profile, dataset and parameters both sides run with, checked before anything runs."""
    check_choice("--profile", args.profile, sorted(PROFILES))
    check_choice("--dataset", args.dataset, DATASETS)
    overrides = parse_overrides(args.parameter)
    check_overrides(overrides)
    return Spec(args.profile, args.dataset, overrides, data_fingerprint(args.dataset, overrides))


def clear_previous_report(out: Path) -> None:
    """Make `out` and remove what an earlier report wrote there (and only that), so nothing of
    it (a diff page of a notebook that no longer changes, say) is mistaken for this report's."""
    out.mkdir(parents=True, exist_ok=True)
    for name in (*REPORT_FILES, *PLOTS):
        (out / name).unlink(missing_ok=True)
    for folder in (DIFF_PAGES, LOGS_DIR, KEPT_RUNS_DIR):
        shutil.rmtree(out / folder, ignore_errors=True)


def report_command(args: argparse.Namespace) -> int:
    """`shoprec report`: the report on what head does to the model, compared with base.

    SIGTERM stops it as Ctrl-C does: the sides' pipelines are stopped and their worktrees
    removed before it exits.
    """
    received = []

    def stop(signum: int, frame: object) -> None:
        received.append(signum)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        return _report(args)
    except KeyboardInterrupt:
        if not received:
            raise  # Ctrl-C: the command line reports it (exit 130)
        print("shoprec report: stopped by SIGTERM; the sides' pipelines too", file=sys.stderr)
        return exit_code_of_signal(received[0])
    finally:
        signal.signal(signal.SIGTERM, previous)


def _report(args: argparse.Namespace) -> int:
    repo = git.repository_root(project_dir())
    spec = build_spec(args)
    base, head, uncommitted = resolve_sides(repo, args.base, args.head)
    if args.cache_key:
        print(key_of(base, spec) or "")
        return 0
    if uncommitted:
        print(
            f"shoprec report: warning: head is commit {git.short(head.commit)}; "
            f"{len(uncommitted)} uncommitted change(s) are not part of it "
            f"({', '.join(uncommitted[:5])}{' ...' if len(uncommitted) > 5 else ''})",
            file=sys.stderr,
        )
    started = time.perf_counter()
    out = args.out or repo / REPORTS_DIR / f"{git.short(base.commit)}..{git.short(head.commit)}"
    clear_previous_report(out)
    try:
        runs = run_sides(
            repo,
            [base, head],
            spec,
            side_cache(),
            cache_root() / "venvs",
            out / LOGS_DIR,
        )
    except SideFailed as error:
        sides = ({"ref": side.ref, "commit": side.commit} for side in (base, head))
        write_failure(out, *sides, str(error))
        raise
    ran = time.perf_counter()
    sides = Sides(
        runs["base"],
        runs["head"],
        load_side(runs["base"].directory, base.label),
        load_side(runs["head"].directory, head.label),
    )
    try:
        comparison = compare(sides.base_data, sides.head_data)
    except ValueError as error:
        raise ReportError(f"cannot compare {base.label} with {head.label}: {error}") from None
    changes = changed(
        repo,
        base.commit,
        head.commit,
        (runs["base"].directory, runs["head"].directory),
        (sides.base_data.training, sides.head_data.training),
        out,
    )
    plots = write_plots(comparison, out)
    report = report_json(sides, spec, comparison, changes, uncommitted, plots)
    write_report(report, out)
    k = comparison.k
    print(f"{base.label} -> {head.label}, {comparison.users['head']:,} test users:")
    print("\n".join(estimate_line(name, k, found) for name, found in comparison.metrics.items()))
    print(f"  head's evaluation: {report['gate']['status']}")
    done = time.perf_counter()
    print(
        f"report: {out / REPORT_MD} in {done - started:.1f} s "
        f"(sides {ran - started:.1f} s, comparison, plots and diffs {done - ran:.1f} s)"
    )
    failed = not report["gate"]["passed"] or any(
        found.verdict == WORSE for found in comparison.metrics.values()
    )
    return 1 if args.check and failed else 0
