"""The recommendation web service, exercised in-process with FastAPI's TestClient."""

import math
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from shoprec.artifact import ARRAYS_FILE, ArtifactError, read_metadata, save_model
from shoprec.cli import build_parser
from shoprec.cli import main as shoprec_main
from shoprec.events.serve import build_app
from shoprec.events.store import EventStore
from shoprec.models import Recommender
from shoprec.monitoring.requests import request_counts
from shoprec.service.app import create_app
from shoprec.service.served import MAX_K, load_served_model


@pytest.fixture(scope="module")
def model(cooccurrence_model: Recommender) -> Recommender:
    return cooccurrence_model


@pytest.fixture(scope="module")
def model_dir(model: Recommender, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model(model, tmp_path_factory.mktemp("artifact") / "model")


@pytest.fixture(scope="module")
def client(model_dir: Path) -> TestClient:
    return TestClient(create_app(model_dir, run_id="run-1", environment="test"))


def test_health_names_the_served_model(client: TestClient, model_dir: Path) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["environment"] == "test"
    assert body["run_id"] == "run-1" and body["model_version"] is None
    assert body["algorithm"] == "cooccurrence"
    assert body["model_sha256"] == read_metadata(model_dir)["files"][ARRAYS_FILE]
    assert body["loaded_at"] and body["worker_pid"] > 0
    assert body["canary_version"] is None and body["canary_fraction"] is None  # no canary runs
    assert client.head("/health").status_code == 200


def test_recommendations_for_a_known_user(client: TestClient, model: Recommender) -> None:
    user_id = int(model.user_ids_[0])
    response = client.get("/recommendations", params={"user_id": user_id, "k": 5})
    assert response.status_code == 200
    body = response.json()
    assert body["user_id"] == user_id and body["k"] == 5 and body["fallback"] is False
    assert body["model"] == {
        "version": None,
        "run_id": "run-1",
        "algorithm": "cooccurrence",
        "shoprec_version": "0.1.0",
    }
    assert len(body["request_id"]) == 32 and response.headers["x-request-id"] == body["request_id"]
    assert response.headers["x-model-version"] == "-"
    expected = model.recommend([user_id], k=5)
    assert [item["item_id"] for item in body["items"]] == expected["item_id"].tolist()
    assert [item["score"] for item in body["items"]] == expected["score"].tolist()
    assert [item["rank"] for item in body["items"]] == [1, 2, 3, 4, 5]
    assert body["score_scale"] == "model" and not any(item["fallback"] for item in body["items"])
    scores = [item["score"] for item in body["items"]]
    assert all(math.isfinite(score) for score in scores) and scores == sorted(scores, reverse=True)


def test_request_ids_differ(client: TestClient, model: Recommender) -> None:
    params = {"user_id": int(model.user_ids_[0])}
    ids = {client.get("/recommendations", params=params).json()["request_id"] for _ in range(5)}
    assert len(ids) == 5


@pytest.mark.parametrize("budget", [10**9, 0], ids=["precomputed", "on-demand"])
def test_every_list_is_the_models_own(model: Recommender, model_dir: Path, budget: int) -> None:
    served = load_served_model(model_dir, None, "test", prepare=False).prepare(
        budget, background=False
    )
    users = model.user_ids_[::7]
    for k in (1, 10, MAX_K):
        expected = model.recommend(users, k=k)
        for user in users.tolist():
            rows = expected[expected["user_id"] == user]
            items, scores, fallback = served.recommend(user, k)
            assert items == rows["item_id"].tolist() and scores == rows["score"].tolist()
            assert fallback is False


def test_k_defaults_to_ten(client: TestClient, model: Recommender) -> None:
    body = client.get("/recommendations", params={"user_id": int(model.user_ids_[0])}).json()
    assert body["k"] == 10 and len(body["items"]) == 10


def test_unknown_user_gets_popular_items_flagged_with_their_scale(
    client: TestClient, model: Recommender
) -> None:
    unknown = int(model.user_ids_.max()) + 1
    body = client.get("/recommendations", params={"user_id": unknown, "k": 3}).json()
    assert body["fallback"] is True and body["score_scale"] == "popularity"
    assert "share of the most popular item" in body["score_scales"]["popularity"]
    popular = model.item_ids_[model.popular_items_[:3]].tolist()
    assert [item["item_id"] for item in body["items"]] == popular
    assert all(item["fallback"] for item in body["items"])
    scores = [item["score"] for item in body["items"]]
    assert scores[0] == 1.0 and all(0 < score <= 1 for score in scores)
    assert scores == model.recommend([unknown], k=3)["score"].tolist()


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({}, "user_id", "Field required"),
        ({"user_id": "abc"}, "user_id", "valid integer"),
        ({"user_id": "1.0"}, "user_id", "plain decimal digits"),
        ({"user_id": "4_2"}, "user_id", "plain decimal digits"),
        ({"user_id": "+42"}, "user_id", "plain decimal digits"),
        ({"user_id": " 42"}, "user_id", "plain decimal digits"),
        ({"user_id": "٤٢"}, "user_id", "plain decimal digits"),  # Arabic-Indic digits
        ({"user_id": str(2**63)}, "user_id", "less than or equal to"),
        ({"user_id": 1, "k": 0}, "k", "greater than or equal to 1"),
        ({"user_id": 1, "k": 1000}, "k", "less than or equal to 100"),
        ({"user_id": 1, "k": "many"}, "k", "valid integer"),
        ({"user_id": 1, "exclude_seen": 1}, "exclude_seen", "unknown query parameter"),
        ({"user_id": [1, 2]}, "user_id", "given more than once"),
    ],
)
def test_invalid_recommendation_requests_get_a_readable_422(
    client: TestClient, params: dict, field: str, message: str
) -> None:
    response = client.get("/recommendations", params=params)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith(f"{field}: ") and message in detail


