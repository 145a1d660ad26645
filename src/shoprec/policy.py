"""The deploy policy: the thresholds that decide whether a model may ship, read from the repository.

The policy is `policy/deploy-policy.toml` in the project, versioned with the code. Nothing a run
is given (notebook parameters, `-p`) can change it; every evaluation records the policy's version
and sha256, and deploy refuses a run evaluated under a different policy.
"""

import hashlib
import math
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shoprec.errors import EXIT_BAD_INPUT, ShoprecError
from shoprec.runs import project_dir

POLICY_FILE = Path("policy") / "deploy-policy.toml"
THRESHOLDS = ("k", "min_ndcg", "min_lift_over_baseline", "max_regression")
"""The policy's `[evaluation]` fields: no notebook parameter may carry these names."""


class PolicyError(ShoprecError, ValueError):
    """A deploy policy file that is missing or malformed; the message names the file and field."""

    exit_code = EXIT_BAD_INPUT


@dataclass(frozen=True)
class Policy:
    """The thresholds an evaluation applies, and which policy file (version, sha256) they are."""

    version: int
    k: int
    min_ndcg: float
    min_lift_over_baseline: float
    max_regression: float
    sha256: str
    path: Path

    def record(self) -> dict[str, Any]:
        """What an evaluation records of the policy: version, sha256, file and thresholds."""
        return {
            "version": self.version,
            "sha256": self.sha256,
            "file": POLICY_FILE.as_posix(),
            "thresholds": {name: getattr(self, name) for name in THRESHOLDS},
        }


def policy_path() -> Path:
    """Where the project's deploy policy lives."""
    return project_dir() / POLICY_FILE


def _number(path: Path, table: dict[str, Any], name: str, low: float, high: float) -> float:
    value = table.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PolicyError(f"{path}: [evaluation] {name} = {value!r}; expected a number")
    if not low <= value <= high:
        raise PolicyError(f"{path}: [evaluation] {name} = {value!r}; expected {low} to {high}")
    return float(value)


def read_versioned_toml(
    path: Path, kind: str, repository_file: Path | str, error: type[ShoprecError]
) -> tuple[dict[str, Any], int, str]:
    """A versioned policy file: its TOML document, its `version` (an integer >= 1) and the
    sha256 of its bytes; `error` names the file and what is wrong with it."""
    try:
        raw = path.read_bytes()
    except OSError as problem:
        raise error(
            f"{path}: cannot read the {kind} ({problem.strerror}); it belongs in the "
            f"repository as {repository_file}"
        ) from None
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as problem:
        raise error(f"{path}: not valid TOML ({problem})") from None
    version = document.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise error(f"{path}: version = {version!r}; expected an integer >= 1")
    return document, version, hashlib.sha256(raw).hexdigest()


def load_policy(path: Path | None = None) -> Policy:
    """The deploy policy at `path` (default: the project's), checked field by field."""
    path = Path(path) if path is not None else policy_path()
    document, version, sha256 = read_versioned_toml(path, "deploy policy", POLICY_FILE, PolicyError)
    table = document.get("evaluation")
    if not isinstance(table, dict):
        raise PolicyError(f"{path}: missing the [evaluation] table of thresholds")
    unknown = sorted(set(table) - set(THRESHOLDS))
    if unknown:
        raise PolicyError(
            f"{path}: [evaluation] has unknown field(s) {unknown}; known: {THRESHOLDS}"
        )
    k = table.get("k")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise PolicyError(f"{path}: [evaluation] k = {k!r}; expected an integer >= 1")
    return Policy(
        version=version,
        k=k,
        min_ndcg=_number(path, table, "min_ndcg", 0.0, 1.0),
        min_lift_over_baseline=_number(path, table, "min_lift_over_baseline", 0.0, math.inf),
        max_regression=_number(path, table, "max_regression", 0.0, 0.999999),
        sha256=sha256,
        path=path,
    )


PASSED, FAILED, INCOMPLETE = "passed", "failed", "incomplete"
"""An evaluation's outcome: only `passed` may ship; `incomplete` could not compare production."""
# What became of the comparison with production.
NO_PRODUCTION, COMPARED, UNAVAILABLE, NOT_COMPARABLE = (
    "none",
    "compared",
    "unavailable",
    "not comparable",
)


def seen_test_interactions(production: Any, test: Any) -> int:
    """How many of the (user, item) pairs in `test` the fitted model `production` trained on."""
    import numpy as np
    import pandas as pd

    counts = np.diff(production.seen_indptr_)
    seen = pd.DataFrame(
        {
            "user_id": np.repeat(production.user_ids_, counts),
            "item_id": production.item_ids_[production.seen_indices_],
        }
    )
    pairs = test[["user_id", "item_id"]].drop_duplicates()
    return len(pairs.merge(seen, on=["user_id", "item_id"], how="inner"))


def comparability(
    candidate: dict[str, Any], production: dict[str, Any], seen_in_training: int
) -> str | None:
    """Why production's score on the candidate's held-out data says nothing; None if it does.

    `candidate` and `production` are the models' `training` metadata; `seen_in_training` is how
    many of the candidate's held-out interactions production trained on.
    """
    for field in ("dataset", "profile", "dataset_options"):
        if candidate.get(field) != production.get(field):
            return (
                f"production was trained with {field}={production.get(field)!r}, the candidate "
                f"with {field}={candidate.get(field)!r}: they cannot be compared"
            )
    if seen_in_training:
        return (
            f"production trained on {seen_in_training} of the candidate's held-out interactions "
            "(a different split or seed): its score on them cannot be compared"
        )
    return None


