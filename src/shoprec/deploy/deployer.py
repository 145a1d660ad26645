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
    """The registered version of a run that passed evaluation, and the run's directory name."""
    try:
        run_dir = resolve_run(run_ref)
    except RunError as error:
        raise DeployError(str(error)) from error
    gates.check_evaluation(run_dir)
    version = registry.version_of_run(client(), run_dir.name)
    if version is None:
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
    event = registry.record_event(mlflow_client, target, env.name, action)
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


def deploy(env_name: str, run_ref: str, approved: bool = False) -> state.Deployment:
    """Serve run `run_ref`'s registered version in `env_name` if the gates allow it.

    A refused or failed deploy leaves the alias as it was and the running service alone (or,
    if the new service fails to start, starts the previous version again).
    """
    env = get_environment(env_name)
    version, run_id = _registered_version(run_ref)
    model = _load(version)
    gates.check_promotion(env, resolve_run(run_id), model, approved)
    return _switch(env, version, "deploy")


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
    """Start `env_name`'s service for its alias; the pid, or None if it was already up."""
    env = get_environment(env_name)
    deployment = state.current().get(env.name)
    if deployment is None:
        raise DeployError(f"nothing deployed to {env.name}; use shoprec deploy --env {env.name}")
    live = services.health(env)
    if live is not None and live.get("model_version") == deployment.version:
        return deployment, None
    _load(registry.get_version(client(), deployment.version))
    return deployment, services.start(env, deployment.version)
