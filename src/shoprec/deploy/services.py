"""Detached local service processes, one per environment: start, stop, swap, pid and logs.

A service runs `shoprec.events.runner` (uvicorn, one worker process per core by default).
Deploy and rollback do not restart it: `swap` writes the version to serve into the service's
control folder (`.shoprec/services/<env>/target.json`); every worker loads that version beside
the one it serves, verifies and warms it, switches, and records the outcome, which `swap`
waits for. The log `.shoprec/services/<env>.log` is appended to and rotated by size.
"""

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from shoprec.deploy import control, transaction
from shoprec.deploy.control import ENVIRONMENT_VAR, MODEL_URI_VAR
from shoprec.deploy.environments import HOST, Environment
from shoprec.deploy.errors import ServiceError
from shoprec.processes import process_alive
from shoprec.runs import project_dir, state_dir

RUNNER = "shoprec.events.runner"
START_TIMEOUT = 180.0  # each worker imports the models' libraries and prepares its model
SWAP_TIMEOUT = 90.0
STOP_TIMEOUT = 15.0
LOG_TAIL_LINES = 20

_children: dict[int, subprocess.Popen] = {}  # services this process started, reaped on stop


progress = logging.getLogger("shoprec.deploy")  # what a deploy waits for (commands show it)


def services_dir() -> Path:
    """The folder holding each environment's pid file, log and control folder."""
    return state_dir() / "services"


def pid_path(env: Environment) -> Path:
    """The file holding the pid of the environment's service."""
    return services_dir() / f"{env.name}.pid"


def log_path(env: Environment) -> Path:
    """The environment's service log (rotated copies: `<env>.log.1`, `.2`, ...)."""
    return services_dir() / f"{env.name}.log"


def control_dir(env: Environment) -> Path:
    """The environment's control folder: target version, worker states, metrics files."""
    return services_dir() / env.name


def worker_count() -> int:
    """Worker processes per service: `SHOPREC_WORKERS`, else one per core."""
    from shoprec.settings import get_settings

    return get_settings().workers or max(1, len(os.sched_getaffinity(0)))


def health(env: Environment, timeout: float = 2.0) -> dict[str, Any] | None:
    """The service's /health answer, or None when nothing healthy answers."""
    try:
        response = httpx.get(f"{env.url}/health", timeout=timeout)
        return response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def _alive(pid: int) -> bool:
    if pid in _children:
        return _children[pid].poll() is None
    return process_alive(pid)


def _is_service(pid: int) -> bool:
    if not _alive(pid):
        return False
    if not Path("/proc/self").exists():
        return True
    try:
        return RUNNER.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def recorded_pid(env: Environment) -> int | None:
    """The pid the environment's pid file names, whether or not that process lives."""
    try:
        return int(pid_path(env).read_text())
    except (FileNotFoundError, ValueError):
        return None


def running_pid(env: Environment) -> int | None:
    """The pid of the environment's service, if its pid file names a live shoprec service."""
    pid = recorded_pid(env)
    return pid if pid is not None and _is_service(pid) else None


def remove_stale_pid(env: Environment) -> int | None:
    """Delete the pid file if its process is gone (e.g. killed); return the stale pid."""
    pid = recorded_pid(env)
    if pid is None and not pid_path(env).exists():
        return None
    if pid is not None and _is_service(pid):
        return None
    pid_path(env).unlink(missing_ok=True)
    return pid if pid is not None else -1


