"""Which run each environment serves, kept in `<project>/.shoprec/deployments.json`."""

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shoprec.deploy.errors import DeployError
from shoprec.runs import MODEL_SUBDIR, project_dir, runs_dir

STATE_FILE = "deployments.json"


@dataclass(frozen=True)
class Deployment:
    """A run deployed to an environment, and when."""

    env: str
    run_id: str
    at: str


def state_dir() -> Path:
    """The folder holding deployment state, pid files and service logs."""
    return project_dir() / ".shoprec"


def state_path() -> Path:
    """The deployment state file."""
    return state_dir() / STATE_FILE


def _read() -> dict[str, Any]:
    path = state_path()
    if not path.is_file():
        return {"current": {}, "history": []}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise DeployError(f"{path}: not valid JSON ({error}); fix or remove it") from error


def current() -> dict[str, Deployment]:
    """The deployment each environment serves, by environment name."""
    return {env: Deployment(**record) for env, record in _read()["current"].items()}


def history() -> list[Deployment]:
    """Every deployment recorded, oldest first."""
    return [Deployment(**record) for record in _read()["history"]]


def _write(record: dict[str, Any]) -> None:
    path = state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, prefix=f".{STATE_FILE}.", delete=False
    ) as stream:
        json.dump(record, stream, indent=2, sort_keys=True)
        stream.write("\n")
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(stream.name, path)


def record_deployment(env: str, run_id: str) -> Deployment:
    """Record that `env` now serves `run_id`, adding a history entry."""
    deployment = Deployment(env, run_id, datetime.now(UTC).isoformat(timespec="seconds"))
    record = _read()
    record["current"][env] = asdict(deployment)
    record["history"].append(asdict(deployment))
    _write(record)
    return deployment


def serving_model_dir(env: str) -> Path | None:
    """The model directory of the run `env` serves per the stored state; None if none is."""
    deployment = current().get(env)
    return None if deployment is None else runs_dir() / deployment.run_id / MODEL_SUBDIR