def test_negative_ids_are_plain_integers(client: TestClient) -> None:
    body = client.get("/recommendations", params={"user_id": "-5", "k": "2"}).json()
    assert body["user_id"] == -5 and body["fallback"] is True


def test_similar_items_with_scores(client: TestClient, model: Recommender) -> None:
    item_id = int(model.item_ids_[0])
    response = client.get("/similar-items", params={"item_id": item_id, "k": 4})
    body = response.json()
    assert body["item_id"] == item_id and body["model"]["run_id"] == "run-1"
    ids, scores = model.similar_items([item_id], k=4)
    keep = ids[0] >= 0
    assert [item["item_id"] for item in body["items"]] == ids[0][keep].tolist()
    assert [item["score"] for item in body["items"]] == scores[0][keep].tolist()
    assert [item["rank"] for item in body["items"]] == list(range(1, keep.sum() + 1))


def test_unknown_item_is_404_naming_the_item(client: TestClient, model: Recommender) -> None:
    unknown = int(model.item_ids_.max()) + 1
    response = client.get("/similar-items", params={"item_id": unknown})
    assert response.status_code == 404
    assert str(unknown) in response.json()["detail"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"item_id": 1, "k": 101}, "k"),
        ({"item_id": "1.0"}, "item_id"),
        ({"item_id": 1, "x": 1}, "x"),
    ],
)
def test_similar_items_validates_its_parameters(
    client: TestClient, params: dict, field: str
) -> None:
    response = client.get("/similar-items", params=params)
    assert response.status_code == 422 and response.json()["detail"].startswith(f"{field}: ")


def test_root_points_to_the_docs(client: TestClient) -> None:
    body = client.get("/").json()
    assert body["docs"] == "/docs" and "/recommendations" in body["endpoints"]
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/recommendations", "/similar-items", "/health"} <= set(paths)


def test_metrics_count_requests_by_endpoint_status_and_version(client: TestClient) -> None:
    client.get("/recommendations", params={"user_id": 1})
    client.get("/recommendations", params={"user_id": "x"})
    text = client.get("/metrics").text
    assert (
        'shoprec_requests_total{endpoint="/recommendations",model_version="-",status="200"}' in text
    )
    assert (
        'shoprec_requests_total{endpoint="/recommendations",model_version="-",status="422"}' in text
    )
    assert "shoprec_request_duration_seconds_bucket" in text


def test_popularity_model_is_served_too(popularity_model: Recommender, tmp_path: Path) -> None:
    app = create_app(save_model(popularity_model, tmp_path / "model"))
    with TestClient(app) as client:
        body = client.get("/similar-items", params={"item_id": 0, "k": 3}).json()
        assert len(body["items"]) == 3
        assert client.get("/health").json()["run_id"] is None


