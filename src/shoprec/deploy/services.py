"""Detached local service processes, one per environment, with pid and log files."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from shoprec.deploy.environments import HOST, Environment
from shoprec.deploy.errors import ServiceError
from shoprec.deploy.state import state_dir
from shoprec.runs import project_dir
from shoprec.service.app import ENVIRONMENT_VAR, MODEL_URI_VAR
from shoprec.tracking.registry import model_uri
from shoprec.tracking.store import tracking_uri

FACTORY = "shoprec.service.app:app_from_env"
START_TIMEOUT = 60.0  # the service imports MLflow and fetches its model first
STOP_TIMEOUT = 10.0
LOG_TAIL_LINES = 20

_children: dict[int, subprocess.Popen] = {}  # services this process started, reaped on stop


def services_dir() -> Path:
    """The folder holding each environment's pid and log file."""
    return state_dir() / "services"


def pid_path(env: Environment) -> Path:
    """The file holding the pid of the environment's service."""
    return services_dir() / f"{env.name}.pid"


def log_path(env: Environment) -> Path:
    """The environment's service log (stdout and stderr of its latest start)."""
    return services_dir() / f"{env.name}.log"


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
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_service(pid: int) -> bool:
    if not _alive(pid):
        return False
    if not Path("/proc/self").exists():
        return True
    try:
        return FACTORY.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def running_pid(env: Environment) -> int | None:
    """The pid of the environment's service, if its pid file names a live shoprec service."""
    try:
        pid = int(pid_path(env).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _is_service(pid) else None


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


def _wait_until_serving(
    env: Environment, version: str, process: subprocess.Popen, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceError(
                f"{env.name}: service exited with code {process.returncode} before answering "
                f"/health; log {log_path(env)}:\n{log_tail(env)}"
            )
        live = health(env, timeout=0.5)
        if live is not None and live.get("model_version") == version:
            return
        time.sleep(0.1)
    raise ServiceError(
        f"{env.name}: no /health answer for version {version} at {env.url} "
        f"within {timeout:.0f}s; "
        f"log {log_path(env)}:\n{log_tail(env)}"
    )


def start(env: Environment, version: str, timeout: float = START_TIMEOUT) -> int:
    """Start the environment's service detached; return its pid once it serves `version`.

    The service loads the model its alias (`models:/shoprec@<env>`) points at.
    """
    live = health(env)
    if live is not None:
        raise ServiceError(
            f"{env.name}: {env.url} already answers (run {live.get('run_id')!r}); "
            f"stop it first (shoprec stop --env {env.name})"
        )
    services_dir().mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "uvicorn", "--factory", FACTORY]
    command += ["--host", HOST, "--port", str(env.port)]
    variables = {
        MODEL_URI_VAR: model_uri(env.name),
        ENVIRONMENT_VAR: env.name,
        "MLFLOW_TRACKING_URI": tracking_uri(),
        "SHOPREC_PROJECT_DIR": str(project_dir()),
    }
    with log_path(env).open("w") as log:
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
    try:
        _wait_until_serving(env, version, process, timeout)
    except ServiceError:
        _terminate(process.pid, STOP_TIMEOUT)
        pid_path(env).unlink(missing_ok=True)
        raise
    return process.pid


def stop(env: Environment, timeout: float = STOP_TIMEOUT) -> int | None:
    """Stop the environment's service; return the pid stopped, or None if none was running."""
    pid = running_pid(env)
    if pid is not None:
        _terminate(pid, timeout)
    pid_path(env).unlink(missing_ok=True)
    return pid
