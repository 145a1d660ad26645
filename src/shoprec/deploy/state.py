"""Which model version each environment serves: the registry aliases, with each version's log.

The registry is the one source of truth: alias `<env>` of the registered model names the
version `<env>` serves (and `<env>-canary` its canary's challenger), and each version's
`shoprec.deployments` tag holds one row per move of an alias to it: which command (deploy,
rollback, promote, start, canary, canary-rollback), when, and why. Local files under
`.shoprec/` are only caches, pid files, journals and service logs.
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
LEGACY_REASON_TAG = "shoprec.rollback_reasons"  # read only: reasons are in the rows now


SWITCHES = ("deploy", "rollback", "promote", "start")  # actions that move the environment's alias
CANARY_ACTIONS = ("canary", "canary-rollback")  # actions that move its canary alias


@dataclass(frozen=True)
class Event:
    """A registry alias moved by a command: `action` (one of SWITCHES or CANARY_ACTIONS) made
    `env` (or its canary) serve `version`, at `at`; why, for what share of users (a canary),
    and by which command (`transaction`: the id of its journal entry)."""

    env: str
    version: str
    run_id: str
    action: str
    at: str
    reason: str | None = None
    fraction: float | None = None
    transaction: str | None = None


def record_event(
    mlflow_client: "MlflowClient",
    version: "ModelVersion",
    env: str,
    action: str,
    *,
    reason: str | None = None,
    fraction: float | None = None,
    transaction: str | None = None,
) -> Event:
    """Log, on the version in the registry, that `action` moved `env`'s alias (or its canary
    alias) to `version`."""
    run_id = version.tags.get(registry.RUN_TAG, "")
    event = Event(env, str(version.version), run_id, action, _now(), reason, fraction, transaction)
    # read the tag afresh: `version` may have been fetched before another row was added
    current = registry.get_version(mlflow_client, str(version.version))
    log = json.loads(current.tags.get(DEPLOYMENTS_TAG, "[]"))
    entry = {"env": env, "action": action, "at": event.at}
    extra = {"reason": reason, "fraction": fraction, "transaction": transaction}
    log.append({**entry, **{key: value for key, value in extra.items() if value is not None}})
    mlflow_client.set_model_version_tag(
        REGISTERED_MODEL, str(version.version), DEPLOYMENTS_TAG, json.dumps(log)
    )
    return event


def events(mlflow_client: "MlflowClient") -> list[Event]:
    """Every alias move of every version, oldest first."""
    legacy = _legacy_reasons(mlflow_client)
    found = [
        Event(entry["env"], str(version.version), version.tags.get(registry.RUN_TAG, ""),
              entry["action"], entry["at"],
              entry.get("reason") or legacy.get((entry["env"], str(version.version), entry["at"])),
              entry.get("fraction"), entry.get("transaction"))
        for version in registry.versions(mlflow_client)
        for entry in json.loads(version.tags.get(DEPLOYMENTS_TAG, "[]"))
    ]  # fmt: skip
    return sorted(found, key=lambda event: event.at)


def recorded(mlflow_client: "MlflowClient", transaction: str) -> bool:
    """Whether the command with journal id `transaction` wrote its history row."""
    return any(event.transaction == transaction for event in events(mlflow_client))


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
    """Every alias move (of `env` only, if given), oldest first."""
    return [event for event in events(client()) if env in (None, event.env)]


def served_versions(env: str, log: list[Event] | None = None) -> list[str]:
    """The versions `env` served, as a stack: deploys push, rollbacks pop back to their version.

    `log` is `env`'s history if already read."""
    stack: list[str] = []
    for event in history(env) if log is None else log:
        if event.action in CANARY_ACTIONS:  # a challenger never served everyone
            continue
        if event.action == "rollback":
            while stack and stack[-1] != event.version:
                stack.pop()
            if not stack:
                stack.append(event.version)
        elif not stack or stack[-1] != event.version:
            stack.append(event.version)
    return stack


def _legacy_reasons(mlflow_client: "MlflowClient") -> dict[tuple[str, str, str], str]:
    """Rollback reasons recorded apart from their rows (before rows held them), by
    (environment, version rolled back to, time)."""
    found = {}
    for version in registry.versions(mlflow_client):
        for entry in json.loads(version.tags.get(LEGACY_REASON_TAG, "[]")):
            found[(entry["env"], str(version.version), entry["at"])] = entry["reason"]
    return found
