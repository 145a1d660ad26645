"""Every run of the project in one table: what it was given, what came of it, where it serves.

A run's row comes from its own folder (`run.json`, `evaluation.json`); its model version and
the environments serving it come from the registry, where each version names its run and each
environment is an alias. When the registry cannot be read, the rows still show, and the note
says why versions and environments are missing.
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from shoprec.runs import EVALUATION_FILE, RUN_RECORD, read_run, runs_dir
from shoprec.tracking.results import HEADLINE_METRICS
from shoprec.tracking.store import REGISTERED_MODEL, TrackingError, client, tracking_uri


@dataclass(frozen=True)
class RunRow:
    """One run as `shoprec runs list` shows it."""

    run_id: str
    started_at: str | None
    status: str
    """running, succeeded, failed or interrupted."""
    profile: str | None
    dataset: str | None
    algorithm: str | None
    k: int | None
    metrics: dict[str, float]
    """The candidate's headline metrics at k, from the evaluation."""
    evaluation: str | None
    """passed, failed or incomplete; None when the run was not evaluated."""
    reproduces: str | None
    """The run this one re-executed to check it (a reproduction never ships)."""
    model_version: str | None
    environments: tuple[str, ...]
    """The registry aliases (test, staging, production, ...) pointing at its version."""


@dataclass(frozen=True)
class Registered:
    """What the registry says of runs: version per run id, aliases per version."""

    versions: dict[str, str]
    aliases: dict[str, tuple[str, ...]]


def registered() -> Registered:
    """The registry's versions and aliases of the shoprec model (empty before the first).

    Raises TrackingError when the store cannot be read.
    """
    from shoprec.tracking.registry import RUN_TAG, versions

    mlflow_client = client()
    found = versions(mlflow_client)
    if not found:
        return Registered({}, {})
    model = mlflow_client.get_registered_model(REGISTERED_MODEL)
    aliases: dict[str, list[str]] = {}
    for alias, version in sorted(model.aliases.items()):
        aliases.setdefault(str(version), []).append(alias)
    return Registered(
        {
            version.tags[RUN_TAG]: str(version.version)
            for version in found
            if RUN_TAG in version.tags
        },
        {version: tuple(names) for version, names in aliases.items()},
    )


def run_row(run_dir: Path, registry: Registered) -> RunRow:
    """The row of the run at `run_dir`."""
    record = read_run(run_dir)
    evaluation = _evaluation(run_dir)
    train = record.get("parameters", {}).get("03_train", {})
    candidate = evaluation.get("metrics", {}).get("candidate", {})
    version = registry.versions.get(record["run_id"])
    return RunRow(
        run_id=record["run_id"],
        started_at=record.get("started_at"),
        status=record.get("status", "unknown"),
        profile=record.get("profile"),
        dataset=record.get("dataset"),
        algorithm=train.get("algorithm"),
        k=evaluation.get("k", train.get("k")),
        metrics={name: candidate[name] for name in HEADLINE_METRICS if name in candidate},
        evaluation=evaluation.get("status") if evaluation else None,
        reproduces=record.get("reproduces"),
        model_version=version,
        environments=registry.aliases.get(version, ()) if version else (),
    )


def list_runs(limit: int | None = None) -> tuple[list[RunRow], int, str | None]:
    """The newest `limit` runs (all when None), newest first; how many runs there are; and a
    note when the registry could not be read."""
    run_dirs = sorted(
        (
            path.parent
            for path in runs_dir().glob(f"*/{RUN_RECORD}")
            if not path.parent.is_symlink()
        ),
        key=lambda path: path.name,
        reverse=True,
    )
    try:
        registry = registered()
        note = None
    except TrackingError as error:
        registry = Registered({}, {})
        note = f"model versions and environments unknown: {tracking_uri()}: {error}"
    shown = run_dirs if limit is None else run_dirs[:limit]
    return [run_row(path, registry) for path in shown], len(run_dirs), note


def as_json(rows: list[RunRow]) -> str:
    """The rows as a JSON list of objects (the `--json` output)."""
    return json.dumps([asdict(row) for row in rows], indent=2)


def as_table(rows: list[RunRow]) -> list[str]:
    """The rows as aligned text lines, a header first."""
    k = next((row.k for row in rows if row.k is not None), "k")
    header = [
        "run", "started (UTC)", "profile", "dataset", "algorithm",
        *(f"{name}@{k}" for name in HEADLINE_METRICS), "evaluation", "version", "serving", "note",
    ]  # fmt: skip
    cells = [header] + [_cells(row) for row in rows]
    widths = [max(len(line[column]) for line in cells) for column in range(len(header))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    ]


def _cells(row: RunRow) -> list[str]:
    started = (row.started_at or "-").replace("T", " ")[:16]
    metrics = [
        f"{row.metrics[name]:.4f}" if name in row.metrics else "-" for name in HEADLINE_METRICS
    ]
    outcome = row.evaluation or (row.status if row.status != "succeeded" else "-")
    notes = [f"reproduces {row.reproduces}"] if row.reproduces else []
    return [
        row.run_id, started, row.profile or "-", row.dataset or "-", row.algorithm or "-",
        *metrics, outcome, row.model_version or "-", ", ".join(row.environments) or "-",
        "; ".join(notes),
    ]  # fmt: skip


def _evaluation(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / EVALUATION_FILE
    return json.loads(path.read_text()) if path.is_file() else {}
