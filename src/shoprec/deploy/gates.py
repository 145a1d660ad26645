"""The promotion rules: what a run must show before an environment may serve it.

Every environment needs a run whose evaluation passed under the deploy policy in force
(`policy/deploy-policy.toml`: same sha256), as the registry recorded it with the run's version
(the run's own evaluation is read only to explain why a run that is not registered is refused);
staging also needs the live test service to serve the run and pass a smoke test; production
also needs staging to serve the run live and an explicit approval.
"""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np

from shoprec.deploy.environments import ENVIRONMENTS, Environment
from shoprec.deploy.errors import DeployError, GateRefused
from shoprec.deploy.services import health, progress
from shoprec.policy import Policy, PolicyError, load_policy
from shoprec.runs import RunError, evaluation
from shoprec.tracking import registry

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

    from shoprec.models import Recommender

SMOKE_K = 10


@dataclass(frozen=True)
class Check:
    """One named smoke-test check and what it found."""

    name: str
    passed: bool
    detail: str = ""


def failed_checks(result: dict[str, Any]) -> list[str]:
    """The evaluation checks that did not pass (records with `check` and `passed` keys)."""
    return [
        str(check.get("check", "?"))
        for check in result.get("checks", [])
        if not check.get("passed")
    ]


def current_policy() -> Policy:
    """The deploy policy in force; DeployError (bad input) when the file is missing or malformed."""
    try:
        return load_policy()
    except PolicyError as error:
        raise DeployError(str(error)) from error


def _check_policy(run_id: str, sha256: object, version: object, policy: Policy) -> None:
    if sha256 != policy.sha256:
        raise GateRefused(
            f"run {run_id} was evaluated under deploy policy version {version} (sha256 "
            f"{str(sha256)[:12]}), not under the policy in force, version {policy.version} "
            f"(sha256 {policy.sha256[:12]}, {policy.path}); evaluate it again: "
            f"shoprec pipeline --rerun {run_id}"
        )


def check_evaluation(run_dir: Path) -> None:
    """Refuse a run that was not evaluated, whose evaluation did not pass (failed or incomplete),
    or that was evaluated under another deploy policy."""
    try:
        result = evaluation(run_dir)
    except RunError as error:
        raise GateRefused(str(error)) from error
    if result.get("status") == "incomplete":
        reason = (result.get("production") or {}).get("reason", "production was not compared")
        raise GateRefused(
            f"run {run_dir.name}: evaluation incomplete ({reason}); evaluate it again: "
            f"shoprec pipeline --rerun {run_dir.name}"
        )
    if result.get("passed") is not True or result.get("status", "passed") != "passed":
        failed = ", ".join(failed_checks(result)) or "none listed"
        raise GateRefused(f"run {run_dir.name} failed evaluation (failed checks: {failed})")
    policy = result.get("policy") or {}
    _check_policy(run_dir.name, policy.get("sha256"), policy.get("version"), current_policy())


def check_registered(version: "ModelVersion", run_id: str) -> None:
    """Refuse a registered version whose recorded evaluation did not pass under today's policy.

    The registry's tags are checked, not only the run's files: they are what was registered.
    """
    tags = version.tags
    if tags.get(registry.STATUS_TAG, "passed") != "passed" or tags.get("evaluation.passed") != (
        "True"
    ):
        raise GateRefused(
            f"version {version.version} (run {run_id}): the registry records an evaluation that "
            f"did not pass ({tags.get(registry.STATUS_TAG) or tags.get('evaluation.passed')})"
        )
    _check_policy(
        run_id,
        tags.get(registry.POLICY_TAG),
        tags.get(registry.POLICY_VERSION_TAG),
        current_policy(),
    )


def _smoke_users(model: "Recommender") -> tuple[int, int, int]:
    seen = np.diff(model.seen_indptr_)
    row = int(seen.argmin())
    k = min(SMOKE_K, len(model.item_ids_) - int(seen[row]))
    return int(model.user_ids_[row]), int(model.user_ids_.max()) + 1, k


