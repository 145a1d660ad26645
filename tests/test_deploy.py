"""Deployments: promotion gates, registry aliases and history, and real local services."""

import json
import socket
from pathlib import Path

import httpx
import pytest
from deployment import (  # noqa: F401 - fixtures
    Shoprec,
    aliases,
    free_ports,
    live,
    make_run,
    project,
    registered_arrays,
    runs,
    served_model,
    shoprec,
    shoprec_process,
)
from fastapi.testclient import TestClient

from shoprec.deploy import services, state
from shoprec.deploy.environments import ENVIRONMENTS, Environment, get_environment
from shoprec.deploy.errors import ServiceError
from shoprec.deploy.gates import failed_checks, smoke_test
from shoprec.errors import ConfigurationError
from shoprec.models import Recommender
from shoprec.service.app import create_app
from shoprec.tracking import registry
from shoprec.tracking.store import client

# Gates, aliases and history, no services started


def test_deploy_of_a_run_that_never_passed_evaluation_is_refused(
    runs: Path, shoprec: Shoprec
) -> None:
    result = shoprec("deploy", "--env", "test", "--run", "run-bad")
    assert result.code == 1
    assert result.err.count("\n") == 1
    assert "failed evaluation" in result.err and "beats_popularity" in result.err
    assert "ndcg" not in result.err
    assert registry.version_of_run(client(), "run-bad") is None
    assert aliases() == {} and state.history() == []


def test_run_not_in_the_registry_names_the_sync_command(
    project: Path, cooccurrence_model: Recommender, shoprec: Shoprec
) -> None:
    make_run(project, "run-new", cooccurrence_model)
    result = shoprec("deploy", "--env", "test", "--run", "run-new")
    assert result.code == 1
    assert "not in the model registry" in result.err and "shoprec runs sync run-new" in result.err


def test_run_not_evaluated_is_refused(
    project: Path, cooccurrence_model: Recommender, shoprec: Shoprec
) -> None:
    run_dir = make_run(project, "run-new", cooccurrence_model)
    (run_dir / "04_evaluate" / "evaluation.json").unlink()
    result = shoprec("deploy", "--env", "test", "--run", "run-new")
    assert result.code == 1 and "not evaluated" in result.err


def test_a_registered_version_is_judged_by_the_registry_not_the_run_files(
    runs: Path, shoprec: Shoprec
) -> None:
    evaluation = runs / "run-a" / "04_evaluate" / "evaluation.json"
    evaluation.write_text(json.dumps({"status": "failed", "passed": False, "checks": []}))
    client().set_model_version_tag(registry.REGISTERED_MODEL, "1", "evaluation.passed", "False")
    result = shoprec("deploy", "--env", "test", "--run", "run-a")
    assert result.code == 1
    assert "version 1 (run run-a): the registry records an evaluation that did not pass" in (
        result.err
    )
    assert aliases() == {}


def test_unknown_run_is_bad_input(runs: Path, shoprec: Shoprec) -> None:
    result = shoprec("deploy", "--env", "test", "--run", "run-zzz")
    assert result.code == 2 and "'run-zzz' not found" in result.err


def test_tampered_model_is_bad_input(runs: Path, project: Path, shoprec: Shoprec) -> None:
    arrays = registered_arrays(project, "run-a")
    arrays.write_bytes(arrays.read_bytes() + b"\0")
    result = shoprec("deploy", "--env", "test", "--run", "run-a")
    assert result.code == 2
    assert "version 1 (run run-a): model does not load" in result.err and "sha256" in result.err
    assert aliases() == {}


def test_staging_refused_when_test_is_down(runs: Path, shoprec: Shoprec) -> None:
    result = shoprec("deploy", "--env", "staging", "--run", "run-a")
    assert result.code == 1
    assert "smoke test against test" in result.err and "health: no answer" in result.err
    assert aliases() == {}


def test_production_refused_without_approval_or_staging(runs: Path, shoprec: Shoprec) -> None:
    result = shoprec("deploy", "--env", "production", "--run", "run-a")
    assert result.code == 1
    assert "staging (http://127.0.0.1:" in result.err and "is down" in result.err
    assert "--approve not given" in result.err
    assert aliases() == {}


def test_rollback_with_no_previous_version_changes_nothing(runs: Path, shoprec: Shoprec) -> None:
    result = shoprec("rollback", "--env", "production")
    assert result.code == 2 and "nothing deployed to production" in result.err
    mlflow_client = client()
    registry.move_alias(mlflow_client, "production", "1")
    state.record_event(
        mlflow_client, registry.get_version(mlflow_client, "1"), "production", "deploy"
    )
    before = state.history()
    result = shoprec("rollback", "--env", "production")
    assert result.code == 2
    assert result.err == (
        "shoprec rollback: production has no previous version to roll back to: it serves "
        "version 1 (run run-a) and its history has nothing before it\n"
    )
    assert aliases() == {"production": "1"} and state.history() == before


