"""The MLflow model registry: one version per run that passed evaluation, aliases per environment.

Each version carries tags naming its shoprec run, the sha256 of its artifact's `model.json`
(which lists the sha256 of every other file), the sha256 of every file of the logged model
(the code MLflow runs, `mlflow_model.py`, and `MLmodel` included), the deploy policy it was
evaluated under and its evaluation results; its deployments are logged in its
`shoprec.deployments` tag.

The registry's tags are the record shoprec trusts: whoever can write tags can change what is
trusted. Every load (`fetch`) checks the local copy, cached or not, and the registry's own
copy when it is a local folder, against them.
"""

import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from shoprec.artifact import (
    ARTIFACT_KEY,
    METADATA_FILE,
    ArtifactError,
    verify_files,
)
from shoprec.checksums import file_sha256
from shoprec.errors import ShoprecError
from shoprec.runs import state_dir
from shoprec.tracking.store import REGISTERED_MODEL, TrackingError, translated

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

RUN_TAG = "shoprec.run_id"
DIGEST_TAG = "shoprec.model_json_sha256"
FILES_TAG = "shoprec.files_sha256"
POLICY_TAG = "shoprec.policy_sha256"
POLICY_VERSION_TAG = "shoprec.policy_version"
STATUS_TAG = "evaluation.status"
PRODUCTION_STATUS_TAG = "evaluation.production"  # compared, none, ... (policy.production_basis)
BASIS_TAG = "evaluation.basis"  # production model, or production's recipe refit
# MLflow's error codes for a version or alias that does not exist.
NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")
# Written by MLflow into the logged model when it is registered, after the checksums are taken.
UNCHECKED_FILES = frozenset({"registered_model_meta"})
CACHE_DIR = "models"


class RegistryError(ShoprecError, LookupError):
    """A model version that does not exist, or whose artifact is not what was registered."""


def model_uri(ref: str) -> str:
    """The registry URI of a version (`3`) or an alias (`production`) of the shoprec model."""
    separator = "/" if ref.isdigit() else "@"
    return f"models:/{REGISTERED_MODEL}{separator}{ref}"


def artifact_digest(model_dir: Path) -> str:
    """The sha256 of an artifact's `model.json`, which itself lists every file's sha256."""
    return file_sha256(Path(model_dir) / METADATA_FILE)


def manifest(directory: Path) -> dict[str, str]:
    """The sha256 of every file of a logged model, by path relative to `directory`."""
    directory = Path(directory)
    return {
        path.relative_to(directory).as_posix(): file_sha256(path)
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.relative_to(directory).as_posix() not in UNCHECKED_FILES
    }


def manifest_problems(directory: Path, expected: dict[str, str]) -> list[str]:
    """How the files under `directory` differ from `expected` (empty: they are the same)."""
    found = manifest(directory)
    problems = [
        f"{Path(directory) / name}: sha256 does not match the registry's record"
        for name in sorted(set(found) & set(expected))
        if found[name] != expected[name]
    ]
    problems += [
        f"{Path(directory) / name}: missing" for name in sorted(set(expected) - set(found))
    ]
    problems += [
        f"{Path(directory) / name}: not in the registry's record (added)"
        for name in sorted(set(found) - set(expected))
    ]
    return problems


def _logged_manifest(uri: str) -> dict[str, str]:
    import mlflow

    with tempfile.TemporaryDirectory(prefix="shoprec-register-") as scratch:
        with translated():
            local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=scratch)
        return manifest(Path(local))


def register(
    client: "MlflowClient", uri: str, run_id: str, model_dir: Path, evaluation: dict[str, Any]
) -> str:
    """Register the logged model at `uri` as a new version; return the version number.

    Refuses (RegistryError) an evaluation that did not pass: `incomplete` ones included.
    """
    import mlflow

    status = evaluation.get("status", "passed" if evaluation.get("passed") is True else "failed")
    if status != "passed" or evaluation.get("passed") is not True:
        raise RegistryError(f"run {run_id}: evaluation {status}; only passed runs are registered")
    policy = evaluation.get("policy") or {}
    tags = {
        RUN_TAG: run_id,
        DIGEST_TAG: artifact_digest(model_dir),
        FILES_TAG: json.dumps(_logged_manifest(uri), sort_keys=True),
        POLICY_TAG: str(policy.get("sha256")),
        POLICY_VERSION_TAG: str(policy.get("version")),
        STATUS_TAG: status,
        "evaluation.passed": str(evaluation.get("passed")),
        "evaluation.checks": json.dumps(evaluation.get("checks", [])),
    }
    production = evaluation.get("production") or {}
    tags[PRODUCTION_STATUS_TAG] = str(production.get("status", "none"))
    if production.get("basis"):  # what the regression check held the candidate against
        tags[BASIS_TAG] = str(production["basis"])
    for name, value in evaluation.get("metrics", {}).get("candidate", {}).items():
        tags[f"evaluation.{name}"] = str(value)
    with contextlib.redirect_stderr(io.StringIO()), translated():  # it prints "Created ..."
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
    try:
        return client.get_model_version(REGISTERED_MODEL, version)
    except TrackingError as error:
        if error.error_code not in NOT_FOUND:
            raise
        raise RegistryError(f"model {REGISTERED_MODEL!r} has no version {version}") from error


