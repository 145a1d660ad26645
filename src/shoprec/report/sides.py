"""Each side's pipeline, run from its own git worktree with its own package and notebooks.

A side runs `python -m shoprec.cli pipeline` in a detached worktree of its commit, with that
worktree's `src/` first on the path (so the side's notebooks import the side's package) and its
own project folder (runs and tracking store stay inside the worktree, which is removed after: a
report never writes the team's tracking store). The sides that are not cached run at once.
"""

import json
import os
import shutil
import subprocess
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shoprec.errors import EXIT_NOT_TRACKED
from shoprec.report import git
from shoprec.report.cache import SIDE_RECORD, SideCache, side_key
from shoprec.report.environments import (
    Environment,
    empty_tracking_store,
    environment_for,
    lock_sha256,
)
from shoprec.report.errors import ReportError, SideFailed
from shoprec.runs import LATEST, MODEL_SUBDIR, RUN_RECORD, RUNS_DIR
from shoprec.settings import environment_variable
from shoprec.tracking.provenance import LOCK_FILE
from shoprec.tracking.store import local_database

# What a commit's 04_evaluate must write for the report to compare it (see the notebook).
REPORT_INPUTS = ("recommendations_top20.csv", "train_interactions.csv", "catalogue.csv")
EVALUATE_NOTEBOOK = "notebooks/04_evaluate.ipynb"
# Read from the environment by shoprec; a side gets its own (its worktree, its own store).
SIDE_OWNED_VARIABLES = (
    environment_variable("project_dir"),
    environment_variable("tracking_uri"),
    "PYTHONPATH",
)
LOG_TAIL = 12  # lines of a failed side's log quoted in the error
LOGS_DIR = "logs"  # in the report's folder: each side's pipeline output
KEPT_RUNS_DIR = "runs"  # in the report's folder: sides on a live database (never cached)


@dataclass(frozen=True)
class Side:
    """One side of a report: the ref given, its commit and its lock file."""

    name: str  # "base" or "head"
    ref: str
    commit: str
    lock: bytes

    @property
    def label(self) -> str:
        """`base abc1234567 (main)`."""
        named = f" ({self.ref})" if self.ref not in (self.commit, git.short(self.commit)) else ""
        return f"{self.name} {git.short(self.commit)}{named}"


@dataclass(frozen=True)
class Spec:
    """What both sides are run with: the same profile, dataset and parameters."""

    profile: str
    dataset: str
    overrides: dict[str, Any] = field(default_factory=dict)
    data: str | None = None  # data_fingerprint(); None: a live database, never cached


@dataclass(frozen=True)
class SideRun:
    """A side's results: its cache entry (the run folder and `side.json`)."""

    side: Side
    directory: Path
    record: dict[str, Any]
    cached: bool


def read_side(repo: Path, name: str, ref: str, commit: str) -> Side:
    """The side `name` at `commit`, refused early when its 04_evaluate lacks the report's inputs."""
    notebook = git.show(repo, commit, EVALUATE_NOTEBOOK)
    if notebook is None:
        raise ReportError(f"{name} {git.short(commit)} ({ref}): has no {EVALUATE_NOTEBOOK}")
    missing = [file for file in REPORT_INPUTS if file.encode() not in notebook]
    if missing:
        raise ReportError(
            f"{name} {git.short(commit)} ({ref}): its {EVALUATE_NOTEBOOK} does not write "
            f"{', '.join(missing)}, which shoprec report compares; it predates the report: "
            "compare against a later commit"
        )
    lock = git.show(repo, commit, LOCK_FILE)
    if lock is None:
        raise ReportError(f"{name} {git.short(commit)} ({ref}): has no {LOCK_FILE}")
    return Side(name, ref, commit, lock)


def key_of(side: Side, spec: Spec) -> str | None:
    """The cache key of a side's results, or None when the data is a live database."""
    if spec.data is None:
        return None
    return side_key(
        side.commit, lock_sha256(side.lock), spec.data, spec.profile, spec.dataset, spec.overrides
    )


