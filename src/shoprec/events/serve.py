"""The service as it runs in an environment: recommendations plus impressions and events.

`app_from_env` is the factory each worker process of a deployed service runs.
"""

import functools
import threading
from pathlib import Path

from fastapi import FastAPI

from shoprec.events.logger import ImpressionLogger
from shoprec.events.routes import API_KEY_HEADER, FeedbackEvent
from shoprec.events.routes import router as events_router
from shoprec.events.store import SPOOL_DIR, EventStore
from shoprec.runs import state_dir
from shoprec.service import metrics
from shoprec.service.app import create_app
from shoprec.service.openapi import describe
from shoprec.service.served import ServedModel
from shoprec.settings import get_settings
from shoprec.tracking.store import REGISTERED_MODEL


def spool_dir(environment: str) -> Path:
    """Where the environment's impression records wait while the store is unavailable."""
    return state_dir() / SPOOL_DIR / environment


class _LazyStore:
    """One event store per process, opened on first use (retried while it fails)."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self._store: EventStore | None = None
        self._lock = threading.Lock()

    def __call__(self) -> EventStore:
        with self._lock:
            if self._store is None:
                self._store = EventStore(self.url)
            return self._store


def build_app(
    model: Path | str | ServedModel,
    *,
    environment: str = "local",
    run_id: str | None = None,
    events_url: str | None = None,
    spool: Path | None = None,
    control_dir: Path | None = None,
) -> FastAPI:
    """The service with impression logging and `POST /events` on the event store."""

    def count(outcome: str, value: int) -> None:
        metrics.IMPRESSION_LOG.labels(outcome).inc(value)

    logger = ImpressionLogger(
        lambda: EventStore(events_url), spool or spool_dir(environment), on_count=count
    )
    app = create_app(
        model,
        run_id=run_id,
        environment=environment,
        impressions=logger,
        routers=[events_router],
        control_dir=control_dir,
    )
    app.state.feedback_store = _LazyStore(events_url)
    key = get_settings().api_key
    required = (API_KEY_HEADER, [("/events", "post")]) if key and key.get_secret_value() else None
    app.openapi = functools.partial(describe, app, [FeedbackEvent], required)
    return app


def app_from_env() -> FastAPI:
    """App factory for `uvicorn --factory`: model, environment and control folder from variables."""
    settings = get_settings()
    return build_app(
        settings.model_uri or f"models:/{REGISTERED_MODEL}@production",
        environment=settings.environment,
        control_dir=settings.service_dir,
    )
