"""Model artifacts: a directory of NumPy arrays and JSON metadata, checksummed, never pickled."""

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shoprec import __version__
from shoprec.checksums import file_sha256
from shoprec.errors import EXIT_BAD_INPUT, ShoprecError

if TYPE_CHECKING:  # the models (scikit-learn, implicit) load only when a model is read
    from shoprec.models import Recommender

ARTIFACT_FORMAT = "shoprec-model/1"
ARRAYS_FILE = "arrays.npz"
METADATA_FILE = "model.json"
# The name under which a model directory is an artifact of the MLflow pyfunc (shoprec.mlflow_model).
ARTIFACT_KEY = "shoprec_model"


class ArtifactError(ShoprecError, ValueError):
    """A model artifact that is missing, incomplete, tampered with or of an unknown kind."""

    exit_code = EXIT_BAD_INPUT


def save_model(
    model: "Recommender", directory: Path, metadata: dict[str, Any] | None = None
) -> Path:
    """Write a fitted model to `directory` (created if needed) and return the directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays_path = directory / ARRAYS_FILE
    np.savez_compressed(arrays_path, **model.to_arrays())
    record = {
        "format": ARTIFACT_FORMAT,
        "algorithm": model.algorithm,
        "params": model.get_params(),
        "shoprec_version": __version__,
        "metadata": metadata or {},
        "files": {ARRAYS_FILE: file_sha256(arrays_path)},
    }
    (directory / METADATA_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return directory


def read_metadata(directory: Path) -> dict[str, Any]:
    """The artifact's `model.json`, checked for format and required fields."""
    path = Path(directory) / METADATA_FILE
    if not path.is_file():
        raise ArtifactError(f"{path}: not found; expected a model directory written by save_model")
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ArtifactError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(record, dict) or record.get("format") != ARTIFACT_FORMAT:
        raise ArtifactError(f"{path}: field 'format' must be {ARTIFACT_FORMAT!r}")
    for field in ("algorithm", "params", "files"):
        if field not in record:
            raise ArtifactError(f"{path}: missing field {field!r}")
    if ARRAYS_FILE not in record["files"]:
        raise ArtifactError(f"{path}: field 'files' must list {ARRAYS_FILE} with its sha256")
    from shoprec.models import ALGORITHMS

    if record["algorithm"] not in ALGORITHMS:
        raise ArtifactError(
            f"{path}: field 'algorithm' is {record['algorithm']!r}; "
            f"expected one of {sorted(ALGORITHMS)}"
        )
    return record


def verify_files(directory: Path) -> dict[str, Any]:
    """The artifact's `model.json`, once every file it lists has the sha256 it records."""
    directory = Path(directory)
    record = read_metadata(directory)
    for name, expected in record["files"].items():
        path = directory / name
        if not path.is_file():
            raise ArtifactError(f"{path}: listed in {METADATA_FILE} but missing")
        if file_sha256(path) != expected:
            raise ArtifactError(
                f"{path}: sha256 does not match {METADATA_FILE}; artifact was altered"
            )
    return record


def load_model(directory: Path) -> "Recommender":
    """Load a model saved by `save_model`, verifying every file's checksum first."""
    directory = Path(directory)
    record = verify_files(directory)
    try:
        with np.load(directory / ARRAYS_FILE, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except (ValueError, OSError) as error:
        raise ArtifactError(f"{directory / ARRAYS_FILE}: unreadable ({error})") from error
    from shoprec.models import ALGORITHMS

    model_class = ALGORITHMS[record["algorithm"]]
    missing = set(model_class.array_names()) - set(arrays)
    if missing:
        raise ArtifactError(f"{directory / ARRAYS_FILE}: missing arrays {sorted(missing)}")
    return model_class.from_arrays(record["params"], arrays)
