"""Deployments: promotion gates, stored state and real local services on free ports."""

import argparse
import json
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from shoprec.artifact import ARRAYS_FILE, save_model
from shoprec.deploy import register, services, state
from shoprec.deploy.environments import ENVIRONMENTS, Environment, get_environment
from shoprec.deploy.errors import DeployError, ServiceError
from shoprec.deploy.gates import failed_checks, smoke_test
from shoprec.models import Recommender
from shoprec.service.app import create_app


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
    project: Path, run_id: str, model: Recommender, checks: dict[str, bool] | None = None
) -> Path:
    """A fake pipeline run: record, model artifact and evaluation (passed unless a check fails)."""
    outcomes = checks or {"beats_popularity": True}
    checks = [{"check": name, "passed": passed} for name, passed in outcomes.items()]
    run_dir = project / "runs" / run_id
    save_model(model, run_dir / "02_train" / "model", {"run_id": run_id})
    (run_dir / "run.json").write_text(json.dumps({"run_id": run_id, "status": "succeeded"}))
    (run_dir / "03_evaluate").mkdir()
    evaluation = {"passed": all(outcomes.values()), "checks": checks, "metrics": {}}
    (run_dir / "03_evaluate" / "evaluation.json").write_text(json.dumps(evaluation))
    return run_dir


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty project on its own ports; every service started in it is stopped afterwards."""
    monkeypatch.setenv("SHOPREC_PROJECT_DIR", str(tmp_path))
    for env, port in zip(ENVIRONMENTS.values(), free_ports(len(ENVIRONMENTS)), strict=True):
        monkeypatch.setenv(env.port_variable, str(port))
    yield tmp_path
    for env in ENVIRONMENTS.values():
        services.stop(env)


@pytest.fixture
def runs(project: Path, cooccurrence_model: Recommender) -> Path:
    """Runs run-a and run-b that passed evaluation, run-bad that failed it."""
    make_run(project, "run-a", cooccurrence_model)
    make_run(project, "run-b", cooccurrence_model)
    make_run(project, "run-bad", cooccurrence_model, {"beats_popularity": False, "ndcg": True})
    return project / "runs"


@pytest.fixture
def shoprec(capsys: pytest.CaptureFixture[str]) -> Shoprec:
    """Run a deploy subcommand in-process; its exit code, stdout and stderr."""
    parser = argparse.ArgumentParser(prog="shoprec")
    register(parser.add_subparsers(required=True))

    def run(*argv: str) -> Result:
        capsys.readouterr()
        args = parser.parse_args(argv)
        code = args.func(args)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


DEPLOY_CLI = """
import argparse, sys
from shoprec.deploy import register
parser = argparse.ArgumentParser(prog="shoprec")
register(parser.add_subparsers(required=True))
args = parser.parse_args(sys.argv[1:])
sys.exit(args.func(args))
"""


def shoprec_process(*argv: str) -> subprocess.CompletedProcess:
    """Run a deploy subcommand in a separate process that exits when the command is done."""
    command = [sys.executable, "-c", DEPLOY_CLI, *argv]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def live_run(env: str) -> str | None:
    live = services.health(get_environment(env))
    return None if live is None else live["run_id"]


def state_bytes() -> bytes | None:
    path = state.state_path()
    return path.read_bytes() if path.exists() else None


# Gates and state, no services started


def test_run_that_failed_evaluation_is_refused(runs: Path, shoprec: Shoprec) -> None:
    result = shoprec("deploy", "--env", "test", "--run", "run-bad")
    assert result.code == 1
    assert result.err.count("\n") == 1
    assert "failed evaluation" in result.err and "beats_popularity" in result.err
    assert "ndcg" not in result.err
    assert state_bytes() is None


def test_run_not_evaluated_is_refused(runs: Path, shoprec: Shoprec) -> None:
    (runs / "run-a" / "03_evaluate" / "evaluation.json").unlink()
    result = shoprec("deploy", "--env", "test", "--run", "run-a")
    assert result.code == 1 and "not evaluated" in result.err


def test_unknown_run_is_bad_input(runs: Path, shoprec: Shoprec) -> None:
    result = shoprec("deploy", "--env", "test", "--run", "run-zzz")
    assert result.code == 2 and "'run-zzz' not found" in result.err


def test_tampered_model_is_bad_input(runs: Path, shoprec: Shoprec) -> None:
    arrays = runs / "run-a" / "02_train" / "model" / ARRAYS_FILE
    arrays.write_bytes(arrays.read_bytes() + b"\0")
    result = shoprec("deploy", "--env", "test", "--run", "run-a")
    assert result.code == 2 and "model does not load" in result.err and "sha256" in result.err
    assert state_bytes() is None


def test_staging_refused_when_test_is_down(runs: Path, shoprec: Shoprec) -> None:
    result = shoprec("deploy", "--env", "staging", "--run", "run-a")
    assert result.code == 1
    assert "smoke test against test" in result.err and "health: no answer" in result.err
    assert state_bytes() is None


def test_production_refused_without_approval_or_staging(runs: Path, shoprec: Shoprec) -> None:
    result = shoprec("deploy", "--env", "production", "--run", "run-a")
    assert result.code == 1
    assert "staging (http://127.0.0.1:" in result.err and "is down" in result.err
    assert "--approve not given" in result.err
    assert state_bytes() is None


def test_smoke_test_passes_against_a_good_service(
    runs: Path, cooccurrence_model: Recommender
) -> None:
    app = create_app(runs / "run-a" / "02_train" / "model", run_id="run-a")
    with TestClient(app) as client:
        checks = smoke_test(client, "run-a", cooccurrence_model)
    assert [check.name for check in checks if not check.passed] == []
    assert len(checks) == 4


def test_smoke_test_names_the_failed_check(cooccurrence_model: Recommender) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/health":
            return httpx.Response(200, json={"status": "ok", "run_id": "run-a"})
        k = int(request.url.params["k"])
        items = [{"item_id": i, "score": float(i), "rank": i + 1} for i in range(k)]
        return httpx.Response(200, json={"fallback": False, "items": items})

    transport = httpx.MockTransport(handler)
    with httpx.Client(transport=transport, base_url="http://test") as client:
        checks = {check.name: check for check in smoke_test(client, "run-a", cooccurrence_model)}
    assert checks["health"].passed and checks["serves run"].passed
    assert not checks["known-user recommendations"].passed
    assert "not descending" in checks["known-user recommendations"].detail
    assert not checks["unknown-user fallback"].passed


def test_failed_checks_names_each_failed_check() -> None:
    checks = [{"check": "coverage", "passed": True}, {"check": "ndcg", "passed": False}]
    assert failed_checks({"passed": False, "checks": checks}) == ["ndcg"]


def test_state_keeps_current_runs_and_history(project: Path) -> None:
    state.record_deployment("test", "run-a")
    state.record_deployment("test", "run-b")
    state.record_deployment("staging", "run-a")
    assert {env: d.run_id for env, d in state.current().items()} == {
        "test": "run-b",
        "staging": "run-a",
    }
    assert [(d.env, d.run_id) for d in state.history()] == [
        ("test", "run-a"),
        ("test", "run-b"),
        ("staging", "run-a"),
    ]
    assert state.serving_model_dir("staging") == project / "runs" / "run-a" / "02_train" / "model"
    assert state.serving_model_dir("production") is None
    assert [p.name for p in state.state_dir().iterdir()] == ["deployments.json"]


def test_corrupt_state_is_reported(project: Path, shoprec: Shoprec) -> None:
    state.state_dir().mkdir()
    state.state_path().write_text("{not json")
    result = shoprec("status")
    assert result.code == 2 and "deployments.json: not valid JSON" in result.err


def test_ports_come_from_the_environment(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPREC_PORT_STAGING", "9123")
    assert get_environment("staging").url == "http://127.0.0.1:9123"
    monkeypatch.delenv("SHOPREC_PORT_PRODUCTION")
    assert get_environment("production").port == 8603
    monkeypatch.setenv("SHOPREC_PORT_TEST", "eighty")
    with pytest.raises(DeployError, match="SHOPREC_PORT_TEST='eighty'"):
        get_environment("test").port  # noqa: B018


def test_status_with_nothing_deployed(project: Path, shoprec: Shoprec) -> None:
    result = shoprec("status")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0].split() == ["ENVIRONMENT", "URL", "RUN", "SINCE", "SERVICE"]
    assert [line.split()[0] for line in lines[1:]] == ["test", "staging", "production"]
    assert all(line.split()[2:] == ["-", "-", "down"] for line in lines[1:])


def test_start_with_nothing_deployed(project: Path, shoprec: Shoprec) -> None:
    assert shoprec("start").out.splitlines() == [
        "test: nothing deployed",
        "staging: nothing deployed",
        "production: nothing deployed",
    ]
    result = shoprec("start", "--env", "staging")
    assert result.code == 2 and "nothing deployed to staging" in result.err


# Real services


@pytest.mark.service
def test_promotion_path_through_the_gates(runs: Path, shoprec: Shoprec) -> None:
    assert shoprec("deploy", "--env", "test", "--run", "run-a").code == 0
    refused = shoprec("deploy", "--env", "staging", "--run", "run-b")
    assert refused.code == 1 and "serves run: serves run 'run-a', not 'run-b'" in refused.err
    assert live_run("staging") is None

    assert shoprec("deploy", "--env", "staging", "--run", "run-a").code == 0
    refused = shoprec("deploy", "--env", "production", "--run", "run-a")
    assert refused.code == 1 and refused.err.strip().endswith("--approve not given")

    first_pid = services.running_pid(get_environment("test"))
    assert shoprec("deploy", "--env", "test", "--run", "run-b").code == 0
    assert services.running_pid(get_environment("test")) not in (None, first_pid)
    refused = shoprec("deploy", "--env", "production", "--run", "run-b", "--approve")
    assert refused.code == 1
    assert refused.err.strip().endswith("staging serves run 'run-a', not 'run-b'")
    assert live_run("production") is None and "production" not in state.current()

    result = shoprec("deploy", "--env", "production", "--run", "run-a", "--approve")
    assert result.code == 0
    assert result.out.startswith("production: serving run run-a at http://127.0.0.1:")
    assert {env: live_run(env) for env in ENVIRONMENTS} == {
        "test": "run-b",
        "staging": "run-a",
        "production": "run-a",
    }
    assert services.health(get_environment("production"))["environment"] == "production"
    status = shoprec("status").out.splitlines()[1:]
    assert [line.split()[0::2] for line in status] == [
        ["test", "run-b", "up"],
        ["staging", "run-a", "up"],
        ["production", "run-a", "up"],
    ]
    assert [(d.env, d.run_id) for d in state.history()] == [
        ("test", "run-a"),
        ("staging", "run-a"),
        ("test", "run-b"),
        ("production", "run-a"),
    ]


@pytest.mark.service
def test_refused_deploys_leave_the_running_service_alone(runs: Path, shoprec: Shoprec) -> None:
    assert shoprec("deploy", "--env", "test", "--run", "run-a").code == 0
    before = services.health(get_environment("test"))
    stored = state_bytes()
    arrays = runs / "run-b" / "02_train" / "model" / ARRAYS_FILE
    arrays.write_bytes(arrays.read_bytes() + b"\0")

    assert shoprec("deploy", "--env", "test", "--run", "run-bad").code == 1
    assert shoprec("deploy", "--env", "test", "--run", "run-b").code == 2
    assert services.health(get_environment("test")) == before
    assert state_bytes() == stored


@pytest.mark.service
def test_failed_start_reports_the_log_and_changes_nothing(runs: Path, shoprec: Shoprec) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", get_environment("test").port))
        taken.listen()
        result = shoprec("deploy", "--env", "test", "--run", "run-a")
    assert result.code == 1
    headline, *tail = result.err.splitlines()
    assert "deploy of run run-a to test failed (no service was stopped)" in headline
    assert "exited with code" in headline
    assert any("address already in use" in line.lower() for line in tail)
    assert state_bytes() is None
    assert services.running_pid(get_environment("test")) is None


@pytest.mark.service
def test_failed_start_brings_the_previous_run_back(
    runs: Path, shoprec: Shoprec, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert shoprec("deploy", "--env", "test", "--run", "run-a").code == 0
    stored = state_bytes()
    real_start = services.start

    def start_failing_for_run_b(env: Environment, run_id: str, model_dir: Path) -> int:
        if run_id == "run-b":
            raise ServiceError(f"{env.name}: simulated start failure")
        return real_start(env, run_id, model_dir)

    monkeypatch.setattr(services, "start", start_failing_for_run_b)
    result = shoprec("deploy", "--env", "test", "--run", "run-b")
    assert result.code == 1
    assert "failed (test serves run run-a again): test: simulated start failure" in result.err
    assert live_run("test") == "run-a"
    assert state_bytes() == stored


@pytest.mark.service
def test_stop_and_start_keep_the_stored_state(runs: Path, shoprec: Shoprec) -> None:
    deployed = shoprec_process("deploy", "--env", "test", "--run", "run-a")
    assert deployed.returncode == 0, deployed.stderr
    stored = state_bytes()
    assert shoprec("stop", "--env", "staging").out == "staging: not running\n"
    assert live_run("test") == "run-a"

    stopped = shoprec("stop")
    assert stopped.code == 0
    assert stopped.out.splitlines()[0].startswith("test: stopped (pid ")
    assert stopped.out.splitlines()[1:] == ["staging: not running", "production: not running"]
    assert live_run("test") is None
    assert not services.pid_path(get_environment("test")).exists()
    status = shoprec("status").out.splitlines()[1:]
    assert [line.split()[2::2] for line in status] == [
        ["run-a", "down"],
        ["-", "down"],
        ["-", "down"],
    ]
    assert state_bytes() == stored

    started = shoprec("start")
    assert started.code == 0
    assert started.out.startswith("test: started (pid ")
    assert "staging: nothing deployed" in started.out
    assert live_run("test") == "run-a"
    assert shoprec("start", "--env", "test").out == "test: already running, serving run run-a\n"
    assert state_bytes() == stored