# What the candidate's nDCG is held against in the regression check (an evaluation's `basis`).
PRODUCTION_MODEL = "production model"
PRODUCTION_RECIPE = "production's recipe refit on the candidate's training data"


@dataclass(frozen=True)
class Recipe:
    """How production's model was made: its algorithm and hyperparameters, to fit again."""

    algorithm: str
    params: dict[str, Any]

    def record(self) -> dict[str, Any]:
        """What an evaluation records of the recipe."""
        return {"algorithm": self.algorithm, "params": dict(self.params)}


def production_recipe(
    record: dict[str, Any], algorithms: Iterable[str], engine: str = "local"
) -> Recipe | str:
    """Production's recipe from its artifact record (`model.json`), or why it cannot be refit.

    `algorithms` are the algorithm names this shoprec can fit; `engine` is the engine that would
    refit it (the candidate's): a recipe fit by another engine is not refit, as the engines'
    hyperparameters need not mean the same (Spark's ALS scales its regularisation). The recipe
    is the record's `algorithm` and `params` (every hyperparameter, seeds included, so a refit
    is deterministic).
    """
    training = (record.get("metadata") or {}).get("training") or {}
    fitted_by = training.get("engine", "local")
    if fitted_by != engine:
        return (
            f"production's model was fit by engine={fitted_by!r}, the candidate by "
            f"engine={engine!r}: its hyperparameters need not mean the same there"
        )
    known = sorted(algorithms)
    algorithm, params = record.get("algorithm"), record.get("params")
    if not isinstance(algorithm, str) or not algorithm:
        return f"production's model.json records no algorithm (algorithm={algorithm!r})"
    if algorithm not in known:
        return f"production's algorithm {algorithm!r} is unknown here; expected one of {known}"
    if not isinstance(params, dict) or not all(isinstance(name, str) for name in params):
        return (
            f"production's model.json records no hyperparameters for {algorithm!r} "
            f"(params={params!r}); expected a table of name = value"
        )
    return Recipe(algorithm, dict(params))


def production_basis(
    not_comparable: str | None, recipe: Recipe | str | None, trained_on: dict[str, Any]
) -> dict[str, Any]:
    """What the candidate is compared with, for `decide`'s `production` argument.

    `not_comparable` is `comparability`'s answer: None when production's own score on the
    candidate's held-out data means something, and the candidate is held against production's
    model. Otherwise it is held against production's `recipe` refit on the candidate's training
    data; when there is no recipe (a string says why), nothing can be compared: `not comparable`.
    `trained_on` is what production was trained on (dataset, profile), for the record.
    """
    if not_comparable is None:
        return {"status": COMPARED, "basis": PRODUCTION_MODEL, "trained_on": trained_on}
    if isinstance(recipe, Recipe):
        return {
            "status": COMPARED,
            "basis": PRODUCTION_RECIPE,
            "basis_reason": f"production's own score means nothing here: {not_comparable}",
            "recipe": recipe.record(),
            "trained_on": trained_on,
        }
    problem = recipe or "no recipe was given"
    return {
        "status": NOT_COMPARABLE,
        "reason": f"{not_comparable}; and production's recipe cannot be refit instead: {problem}",
        "trained_on": trained_on,
    }


def decide(policy: Policy, ndcg: dict[str, float], production: dict[str, Any]) -> dict[str, Any]:
    """The evaluation's verdict under `policy`: status, passed, checks (value and threshold each).

    `ndcg` holds nDCG@k for `candidate`, `baseline` and, when compared, `production` (the
    production model's, or its recipe's refit, as `production["basis"]` says: see
    `production_basis`); `production` says what became of the comparison (`status`, and `reason`
    unless compared). Only `passed` may ship: an evaluation that could not reach production is
    `incomplete`, one that could not compare with it (nor with its recipe) `failed`.
    """
    k, candidate = policy.k, ndcg["candidate"]
    checks = [
        {
            "check": f"nDCG@{k} >= {policy.min_ndcg}",
            "value": candidate,
            "threshold": policy.min_ndcg,
            "passed": bool(candidate >= policy.min_ndcg),
        },
        {
            "check": f"nDCG@{k} >= {policy.min_lift_over_baseline} x baseline",
            "value": candidate,
            "threshold": policy.min_lift_over_baseline * ndcg["baseline"],
            "passed": bool(candidate >= policy.min_lift_over_baseline * ndcg["baseline"]),
        },
    ]
    status = production["status"]
    if status != NO_PRODUCTION:
        threshold = (1 - policy.max_regression) * ndcg["production"] if status == COMPARED else None
        basis = production.get("basis", PRODUCTION_MODEL)
        against = "production's recipe (refit)" if basis == PRODUCTION_RECIPE else "production"
        checks.append(
            {
                "check": f"nDCG@{k} >= (1 - {policy.max_regression}) x {against}",
                "value": candidate,
                "threshold": threshold,
                "passed": status == COMPARED and bool(candidate >= threshold),
                **({"basis": basis} if status == COMPARED else {"detail": production["reason"]}),
            }
        )
    if not all(check["passed"] for check in checks[:2]) or status == NOT_COMPARABLE:
        verdict = FAILED
    elif status == UNAVAILABLE:
        verdict = INCOMPLETE
    else:
        verdict = PASSED if all(check["passed"] for check in checks) else FAILED
    return {
        "status": verdict,
        "passed": verdict == PASSED,
        "k": k,
        "policy": policy.record(),
        "production": production,
        "checks": checks,
    }
