"""Zero-downtime swaps in real multi-worker services, under a small bounded load."""

import threading
from collections import Counter
from pathlib import Path

import orjson
import pytest
from deployment import project, registered_arrays, runs  # noqa: F401

from shoprec.deploy import deployer, services
from shoprec.deploy.environments import get_environment
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


def test_deploy_and_rollback_under_load_fail_no_request(
    runs: Path,  # noqa: F811
    two_workers: None,
    cooccurrence_model: Recommender,
) -> None:
    env = get_environment("test")
    deployer.deploy("test", "run-a")
    pid = services.running_pid(env)
    users = [int(user) for user in cooccurrence_model.user_ids_[:50]]
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
    before = services.health(env)
    arrays = registered_arrays(project, "run-b")
    arrays.write_bytes(arrays.read_bytes()[:-10])  # the registry's own copy, truncated
    with pytest.raises(ServiceError) as refused:
        services.swap(env, "2")
    assert "version 2" in str(refused.value)
    after = services.health(env)
    assert {**after, "worker_pid": 0} == {**before, "worker_pid": 0}
