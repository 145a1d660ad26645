"""Where pipeline runs live on disk and what each run holds."""

import json
from pathlib import Path
from typing import Any

from shoprec.errors import EXIT_BAD_INPUT, ShoprecError

RUN_RECORD = "run.json"
LATEST = "latest"
# A run's `status` in run.json: running until it ends; interrupted by SIGINT or SIGTERM.
RUNNING, SUCCEEDED, FAILED, INTERRUPTED = "running", "succeeded", "failed", "interrupted"
COMPLETED = (SUCCEEDED, FAILED)
MODEL_SUBDIR = Path("03_train") / "model"
EVALUATION_FILE = Path("04_evaluate") / "evaluation.json"


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


def runs_dir() -> Path:
    """The folder holding one sub-folder per pipeline run."""
    return project_dir() / "runs"


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
