"""The data a pipeline run learnt from, as an MLflow dataset input: the UI's Dataset column.

Name: the dataset and profile (`synthetic-smoke`); digest: the run's data fingerprint (the
sha256 of its train and test interactions, the `shoprec.data_fingerprint` tag) cut to the 36
characters MLflow stores; source: where the rows came from (the generator and its seed, the
MovieLens release, the file, or the query and its database URL, credentials masked); profile:
the data's size and the full fingerprints.
"""

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shoprec.loaders import MOVIELENS
from shoprec.redact import redact
from shoprec.runs import RESULT_FILES

if TYPE_CHECKING:
    from mlflow.entities import DatasetInput

DIGEST_LENGTH = 36  # MLflow's datasets table holds digests of at most 36 characters
CONTEXT = "train and test"  # the dataset input's `mlflow.data.context`: split into both
SCHEMA = {
    "mlflow_colspec": [
        {"name": "user_id", "type": "long"},
        {"name": "item_id", "type": "long"},
        {"name": "weight", "type": "double"},
        {"name": "timestamp", "type": "datetime"},
    ]
}
SIZE_FIELDS = ("n_users", "n_items", "n_events", "n_interactions", "first_day", "last_day")


def _data_parameters(record: dict[str, Any]) -> dict[str, Any]:
    """The parameters that chose the data (those of the first notebook that loads it)."""
    for parameters in record.get("parameters", {}).values():
        if "dataset" in parameters:
            return parameters
    return {}


def data_fingerprint(record: dict[str, Any]) -> str | None:
    """One sha256 for the run's train and test interactions (None before they were split)."""
    parts = record.get("data_fingerprint") or {}
    if not parts:
        return None
    return hashlib.sha256(f"{parts['train']}:{parts['test']}".encode()).hexdigest()


def source_of(record: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """MLflow's source type and source of a run's data, credentials masked."""
    parameters = _data_parameters(record)
    name = parameters.get("dataset", record.get("dataset"))
    options = parameters.get("dataset_options") or {}
    if name == "synthetic":
        return "code", {
            "generator": "shoprec.synthetic.generate_shop",
            "profile": parameters.get("profile", record.get("profile")),
            "seed": parameters.get("seed"),
        }
    if name in MOVIELENS:
        if "path" in options:
            return "local", {"uri": str(options["path"])}
        return "http", {"url": MOVIELENS[name].url}
    if name == "file":
        return "local", {"uri": str(options.get("path"))}
    if name == "events":
        return "sql", redact({"url": options.get("url", "the project's event store"),
                              "environment": options.get("environment", "production")})  # fmt: skip
    return "sql", redact({key: value for key, value in options.items() if key != "columns"})


def dataset_input(record: dict[str, Any], run_dir: Path) -> "DatasetInput | None":
    """The run's data as an MLflow dataset input; None for a run that never fingerprinted it."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    fingerprint = data_fingerprint(record)
    if fingerprint is None:
        return None
    summary_path = Path(run_dir) / RESULT_FILES["01_explore_data"]
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    source_type, source = source_of(record)
    profile = {
        "profile": record.get("profile"),
        **{field: summary[field] for field in SIZE_FIELDS if field in summary},
        "fingerprint": fingerprint,
        "train_fingerprint": record["data_fingerprint"]["train"],
        "test_fingerprint": record["data_fingerprint"]["test"],
    }
    dataset = Dataset(
        name=f"{record.get('dataset')}-{record.get('profile')}",
        digest=fingerprint[:DIGEST_LENGTH],
        source_type=source_type,
        source=json.dumps(source, sort_keys=True),
        schema=json.dumps(SCHEMA),
        profile=json.dumps(profile),
    )
    return DatasetInput(dataset, [InputTag("mlflow.data.context", CONTEXT)])
