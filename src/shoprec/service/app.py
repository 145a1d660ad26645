"""The recommendation web service: one loaded model artifact behind a FastAPI app."""

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from shoprec.artifact import ARRAYS_FILE, METADATA_FILE, ArtifactError, load_model, read_metadata
from shoprec.service.routes import ServedModel, router
from shoprec.tracking.store import REGISTERED_MODEL

MODEL_URI_VAR = "SHOPREC_MODEL_URI"
ENVIRONMENT_VAR = "SHOPREC_ENVIRONMENT"


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
    from shoprec.tracking.store import client, describe

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
    except Exception as error:  # the store failing in any way
        raise ArtifactError(f"{uri}: {describe(error)}") from error
    return RegisteredModel(directory, version.tags.get(registry.RUN_TAG), str(version.version))


def load_served_model(
    model_dir: Path, run_id: str | None, environment: str, model_version: str | None = None
) -> ServedModel:
    """Load and verify the artifact at `model_dir`; raises ArtifactError if it is unusable."""
    model = load_model(model_dir)
    record = read_metadata(model_dir)
    if ARRAYS_FILE not in record["files"]:
        raise ArtifactError(f"{model_dir / METADATA_FILE}: no sha256 listed for {ARRAYS_FILE}")
    return ServedModel(
        model=model,
        run_id=run_id,
        model_version=model_version,
        algorithm=record["algorithm"],
        version=record.get("shoprec_version", "unknown"),
        model_sha256=record["files"][ARRAYS_FILE],
        environment=environment,
        loaded_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _field_name(location: tuple[Any, ...]) -> str:
    parts = [str(part) for part in location if part not in ("query", "path", "body")]
    return ".".join(parts) or "request"


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
    model: Path | str,
    *,
    run_id: str | None = None,
    environment: str = "local",
) -> FastAPI:
    """A service answering from an artifact directory or a `models:/` registry URI.

    Raises ArtifactError if the model cannot be fetched, is tampered with or is incomplete.
    """
    if str(model).startswith("models:/"):
        registered = resolve_registered(str(model))
        served = load_served_model(
            registered.directory, run_id or registered.run_id, environment, registered.version
        )
    else:
        served = load_served_model(Path(model), run_id, environment)
    app = FastAPI(title="shoprec", version=served.version)
    app.state.served = served
    app.add_exception_handler(RequestValidationError, _readable_validation_error)
    app.include_router(router)
    return app


def app_from_env() -> FastAPI:
    """App factory for `uvicorn --factory`: model URI and environment from the environment."""
    return create_app(
        os.environ[MODEL_URI_VAR], environment=os.environ.get(ENVIRONMENT_VAR, "local")
    )
