"""Deploy a run to an environment, roll an environment back, promote a canary, start again.

Each command holds its environment's lock (`shoprec.deploy.transaction`) and is one
transaction. It first has the service serve the new version (a running service loads it
beside the old one and switches without dropping a request), then moves the registry alias
and writes the history row. A version the service refuses leaves the alias where it was and
the service serving what the registry names: nothing to undo in the registry. A command
killed at any instant leaves its journal; the next command on that environment finishes what
it left: the history row of an alias it moved, or the service back to what the aliases name.
`shoprec status --registry` describes such a state, and `shoprec start --env E` repairs it.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shoprec.artifact import ArtifactError, load_model
from shoprec.deploy import gates, services, state, transaction
from shoprec.deploy.environments import Environment, get_environment
from shoprec.deploy.errors import DeployError, GateRefused, ServiceError
from shoprec.deploy.transaction import Intent
from shoprec.runs import RunError, resolve_run
from shoprec.tracking import registry
from shoprec.tracking.store import client

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from shoprec.models import Recommender


def _describe(version: "ModelVersion") -> str:
    return f"version {version.version} (run {version.tags.get(registry.RUN_TAG, '?')})"


def _load(version: "ModelVersion") -> "Recommender":
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


def canary_alias(env_name: str) -> str:
    """The registry alias naming the version an environment serves as its canary."""
    return f"{env_name}-canary"


def canary_version(env_name: str) -> "ModelVersion | None":
    """The challenger `env_name` serves to a share of its users, if a canary is running."""
    return registry.alias_version(client(), canary_alias(env_name))


def _number(version: "ModelVersion | None") -> str | None:
    return None if version is None else str(version.version)


# What the registry asks an environment to serve, and bringing the service there


def _canary_share(env: Environment, challenger: str) -> float:
    """The share of users the canary of `challenger` serves: as the service was last asked,
    else as the registry's history recorded when the canary started."""
    asked = (services.deployed(env) or {}).get("canary") or {}
    if asked.get("version") == challenger and "fraction" in asked:
        return float(asked["fraction"])
    for event in reversed(state.history(env.name)):
        if event.action == "canary" and event.version == challenger:
            if event.fraction is not None:
                return event.fraction
            break
    raise DeployError(
        f"{env.name} runs a canary of version {challenger} (registry alias "
        f"{canary_alias(env.name)}), but its share of users is not recorded here; end it "
        f"(shoprec monitor --env {env.name} --auto-rollback, or shoprec promote --env "
        f"{env.name}) or deploy it again with --canary"
    )


def _wanted(env: Environment) -> tuple[str | None, tuple[str, float] | None]:
    """The version the registry's alias names for `env`, and its canary with its share."""
    mlflow_client = client()
    version = _number(registry.alias_version(mlflow_client, env.name))
    challenger = _number(registry.alias_version(mlflow_client, canary_alias(env.name)))
    if version is None or challenger is None:
        return version, None
    return version, (challenger, _canary_share(env, challenger))


def _serve(env: Environment, version: str, canary: tuple[str, float] | None) -> str:
    """Have `env`'s service serve `version` (and `canary`): swapped in place when it runs,
    else started; say which."""
    if services.running_pid(env) is not None and services.health(env) is not None:
        if canary is None:
            services.swap(env, version)
        else:
            services.canary(env, version, *canary)
        return "swapped"
    stale = services.stop(env)  # a stale pid file, or a service that does not answer
    pid = services.start(env, version, canary=canary)
    return f"restarted (pid {pid}; pid {stale} stopped)" if stale else f"started (pid {pid})"


def _restore(env: Environment, was_running: bool) -> str:
    """After a refused version: have `env` serve what the registry names again; say how it went."""
    try:
        version, canary = _wanted(env)
    except DeployError as error:
        return f"the service was not restored: {error}"
    if version is None:
        if was_running:
            return "the service keeps serving what it had"
        services.stop(env)
        services.forget(env)
        return "no service was stopped"
    named = _describe(registry.get_version(client(), version))
    try:
        _serve(env, version, canary)
    except DeployError as error:
        return f"serving {named} again also failed: {error}"
    return f"{env.name} {'keeps serving' if was_running else 'serves'} {named}" + (
        "" if was_running else " again"
    )


# The registry's part of a transaction: alias, canary alias and history row


def _alias_moved(mlflow_client: "MlflowClient", intent: Intent) -> bool:
    """Whether `intent`'s alias move happened (the point after which a command counts as done)."""
    now = _number(registry.alias_version(mlflow_client, intent.alias))
    if now != intent.version:
        return False
    late = (transaction.ALIAS_MOVED, transaction.CANARY_ENDED, transaction.RECORDED)
    return intent.version != intent.previous or intent.step in late