def test_tampered_artifact_is_refused(model: Recommender, tmp_path: Path) -> None:
    directory = save_model(model, tmp_path / "model")
    arrays = directory / ARRAYS_FILE
    arrays.write_bytes(arrays.read_bytes() + b"\0")
    with pytest.raises(ArtifactError, match="sha256 does not match"):
        create_app(directory)


def test_registry_uri_of_another_model_is_refused() -> None:
    with pytest.raises(ArtifactError, match="expected models:/shoprec@<alias>"):
        create_app("models:/other@production")


def test_missing_artifact_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not found"):
        create_app(tmp_path / "nowhere")


def test_serve_command_refuses_a_bad_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = build_parser().parse_args(["serve", "--model", str(tmp_path)])
    assert (args.host, args.port) == ("127.0.0.1", 8000)
    assert shoprec_main(["serve", "--model", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "cannot load model" in error and "model.json" in error


def test_int64_overflow_is_a_422_not_a_crash(client: TestClient) -> None:
    response = client.get("/recommendations", params={"user_id": str(np.iinfo(np.int64).max + 1)})
    assert response.status_code == 422 and response.json()["detail"].startswith("user_id: ")


# Impressions and feedback events


@pytest.fixture
def logged(model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    monkeypatch.delenv("SHOPREC_API_KEY", raising=False)
    url = f"sqlite:///{tmp_path / 'events.db'}"
    app = build_app(model_dir, environment="test", events_url=url, spool=tmp_path / "spool")
    with TestClient(app) as client:
        yield client, url


def test_every_served_list_is_an_impression(logged, model: Recommender) -> None:  # noqa: ANN001
    client, url = logged
    known, unknown = int(model.user_ids_[3]), int(model.user_ids_.max()) + 1
    answers = [
        client.get("/recommendations", params={"user_id": user, "k": 3}).json()
        for user in (known, unknown, known)
    ]
    client.get("/recommendations", params={"user_id": "bad"})  # no list served, no impression
    counters = client.app.state.impressions.close()
    assert counters["written"] == 3 and counters["dropped"] == 0
    store = EventStore(url)
    stored = {
        row["request_id"]: row for row in store.impressions([a["request_id"] for a in answers])
    }
    assert store.count_impressions() == 3
    store.dispose()
    for answer in answers:
        row = stored[answer["request_id"]]
        assert row["environment"] == "test" and row["model_version"] == "-"
        assert row["user_id"] == answer["user_id"] and row["fallback"] == answer["fallback"]
        assert row["k"] == 3 and row["latency_ms"] >= 0
        expected = [[item["item_id"], item["rank"], item["score"]] for item in answer["items"]]
        import orjson

        assert orjson.loads(row["items"]) == expected


def test_events_single_and_batch_idempotent(logged, model: Recommender) -> None:  # noqa: ANN001
    client, url = logged
    shown = client.get("/recommendations", params={"user_id": int(model.user_ids_[0])}).json()
    event = {
        "type": "click",
        "user_id": shown["user_id"],
        "item_id": shown["items"][0]["item_id"],
        "timestamp": "2026-11-28T10:00:00Z",
        "request_id": shown["request_id"],
        "event_id": "ev-1",
    }
    response = client.post("/events", json=event)
    assert response.status_code == 200
    assert response.json() == {"stored": 1, "duplicates": 0, "event_ids": ["ev-1"]}
    batch = [event, {**event, "type": "purchase", "event_id": "ev-2"}, {**event, "event_id": None}]
    body = client.post("/events", json=batch).json()
    assert (
        body["stored"] == 2
        and body["duplicates"] == 1
        and body["event_ids"][:2] == ["ev-1", "ev-2"]
    )
    client.app.state.impressions.close()
    store = EventStore(url)
    (row,) = [r for r in store.summary() if r.model_version == "-"]
    assert (row.impressions, row.click, row.purchase) == (1, 2, 1)
    store.dispose()


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"type": "view"}, "type", "'click', 'add_to_cart' or 'purchase'"),
        ({"user_id": "42"}, "user_id", "valid integer"),
        ({"user_id": 1.5}, "user_id", "valid integer"),
        ({"item_id": 2**63}, "item_id", "less than or equal to"),
        ({"timestamp": "2026-11-28T10:00:00"}, "timestamp", "with seconds and a time zone"),
        ({"timestamp": "yesterday"}, "timestamp", "expected an ISO 8601 date-time"),
        ({"request_id": "not-hex"}, "request_id", "pattern"),
        ({"colour": "red"}, "colour", "Extra inputs are not permitted"),
    ],
)
def test_bad_events_get_a_422_naming_the_field(
    logged,
    payload: dict,
    field: str,
    message: str,  # noqa: ANN001
) -> None:
    client, _ = logged
    good = {"type": "click", "user_id": 1, "item_id": 2, "timestamp": "2026-11-28T10:00:00Z"}
    response = client.post("/events", json={**good, **payload})
    assert response.status_code == 422
    assert (
        response.json()["detail"].startswith(f"{field}: ") and message in response.json()["detail"]
    )


