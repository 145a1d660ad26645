"""The MLflow model registry: one version per run that passed evaluation, aliases per environment.

Each version carries tags naming its shoprec run, the sha256 of its artifact's `model.json`
(which lists the sha256 of every other file) and its evaluation results; its deployments are
logged in its `shoprec.deployments` tag.
"""

import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shoprec.artifact import METADATA_FILE
from shoprec.runs import project_dir
from shoprec.tracking.store import REGISTERED_MODEL, STORE_DIR

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

RUN_TAG = "shoprec.run_id"
DIGEST_TAG = "shoprec.model_json_sha256"
DEPLOYMENTS_TAG = "shoprec.deployments"
ARTIFACT_KEY = "shoprec_model"  # as in shoprec.mlflow_model
CACHE_DIR = "models"


class RegistryError(LookupError):
    """A model version that does not exist, or whose artifact is not what was registered."""


@dataclass(frozen=True)
class Event:
    """A version deployed to (or rolled back to in) an environment, and when."""

    env: str
    version: str
    run_id: str
    action: str
    at: str


def model_uri(ref: str) -> str:
    """The registry URI of a version (`3`) or an alias (`production`) of the shoprec model."""
    separator = "/" if ref.isdigit() else "@"
    return f"models:/{REGISTERED_MODEL}{separator}{ref}"


def artifact_digest(model_dir: Path) -> str:
    """The sha256 of an artifact's `model.json`, which itself lists every file's sha256."""
    return hashlib.sha256((Path(model_dir) / METADATA_FILE).read_bytes()).hexdigest()


def register(
    client: "MlflowClient", uri: str, run_id: str, model_dir: Path, evaluation: dict[str, Any]
) -> str:
    """Register the logged model at `uri` as a new version; return the version number."""
    import mlflow

    tags = {
        RUN_TAG: run_id,
        DIGEST_TAG: artifact_digest(model_dir),
        "evaluation.passed": str(evaluation.get("passed")),
        "evaluation.checks": json.dumps(evaluation.get("checks", [])),
    }
    for name, value in evaluation.get("metrics", {}).get("candidate", {}).items():
        tags[f"evaluation.{name}"] = str(value)
    with contextlib.redirect_stderr(io.StringIO()):  # MLflow prints "Created version ..."
        version = mlflow.register_model(uri, REGISTERED_MODEL, tags=tags)
    return str(version.version)


def versions(client: "MlflowClient") -> list["ModelVersion"]:
    """Every registered version of the shoprec model, oldest first."""
    found = client.search_model_versions(f"name = '{REGISTERED_MODEL}'")
    return sorted(found, key=lambda version: int(version.version))


def version_of_run(client: "MlflowClient", run_id: str) -> "ModelVersion | None":
    """The version registered for shoprec run `run_id`, if any."""
    matches = [version for version in versions(client) if version.tags.get(RUN_TAG) == run_id]
    return matches[-1] if matches else None


def get_version(client: "MlflowClient", version: str) -> "ModelVersion":
    """Version `version` of the shoprec model."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(REGISTERED_MODEL, version)
    except MlflowException as error:
        raise RegistryError(f"model {REGISTERED_MODEL!r} has no version {version}") from error


def alias_version(client: "MlflowClient", alias: str) -> "ModelVersion | None":
    """The version alias `alias` points at, or None when it is not set."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(REGISTERED_MODEL, alias)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def move_alias(client: "MlflowClient", alias: str, version: str | None) -> None:
    """Point `alias` at `version`, or remove it when `version` is None."""
    if version is None:
        client.delete_registered_model_alias(REGISTERED_MODEL, alias)
    else:
        client.set_registered_model_alias(REGISTERED_MODEL, alias, version)


def record_event(client: "MlflowClient", version: "ModelVersion", env: str, action: str) -> Event:
    """Log that `version` now serves in `env` (`action`: deploy or rollback)."""
    event = Event(env, str(version.version), version.tags.get(RUN_TAG, ""), action, _now())
    log = json.loads(version.tags.get(DEPLOYMENTS_TAG, "[]"))
    log.append({"env": env, "action": action, "at": event.at})
    client.set_model_version_tag(
        REGISTERED_MODEL, str(version.version), DEPLOYMENTS_TAG, json.dumps(log)
    )
    return event


def events(client: "MlflowClient") -> list[Event]:
    """Every deployment and rollback of every version, oldest first."""
    found = [
        Event(entry["env"], str(version.version), version.tags.get(RUN_TAG, ""),
              entry["action"], entry["at"])
        for version in versions(client)
        for entry in json.loads(version.tags.get(DEPLOYMENTS_TAG, "[]"))
    ]  # fmt: skip
    return sorted(found, key=lambda event: event.at)


def fetch(version: "ModelVersion") -> Path:
    """The version's shoprec artifact in the local cache (downloaded once), checked for tampering.

    Raises RegistryError when the artifact's `model.json` is not the one registered; the caller
    still verifies the files against it with `shoprec.artifact.load_model`.
    """
    import mlflow
    from mlflow.models import Model

    key = hashlib.sha256(f"{version.source}|{version.version}".encode()).hexdigest()[:16]
    target = project_dir() / STORE_DIR / CACHE_DIR / f"v{version.version}-{key}"
    if not target.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".download-", dir=target.parent))
        uri = model_uri(str(version.version))
        mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(staging))
        try:
            os.replace(staging, target)
        except OSError:  # another process fetched it first
            shutil.rmtree(staging, ignore_errors=True)
    artifacts = Model.load(str(target)).flavors["python_function"]["artifacts"]
    model_dir = target / artifacts[ARTIFACT_KEY]["path"]
    expected = version.tags.get(DIGEST_TAG)
    if not (model_dir / METADATA_FILE).is_file() or artifact_digest(model_dir) != expected:
        raise RegistryError(
            f"version {version.version}: {model_dir / METADATA_FILE} is not the model.json "
            f"registered (sha256 {expected}); artifact was altered or is incomplete"
        )
    return model_dir


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")
