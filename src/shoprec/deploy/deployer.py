"""Deploy a run to an environment, and bring environments back up from stored state."""

from pathlib import Path

from shoprec.artifact import ArtifactError, load_model
from shoprec.deploy import gates, services, state
from shoprec.deploy.environments import Environment, get_environment
from shoprec.deploy.errors import DeployError, ServiceError
from shoprec.models import Recommender
from shoprec.runs import RunError, model_dir, resolve_run


def _run_model(run_ref: str) -> tuple[Path, Path]:
    try:
        run_dir = resolve_run(run_ref)
        return run_dir, model_dir(run_dir)
    except RunError as error:
        raise DeployError(str(error)) from error


def _load(run_id: str, path: Path) -> Recommender:
    try:
        return load_model(path)
    except ArtifactError as error:
        raise DeployError(f"run {run_id}: model does not load: {error}") from error


def _rollback(env: Environment, previous: state.Deployment) -> str:
    try:
        _, path = _run_model(previous.run_id)
        services.start(env, previous.run_id, path)
    except DeployError as error:
        return f"restoring run {previous.run_id} also failed: {error}"
    return f"{env.name} serves run {previous.run_id} again"


def deploy(env_name: str, run_ref: str, approved: bool = False) -> state.Deployment:
    """Serve run `run_ref` in `env_name` if the gates allow it, replacing the running service.

    A refused or failed deploy leaves the stored state as it was; if the new service fails
    to start, the previous run is started again.
    """
    env = get_environment(env_name)
    run_dir, path = _run_model(run_ref)
    run_id = run_dir.name
    model = _load(run_id, path)
    gates.check_promotion(env, run_dir, model, approved)
    previous = state.current().get(env.name)
    stopped = services.stop(env)
    try:
        services.start(env, run_id, path)
    except ServiceError as error:
        if not stopped:
            outcome = "no service was stopped"
        else:
            outcome = _rollback(env, previous) if previous else "nothing is running"
        raise ServiceError(
            f"deploy of run {run_id} to {env.name} failed ({outcome}): {error}"
        ) from error
    return state.record_deployment(env.name, run_id)


def start(env_name: str) -> tuple[state.Deployment, int | None]:
    """Start `env_name`'s service for its stored run; the pid, or None if it was already up."""
    env = get_environment(env_name)
    deployment = state.current().get(env.name)
    if deployment is None:
        raise DeployError(f"nothing deployed to {env.name}; use shoprec deploy --env {env.name}")
    live = services.health(env)
    if live is not None and live.get("run_id") == deployment.run_id:
        return deployment, None
    _, path = _run_model(deployment.run_id)
    _load(deployment.run_id, path)
    return deployment, services.start(env, deployment.run_id, path)
