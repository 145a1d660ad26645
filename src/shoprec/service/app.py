"""The recommendation web service: a FastAPI app answering from one swappable model version."""

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline

from shoprec.artifact import ArtifactError
from shoprec.deploy import control
from shoprec.service import metrics
from shoprec.service.docs import add_redoc
from shoprec.service.routes import router
from shoprec.service.served import ServedModel, load_served_model
from shoprec.service.swap import ModelHolder, SwapWatcher
from shoprec.settings import get_settings
from shoprec.tracking.store import REGISTERED_MODEL

log = logging.getLogger("shoprec.service")


class ImpressionSink(Protocol):
    """Where served lists go: `log` must not block; `start` and `close` bracket the service."""

    def log(self, record: dict[str, Any]) -> None: ...  # noqa: D102

    def start(self) -> Any: ...  # noqa: D102

    def close(self, timeout: float = ...) -> dict[str, int]: ...  # noqa: D102


@dataclass(frozen=True)
class RegisteredModel:
    """A registry model resolved to its local artifact: where it is and what identifies it."""

    directory: Path
    run_id: str | None
    version: str


def resolve_registered(uri: str) -> RegisteredModel:
    """Fetch `models:/shoprec@<alias>` or `models:/shoprec/<version>` from the registry.

    Raises ArtifactError when the registry has no such model or its artifact was altered.
    """
    from shoprec.tracking import registry
    from shoprec.tracking.store import TrackingError, client

    name, _, ref = uri.removeprefix("models:/").replace("@", "/").partition("/")
    if not uri.startswith("models:/") or name != REGISTERED_MODEL or not ref:
        raise ArtifactError(
            f"{uri}: expected models:/{REGISTERED_MODEL}@<alias> or models:/{REGISTERED_MODEL}/<n>"
        )
    try:
        mlflow_client = client()
        version = (
            registry.get_version(mlflow_client, ref)
            if ref.isdigit()
            else registry.alias_version(mlflow_client, ref)
        )
        if version is None:
            raise ArtifactError(f"{uri}: alias {ref!r} is not set")
        directory = registry.fetch(version)
    except registry.RegistryError as error:
        raise ArtifactError(f"{uri}: {error}") from error
    except ArtifactError:
        raise
    except TrackingError as error:  # the store failing in any way
        raise ArtifactError(f"{uri}: {error}") from error
    return RegisteredModel(directory, version.tags.get(registry.RUN_TAG), str(version.version))


def load_model_uri(
    model: Path | str, environment: str, run_id: str | None = None, *, prepare: bool = True
) -> ServedModel:
    """Load an artifact directory or a `models:/` URI, verified, precomputed and warmed."""
    if str(model).startswith("models:/"):
        registered = resolve_registered(str(model))
        return load_served_model(
            registered.directory,
            run_id or registered.run_id,
            environment,
            registered.version,
            prepare=prepare,
        )
    return load_served_model(Path(model), run_id, environment, prepare=prepare)


def load_target(target: dict[str, Any], environment: str) -> ServedModel:
    """Load the artifact a control target names, once its `model.json` is the one registered.

    Raises ArtifactError when the artifact differs from the registry's record or its files
    from their checksums.
    """
    from shoprec.tracking.registry import artifact_digest

    model_dir = Path(target["model_dir"])
    try:
        digest = artifact_digest(model_dir)
    except OSError as error:
        raise ArtifactError(f"{model_dir}: cannot read the artifact ({error})") from error
    if digest != target["model_json_sha256"]:
        raise ArtifactError(
            f"{model_dir}/model.json: sha256 {digest[:12]}... is not the "
            f"{target['model_json_sha256'][:12]}... the registry recorded for version "
            f"{target['version']}; artifact was altered"
        )
    return load_served_model(model_dir, target.get("run_id"), environment, target["version"])


def _field_name(location: tuple[Any, ...]) -> str:
    parts = [
        f"[{part}]" if isinstance(part, int) else str(part)
        for part in location
        if part not in ("query", "path", "body")
    ]
    return ".".join(parts).replace(".[", "[") or "request"


async def _readable_validation_error(
    request: Request, error: RequestValidationError
) -> JSONResponse:
    """422 with one readable line per bad field, e.g. `user_id: Field required`."""
    errors = [
        {"field": _field_name(tuple(item["loc"])), "message": item["msg"]}
        for item in error.errors()
    ]
    detail = "; ".join(f"{item['field']}: {item['message']}" for item in errors)
    return JSONResponse(status_code=422, content={"detail": detail, "errors": errors})


def create_app(
    model: Path | str | ServedModel,
    *,
    run_id: str | None = None,
    environment: str = "local",
    impressions: ImpressionSink | None = None,
    routers: Iterable[APIRouter] = (),
    control_dir: Path | None = None,
) -> FastAPI:
    """A service answering from an artifact directory, a `models:/` URI or a loaded model.

    With `control_dir`, the service follows the version its `target.json` names (see
    `shoprec.deploy.control`). Raises ArtifactError if the model cannot be fetched, is
    tampered with or is incomplete.
    """
    token = None
    target = control.read_target(control_dir) if control_dir is not None else None
    if isinstance(model, ServedModel):
        served = model
    elif target is not None:
        served, token = load_target(target, environment), target["token"]
    else:
        served = load_model_uri(model, environment, run_id)
    holder = ModelHolder(served)
    if target is not None and target.get("canary"):
        holder.canary = (load_target(target["canary"], environment), target["canary"]["fraction"])

    def load_version(target: dict[str, Any]) -> ServedModel:
        return load_target(target, environment)

    def swapped(old: ServedModel, new: ServedModel) -> None:
        metrics.SERVED_VERSION.labels(old.label).dec()
        metrics.SERVED_VERSION.labels(new.label).inc()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        metrics.SERVED_VERSION.labels(holder.current.label).inc()
        watcher = None
        if impressions is not None:
            impressions.start()
        if control_dir is not None:
            watcher = SwapWatcher(holder, control_dir, load_version, on_swap=swapped)
            watcher.start(token)
        try:
            yield
        finally:
            if watcher is not None:
                watcher.stop()
            if impressions is not None:
                counters = impressions.close()
                log.info("worker %d: impressions at shutdown %s", os.getpid(), counters)
            metrics.SERVED_VERSION.labels(holder.current.label).dec()
            metrics.worker_exited()

    # /docs and /redoc with Swagger UI's and ReDoc's files from the environment (no CDN: they
    # work offline); no online validator badge either.
    app = FastAPIOffline(
        title="shoprec",
        version=served.version,
        lifespan=lifespan,
        description="Recommendations for the shop's catalogue; see the README for examples.",
        swagger_ui_parameters={"validatorUrl": None},
        redoc_url=None,
    )
    add_redoc(app)
    app.state.holder = holder
    app.state.impressions = impressions
    app.state.environment = environment
    app.add_exception_handler(RequestValidationError, _readable_validation_error)
    app.include_router(router)
    for extra in routers:
        app.include_router(extra)
    app.add_middleware(metrics.RequestMetrics)
    return app


def app_from_env() -> FastAPI:
    """App factory for `uvicorn --factory` without impression logging (see shoprec.events)."""
    settings = get_settings()
    return create_app(
        settings.model_uri or f"models:/{REGISTERED_MODEL}@production",
        environment=settings.environment,
        control_dir=settings.service_dir,
    )
