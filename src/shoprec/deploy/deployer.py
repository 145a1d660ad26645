"""Deploy a run to an environment, roll an environment back, and start environments again.

Moving an environment's alias and swapping its service's model go together: a running service
loads the new version beside the old one and switches without dropping a request; if the new
version is refused, the alias points where it did before and the service keeps the old one.
"""

from typing import TYPE_CHECKING

from shoprec.artifact import ArtifactError, load_model
from shoprec.deploy import gates, services, state
from shoprec.deploy.environments import Environment, get_environment
from shoprec.deploy.errors import DeployError, GateRefused, ServiceError
from shoprec.models import Recommender
from shoprec.runs import RunError, resolve_run
from shoprec.tracking import registry
from shoprec.tracking.store import client

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion


def _describe(version: "ModelVersion") -> str:
    return f"version {version.version} (run {version.tags.get(registry.RUN_TAG, '?')})"


def _load(version: "ModelVersion") -> Recommender:
    """The version's model, fetched and verified; the service must be able to load it too."""
    try:
        return load_model(registry.fetch(version))
    except (ArtifactError, registry.RegistryError) as error:
        raise DeployError(f"{_describe(version)}: model does not load: {error}") from error


def _registered_version(run_ref: str) -> tuple["ModelVersion", str]:
    """The registered version of a run that passed evaluation, and the run's directory name.

    The registry is the one source of the verdict: a registered version is judged by the
    evaluation recorded with it; the run's own files are read only to explain why a run that
    is not registered may not deploy.
    """
    try:
        run_dir = resolve_run(run_ref)
    except RunError as error:
        raise DeployError(str(error)) from error
    version = registry.version_of_run(client(), run_dir.name)
    if version is None:
        gates.check_evaluation(run_dir)
        raise GateRefused(
            f"run {run_dir.name} passed evaluation but is not in the model registry; "
            f"register it with: shoprec runs sync {run_dir.name}"
        )
    gates.check_registered(version, run_dir.name)
    return version, run_dir.name


def _switch(env: Environment, target: "ModelVersion", action: str) -> state.Deployment:
    """Point `env`'s alias at `target` and have its service serve it; undo both if that fails.

    A running service swaps models in place (no request fails); with none running, one starts.
    """
    mlflow_client = client()
    previous = registry.alias_version(mlflow_client, env.name)
    registry.move_alias(mlflow_client, env.name, str(target.version))
    running = services.running_pid(env) is not None and services.health(env) is not None
    try:
        if running:
            services.swap(env, str(target.version))
        else:
            services.stop(env)  # a stale pid file, or a service that does not answer
            services.start(env, str(target.version))
    except ServiceError as error:
        registry.move_alias(mlflow_client, env.name, previous and str(previous.version))
        if running:
            outcome = _swap_back(env, previous)
        elif previous is None:
            services.forget(env)
            outcome = "nothing is running"
        else:
            outcome = _restart(env, previous)
        if not running and not previous:
            outcome = "no service was stopped"
        raise ServiceError(
            f"{action} of {_describe(target)} to {env.name} failed ({outcome}): {error}"
        ) from error
    event = state.record_event(mlflow_client, target, env.name, action)
    if registry.alias_version(mlflow_client, canary_alias(env.name)) is not None:
        registry.move_alias(mlflow_client, canary_alias(env.name), None)  # a switch ends a canary
    return state.Deployment(env.name, event.version, event.run_id, event.at)


def _swap_back(env: Environment, version: "ModelVersion | None") -> str:
    if version is None:
        return "the service keeps serving what it had"
    try:
        services.swap(env, str(version.version))
    except DeployError as error:
        return f"swapping back to {_describe(version)} also failed: {error}"
    return f"{env.name} keeps serving {_describe(version)}"


def _restart(env: Environment, version: "ModelVersion") -> str:
    try:
        services.start(env, str(version.version))
    except DeployError as error:
        return f"restarting {_describe(version)} also failed: {error}"
    return f"{env.name} serves {_describe(version)} again"


def deploy(
    env_name: str, run_ref: str, approved: bool = False, canary: float | None = None
) -> state.Deployment:
    """Serve run `run_ref`'s registered version in `env_name` if the gates allow it.

    With `canary` (a share of users, between 0 and 1), the version is a challenger served to
    that share of users beside the current version, once the same gates pass; `promote`
    completes it. A refused or failed deploy leaves the alias as it was and the running
    service alone (or, if the new service fails to start, starts the previous version again).
    """
    env = get_environment(env_name)
    if canary is not None and not 0.0 < canary < 1.0:
        raise DeployError(f"--canary {canary}: expected a share of users between 0 and 1")
    version, run_id = _registered_version(run_ref)
    model = _load(version)
    gates.check_promotion(env, run_id, model, approved)
    if canary is not None:
        return _start_canary(env, version, canary)
    return _switch(env, version, "deploy")


