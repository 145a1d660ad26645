"""The recommendation web service, exercised in-process with FastAPI's TestClient."""

import argparse
import math
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from shoprec.artifact import ARRAYS_FILE, ArtifactError, read_metadata, save_model
from shoprec.models import Recommender
from shoprec.service import register
from shoprec.service.app import create_app


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
    assert body["loaded_at"]


def test_recommendations_for_a_known_user(client: TestClient, model: Recommender) -> None:
    user_id = int(model.user_ids_[0])
    response = client.get("/recommendations", params={"user_id": user_id, "k": 5})
    assert response.status_code == 200
    body = response.json()
    assert body["user_id"] == user_id and body["k"] == 5 and body["fallback"] is False
    assert body["model"] == {"run_id": "run-1", "algorithm": "cooccurrence", "version": "0.1.0"}
    expected = model.recommend([user_id], k=5)
    assert [item["item_id"] for item in body["items"]] == expected["item_id"].tolist()
    assert [item["rank"] for item in body["items"]] == [1, 2, 3, 4, 5]
    scores = [item["score"] for item in body["items"]]
    assert all(math.isfinite(score) for score in scores) and scores == sorted(scores, reverse=True)


def test_k_defaults_to_ten(client: TestClient, model: Recommender) -> None:
    body = client.get("/recommendations", params={"user_id": int(model.user_ids_[0])}).json()
    assert body["k"] == 10 and len(body["items"]) == 10


def test_unknown_user_gets_popular_items_as_fallback(
    client: TestClient, model: Recommender
) -> None:
    unknown = int(model.user_ids_.max()) + 1
    body = client.get("/recommendations", params={"user_id": unknown, "k": 3}).json()
    assert body["fallback"] is True
    popular = model.item_ids_[model.popular_items_[:3]].tolist()
    assert [item["item_id"] for item in body["items"]] == popular


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({}, "user_id", "Field required"),
        ({"user_id": "abc"}, "user_id", "valid integer"),
        ({"user_id": 1, "k": 0}, "k", "greater than or equal to 1"),
        ({"user_id": 1, "k": 1000}, "k", "less than or equal to 100"),
        ({"user_id": 1, "k": "many"}, "k", "valid integer"),
    ],
)
def test_invalid_recommendation_requests_get_a_readable_422(
    client: TestClient, params: dict, field: str, message: str
) -> None:
    response = client.get("/recommendations", params=params)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith(f"{field}: ") and message in detail


def test_similar_items(client: TestClient, model: Recommender) -> None:
    item_id = int(model.item_ids_[0])
    body = client.get("/similar-items", params={"item_id": item_id, "k": 4}).json()
    assert body["item_id"] == item_id and body["model"]["run_id"] == "run-1"
    expected = [int(item) for item in model.similar_items([item_id], k=4)[0][0] if item >= 0]
    assert [item["item_id"] for item in body["items"]] == expected
    assert [item["rank"] for item in body["items"]] == list(range(1, len(expected) + 1))


def test_unknown_item_is_404_naming_the_item(client: TestClient, model: Recommender) -> None:
    unknown = int(model.item_ids_.max()) + 1
    response = client.get("/similar-items", params={"item_id": unknown})
    assert response.status_code == 404
    assert str(unknown) in response.json()["detail"]


def test_similar_items_validates_k(client: TestClient) -> None:
    response = client.get("/similar-items", params={"item_id": 1, "k": 101})
    assert response.status_code == 422 and response.json()["detail"].startswith("k: ")


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
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["serve", "--model", str(tmp_path)])
    assert (args.host, args.port) == ("127.0.0.1", 8000)
    assert args.func(args) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "cannot load model" in error and "model.json" in error


def test_int64_overflow_is_a_422_not_a_crash(client: TestClient) -> None:
    response = client.get("/recommendations", params={"user_id": str(np.iinfo(np.int64).max + 1)})
    assert response.status_code == 422 and response.json()["detail"].startswith("user_id: ")