def _complete(mlflow_client: "MlflowClient", intent: Intent) -> state.Event:
    """Move `intent`'s alias, end the canary it ends, write its history row: each step that
    is not yet done, so that a command cut short is finished by running this again."""
    if _number(registry.alias_version(mlflow_client, intent.alias)) != intent.version:
        registry.move_alias(mlflow_client, intent.alias, intent.version)
    transaction.checkpoint(intent.env, transaction.ALIAS_MOVED)
    if intent.ends_canary is not None:
        if registry.alias_version(mlflow_client, canary_alias(intent.env)) is not None:
            registry.move_alias(mlflow_client, canary_alias(intent.env), None)
        transaction.checkpoint(intent.env, transaction.CANARY_ENDED)
    row_version = registry.get_version(mlflow_client, intent.version or intent.previous or "")
    if not state.recorded(mlflow_client, intent.id):
        state.record_event(
            mlflow_client,
            row_version,
            intent.env,
            intent.action,
            reason=intent.reason,
            fraction=intent.fraction,
            transaction=intent.id,
        )
    transaction.checkpoint(intent.env, transaction.RECORDED)
    event = next(e for e in state.events(mlflow_client) if e.transaction == intent.id)
    return event


def _settle(env: Environment) -> Intent | None:
    """Finish the registry's part of what a killed command left for `env` (its history row,
    the canary it ended) if it had moved its alias; return its intent. The service is
    brought to what the aliases name by the command that called this."""
    intent = transaction.leftover(env.name)
    if intent is None:
        return None
    mlflow_client = client()
    if _alias_moved(mlflow_client, intent):
        services.progress.info(
            f"{env.name}: {intent.describe()} was interrupted after it moved the alias; "
            "completing its history"
        )
        _complete(mlflow_client, intent)
    else:
        services.progress.info(
            f"{env.name}: {intent.describe()} was interrupted before it moved the alias; "
            "the registry is unchanged"
        )
    return intent


def _deployment(event: state.Event) -> state.Deployment:
    return state.Deployment(event.env, event.version, event.run_id, event.at)


def _switch(
    env: Environment, target: "ModelVersion", action: str, reason: str | None = None
) -> state.Deployment:
    """Have `env` serve `target` (ending its canary), then point its alias there and record it.

    A running service swaps models in place (no request fails); with none running, one starts.
    If the service refuses `target`, the alias stays and the service serves what it names.
    """
    mlflow_client = client()
    previous = registry.alias_version(mlflow_client, env.name)
    challenger = registry.alias_version(mlflow_client, canary_alias(env.name))
    intent = transaction.begin(
        Intent(env.name, action, env.name, str(target.version), _number(previous),
               command=action, reason=reason, ends_canary=_number(challenger))
    )  # fmt: skip
    running = services.running_pid(env) is not None and services.health(env) is not None
    try:
        _serve(env, str(target.version), None)
    except ServiceError as error:
        outcome = _restore(env, running)
        transaction.finish(env.name)
        raise ServiceError(
            f"{action} of {_describe(target)} to {env.name} failed ({outcome}): {error}"
        ) from error
    transaction.checkpoint(env.name, transaction.SERVED)
    event = _complete(mlflow_client, intent)
    transaction.finish(env.name)
    return _deployment(event)


# The commands


def deploy(
    env_name: str,
    run_ref: str,
    approved: bool = False,
    canary: float | None = None,
    wait: bool = True,
) -> state.Deployment:
    """Serve run `run_ref`'s registered version in `env_name` if the gates allow it.

    With `canary` (a share of users, between 0 and 1), the version is a challenger served to
    that share of users beside the current version, once the same gates pass; `promote`
    completes it. A refused or failed deploy leaves the aliases as they were and the service
    serving what they name. `wait` False: DeployError at once if another command holds the
    environment.
    """
    env = get_environment(env_name)
    if canary is not None and not 0.0 < canary < 1.0:
        raise DeployError(f"--canary {canary}: expected a share of users between 0 and 1")
    with transaction.locked(env.name, "deploy", wait):
        _settle(env)
        version, run_id = _registered_version(run_ref)
        model = _load(version)
        gates.check_promotion(env, run_id, model, approved)
        if canary is not None:
            return _start_canary(env, version, canary)
        return _switch(env, version, "deploy")


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
    before = registry.alias_version(mlflow_client, canary_alias(env.name))
    intent = transaction.begin(
        Intent(env.name, "canary", canary_alias(env.name), str(version.version),
               _number(before), command="deploy", fraction=fraction)
    )  # fmt: skip
    try:
        services.canary(env, str(current.version), str(version.version), fraction)
    except ServiceError as error:
        outcome = _restore(env, was_running=True)
        transaction.finish(env.name)
        raise ServiceError(
            f"canary of {_describe(version)} in {env.name} failed ({outcome}): {error}"
        ) from error
    transaction.checkpoint(env.name, transaction.SERVED)
    event = _complete(mlflow_client, intent)
    transaction.finish(env.name)
    return _deployment(event)


def promote(env_name: str, wait: bool = True) -> state.Deployment:
    """Complete `env_name`'s canary: its challenger serves every user."""
    env = get_environment(env_name)
    with transaction.locked(env.name, "promote", wait):
        _settle(env)
        challenger = canary_version(env.name)
        if challenger is None:
            raise DeployError(f"{env.name} runs no canary; nothing to promote")
        _load(challenger)
        return _switch(env, challenger, "promote")