CANARY_ACTIONS = ("canary", "canary-rollback")


def canary_alias(env_name: str) -> str:
    """The registry alias naming the version an environment serves as its canary."""
    return f"{env_name}-canary"


def canary_version(env_name: str) -> "ModelVersion | None":
    """The challenger `env_name` serves to a share of its users, if a canary is running."""
    return registry.alias_version(client(), canary_alias(env_name))


def _start_canary(env: Environment, version: "ModelVersion", fraction: float) -> state.Deployment:
    mlflow_client = client()
    current = registry.alias_version(mlflow_client, env.name)
    if current is None:
        raise DeployError(f"nothing deployed to {env.name}: deploy without --canary first")
    if str(current.version) == str(version.version):
        raise DeployError(f"{env.name} already serves {_describe(version)}")
    if services.running_pid(env) is None or services.health(env) is None:
        raise DeployError(
            f"{env.name} is not running; start it first: shoprec start --env {env.name}"
        )
    services.canary(env, str(current.version), str(version.version), fraction)
    registry.move_alias(mlflow_client, canary_alias(env.name), str(version.version))
    event = state.record_event(mlflow_client, version, env.name, "canary")
    return state.Deployment(env.name, event.version, event.run_id, event.at)


def promote(env_name: str) -> state.Deployment:
    """Complete `env_name`'s canary: its challenger serves every user."""
    env = get_environment(env_name)
    challenger = canary_version(env.name)
    if challenger is None:
        raise DeployError(f"{env.name} runs no canary; nothing to promote")
    return _switch(env, challenger, "deploy")


def end_canary(env_name: str, reason: str) -> tuple[state.Deployment, str]:
    """End `env_name`'s canary: every user gets the current version again; record `reason`.

    Returns the current deployment and the challenger's version.
    """
    env = get_environment(env_name)
    mlflow_client = client()
    challenger = canary_version(env.name)
    current = state.current().get(env.name)
    if challenger is None or current is None:
        raise DeployError(f"{env.name} runs no canary; nothing to end")
    services.swap(env, current.version)
    registry.move_alias(mlflow_client, canary_alias(env.name), None)
    event = state.record_event(mlflow_client, challenger, env.name, "canary-rollback")
    state.record_rollback_reason(
        state.Deployment(env.name, event.version, event.run_id, event.at), event.version, reason
    )
    return current, event.version


def rollback(env_name: str, reason: str | None = None) -> tuple[state.Deployment, str]:
    """Serve the version `env_name` served before its current one; return it and the one replaced.

    With no previous version, nothing changes and DeployError says so. A `reason` (e.g. the
    monitor's) is recorded in the registry with the rollback and shown by `shoprec history`.
    """
    env = get_environment(env_name)
    served = state.served_versions(env.name)
    current = state.current().get(env.name)
    if current is None:
        raise DeployError(f"nothing deployed to {env.name}; nothing to roll back")
    if len(served) < 2:
        raise DeployError(
            f"{env.name} has no previous version to roll back to: it serves version "
            f"{current.version} (run {current.run_id}) and its history has nothing before it"
        )
    target = registry.get_version(client(), served[-2])
    _load(target)
    deployment = _switch(env, target, "rollback")
    if reason:
        state.record_rollback_reason(deployment, current.version, reason)
    return deployment, current.version


def start(env_name: str) -> tuple[state.Deployment, int | None]:
    """Start `env_name`'s service for its alias, with its running canary if it has one; the
    pid, or None if it was already up."""
    env = get_environment(env_name)
    deployment = state.current().get(env.name)
    if deployment is None:
        raise DeployError(f"nothing deployed to {env.name}; use shoprec deploy --env {env.name}")
    live = services.health(env)
    if live is not None and live.get("model_version") == deployment.version:
        return deployment, None
    _load(registry.get_version(client(), deployment.version))
    canary = None
    challenger = canary_version(env.name)
    if challenger is not None:
        asked = (services.deployed(env) or {}).get("canary") or {}
        if asked.get("version") != str(challenger.version) or "fraction" not in asked:
            raise DeployError(
                f"{env.name} runs a canary of version {challenger.version} (registry alias "
                f"{canary_alias(env.name)}), but its share of users is not recorded here; end it "
                f"(shoprec monitor --env {env.name} --auto-rollback, or shoprec promote --env "
                f"{env.name}) or deploy it again with --canary"
            )
        _load(challenger)
        canary = (str(challenger.version), float(asked["fraction"]))
    return deployment, services.start(env, deployment.version, canary=canary)
