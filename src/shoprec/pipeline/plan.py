"""What each notebook of a run is given: its defaults, the run's overrides and its run paths."""

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shoprec.errors import EXIT_REFUSED, ShoprecError
from shoprec.params import closest
from shoprec.policy import POLICY_FILE, THRESHOLDS
from shoprec.runs import MODEL_SUBDIR, PIPELINE_NOTEBOOKS, TUNING_FILE, output_dir

# Parameters the pipeline sets to paths inside the run directory.
RUN_PATH_PARAMETERS = ("output_dir", "model_dir", "tuning_file")
# Parameters naming the production model to compare with.
PRODUCTION_PARAMETERS = ("production_model_dir", "production_unavailable")
# What the pipeline alone may set: `-p` giving one is refused.
OWNED_PARAMETERS = (*RUN_PATH_PARAMETERS, *PRODUCTION_PARAMETERS)


class PipelineError(ShoprecError):
    """A pipeline run that could not start or whose notebook failed."""

    exit_code = EXIT_REFUSED


@dataclass
class PipelineRun:
    """One execution of the pipeline: where it lives and what it was given.

    `fixed` holds per-notebook parameter values (e.g. a recorded run's) applied over the
    defaults and before `overrides`; `reproduces` names the run this one re-executes to check
    it. A reproduction checks and never ships: `runs/latest` stays where it was and its model is
    not registered (see `ships`).
    """

    run_id: str
    directory: Path
    profile: str
    dataset: str
    overrides: dict[str, Any] = field(default_factory=dict)
    fixed: dict[str, dict[str, Any]] = field(default_factory=dict)
    reproduces: str | None = None

    @property
    def ships(self) -> bool:
        """Whether the run may become `runs/latest` and a registered model version."""
        return self.reproduces is None


@dataclass(frozen=True)
class ProductionModel:
    """The registered model version production serves, fetched to a local directory."""

    version: str
    directory: Path


@dataclass(frozen=True)
class ProductionUnavailable:
    """Production could not be fetched (the store failed): the evaluation will be incomplete."""

    reason: str


def check_overrides(overrides: dict[str, Any]) -> None:
    """Refuse `-p` for parameters the pipeline owns and for the deploy policy's thresholds."""
    owned = sorted(set(overrides) & set(OWNED_PARAMETERS))
    if owned:
        raise PipelineError(
            f"-p {', '.join(owned)}: set by the pipeline itself (paths inside the run directory, "
            "the production model to compare with); it cannot be given"
        )
    thresholds = sorted(set(overrides) & set(THRESHOLDS) - {"k"})
    if thresholds:
        raise PipelineError(
            f"-p {', '.join(thresholds)}: deploy thresholds are not run parameters; they live in "
            f"{POLICY_FILE} (versioned with the code, recorded with every evaluation)"
        )


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`name=value` pairs to a dict; values are read as JSON when they parse, else as strings."""
    overrides = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name.isidentifier():
            raise PipelineError(
                f"-p {pair!r}: expected name=value with a Python identifier as name"
            )
        try:
            overrides[name] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[name] = raw
    return overrides


def notebook_parameters(notebook: Path) -> dict[str, Any]:
    """The parameters a notebook declares in its `parameters` cell, with their default values."""
    import papermill

    declared = papermill.inspect_notebook(str(notebook))
    return {name: ast.literal_eval(spec["default"]) for name, spec in declared.items()}


def plan_parameters(
    run: PipelineRun,
    notebooks_dir: Path,
    production: ProductionModel | ProductionUnavailable | None = None,
) -> dict[str, dict[str, Any]]:
    """Every parameter of every notebook in the run: its defaults overridden by what was given."""
    check_overrides(run.overrides)
    common = {"profile": run.profile, "dataset": run.dataset}
    declared = {
        name: notebook_parameters(notebooks_dir / f"{name}.ipynb") for name in PIPELINE_NOTEBOOKS
    }
    known = set().union(*declared.values()) - set(OWNED_PARAMETERS)
    for name in sorted(run.overrides):
        if name not in known:
            raise PipelineError(
                f"-p {name}: no notebook has such a parameter{closest(name, known)} "
                f"(known: {', '.join(sorted(known))})"
            )
    plan = {}
    for name, defaults in declared.items():
        fixed = {
            key: value
            for key, value in run.fixed.get(name, {}).items()
            if key in defaults and key not in OWNED_PARAMETERS
        }
        given = {
            key: value for key, value in {**common, **run.overrides}.items() if key in defaults
        }
        output = str(output_dir(run.directory, name))
        plan[name] = {**defaults, **fixed, **given, "output_dir": output}
    plan["03_train"]["tuning_file"] = str(run.directory / TUNING_FILE)
    plan["04_evaluate"]["model_dir"] = str(run.directory / MODEL_SUBDIR)
    if isinstance(production, ProductionModel):
        plan["04_evaluate"]["production_model_dir"] = str(production.directory)
    elif isinstance(production, ProductionUnavailable):
        plan["04_evaluate"]["production_unavailable"] = production.reason
    return plan