def end_canary(env_name: str, reason: str, wait: bool = True) -> tuple[state.Deployment, str]:
    """End `env_name`'s canary: every user gets the current version again; record `reason`.

    Returns the current deployment and the challenger's version.
    """
    env = get_environment(env_name)
    with transaction.locked(env.name, "monitor --auto-rollback", wait):
        _settle(env)
        mlflow_client = client()
        challenger = canary_version(env.name)
        current = state.current().get(env.name)
        if challenger is None or current is None:
            raise DeployError(f"{env.name} runs no canary; nothing to end")
        intent = transaction.begin(
            Intent(env.name, "canary-rollback", canary_alias(env.name), None,
                   str(challenger.version), command="monitor --auto-rollback", reason=reason)
        )  # fmt: skip
        try:
            services.swap(env, current.version)
        except ServiceError as error:
            outcome = _restore(env, was_running=True)
            transaction.finish(env.name)
            raise ServiceError(
                f"ending the canary of {_describe(challenger)} in {env.name} failed "
                f"({outcome}): {error}"
            ) from error
        transaction.checkpoint(env.name, transaction.SERVED)
        _complete(mlflow_client, intent)
        transaction.finish(env.name)
        return current, str(challenger.version)


def rollback(
    env_name: str, reason: str | None = None, wait: bool = True
) -> tuple[state.Deployment, str]:
    """Serve the version `env_name` served before its current one; return it and the one replaced.

    With no previous version, nothing changes and DeployError says so. A `reason` (e.g. the
    monitor's) is recorded in the registry with the rollback and shown by `shoprec history`.
    """
    env = get_environment(env_name)
    with transaction.locked(env.name, "rollback", wait):
        _settle(env)
        served = state.served_versions(env.name)
        current = state.current().get(env.name)
        if current is None:
            raise DeployError(f"nothing deployed to {env.name}; nothing to roll back")
        if served and served[-1] != current.version:
            raise DeployError(
                f"{env.name}: the registry alias names version {current.version} but the "
                f"history ends with version {served[-1]}; first run: shoprec start --env "
                f"{env.name}"
            )
        if len(served) < 2:
            raise DeployError(
                f"{env.name} has no previous version to roll back to: it serves version "
                f"{current.version} (run {current.run_id}) and its history has nothing before it"
            )
        target = registry.get_version(client(), served[-2])
        _load(target)
        return _switch(env, target, "rollback", reason), current.version


@dataclass(frozen=True)
class Started:
    """What `start` did for an environment: what it serves now (None: nothing deployed), the
    pid of a service it started, and what it did, in words."""

    deployment: state.Deployment | None
    pid: int | None
    outcome: str


def _adopt(env: Environment, version: "ModelVersion") -> None:
    """Record a `start` row when the history does not end with the version the alias names
    (the alias was moved by something other than shoprec)."""
    mlflow_client = client()
    served = state.served_versions(env.name)
    if served and served[-1] == str(version.version):
        return
    before = f"version {served[-1]}" if served else "nothing"
    state.record_event(
        mlflow_client,
        version,
        env.name,
        "start",
        reason=f"the registry alias named version {version.version}; the history said {before}",
    )


def start(env_name: str, wait: bool = True) -> Started:
    """Have `env_name`'s service serve what the registry's aliases name, with its canary.

    Starts the service if it is down, swaps in place if it serves something else, and first
    finishes what a killed command left: the one command that repairs any state `shoprec
    status --registry` reports.
    """
    env = get_environment(env_name)
    with transaction.locked(env.name, "start", wait):
        leftover = _settle(env)
        current = registry.alias_version(client(), env.name)
        if current is None:
            stopped = services.stop(env)
            asked = services.deployed(env)
            services.forget(env)
            transaction.finish(env.name)
            if stopped is None and asked is None and leftover is None:
                raise DeployError(
                    f"nothing deployed to {env.name}; use shoprec deploy --env {env.name}"
                )
            cleared = f"stopped pid {stopped}" if stopped else "cleared its local record"
            return Started(None, None, f"nothing deployed; {cleared}")
        _load(current)
        version, canary = _wanted(env)
        if canary is not None:
            _load(registry.get_version(client(), canary[0]))
        _adopt(env, current)
        deployment = state.current()[env.name]
        if services.serves(env, str(current.version), canary):
            outcome, pid = "already running", None
        else:
            before = services.health(env)
            done = _serve(env, str(current.version), canary)
            pid = services.running_pid(env) if "started" in done else None
            if done == "swapped":
                outcome = f"now serving it (was version {(before or {}).get('model_version')})"
            else:
                outcome = done
        transaction.finish(env.name)
        return Started(deployment, pid, outcome)


def stop(env_name: str, wait: bool = True) -> int | None:
    """Stop `env_name`'s service (once no other command acts on it); its pid, or None."""
    env = get_environment(env_name)
    with transaction.locked(env.name, "stop", wait):
        return services.stop(env)