def _check_known_user(client: httpx.Client, user_id: int, k: int) -> Check:
    name = "known-user recommendations"
    response = client.get("/recommendations", params={"user_id": user_id, "k": k})
    if response.status_code != 200:
        return Check(name, False, f"user {user_id}: HTTP {response.status_code}")
    body = response.json()
    scores = [item["score"] for item in body["items"]]
    if len(scores) != k:
        return Check(name, False, f"user {user_id}: {len(scores)} items, expected {k}")
    if body["fallback"]:
        return Check(name, False, f"user {user_id}: fallback, expected personal items")
    if not all(math.isfinite(score) for score in scores):
        return Check(name, False, f"user {user_id}: non-finite scores {scores}")
    if any(later > earlier for earlier, later in zip(scores, scores[1:], strict=False)):
        return Check(name, False, f"user {user_id}: scores not descending {scores}")
    return Check(name, True)


def _check_unknown_user(client: httpx.Client, user_id: int, k: int) -> Check:
    name = "unknown-user fallback"
    response = client.get("/recommendations", params={"user_id": user_id, "k": k})
    if response.status_code != 200:
        return Check(name, False, f"user {user_id}: HTTP {response.status_code}")
    body = response.json()
    if not body["fallback"] or not body["items"]:
        return Check(
            name, False, f"user {user_id}: fallback={body['fallback']}, {len(body['items'])} items"
        )
    return Check(name, True)


def smoke_test(client: httpx.Client, run_id: str, model: "Recommender") -> list[Check]:
    """Check the service behind `client` serves `run_id` and answers sensibly for `model`."""
    try:
        response = client.get("/health")
        live = response.json() if response.status_code == 200 else {}
    except (httpx.HTTPError, ValueError) as error:
        return [Check("health", False, f"no answer from {client.base_url} ({error})")]
    checks = [
        Check("health", live.get("status") == "ok", f"/health answered {live or response}"),
        Check(
            "serves run",
            live.get("run_id") == run_id,
            f"serves run {live.get('run_id')!r}, not {run_id!r}",
        ),
    ]
    known, unknown, k = _smoke_users(model)
    try:
        checks += [_check_known_user(client, known, k), _check_unknown_user(client, unknown, k)]
    except (httpx.HTTPError, ValueError, KeyError) as error:
        checks.append(Check("recommendations", False, f"bad answer ({error!r})"))
    return checks


def check_staging(run_id: str, model: "Recommender", test: Environment) -> None:
    """Refuse unless the live test service serves `run_id` and passes the smoke test."""
    progress.info(f"staging gate: smoke test against the test service at {test.url}")
    with httpx.Client(base_url=test.url, timeout=5.0) as client:
        failed = [check for check in smoke_test(client, run_id, model) if not check.passed]
    if failed:
        reasons = "; ".join(f"{check.name}: {check.detail}" for check in failed)
        raise GateRefused(f"smoke test against test ({test.url}) failed: {reasons}")


def check_production(run_id: str, approved: bool, staging: Environment) -> None:
    """Refuse unless the live staging service serves `run_id` and the deploy is approved."""
    problems = []
    live = health(staging)
    if live is None:
        problems.append(f"staging ({staging.url}) is down")
    elif live.get("run_id") != run_id:
        problems.append(f"staging serves run {live.get('run_id')!r}, not {run_id!r}")
    if not approved:
        problems.append("--approve not given")
    if problems:
        raise GateRefused("; ".join(problems))


def check_promotion(env: Environment, run_id: str, model: "Recommender", approved: bool) -> None:
    """Refuse, saying which rule is unmet, unless `env` may serve run `run_id`.

    The run's evaluation is not read here: the deployer checked the verdict the registry
    recorded with the run's version (`check_registered`) before calling this.
    """
    try:
        if env.name == "staging":
            check_staging(run_id, model, ENVIRONMENTS["test"])
        elif env.name == "production":
            check_production(run_id, approved, ENVIRONMENTS["staging"])
    except GateRefused as error:
        raise GateRefused(f"{env.name} refuses run {run_id}: {error}") from error