def run_sides(
    repo: Path,
    sides: list[Side],
    spec: Spec,
    cache: SideCache,
    venvs: Path,
    logs: Path,
) -> dict[str, SideRun]:
    """Each side's results by name: from the cache, else from its pipeline (all at once)."""
    results: dict[str, SideRun] = {}
    to_run: dict[str, list[Side]] = {}
    for side in sides:
        key = key_of(side, spec)
        entry = cache.get(key) if key is not None else None
        if entry is not None:
            record = json.loads((entry / SIDE_RECORD).read_text())
            results[side.name] = SideRun(side, entry, record, cached=True)
            print(f"{side.label}: cached (run {record['run_id']}, key {key})", flush=True)
        else:  # the same inputs as another side: run once
            to_run.setdefault(key or side.name, []).append(side)
    if not to_run:
        return results
    logs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="shoprec-report-") as workspace, ExitStack() as stack:
        running = {
            key: _start(stack, repo, same[0], spec, Path(workspace), venvs, logs)
            for key, same in to_run.items()
        }
        for key, pipeline in running.items():
            record = pipeline.wait()
            if spec.data is None:  # a live database: kept beside the report, not cached
                kept = SideCache(logs.parent / KEPT_RUNS_DIR)
                directory = kept.put(key, pipeline.run_dir(), record)
            else:
                directory = cache.put(key, pipeline.run_dir(), record)
            record = json.loads((directory / SIDE_RECORD).read_text())  # with its key
            for side in to_run[key]:
                results[side.name] = SideRun(side, directory, record, cached=False)
    return results


@dataclass
class _Pipeline:
    """A side's pipeline running in its worktree."""

    side: Side
    tree: Path
    process: subprocess.Popen
    log: Path
    environment: Environment
    started: float = field(default_factory=time.perf_counter)

    def wait(self) -> dict[str, Any]:
        """Wait for the pipeline; the side's record, or SideFailed naming the log."""
        code = self.process.wait()
        seconds = round(time.perf_counter() - self.started, 2)
        if code not in (0, EXIT_NOT_TRACKED):  # not tracked: the run is complete all the same
            lines = self.log.read_text(errors="replace").strip().splitlines()[-LOG_TAIL:]
            raise SideFailed(
                f"{self.side.label}: the pipeline failed (exit code {code}) after {seconds} s; "
                f"its log is {self.log}; last lines:\n  " + "\n  ".join(lines)
            )
        run_dir = self.run_dir()
        run = json.loads((run_dir / RUN_RECORD).read_text())
        model = run_dir / MODEL_SUBDIR
        print(f"{self.side.label}: pipeline done in {seconds} s (run {run['run_id']})", flush=True)
        return {
            "commit": self.side.commit,
            "lock_sha256": lock_sha256(self.side.lock),
            "run_id": run["run_id"],
            "run_dir": str(run_dir),  # where it ran: paths in its parameters start with it
            "environment": self.environment.description,
            "pipeline_seconds": seconds,
            "model_bytes": sum(p.stat().st_size for p in model.rglob("*") if p.is_file()),
            "made_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    def run_dir(self) -> Path:
        """The run the pipeline made in the worktree."""
        return (self.tree / RUNS_DIR / LATEST).resolve()

    def stop(self) -> None:
        """End the pipeline if it still runs (another side failed, or Ctrl-C)."""
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait()


def _start(
    stack: ExitStack,
    repo: Path,
    side: Side,
    spec: Spec,
    workspace: Path,
    venvs: Path,
    logs: Path,
) -> _Pipeline:
    """Start a side's pipeline in a worktree that `stack` removes (after stopping it)."""
    environment = environment_for(side.lock, venvs)
    store = empty_tracking_store(environment, side.lock, venvs.parent / "stores")
    tree = stack.enter_context(git.worktree(repo, side.commit, workspace / side.name))
    local_database(tree).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(store, local_database(tree))  # the side's own store, in its worktree
    env = {name: value for name, value in os.environ.items() if name not in SIDE_OWNED_VARIABLES}
    env.update({"PYTHONPATH": str(tree / "src"), environment_variable("project_dir"): str(tree)})
    command = [
        str(environment.python), "-m", "shoprec.cli", "pipeline", "--quiet",
        "--profile", spec.profile, "--dataset", spec.dataset,
        *(arg for name, value in spec.overrides.items()
          for arg in ("-p", f"{name}={json.dumps(value)}")),
    ]  # fmt: skip
    log = logs / f"{side.name}-pipeline.log"
    print(f"{side.label}: running the pipeline in {environment.description}; log {log}", flush=True)
    with log.open("w") as stream:
        process = subprocess.Popen(
            command,
            cwd=tree,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stream,
            stderr=subprocess.STDOUT,
        )
    pipeline = _Pipeline(side, tree, process, log, environment)
    stack.callback(pipeline.stop)
    return pipeline
