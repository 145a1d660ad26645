"""What the team opens on day one, in a real browser, offline: the MLflow UI on a pipeline run,
and a service's API docs (/docs, /redoc). Headless Chromium (the system's, .ci/install-browser)
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
from dataclasses import dataclass, field
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


@dataclass
class Requests:
    """Every URL a page requested, and those the browser stopped: by the page's own
    Content-Security-Policy ("csp"), before anything was sent."""

    made: list[str] = field(default_factory=list)
    stopped_by_policy: set[str] = field(default_factory=set)

    def leaving(self) -> list[str]:
        """The requests to anywhere but 127.0.0.1 that the browser sent (data: and blob: URLs
        stay in the page)."""
        return [
            url
            for url in self.made
            if urlsplit(url).scheme not in ("data", "blob")
            and urlsplit(url).hostname != "127.0.0.1"
            and url not in self.stopped_by_policy
        ]


def open_page(browser, url: str) -> tuple:
    """A new page at `url`, and the `Requests` it makes (recorded as it loads)."""
    page = browser.new_page(viewport={"width": 1800, "height": 1000})
    requests = Requests()
    page.on("request", lambda request: requests.made.append(request.url))

    def failed(request) -> None:
        if request.failure == "csp":
            requests.stopped_by_policy.add(request.url)

    page.on("requestfailed", failed)
    page.goto(url, wait_until="load", timeout=PAGE_TIMEOUT_MS)
    return page, requests


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

    page, requests = open_page(browser, link)

    header = page.locator('.ag-header-cell[col-id="metrics.`ndcg_at_10`"]')
    header.wait_for(timeout=PAGE_TIMEOUT_MS)
    assert header.inner_text().strip() == "ndcg_at_10"
    assert "/runs?" in page.url and "genai" not in page.url
    # The pipeline run's row (its notebooks folded in); other tests may add reproductions of it.
    named = page.locator(".ag-row").filter(has=page.get_by_text(run_dir.name, exact=True))
    row = page.locator(f'.ag-row[row-index="{named.first.get_attribute("row-index")}"]')
    shown = row.locator('.ag-cell[col-id="metrics.`ndcg_at_10`"]').inner_text()
    assert float(shown) == pytest.approx(ndcg, abs=1e-6)
    dataset = row.locator('.ag-cell[col-id="attributes.`Dataset`"]').inner_text()
    assert dataset.startswith("synthetic-smoke (")
    assert page.get_by_text("Headline metrics").first.is_visible()  # the saved view
    page.close()
    assert requests.made and requests.leaving() == [] and not requests.stopped_by_policy


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

    page, requests = open_page(browser, f"{url}/docs")

    page.locator(".opblock").first.wait_for(timeout=PAGE_TIMEOUT_MS)
    shown = {text.strip() for text in page.locator(".opblock-summary-path").all_inner_texts()}
    assert shown == paths and {"/recommendations", "/similar-items", "/events"} <= shown
    assert page.locator(".swagger-ui .info .title").inner_text().startswith("shoprec")
    page.close()
    assert any(u.endswith("/static-offline-docs/swagger-ui-bundle.js") for u in requests.made)
    assert requests.leaving() == [] and not requests.stopped_by_policy


@pytest.mark.service
@pytest.mark.xdist_group("browser-service")
def test_redoc_renders_the_api_with_nothing_from_the_network(browser, service) -> None:
    url, paths = service

    page, requests = open_page(browser, f"{url}/redoc")

    page.locator(".api-content h1").first.wait_for(timeout=PAGE_TIMEOUT_MS)
    assert page.locator(".api-content h1").first.inner_text().startswith("shoprec")
    text = page.locator(".api-content").inner_text()
    assert all(path in text for path in paths), sorted(p for p in paths if p not in text)
    page.close()
    assert any(u.endswith("/static-offline-docs/redoc.standalone.js") for u in requests.made)
    # ReDoc's bundle asks cdn.redoc.ly for its maker's logo; the page's policy stops it unsent
    assert requests.leaving() == []
    assert requests.stopped_by_policy <= {"https://cdn.redoc.ly/redoc/logo-mini.svg"}
