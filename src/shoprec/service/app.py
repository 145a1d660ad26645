"""The recommendation web service: one loaded model artifact behind a FastAPI app."""

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from shoprec.artifact import ARRAYS_FILE, METADATA_FILE, ArtifactError, load_model, read_metadata
from shoprec.service.routes import ServedModel, router

MODEL_DIR_VAR = "SHOPREC_MODEL_DIR"
RUN_ID_VAR = "SHOPREC_RUN_ID"
ENVIRONMENT_VAR = "SHOPREC_ENVIRONMENT"


def load_served_model(model_dir: Path, run_id: str | None, environment: str) -> ServedModel:
    """Load and verify the artifact at `model_dir`; raises ArtifactError if it is unusable."""
    model = load_model(model_dir)
    record = read_metadata(model_dir)
    if ARRAYS_FILE not in record["files"]:
        raise ArtifactError(f"{model_dir / METADATA_FILE}: no sha256 listed for {ARRAYS_FILE}")
    return ServedModel(
        model=model,
        run_id=run_id,
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
    model_dir: Path, *, run_id: str | None = None, environment: str = "local"
) -> FastAPI:
    """A service answering from the artifact at `model_dir`; raises ArtifactError if it is bad."""
    served = load_served_model(Path(model_dir), run_id, environment)
    app = FastAPI(title="shoprec", version=served.version)
    app.state.served = served
    app.add_exception_handler(RequestValidationError, _readable_validation_error)
    app.include_router(router)
    return app


def app_from_env() -> FastAPI:
    """App factory for `uvicorn --factory`: model, run id and environment from the environment."""
    return create_app(
        Path(os.environ[MODEL_DIR_VAR]),
        run_id=os.environ.get(RUN_ID_VAR) or None,
        environment=os.environ.get(ENVIRONMENT_VAR, "local"),
    )