def log_tail(env: Environment, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of the environment's service log, indented for error messages."""
    try:
        tail = log_path(env).read_text(errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return f"  (no log at {log_path(env)})"
    return "\n".join(f"  | {line}" for line in tail) or f"  (empty log {log_path(env)})"


def _exited(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _terminate(pid: int, timeout: float) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)
        if _exited(pid, timeout):
            break
    _children.pop(pid, None)


def _workers(env: Environment, service_pid: int) -> list[dict[str, Any]]:
    """The recorded state of each live worker of the service."""
    return [
        status
        for status in control.worker_statuses(control_dir(env))
        if status.get("service_pid") == service_pid and _alive(int(status["pid"]))
    ]


def _wait_for_workers(
    env: Environment,
    service_pid: int,
    token: str,
    version: str,
    timeout: float,
    process: subprocess.Popen | None = None,
    canary_version: str | None = None,
) -> None:
    """Return once every worker serves `version` (and `canary_version` as its canary, or no
    canary) under `token`; ServiceError if one refused."""
    expected = worker_count_of(env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            errors = [line for line in log_tail(env).splitlines() if " ERROR " in line]
            why = f": {errors[-1].split(': ', 1)[-1]}" if errors else ""
            raise ServiceError(
                f"{env.name}: service exited with code {process.returncode} before answering "
                f"/health{why}; log {log_path(env)}:\n{log_tail(env)}"
            )
        if process is None and not _alive(service_pid):
            raise ServiceError(
                f"{env.name}: service (pid {service_pid}) ended; log {log_path(env)}:\n"
                f"{log_tail(env)}"
            )
        done = [status for status in _workers(env, service_pid) if status.get("token") == token]
        refused = [status for status in done if not status.get("ok")]
        if refused:
            raise ServiceError(
                f"{env.name}: worker {refused[0]['pid']} {refused[0]['error']}; the service "
                f"keeps serving version {refused[0]['version']}; log {log_path(env)}:\n"
                f"{log_tail(env)}"
            )
        if len(done) >= expected and all(
            s.get("version") == version and s.get("canary_version") == canary_version for s in done
        ):
            live = health(env, timeout=1.0)
            if live is not None and live.get("model_version") == version:
                return
        time.sleep(0.1)
    raise ServiceError(
        f"{env.name}: not every worker serves version {version} at {env.url} "
        f"within {timeout:.0f}s; log {log_path(env)}:\n{log_tail(env)}"
    )


def _fetched(version: str) -> dict[str, Any]:
    """`version`'s artifact fetched and checked, as a control target names it."""
    from shoprec.tracking import registry
    from shoprec.tracking.store import client

    try:
        found = registry.get_version(client(), version)
        model_dir = registry.fetch(found)
    except registry.RegistryError as error:
        raise ServiceError(f"version {version}: {error}") from error
    return {
        "version": str(version),
        "model_dir": str(model_dir),
        "model_json_sha256": found.tags.get(registry.DIGEST_TAG, ""),
        "run_id": found.tags.get(registry.RUN_TAG),
    }


def _target(
    env: Environment, version: str, canary: str | None = None, fraction: float | None = None
) -> str:
    """Point the service's control folder at `version`'s artifact (and a canary's)."""
    main = _fetched(version)
    challenger = {**_fetched(canary), "fraction": fraction} if canary is not None else None
    token = control.write_target(
        control_dir(env), version, Path(main["model_dir"]), main["model_json_sha256"],
        main["run_id"], challenger,
    )  # fmt: skip
    transaction.checkpoint(env.name, transaction.TARGET_WRITTEN)
    return token


def deployed(env: Environment) -> dict[str, Any] | None:
    """What the last deploy, rollback or start asked `env` to serve (version, run_id, since).

    A local record, kept beside the service: `status` reads it instead of the registry.
    """
    return control.read_target(control_dir(env))


def forget(env: Environment) -> None:
    """Record that `env` is asked to serve nothing (its alias was removed)."""
    control.forget_target(control_dir(env))


def worker_count_of(env: Environment) -> int:
    """How many workers the environment's running service was started with."""
    try:
        return int((control_dir(env) / "workers.count").read_text())
    except (FileNotFoundError, ValueError):
        return worker_count()


def start(
    env: Environment,
    version: str,
    timeout: float = START_TIMEOUT,
    canary: tuple[str, float] | None = None,
) -> int:
    """Start the environment's service detached; return its pid once every worker serves
    `version` (and `canary`'s challenger version to its share of users, if given)."""
    live = health(env)
    if live is not None:
        raise ServiceError(
            f"{env.name}: {env.url} already answers (run {live.get('run_id')!r}); "
            f"stop it first (shoprec stop --env {env.name})"
        )
    from shoprec.settings import get_settings
    from shoprec.tracking.registry import model_uri
    from shoprec.tracking.store import tracking_uri

    settings = get_settings()
    workers = worker_count()
    folder = control_dir(env)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "workers.count").write_text(f"{workers}\n")
    challenger, fraction = canary if canary is not None else (None, None)
    token = _target(env, version, challenger, fraction)
    also = f" (and version {challenger} to {fraction:.0%} of users)" if canary else ""
    progress.info(
        f"{env.name}: starting {workers} worker(s) on {env.url}; waiting until each serves "
        f"version {version}{also} (up to {timeout:.0f} s)"
    )
    command = [sys.executable, "-m", RUNNER, "--env", env.name, "--host", HOST]
    command += ["--port", str(env.port), "--workers", str(workers)]
    command += ["--control-dir", str(folder), "--log", str(log_path(env))]
    command += ["--log-max-bytes", str(settings.log_max_bytes)]
    command += ["--log-backups", str(settings.log_backups)]
    command += ["--pid-file", str(pid_path(env))]  # written by the service itself, too
    variables = {
        MODEL_URI_VAR: model_uri(env.name),
        ENVIRONMENT_VAR: env.name,
        "MLFLOW_TRACKING_URI": tracking_uri(),
        "SHOPREC_PROJECT_DIR": str(project_dir()),
    }
    with log_path(env).open("a") as log:  # until the runner takes its output over
        process = subprocess.Popen(
            command,
            env={**os.environ, **variables},
            cwd=project_dir(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _children[process.pid] = process
    pid_path(env).write_text(f"{process.pid}\n")
    transaction.checkpoint(env.name, transaction.SERVICE_STARTED)
    try:
        _wait_for_workers(
            env, process.pid, token, version, timeout, process, canary_version=challenger
        )
    except ServiceError:
        _terminate(process.pid, STOP_TIMEOUT)
        pid_path(env).unlink(missing_ok=True)
        raise
    return process.pid


def swap(env: Environment, version: str, timeout: float = SWAP_TIMEOUT) -> None:
    """Have the running service serve `version` without a restart (zero downtime).

    Raises ServiceError, with the log's last lines, when a worker refuses the version (it
    keeps serving the one it had) or the swap does not finish within `timeout` seconds.
    """
    pid = running_pid(env)
    if pid is None:
        raise ServiceError(f"{env.name}: no service is running to swap models in")
    token = _target(env, version)
    progress.info(
        f"{env.name}: swapping in version {version}; waiting until each of "
        f"{worker_count_of(env)} worker(s) has verified, warmed and switched to it "
        f"(up to {timeout:.0f} s)"
    )
    _wait_for_workers(env, pid, token, version, timeout)


def serves(env: Environment, version: str, canary: tuple[str, float] | None) -> bool:
    """Whether `env`'s running service was asked for `version` (and `canary`, or none) and
    every one of its workers serves them."""
    pid = running_pid(env)
    asked = deployed(env)
    if pid is None or asked is None or health(env) is None:
        return False
    challenger = asked.get("canary")
    asked_canary = (challenger["version"], challenger["fraction"]) if challenger else None
    if asked["version"] != version or asked_canary != canary:
        return False
    workers = _workers(env, pid)
    return len(workers) >= worker_count_of(env) and all(
        status.get("token") == asked["token"]
        and status.get("ok")
        and status.get("version") == version
        and status.get("canary_version") == (canary and canary[0])
        for status in workers
    )


def stop(env: Environment, timeout: float = STOP_TIMEOUT) -> int | None:
    """Stop the environment's service; return the pid stopped, or None if none was running."""
    pid = running_pid(env)
    if pid is not None:
        progress.info(
            f"{env.name}: stopping pid {pid}; waiting for it to exit (up to {timeout:.0f} s)"
        )
        _terminate(pid, timeout)
    pid_path(env).unlink(missing_ok=True)
    return pid


def canary(
    env: Environment, version: str, challenger: str, fraction: float, timeout: float = SWAP_TIMEOUT
) -> None:
    """Have the running service serve `challenger` to `fraction` of users (by a hash of the user
    id) and `version` to the rest, without a restart; ServiceError as for `swap`."""
    pid = running_pid(env)
    if pid is None:
        raise ServiceError(f"{env.name}: no service is running to start a canary in")
    token = _target(env, version, challenger, fraction)
    progress.info(
        f"{env.name}: serving version {challenger} to {fraction:.0%} of users beside version "
        f"{version}; waiting until each of {worker_count_of(env)} worker(s) has it "
        f"(up to {timeout:.0f} s)"
    )
    _wait_for_workers(env, pid, token, version, timeout, canary_version=challenger)
