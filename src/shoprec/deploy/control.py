"""How a running service learns which model version to serve, and tells which one it serves.

A service's control folder holds `target.json`, written by `shoprec deploy` and `rollback`
(the version to serve, where its artifact was fetched from the registry, the checksum the
registry recorded for it, and a fresh token), and `workers/<pid>.json`, written by each worker
process when it has handled a token (the version it serves, and the error if it refused the
target). Every write replaces a file whole, so a reader never sees half of one.
"""

import json
import os
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shoprec.settings import environment_variable

# The variables a launcher sets for a service process (read there through shoprec.settings).
MODEL_URI_VAR = environment_variable("model_uri")  # what a service loads when it has no target
ENVIRONMENT_VAR = environment_variable("environment")
CONTROL_DIR_VAR = environment_variable("service_dir")
SERVICE_PID_VAR = environment_variable("service_pid")
TARGET_FILE = "target.json"
WORKERS_DIR = "workers"


def _write_json(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(descriptor, "w") as stream:
        json.dump(record, stream)
    os.replace(temporary, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def write_target(
    directory: Path,
    version: str,
    model_dir: Path,
    digest: str,
    run_id: str | None,
    canary: dict[str, Any] | None = None,
) -> str:
    """Ask the service in `directory` to serve `version`; return the request's token.

    `model_dir` is the version's artifact as fetched from the registry, and `digest` the
    sha256 of its `model.json` the registry recorded: workers verify both before serving it.
    `since` is when the environment was first asked for this version (kept across restarts).
    `canary`, if given, names a challenger the same way (`version`, `model_dir`,
    `model_json_sha256`, `run_id`) and the `fraction` of users it serves.
    """
    token = uuid.uuid4().hex
    previous = read_target(directory)
    same = previous is not None and previous["version"] == str(version)
    record = {
        "version": str(version),
        "token": token,
        "model_dir": str(model_dir),
        "model_json_sha256": digest,
        "run_id": run_id,
        "since": previous.get("since") if same else None,
        "canary": canary,
    }
    record["since"] = record["since"] or datetime.now(UTC).isoformat(timespec="seconds")
    _write_json(Path(directory) / TARGET_FILE, record)
    return token


def forget_target(directory: Path) -> None:
    """Remove the service's target: the environment is asked to serve nothing."""
    (Path(directory) / TARGET_FILE).unlink(missing_ok=True)


def read_target(directory: Path) -> dict[str, Any] | None:
    """The version the service is asked to serve and the request's token, if any."""
    record = _read_json(Path(directory) / TARGET_FILE)
    fields = ("version", "token", "model_dir", "model_json_sha256")
    return record if record and all(name in record for name in fields) else None


def write_worker_status(directory: Path, status: dict[str, Any]) -> None:
    """Record this worker's state: pid, service pid, token handled, version served, error."""
    _write_json(Path(directory) / WORKERS_DIR / f"{os.getpid()}.json", status)


def worker_statuses(directory: Path) -> list[dict[str, Any]]:
    """The state every worker recorded (including workers that have since ended)."""
    folder = Path(directory) / WORKERS_DIR
    found = (_read_json(path) for path in sorted(folder.glob("*.json")))
    return [status for status in found if status is not None]


def clear_worker_statuses(directory: Path) -> None:
    """Forget the states recorded by an earlier run of the service."""
    for path in (Path(directory) / WORKERS_DIR).glob("*.json"):
        path.unlink(missing_ok=True)