def alias_version(client: "MlflowClient", alias: str) -> "ModelVersion | None":
    """The version alias `alias` points at, or None when it is not set."""
    try:
        return client.get_model_version_by_alias(REGISTERED_MODEL, alias)
    except TrackingError as error:
        if error.error_code in NOT_FOUND:
            return None
        raise


def move_alias(client: "MlflowClient", alias: str, version: str | None) -> None:
    """Point `alias` at `version`, or remove it when `version` is None."""
    if version is None:
        client.delete_registered_model_alias(REGISTERED_MODEL, alias)
    else:
        client.set_registered_model_alias(REGISTERED_MODEL, alias, version)


def registry_location(version: "ModelVersion") -> str:
    """Where the registry keeps the version's files (a URI, or a path for a local store)."""
    source = str(version.source)
    model_id = getattr(version, "model_id", None) or (
        source.removeprefix("models:/") if source.startswith("models:/m-") else None
    )
    if model_id:
        from shoprec.tracking.store import client

        with contextlib.suppress(Exception):  # an older store: fall back to the source
            return client().get_logged_model(model_id).artifact_location
    return source


def _local_path(location: str) -> Path | None:
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    return Path(location) if parsed.scheme == "" and location.startswith("/") else None


def cache_path(version: "ModelVersion") -> Path:
    """Where the version's files are cached on this machine."""
    key = hashlib.sha256(f"{version.source}|{version.version}".encode()).hexdigest()[:16]
    return state_dir() / CACHE_DIR / f"v{version.version}-{key}"


def _expected_files(version: "ModelVersion") -> dict[str, str]:
    recorded = version.tags.get(FILES_TAG)
    if not recorded:
        raise RegistryError(
            f"version {version.version}: registered without the sha256 of its files (code "
            "included), so it cannot be verified; register the run again with a current "
            "shoprec (shoprec runs sync)"
        )
    return json.loads(recorded)


def _artifact_dir(directory: Path) -> Path:
    from mlflow.models import Model

    artifacts = Model.load(str(directory)).flavors["python_function"]["artifacts"]
    return directory / artifacts[ARTIFACT_KEY]["path"]


def verification_problems(version: "ModelVersion", directory: Path) -> list[str]:
    """Why the copy of `version` at `directory` is not what was registered (empty: it is)."""
    problems = manifest_problems(directory, _expected_files(version))
    if problems:
        return problems
    model_dir = _artifact_dir(directory)
    expected = version.tags.get(DIGEST_TAG)
    if not (model_dir / METADATA_FILE).is_file() or artifact_digest(model_dir) != expected:
        return [f"{model_dir / METADATA_FILE} is not the model.json registered (sha256 {expected})"]
    try:
        verify_files(model_dir)
    except ArtifactError as error:
        return [str(error)]
    return []


def _download(version: "ModelVersion", target: Path) -> None:
    import mlflow

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=target.parent))
    try:
        uri = model_uri(str(version.version))
        with translated():
            mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(staging))
        os.replace(staging, target)
    except OSError:
        if not target.is_dir():  # not "another process fetched it first"
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fetch(version: "ModelVersion") -> Path:
    """The version's shoprec artifact, from the local cache (downloaded when missing), verified.

    Every call checks the copy, cached or not, against the registry's record: the sha256 of
    every file (the pyfunc's code included), then the artifact's own checksums. A cached copy
    that fails is discarded and downloaded again once; RegistryError names the version and
    both paths when the fresh copy fails too. When the registry keeps its files in a local
    folder, that copy is checked as well, so tampering there is noticed even while the cache
    still holds a good copy.
    """
    expected = _expected_files(version)
    location = registry_location(version)
    stored = _local_path(location)
    if stored is not None and stored.is_dir():
        problems = manifest_problems(stored, expected)
        if problems:
            raise RegistryError(
                f"version {version.version}: the registry's copy at {stored} was altered "
                f"({'; '.join(problems)}); refusing to load it"
            )
    target = cache_path(version)
    if target.is_dir():
        if not verification_problems(version, target):
            return _artifact_dir(target)
        shutil.rmtree(target, ignore_errors=True)  # a bad cache entry heals by a new download
    _download(version, target)
    problems = verification_problems(version, target)
    if problems:
        shutil.rmtree(target, ignore_errors=True)
        raise RegistryError(
            f"version {version.version}: the copy downloaded from the registry ({location}) to "
            f"the cache ({target}) fails verification: {'; '.join(problems)}; artifact was "
            "altered or is incomplete"
        )
    return _artifact_dir(target)


def load_pyfunc(ref: str) -> Any:
    """The MLflow pyfunc of version or alias `ref`, loaded only after `fetch` verified its files
    (code included). `mlflow.pyfunc.load_model` on a `models:/` URI checks nothing."""
    import mlflow

    from shoprec.tracking.store import client

    mlflow_client = client()
    version = (
        get_version(mlflow_client, ref) if ref.isdigit() else alias_version(mlflow_client, ref)
    )
    if version is None:
        raise RegistryError(f"alias {ref!r} is not set")
    directory = fetch(version).parent.parent
    with translated():
        return mlflow.pyfunc.load_model(str(directory))
