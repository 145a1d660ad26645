"""A scratch deployment project shared by the deploy, service and fault tests.

`project` is an empty project with its own tracking store, deploy policy and free ports;
`runs` registers two passing runs and one that failed evaluation; `shoprec` runs the command
line in-process and returns its exit code and output.
"""

import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shoprec.artifact import ARRAYS_FILE, save_model
from shoprec.cli import main
from shoprec.deploy import services, state
from shoprec.deploy.environments import ENVIRONMENTS, get_environment
from shoprec.models import Recommender
from shoprec.policy import load_policy
from shoprec.runs import EVALUATION_FILE, MODEL_SUBDIR, RUN_RECORD, SUCCEEDED, runs_dir
from shoprec.tracking.store import local_database
from shoprec.tracking.sync import log_run


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


Shoprec = Callable[..., Result]


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def make_run(
    project: Path,
    run_id: str,
    model: Recommender,
    checks: dict[str, bool] | None = None,
    *,
    evaluation: dict[str, Any] | None = None,
    record: dict[str, Any] | None = None,
) -> Path:
    """A fake pipeline run in the layout `shoprec.runs` owns: record, model artifact and
    evaluation (passed unless a check fails; or `evaluation` as given), `record` added to the
    run record."""
    if evaluation is None:
        outcomes = checks or {"beats_popularity": True}
        passed = all(outcomes.values())
        evaluation = {
            "status": "passed" if passed else "failed",
            "passed": passed,
            "policy": load_policy().record(),
            "checks": [{"check": name, "passed": ok} for name, ok in outcomes.items()],
            "metrics": {},
        }
    run_dir = runs_dir(project) / run_id
    save_model(model, run_dir / MODEL_SUBDIR, {"run_id": run_id})
    fields = {"run_id": run_id, "status": SUCCEEDED, "evaluation_passed": evaluation["passed"]}
    (run_dir / RUN_RECORD).write_text(json.dumps({**fields, **(record or {})}))
    (run_dir / EVALUATION_FILE).parent.mkdir()
    (run_dir / EVALUATION_FILE).write_text(json.dumps(evaluation))
    return run_dir


def scratch_project(
    path: Path, monkeypatch: pytest.MonkeyPatch, empty_store: Path, repo_root: Path
) -> Path:
    """Make `path` an empty project with its own store, deploy policy and free ports, whose
    services run one worker each (the tests of several workers ask for them)."""
    (path / "policy").symlink_to(repo_root / "policy")
    monkeypatch.setenv("SHOPREC_PROJECT_DIR", str(path))
    monkeypatch.setenv("SHOPREC_WORKERS", "1")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{path / '.shoprec' / 'mlflow.db'}")
    local_database().parent.mkdir()
    shutil.copyfile(empty_store, local_database())
    for env, port in zip(ENVIRONMENTS.values(), free_ports(len(ENVIRONMENTS)), strict=True):
        monkeypatch.setenv(env.port_variable, str(port))
    return path


def stop_services() -> None:
    for env in ENVIRONMENTS.values():
        services.stop(env)


@pytest.fixture
def project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_store: Path, repo_root: Path
) -> Iterator[Path]:
    """An empty project with its own store, deploy policy and ports; services stopped after."""
    yield scratch_project(tmp_path, monkeypatch, empty_store, repo_root)
    stop_services()


@pytest.fixture
def runs(project: Path, cooccurrence_model: Recommender) -> Path:
    """Registered runs run-a (version 1) and run-b (version 2); run-bad failed evaluation."""
    for run_id in ("run-a", "run-b"):
        log_run(make_run(project, run_id, cooccurrence_model))
    checks = {"beats_popularity": False, "ndcg": True}
    log_run(make_run(project, "run-bad", cooccurrence_model, checks))
    return project / "runs"


@pytest.fixture
def shoprec(capsys: pytest.CaptureFixture[str]) -> Shoprec:
    """Run a deploy subcommand in-process; its exit code, stdout and stderr."""

    def run(*argv: str) -> Result:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


DEPLOY_CLI = """
import sys
from shoprec.cli import main
from shoprec.errors import ConfigurationError
sys.exit(main(sys.argv[1:]))
"""


def shoprec_process(*argv: str) -> subprocess.CompletedProcess:
    """Run a deploy subcommand in a separate process that exits when the command is done."""
    command = [sys.executable, "-c", DEPLOY_CLI, *argv]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


def live(env: str) -> tuple[str, str] | None:
    """The (model version, run id) the environment's service answers with, if it is up."""
    answer = services.health(get_environment(env))
    return None if answer is None else (answer["model_version"], answer["run_id"])


PER_WORKER_FIELDS = ("worker_pid", "loaded_at")


def served_model(env: str) -> dict:
    """What the environment's service serves, without the fields of the worker that answered."""
    answer = services.health(get_environment(env))
    assert answer is not None, f"the {env} service does not answer /health"
    return {key: value for key, value in answer.items() if key not in PER_WORKER_FIELDS}


def aliases() -> dict[str, str]:
    return {env: d.version for env, d in state.current().items()}


def registered_arrays(project: Path, run_id: str) -> Path:
    """The arrays file of the model logged for `run_id` in the project's artifact store."""
    (path,) = [
        path.parent / ARRAYS_FILE
        for path in (project / ".shoprec" / "mlartifacts" / "models").rglob("model.json")
        if json.loads(path.read_text())["metadata"]["run_id"] == run_id
    ]
    return path