def test_smoke_test_passes_against_a_good_service(
    runs: Path, cooccurrence_model: Recommender
) -> None:
    app = create_app(registry.model_uri("1"))
    with TestClient(app) as client_:
        checks = smoke_test(client_, "run-a", cooccurrence_model)
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
    with httpx.Client(transport=transport, base_url="http://test") as client_:
        checks = {check.name: check for check in smoke_test(client_, "run-a", cooccurrence_model)}
    assert checks["health"].passed and checks["serves run"].passed
    assert not checks["known-user recommendations"].passed
    assert "not descending" in checks["known-user recommendations"].detail
    assert not checks["unknown-user fallback"].passed


def test_failed_checks_names_each_failed_check() -> None:
    checks = [{"check": "coverage", "passed": True}, {"check": "ndcg", "passed": False}]
    assert failed_checks({"passed": False, "checks": checks}) == ["ndcg"]


def test_unreachable_tracking_store_is_reported(
    project: Path, shoprec: Shoprec, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "not-a-dir").write_text("")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'not-a-dir' / 'x.db'}")
    result = shoprec("history")
    assert result.code == 1
    assert result.err.startswith(f"shoprec history: tracking store sqlite:///{project}")
    assert result.err.count("\n") == 1


def test_ports_come_from_the_environment(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPREC_PORT_STAGING", "9123")
    assert get_environment("staging").url == "http://127.0.0.1:9123"
    monkeypatch.delenv("SHOPREC_PORT_PRODUCTION")
    assert get_environment("production").port == 8603
    monkeypatch.setenv("SHOPREC_PORT_TEST", "eighty")
    with pytest.raises(ConfigurationError, match="SHOPREC_PORT_TEST='eighty'"):
        get_environment("test").port  # noqa: B018
    monkeypatch.delenv("SHOPREC_PORT_TEST")  # a bad setting fails every use of the settings


def test_status_and_history_with_nothing_deployed(project: Path, shoprec: Shoprec) -> None:
    result = shoprec("status")
    assert result.code == 0
    lines = result.out.splitlines()
    header = ["ENVIRONMENT", "URL", "VERSION", "CANARY", "RUN", "SINCE", "SERVICE"]
    assert lines[0].split() == header
    assert [line.split()[0] for line in lines[1:]] == ["test", "staging", "production"]
    assert all(line.split()[2:] == ["-", "-", "-", "-", "down"] for line in lines[1:])
    assert shoprec("history").out == "nothing deployed yet\n"


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
def test_promotion_path_through_the_gates_and_rollback(runs: Path, shoprec: Shoprec) -> None:
    assert shoprec("deploy", "--env", "test", "--run", "run-a").code == 0
    refused = shoprec("deploy", "--env", "staging", "--run", "run-b")
    assert refused.code == 1 and "serves run: serves run 'run-a', not 'run-b'" in refused.err
    assert live("staging") is None

    promoted = shoprec("deploy", "--env", "staging", "--run", "run-a")
    assert promoted.code == 0
    assert "staging gate: smoke test against the test service at http://127.0.0.1:" in (
        promoted.err
    )  # each wait is said before it starts
    assert "staging: starting " in promoted.err
    assert "waiting until each serves version 1 (up to " in promoted.err
    refused = shoprec("deploy", "--env", "production", "--run", "run-a")
    assert refused.code == 1 and refused.err.strip().endswith("--approve not given")
    result = shoprec("deploy", "--env", "production", "--run", "run-a", "--approve")
    assert result.code == 0
    assert result.out.startswith("production: serving version 1 (run run-a) at http://127.0.0.1:")

    swapped = shoprec("deploy", "--env", "test", "--run", "run-b")
    assert swapped.code == 0
    assert "test: swapping in version 2; waiting until each of " in swapped.err
    assert shoprec("deploy", "--env", "staging", "--run", "run-b").code == 0
    assert shoprec("deploy", "--env", "production", "--run", "run-b", "--approve").code == 0
    assert {env: live(env) for env in ENVIRONMENTS} == dict.fromkeys(ENVIRONMENTS, ("2", "run-b"))
    status = shoprec("status").out.splitlines()[1:]
    columns = [line.split() for line in status]  # environment url version canary run since service
    assert [[c[0], c[2], c[4], *c[6:]] for c in columns] == [
        [env, "2", "run-b", "up"] for env in ENVIRONMENTS
    ]

    result = shoprec("rollback", "--env", "production")
    assert result.code == 0
    assert result.out == "production: rolled back from version 2 to version 1 (run run-a)\n"
    assert live("production") == ("1", "run-a")
    assert aliases() == {"test": "2", "staging": "2", "production": "1"}
    history = shoprec("history", "--env", "production").out.splitlines()
    assert [line.split()[1:] for line in history[1:]] == [
        ["production", "1", "run-a", "deploy"],
        ["production", "2", "run-b", "deploy"],
        ["production", "1", "run-a", "rollback"],
    ]
    again = shoprec("rollback", "--env", "production")
    assert again.code == 2 and "no previous version" in again.err
    assert live("production") == ("1", "run-a")
    assert shoprec("status", "--registry").code == 0

    registry.move_alias(client(), "staging", "1")  # the registry changed behind the services
    assert shoprec("status").code == 0  # the local services agree with their last deploy
    checked = shoprec("status", "--registry")
    assert checked.code == 1
    assert "staging: the registry's alias names version 1, the local service was asked for 2" in (
        checked.err
    )


@pytest.mark.service
def test_refused_deploys_leave_the_running_service_alone(
    runs: Path, project: Path, shoprec: Shoprec
) -> None:
    assert shoprec("deploy", "--env", "test", "--run", "run-a").code == 0
    before = served_model("test")
    arrays = registered_arrays(project, "run-b")
    arrays.write_bytes(arrays.read_bytes()[:64])  # truncated

    assert shoprec("deploy", "--env", "test", "--run", "run-bad").code == 1
    assert shoprec("deploy", "--env", "test", "--run", "run-b").code == 2
    assert served_model("test") == before
    assert aliases() == {"test": "1"}


@pytest.mark.service
def test_failed_start_reports_the_log_and_changes_nothing(runs: Path, shoprec: Shoprec) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", get_environment("test").port))
        taken.listen()
        result = shoprec("deploy", "--env", "test", "--run", "run-a")
    assert result.code == 1
    waited, headline, *tail = result.err.splitlines()
    assert waited.startswith("  test: starting ") and "waiting until each serves" in waited
    assert "deploy of version 1 (run run-a) to test failed (no service was stopped)" in headline
    assert "exited with code" in headline
    assert any("address already in use" in line.lower() for line in tail)
    assert aliases() == {} and state.history() == []
    assert services.running_pid(get_environment("test")) is None


@pytest.mark.service
def test_failed_swap_keeps_the_previous_version(
    runs: Path, shoprec: Shoprec, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert shoprec("deploy", "--env", "test", "--run", "run-a").code == 0
    history = state.history()
    real_swap = services.swap

    def swap_failing_for_version_2(env: Environment, version: str) -> None:
        if version == "2":
            raise ServiceError(f"{env.name}: simulated swap failure")
        real_swap(env, version)

    monkeypatch.setattr(services, "swap", swap_failing_for_version_2)
    result = shoprec("deploy", "--env", "test", "--run", "run-b")
    assert result.code == 1
    assert (
        "failed (test keeps serving version 1 (run run-a)): test: simulated swap failure"
        in result.err
    )
    assert live("test") == ("1", "run-a")
    assert aliases() == {"test": "1"} and state.history() == history


@pytest.mark.service
def test_start_takes_a_canarys_share_of_users_from_the_registry_history(
    runs: Path, shoprec: Shoprec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPREC_WORKERS", "1")
    assert shoprec("deploy", "--env", "test", "--run", "run-a").code == 0
    assert shoprec("deploy", "--env", "test", "--run", "run-b", "--canary", "0.3").code == 0
    assert shoprec("stop", "--env", "test").code == 0
    services.forget(get_environment("test"))  # the local record of the deploy is lost
    assert shoprec("start", "--env", "test").code == 0
    assert (served_model("test")["canary_version"], served_model("test")["canary_fraction"]) == (
        "2",
        0.3,
    )

    assert shoprec("stop", "--env", "test").code == 0
    services.forget(get_environment("test"))
    rows = json.loads(registry.get_version(client(), "2").tags[state.DEPLOYMENTS_TAG])
    for row in rows:
        row.pop("fraction", None)  # a row written before rows held the share
    client().set_model_version_tag(
        registry.REGISTERED_MODEL, "2", state.DEPLOYMENTS_TAG, json.dumps(rows)
    )
    refused = shoprec("start", "--env", "test")
    assert refused.code == 2
    assert "test runs a canary of version 2 (registry alias test-canary)" in refused.err
    assert "its share of users is not recorded here" in refused.err
    assert live("test") is None  # nothing started half-way


@pytest.mark.service
def test_stop_and_start_keep_the_aliases(runs: Path, shoprec: Shoprec) -> None:
    deployed = shoprec_process("deploy", "--env", "test", "--run", "run-a")
    assert deployed.returncode == 0, deployed.stderr
    assert shoprec("stop", "--env", "staging").out == "staging: not running\n"
    assert live("test") == ("1", "run-a")

    stopped = shoprec("stop")
    assert stopped.code == 0
    assert stopped.out.splitlines()[0].startswith("test: stopped (pid ")
    assert stopped.out.splitlines()[1:] == ["staging: not running", "production: not running"]
    assert live("test") is None
    assert not services.pid_path(get_environment("test")).exists()
    status = shoprec("status").out.splitlines()[1:]
    assert [[c[2], c[4], c[-1]] for c in (line.split() for line in status)] == [
        ["1", "run-a", "down"],
        ["-", "-", "down"],
        ["-", "-", "down"],
    ]
    assert aliases() == {"test": "1"}

    started = shoprec("start")
    assert started.code == 0
    assert started.out.startswith("test: started (pid ")
    assert "staging: nothing deployed" in started.out
    assert live("test") == ("1", "run-a")
    assert shoprec("start", "--env", "test").out == (
        "test: already running, serving version 1 (run run-a)\n"
    )
