"""What the team opens on day one, in a real browser, offline: the MLflow UI on a pipeline run,
and a service's API docs (/docs). Headless Chromium (the system's, .ci/install-browser)
driven by Playwright; every request a page makes is recorded, and none may leave 127.0.0.1."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from deployment import free_ports

from shoprec.artifact import save_model
from shoprec.models import Recommender
from shoprec.runs import EVALUATION_FILE

pytestmark = pytest.mark.browser
STARTUP_TIMEOUT_S = 240  # the MLflow server imports for a minute on a loaded 2-core machine
PAGE_TIMEOUT_MS = 120_000
# Chromium as the nbdime page test runs it: no background traffic of its own (updates, sync,
# safe browsing), so every request recorded is the page's.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """One headless Chromium for the module (the system's; Playwright downloads nothing)."""
    from playwright.sync_api import sync_playwright

    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is not installed: run .ci/install-browser")
        pytest.skip("Chromium is not installed (run .ci/install-browser to install it)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=found, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def open_page(browser, url: str) -> tuple:
    """A new page at `url`, and the list of every URL it requests (filled as it loads)."""
    page = browser.new_page(viewport={"width": 1800, "height": 1000})
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(url, wait_until="load", timeout=PAGE_TIMEOUT_MS)
    return page, requested


def leaving(requested: list[str]) -> list[str]:
    """The requests that went anywhere but 127.0.0.1 (data: and blob: URLs stay in the page)."""
    return [
        url
        for url in requested
        if urlsplit(url).scheme not in ("data", "blob") and urlsplit(url).hostname != "127.0.0.1"
    ]


def wait_until_up(url: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the server at {url} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {STARTUP_TIMEOUT_S} s")


@pytest.fixture(scope="module")
def pipeline_ui(smoke_run) -> Iterator[tuple[str, Path]]:
    """The MLflow UI as `make ui` serves it, on the session's smoke pipeline run's store (read
    only): the link it prints, and the run's directory."""
    assert smoke_run.returncode == 0, smoke_run.stderr
    environment = {**os.environ, **smoke_run.environment}
    environment.pop("MLFLOW_TRACKING_URI", None)
    (port,) = free_ports(1)
    ui = subprocess.Popen(
        [sys.executable, "-m", "shoprec.tracking.ui", "--port", str(port)],
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        link = ui.stdout.readline().rpartition(": ")[2].strip()
        wait_until_up(f"http://127.0.0.1:{port}/health", ui)
        yield link, smoke_run.run_dir
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=60)
        ui.stdout.close()


@pytest.mark.notebook
@pytest.mark.service
def test_mlflow_ui_opens_on_the_runs_list_with_the_runs_ndcg(browser, pipeline_ui) -> None:
    link, run_dir = pipeline_ui
    ndcg = json.loads((run_dir / EVALUATION_FILE).read_text())["metrics"]["candidate"]["ndcg"]

    page, requested = open_page(browser, link)

    header = page.locator('.ag-header-cell[col-id="metrics.`ndcg_at_10`"]')
    header.wait_for(timeout=PAGE_TIMEOUT_MS)
    assert header.inner_text().strip() == "ndcg_at_10"
    assert "/runs?" in page.url and "genai" not in page.url
    row = page.locator('.ag-row[row-index="0"]')  # the pipeline run; its notebooks folded in
    assert run_dir.name in row.locator('.ag-cell[col-id="attributes.`Run Name`"]').inner_text()
    shown = row.locator('.ag-cell[col-id="metrics.`ndcg_at_10`"]').inner_text()
    assert float(shown) == pytest.approx(ndcg, abs=1e-6)
    dataset = row.locator('.ag-cell[col-id="attributes.`Dataset`"]').inner_text()
    assert dataset.startswith("synthetic-smoke (")
    assert page.get_by_text("Headline metrics").first.is_visible()  # the saved view
    page.close()
    assert requested and leaving(requested) == []


@pytest.fixture(scope="module")
def service(tmp_path_factory, cooccurrence_model: Recommender) -> Iterator[tuple[str, set[str]]]:
    """An environment's service (recommendations, events, impressions) on a free port: its URL
    and the paths its OpenAPI schema declares."""
    import uvicorn

    from shoprec.events.serve import build_app

    folder = tmp_path_factory.mktemp("service")
    model_dir = save_model(cooccurrence_model, folder / "model")
    app = build_app(model_dir, environment="test", events_url=f"sqlite:///{folder / 'events.db'}",
                    spool=folder / "spool")  # fmt: skip
    (port,) = free_ports(1)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/health")
        yield url, set(app.openapi()["paths"])
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.mark.service
@pytest.mark.xdist_group("browser-service")
def test_docs_lists_every_endpoint_with_nothing_from_the_network(browser, service) -> None:
    url, paths = service

    page, requested = open_page(browser, f"{url}/docs")

    page.locator(".opblock").first.wait_for(timeout=PAGE_TIMEOUT_MS)
    shown = {text.strip() for text in page.locator(".opblock-summary-path").all_inner_texts()}
    assert shown == paths and {"/recommendations", "/similar-items", "/events"} <= shown
    assert page.locator(".swagger-ui .info .title").inner_text().startswith("shoprec")
    page.close()
    assert any(u.endswith("/static-offline-docs/swagger-ui-bundle.js") for u in requested)
    assert leaving(requested) == []
