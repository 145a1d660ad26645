"""Re-execute a run from its record and say whether the result is identical."""

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shoprec.errors import EXIT_BAD_INPUT, ShoprecError
from shoprec.pipeline.command import execute
from shoprec.pipeline.plan import PipelineRun, ProductionModel, ProductionUnavailable
from shoprec.pipeline.production import current_production_model
from shoprec.runs import (
    PACKAGES_FILE,
    RunError,
    new_run_id,
    project_dir,
    read_run,
    resolve_run,
    runs_dir,
)
from shoprec.tracking import compare, provenance, registry
from shoprec.tracking.store import TrackingError, client


class ReproduceError(ShoprecError):
    """A run that cannot be re-executed as recorded."""

    exit_code = EXIT_BAD_INPUT


@dataclass(frozen=True)
class Outcome:
    """A reproduction: the new run, its comparison with the original, and whether it was logged."""

    original_id: str
    run_id: str
    parameters: compare.Comparison
    metrics: compare.Comparison
    tracked: bool

    @property
    def identical(self) -> bool:
        """Whether every parameter and metric is identical."""
        return not (self.parameters.differences or self.metrics.differences)


def environment_warnings(run_dir: Path, record: dict[str, Any]) -> list[str]:
    """How the code, lock file, packages and platform now differ from the run's record."""
    packages = provenance.installed_packages()
    now = provenance.environment(project_dir(), packages)
    recorded_path = run_dir / PACKAGES_FILE
    recorded = json.loads(recorded_path.read_text()) if recorded_path.is_file() else None
    return provenance.differences(record, now, recorded, packages)


def _production_model(
    record: dict[str, Any],
) -> ProductionModel | ProductionUnavailable | None:
    """The production model the run was compared with; today's when it could not compare."""
    version = record.get("production_model_version")
    if version is None:
        planned = record.get("parameters", {}).values()
        if any(parameters.get("production_unavailable") for parameters in planned):
            return current_production_model()  # the evaluation that was missed, done now
        return None
    try:
        directory = registry.fetch(registry.get_version(client(), str(version)))
    except (TrackingError, registry.RegistryError) as error:
        raise ReproduceError(
            f"run {record['run_id']} was evaluated against production model version {version}, "
            f"which cannot be fetched: {error}"
        ) from error
    return ProductionModel(str(version), directory)


def reproduce(run_ref: str, overrides: dict[str, Any], *, progress: bool = True) -> Outcome:
    """Re-execute run `run_ref` with its recorded parameters (and `overrides`) into a new run."""
    try:
        original = resolve_run(run_ref)
    except RunError as error:
        raise ReproduceError(str(error)) from error
    record = read_run(original)
    if record.get("status") != "succeeded":
        raise ReproduceError(
            f"run {original.name} did not succeed (status {record.get('status')}); "
            "nothing to reproduce"
        )
    for line in environment_warnings(original, record):
        print(f"warning: {line}", file=sys.stderr)
    production = _production_model(record)
    run_id = new_run_id()
    run = PipelineRun(
        run_id,
        runs_dir() / run_id,
        record["profile"],
        record["dataset"],
        overrides,
        fixed=record["parameters"],
        reproduces=original.name,
    )
    print(f"reproducing run {original.name} as run {run_id} -> {run.directory}")
    _, tracked = execute(run, production, progress=progress)
    parameters, metrics = compare.compare_runs(original, run.directory)
    data_before = record.get("data_fingerprint")
    data_after = read_run(run.directory).get("data_fingerprint")
    if data_before != data_after:
        print(
            f"warning: data differs: interactions fingerprint {data_before} -> {data_after}",
            file=sys.stderr,
        )
    return Outcome(original.name, run_id, parameters, metrics, tracked)
