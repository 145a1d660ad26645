"""Which model version each environment serves: the registry aliases, with each version's log.

The registry is the one source of truth: alias `<env>` of the registered model names the
version `<env>` serves, and each version's `shoprec.deployments` tag logs when it was deployed
to (or rolled back to in) which environment. Local files under `.shoprec/` are only caches,
pid files and service logs.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from shoprec.deploy.environments import ENVIRONMENTS
from shoprec.tracking import registry
from shoprec.tracking.store import REGISTERED_MODEL, client

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

DEPLOYMENTS_TAG = "shoprec.deployments"
ROLLBACK_REASON_TAG = "shoprec.rollback_reasons"


@dataclass(frozen=True)
class Event:
    """A version deployed to (or rolled back to in) an environment, and when."""

    env: str
    version: str
    run_id: str
    action: str
    at: str


def record_event(
    mlflow_client: "MlflowClient", version: "ModelVersion", env: str, action: str
) -> Event:
    """Log that `version` now serves in `env` (`action`: deploy, rollback, canary or
    canary-rollback), on the version in the registry."""
    run_id = version.tags.get(registry.RUN_TAG, "")
    event = Event(env, str(version.version), run_id, action, _now())
    log = json.loads(version.tags.get(DEPLOYMENTS_TAG, "[]"))
    log.append({"env": env, "action": action, "at": event.at})
    mlflow_client.set_model_version_tag(
        REGISTERED_MODEL, str(version.version), DEPLOYMENTS_TAG, json.dumps(log)
    )
    return event


def events(mlflow_client: "MlflowClient") -> list[Event]:
    """Every deployment and rollback of every version, oldest first."""
    found = [
        Event(entry["env"], str(version.version), version.tags.get(registry.RUN_TAG, ""),
              entry["action"], entry["at"])
        for version in registry.versions(mlflow_client)
        for entry in json.loads(version.tags.get(DEPLOYMENTS_TAG, "[]"))
    ]  # fmt: skip
    return sorted(found, key=lambda event: event.at)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Deployment:
    """A model version an environment serves, the run that trained it, and since when."""

    env: str
    version: str
    run_id: str
    at: str | None


def current() -> dict[str, Deployment]:
    """The deployment each environment serves (per its alias), by environment name."""
    mlflow_client = client()
    log = events(mlflow_client)
    served = {}
    for env in ENVIRONMENTS:
        version = registry.alias_version(mlflow_client, env)
        if version is None:
            continue
        number = str(version.version)
        since = [event.at for event in log if event.env == env and event.version == number]
        run_id = version.tags.get(registry.RUN_TAG, "")
        served[env] = Deployment(env, number, run_id, since[-1] if since else None)
    return served


def history(env: str | None = None) -> list[Event]:
    """Every deployment and rollback (of `env` only, if given), oldest first."""
    return [event for event in events(client()) if env in (None, event.env)]


def served_versions(env: str) -> list[str]:
    """The versions `env` served, as a stack: deploys push, rollbacks pop back to their version."""
    stack: list[str] = []
    for event in history(env):
        if event.action in ("canary", "canary-rollback"):  # a challenger never served everyone
            continue
        if event.action == "rollback":
            while stack and stack[-1] != event.version:
                stack.pop()
            if not stack:
                stack.append(event.version)
        elif not stack or stack[-1] != event.version:
            stack.append(event.version)
    return stack


def record_rollback_reason(deployment: Deployment, replaced: str, reason: str) -> None:
    """Record why `deployment` (a rollback from version `replaced`) happened, on its version."""
    mlflow_client = client()
    version = registry.get_version(mlflow_client, deployment.version)
    reasons = json.loads(version.tags.get(ROLLBACK_REASON_TAG, "[]"))
    reasons.append({"env": deployment.env, "at": deployment.at, "from": replaced,
                    "reason": reason})  # fmt: skip
    mlflow_client.set_model_version_tag(
        REGISTERED_MODEL, deployment.version, ROLLBACK_REASON_TAG, json.dumps(reasons)
    )


def rollback_reasons() -> dict[tuple[str, str, str], str]:
    """Recorded rollback reasons by (environment, version rolled back to, time)."""
    found = {}
    for version in registry.versions(client()):
        for entry in json.loads(version.tags.get(ROLLBACK_REASON_TAG, "[]")):
            found[(entry["env"], str(version.version), entry["at"])] = entry["reason"]
    return found
