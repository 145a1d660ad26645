"""Zero-downtime swaps in real multi-worker services, under a small bounded load."""

import threading
from collections import Counter
from pathlib import Path

import orjson
import pytest
from deployment import project, registered_arrays, runs, served_model  # noqa: F401

from shoprec.deploy import deployer, services
from shoprec.deploy.environments import Environment, get_environment
from shoprec.deploy.errors import ServiceError
from shoprec.models import Recommender
from shoprec.service.loadgen import fixed_rate

pytestmark = pytest.mark.service


class Load:
    """A steady fixed-rate load on an environment, checking every answer as it comes."""

    def __init__(self, url: str, users: list[int], rate: float = 40) -> None:
        self.versions: Counter[str] = Counter()
        self.mismatched: list[str] = []
        self.stop = threading.Event()
        paths = [f"/recommendations?user_id={user}&k=5" for user in users]

        def check(status: int, headers: dict[str, str], body: bytes) -> None:
            if status != 200:
                return
            header = headers["x-model-version"]
            answer = orjson.loads(body)
            self.versions[header] += 1
            if (
                answer["model"]["version"] != header
                or headers["x-request-id"] != answer["request_id"]
            ):
                self.mismatched.append(f"{header}: {answer['model']}")

        self.thread = threading.Thread(
            target=lambda: setattr(
                self,
                "result",
                fixed_rate(
                    url,
                    paths,
                    rate=rate,
                    seconds=600,
                    connections=8,
                    on_response=check,
                    stop=self.stop,
                ),  # fmt: skip
            )
        )

    def __enter__(self) -> "Load":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(120)


@pytest.fixture
def two_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPREC_WORKERS", "2")


def deployed_run_a(model: Recommender, user_count: int) -> tuple[Environment, list[int]]:
    """The test environment serving run-a (version 1), and `user_count` users it knows."""
    deployer.deploy("test", "run-a")
    return get_environment("test"), [int(user) for user in model.user_ids_[:user_count]]


def test_deploy_and_rollback_under_load_fail_no_request(
    runs: Path,  # noqa: F811
    two_workers: None,
    cooccurrence_model: Recommender,
) -> None:
    env, users = deployed_run_a(cooccurrence_model, 50)
    pid = services.running_pid(env)
    with Load(env.url, users) as load:
        import time

        time.sleep(1)
        assert deployer.deploy("test", "run-b").version == "2"
        time.sleep(1)
        assert deployer.rollback("test")[0].version == "1"
        time.sleep(1)
    result = load.result
    assert result.requests > 50 and result.failed == 0 and result.succeeded == result.requests
    assert set(load.versions) == {"1", "2"} and load.mismatched == []
    assert services.running_pid(env) == pid  # swapped in place, never restarted
    assert services.health(env)["model_version"] == "1"
    log = services.log_path(env).read_text()
    assert "now serving version 2 (was 1)" in log and "now serving version 1 (was 2)" in log


def test_a_version_that_fails_to_verify_is_refused_and_the_service_keeps_serving(
    runs: Path,  # noqa: F811
    project: Path,  # noqa: F811
    two_workers: None,
) -> None:
    env = get_environment("test")
    deployer.deploy("test", "run-a")
    before = served_model("test")
    arrays = registered_arrays(project, "run-b")
    arrays.write_bytes(arrays.read_bytes()[:-10])  # the registry's own copy, truncated
    with pytest.raises(ServiceError) as refused:
        services.swap(env, "2")
    assert "version 2" in str(refused.value)
    assert served_model("test") == before


def test_a_crashed_worker_is_replaced_and_the_log_says_what_it_lost(
    runs: Path,  # noqa: F811
    two_workers: None,
    cooccurrence_model: Recommender,
) -> None:
    import os
    import re
    import signal
    import time

    import httpx

    from shoprec.deploy import control
    from shoprec.events.store import EventStore

    env, users = deployed_run_a(cooccurrence_model, 40)
    with httpx.Client(base_url=env.url, timeout=10) as http:
        answered = sum(
            http.get("/recommendations", params={"user_id": user, "k": 5}).status_code == 200
            for user in users
        )
        # one kept-alive connection: one worker answered them all; that one is killed (a worker
        # that served nothing leaves no samples and loses nothing)
        victim = http.get("/health").json()["worker_pid"]
    assert answered == len(users)
    assert victim in {s["pid"] for s in control.worker_statuses(services.control_dir(env))}
    os.kill(victim, signal.SIGKILL)

    deadline = time.monotonic() + 60
    pattern = re.compile(rf"worker {victim} ended: (\d+) impression records lost")
    while not (found := pattern.search(services.log_path(env).read_text())):
        assert time.monotonic() < deadline, services.log_tail(env)
        time.sleep(0.5)
    lost = int(found.group(1))
    store = EventStore()
    try:
        while store.count_impressions() + lost != answered:  # the survivors replay its spool
            assert time.monotonic() < deadline, (store.count_impressions(), lost, answered)
            time.sleep(0.5)
    finally:
        store.dispose()

    def live_workers() -> set[int]:
        pids = {status["pid"] for status in control.worker_statuses(services.control_dir(env))}
        return {pid for pid in pids if pid != victim and os.path.exists(f"/proc/{pid}")}

    while len(live_workers()) < 2:  # uvicorn started a new worker in its place
        assert time.monotonic() < deadline, "no worker replaced the one that crashed"
        time.sleep(0.5)
    assert services.health(env)["model_version"] == "1"
