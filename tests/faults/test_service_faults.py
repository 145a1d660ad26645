"""Service faults from issue 11: logs kept across restarts, status on a killed service, HEAD
/health, and ids that only look like integers. Each failed before its fix."""

import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from deployment import Shoprec, project, runs, shoprec  # noqa: F401
from fastapi.testclient import TestClient

from shoprec.artifact import save_model
from shoprec.deploy import deployer, services
from shoprec.deploy.environments import get_environment
from shoprec.events.runner import END_OF_LOG
from shoprec.models import Recommender
from shoprec.service.app import create_app

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def client(cooccurrence_model: Recommender, tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    return TestClient(create_app(save_model(cooccurrence_model, tmp_path_factory.mktemp("m"))))


def test_head_health_is_200(client: TestClient) -> None:
    response = client.head("/health")
    assert response.status_code == 200 and response.headers["x-model-version"] == "-"


@pytest.mark.parametrize("value", ["1.0", "4_2", "+42", "42 ", "0x2a", "1e3", "４２"])
@pytest.mark.parametrize(("endpoint", "field"), [("/recommendations", "user_id"),
                                                 ("/similar-items", "item_id")])  # fmt: skip
def test_ids_must_be_plain_decimal_integers(
    client: TestClient, endpoint: str, field: str, value: str
) -> None:
    response = client.get(endpoint, params={field: value})
    assert response.status_code == 422
    assert response.json()["detail"].startswith(f"{field}: Input should be a valid integer")


@pytest.mark.service
def test_service_logs_rotate_by_size_and_a_restart_appends(
    runs: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    cooccurrence_model: Recommender,
) -> None:
    monkeypatch.setenv("SHOPREC_WORKERS", "1")
    monkeypatch.setenv("SHOPREC_LOG_MAX_BYTES", "20000")
    monkeypatch.setenv("SHOPREC_LOG_BACKUPS", "2")
    env = get_environment("test")
    deployer.deploy("test", "run-a")
    user = int(cooccurrence_model.user_ids_[0])
    with httpx.Client(base_url=env.url) as http:
        for _ in range(400):
            assert http.get("/recommendations", params={"user_id": user, "k": 1}).status_code == 200
        assert http.get("/similar-items", params={"item_id": -12345}).status_code == 404
    log = services.log_path(env)
    rotated = [Path(f"{log}.{number}") for number in (1, 2)]
    assert all(path.exists() for path in rotated) and not Path(f"{log}.3").exists()
    assert all(path.stat().st_size <= 20000 for path in [log, *rotated])

    services.stop(env)
    deployer.start("test")
    kept = "".join(path.read_text() for path in [*reversed(rotated), log])
    marker = '"GET /similar-items?item_id=-12345 HTTP/1.1" 404'
    assert marker in kept  # the lines from before the restart are still there
    assert kept.index(marker) < kept.rindex("---- shoprec service test starting")
    assert "---- shoprec service test stopped" in kept
    assert END_OF_LOG.decode() not in kept  # the writer stops there; the line is not logged


@pytest.mark.service
def test_status_fails_when_a_deployed_service_is_killed_and_cleans_its_pid_file(
    runs: Path,  # noqa: F811
    shoprec: Shoprec,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOPREC_WORKERS", "1")
    env = get_environment("test")
    deployer.deploy("test", "run-a")
    assert shoprec("status").code == 0
    pid = services.running_pid(env)
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while services.health(env) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    killed = services._children.pop(pid, None)
    if killed is not None:  # started by this process: reap it
        killed.wait(timeout=10)
    assert services.pid_path(env).exists()

    result = shoprec("status")
    assert result.code == 1
    assert f"test: removed stale pid file (process {pid} is gone)" in result.err
    assert "test should serve but is down; start with: shoprec start" in result.err
    assert not services.pid_path(env).exists()
    test_row = result.out.splitlines()[1].split()
    assert test_row[0] == "test" and test_row[-1] == "down"
