"""/docs and /redoc load Swagger UI and ReDoc from the service itself, never from a CDN.

The pages in a real browser, with every request recorded: tests/test_browser_journeys.py.
"""

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shoprec.artifact import save_model
from shoprec.models import Recommender
from shoprec.service.app import create_app

ASSET = re.compile(r'(?:src|href)="([^"]+)"')


@pytest.fixture(scope="module")
def client(cooccurrence_model: Recommender, tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    model_dir = save_model(cooccurrence_model, tmp_path_factory.mktemp("artifact") / "model")
    return TestClient(create_app(model_dir, environment="test"))


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}),
        ("/redoc", {"redoc.standalone.js", "favicon.png"}),
    ],
)
def test_docs_pages_load_their_assets_from_the_service(
    client: TestClient, page: str, assets: set[str]
) -> None:
    html = client.get(page).text
    links = ASSET.findall(html)
    assert {Path(link).name for link in links} == assets
    assert "//" not in "".join(links)  # same origin: no CDN, no Google fonts
    for link in links:
        response = client.get(link)
        assert response.status_code == 200 and len(response.content) > 1000, link
    assert '"validatorUrl": null' in html or page == "/redoc"  # no online validator badge


def test_redoc_keeps_the_page_on_the_service(client: TestClient) -> None:
    policy = client.get("/redoc").headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "img-src 'self' data:" in policy
    assert "/redoc" not in client.get("/openapi.json").json()["paths"]
