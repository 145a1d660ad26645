"""Where pipeline runs live on disk and what each run holds: the one owner of the run layout
(and of the project's two other folders: `notebooks/` and the state folder `.shoprec/`).

    runs/
      latest -> <run-id>             the newest completed run
      <run-id>/                      UTC time plus a random suffix (new_run_id)
        run.json                     the run record: parameters, status, timings, provenance
        packages.json                the installed packages the run was made with
        pipeline.log                 papermill's log (secrets redacted)
        notebooks/<notebook>.ipynb   each executed notebook
        01_explore_data/summary.json
        02_tune/tuning.json
        03_train/metrics.json, 03_train/model/
        04_evaluate/evaluation.json
        tracking.json                which tracking stores logged the run (tracking.sync)

Each pipeline notebook writes into its own output folder, `<run-id>/<notebook>/` (output_dir).
"""

import json
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shoprec.errors import EXIT_BAD_INPUT, ShoprecError

# The pipeline's notebooks (in notebooks/ of the project), in the order they run.
PIPELINE_NOTEBOOKS = ("01_explore_data", "02_tune", "03_train", "04_evaluate")
NOTEBOOKS_DIR = Path("notebooks")
STATE_DIR = Path(".shoprec")  # the project's own state: tracking store, caches, services
RUNS_DIR = Path("runs")
RUN_RECORD = "run.json"
PACKAGES_FILE = "packages.json"
PIPELINE_LOG = "pipeline.log"
TRACKING_FILE = "tracking.json"
EXECUTED_NOTEBOOKS = Path("notebooks")
LATEST = "latest"
# A run's `status` in run.json: running until it ends; interrupted by SIGINT or SIGTERM.
RUNNING, SUCCEEDED, FAILED, INTERRUPTED = "running", "succeeded", "failed", "interrupted"
COMPLETED = (SUCCEEDED, FAILED)
TUNING_FILE = Path("02_tune") / "tuning.json"
MODEL_SUBDIR = Path("03_train") / "model"
TRAINING_METRICS_FILE = Path("03_train") / "metrics.json"
EVALUATION_FILE = Path("04_evaluate") / "evaluation.json"
# The JSON file of results each pipeline notebook writes into its output folder.
RESULT_FILES = {
    "01_explore_data": Path("01_explore_data") / "summary.json",
    "02_tune": TUNING_FILE,
    "03_train": TRAINING_METRICS_FILE,
    "04_evaluate": EVALUATION_FILE,
}


class RunError(ShoprecError, LookupError):
    """A run that does not exist or lacks what was asked of it."""

    exit_code = EXIT_BAD_INPUT


def project_dir() -> Path:
    """The project's directory: $SHOPREC_PROJECT_DIR, else the nearest folder up from the current
    one that holds `pyproject.toml` (so notebooks running in `notebooks/` find it), else the
    current directory."""
    from shoprec.settings import get_settings

    if (configured := get_settings().project_dir) is not None:
        return configured
    here = Path.cwd().resolve()
    return next((p for p in (here, *here.parents) if (p / "pyproject.toml").is_file()), here)


def runs_dir(root: Path | None = None) -> Path:
    """The folder holding one sub-folder per pipeline run (of project `root`, default this one)."""
    return (project_dir() if root is None else Path(root)) / RUNS_DIR


def state_dir(root: Path | None = None) -> Path:
    """The project's own state: local tracking store, model cache, services, event store (of
    project `root`, default this one)."""
    return (project_dir() if root is None else Path(root)) / STATE_DIR


def notebooks_dir() -> Path:
    """The project's notebooks, which the pipeline executes."""
    return project_dir() / NOTEBOOKS_DIR


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus a random suffix."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def output_dir(run_dir: Path, notebook: str) -> Path:
    """The folder pipeline notebook `notebook` writes its results into (its `output_dir`)."""
    return Path(run_dir) / notebook


def executed_notebook(run_dir: Path, notebook: str) -> Path:
    """Where the run keeps its executed copy of `notebook`."""
    return Path(run_dir) / EXECUTED_NOTEBOOKS / f"{notebook}.ipynb"


def write_run(run_dir: Path, record: dict[str, Any]) -> None:
    """Write the run's record (`run.json`), keys sorted."""
    path = Path(run_dir) / RUN_RECORD
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def point_latest(run_dir: Path) -> None:
    """Point `runs/latest` at the run, atomically (only ever at a completed one)."""
    run_dir = Path(run_dir)
    staging = run_dir.parent / f".{LATEST}-{run_dir.name}"
    staging.symlink_to(run_dir.name)
    os.replace(staging, run_dir.parent / LATEST)


def resolve_run(run_id: str) -> Path:
    """The directory of run `run_id` (`latest` means the newest completed run).

    A run is named by its id, the name of its folder in `runs/`: a path, or a name that leads
    outside `runs/` (through `..` or a symbolic link), is refused.
    """
    root = runs_dir()
    name = Path(run_id)
    if not run_id or name.name != run_id or run_id in {".", ".."}:
        raise RunError(
            f"run {run_id!r}: expected a run id (a folder name in {root}), not a path; "
            "runs are kept only under runs/"
        )
    path = root / run_id
    if path.exists() and path.resolve().parent != root.resolve():
        raise RunError(f"run {run_id!r}: {path} leads outside {root}; runs are kept only there")
    if not (path / RUN_RECORD).is_file():
        known = sorted(p.parent.name for p in runs_dir().glob(f"*/{RUN_RECORD}"))
        hint = f"known runs: {', '.join(known[-5:])}" if known else "no runs yet: make pipeline"
        raise RunError(f"run {run_id!r} not found under {runs_dir()} ({hint})")
    return path.resolve()


def read_run(run_dir: Path) -> dict[str, Any]:
    """The run's record (`run.json`): id, parameters, status and timings."""
    return json.loads((Path(run_dir) / RUN_RECORD).read_text())


def model_dir(run_dir: Path) -> Path:
    """The model artifact the run trained."""
    path = Path(run_dir) / MODEL_SUBDIR
    if not path.is_dir():
        raise RunError(f"run {Path(run_dir).name}: no model at {path}")
    return path


def evaluation(run_dir: Path) -> dict[str, Any]:
    """The run's evaluation result (`passed`, checks and metrics)."""
    path = Path(run_dir) / EVALUATION_FILE
    if not path.is_file():
        raise RunError(f"run {Path(run_dir).name}: not evaluated ({path} missing)")
    return json.loads(path.read_text())