def test_a_batch_with_one_bad_event_stores_nothing(logged) -> None:  # noqa: ANN001
    client, url = logged
    good = {"type": "click", "user_id": 1, "item_id": 2, "timestamp": "2026-11-28T10:00:00Z"}
    response = client.post("/events", json=[good, {**good, "item_id": "x"}, good])
    assert response.status_code == 422 and response.json()["detail"].startswith("[1].item_id: ")
    for body in ([], "text", None):
        assert client.post("/events", json=body).status_code == 422
    store = EventStore(url)
    assert store.feedback() == []
    store.dispose()


def test_events_need_the_api_key_when_one_is_set(
    logged,
    monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
) -> None:
    client, _ = logged
    monkeypatch.setenv("SHOPREC_API_KEY", "s3cret")
    event = {"type": "click", "user_id": 1, "item_id": 2, "timestamp": "2026-11-28T10:00:00Z"}
    assert client.post("/events", json=event).status_code == 401
    wrong = client.post("/events", json=event, headers={"X-API-Key": "guess"})
    assert wrong.status_code == 401 and "X-API-Key header" in wrong.json()["detail"]
    right = client.post("/events", json=event, headers={"X-API-Key": "s3cret"})
    assert right.status_code == 200 and right.json()["stored"] == 1


def test_an_unreachable_event_store_is_a_503_and_the_service_keeps_serving(
    model_dir: Path, tmp_path: Path, model: Recommender
) -> None:
    url = "postgresql://nobody@127.0.0.1:1/none"
    app = build_app(model_dir, environment="test", events_url=url, spool=tmp_path / "spool")
    with TestClient(app) as client:
        answer = client.get("/recommendations", params={"user_id": int(model.user_ids_[0])})
        assert answer.status_code == 200
        event = {"type": "click", "user_id": 1, "item_id": 2, "timestamp": "2026-11-28T10:00:00Z"}
        response = client.post("/events", json=event)
        assert response.status_code == 503 and "nothing was stored" in response.json()["detail"]
    counters = app.state.impressions.counters.as_dict()
    assert counters["spooled"] == 1 and counters["dropped"] == 0
    (spooled,) = (tmp_path / "spool").glob("*.jsonl")
    assert answer.json()["request_id"] in spooled.read_text()


def test_a_failed_answer_is_an_error_of_the_version_that_failed(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = load_served_model(model_dir, "run-1", "test", "7")

    def model_fault(user_id: int, k: int) -> tuple[list[int], list[float], bool]:
        raise RuntimeError("injected model fault")

    monkeypatch.setattr(served, "recommend", model_fault)
    with TestClient(create_app(served), raise_server_exceptions=False) as client:
        # the counters live in the process, beside other tests' requests: compare the change
        before = request_counts(client.get("/metrics").text)
        assert client.get("/recommendations", params={"user_id": 1}).status_code == 500
        assert client.get("/recommendations", params={"user_id": "x"}).status_code == 422
        monkeypatch.undo()
        assert client.get("/recommendations", params={"user_id": 1}).status_code == 200
        text = client.get("/metrics").text
    after = request_counts(text)
    change = {
        version: (failed - before.get(version, (0, 0))[0], total - before.get(version, (0, 0))[1])
        for version, (failed, total) in after.items()
    }
    assert change == {**{version: (0, 0) for version in before}, "-": (0, 1), "7": (1, 2)}
    assert request_counts(text, "/metrics")["-"][1] >= 1  # counted per endpoint
