"""Where runs and models are tracked: the project's SQLite store, or $MLFLOW_TRACKING_URI."""

import contextlib
import functools
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from shoprec.errors import ShoprecError
from shoprec.runs import state_dir

if TYPE_CHECKING:
    from mlflow import MlflowClient

EXPERIMENT = "shoprec"
# The MLflow UI opens an experiment of this kind on its runs list (not on GenAI traces).
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}
REGISTERED_MODEL = "shoprec"
DATABASE = "mlflow.db"
ARTIFACTS = "mlartifacts"
# Fail fast when a tracking server is unreachable (MLflow's default retries for minutes).
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
QUIET_LOGGERS = ("mlflow", "alembic")
# MLflow logs each database error with its whole traceback before raising it; shoprec reports
# the error itself, in one paragraph (`describe`).
SILENT_LOGGERS = ("mlflow.store.db.utils",)
READ_ONLY_SIGNS = ("readonly database", "read-only", "read only", "permission denied")


class TrackingError(ShoprecError, RuntimeError):
    """The tracking store failed: unreachable, read-only, locked, or it refused a request.

    Every MLflow failure reaches the rest of shoprec as this error, translated once here
    (`translated`, and the client `client()` returns); the message names the store, and
    `error_code` keeps MLflow's code (e.g. `RESOURCE_DOES_NOT_EXIST`) when it gave one.
    """

    def __init__(self, message: str, error_code: str | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Inside, any failure of MLflow or the store becomes one `TrackingError`."""
    try:
        yield
    except ShoprecError:
        raise
    except Exception as error:  # MLflow raises many kinds for a failing store
        raise TrackingError(describe(error), getattr(error, "error_code", None)) from error


class _TranslatingClient:
    """An MLflow client whose every call raises `TrackingError` on failure."""

    def __init__(self, inner: "MlflowClient") -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not callable(attribute):
            return attribute

        @functools.wraps(attribute)
        def call(*args: Any, **kwargs: Any) -> Any:
            with translated():
                return attribute(*args, **kwargs)

        return call


def local_database(root: Path | None = None) -> Path:
    """The project's default tracking database (of project `root`, default this one)."""
    return state_dir(root) / DATABASE


def local_artifacts() -> Path:
    """Where the project's default store keeps artifacts (notebooks, models)."""
    return state_dir() / ARTIFACTS


def local_uri(root: Path | None = None) -> str:
    """The URI of the project's default tracking database (of project `root`, default this one)."""
    return f"sqlite:///{local_database(root)}"


def tracking_uri() -> str:
    """$MLFLOW_TRACKING_URI, else the project's SQLite database."""
    from shoprec.settings import get_settings

    return get_settings().tracking_uri or local_uri()


def is_local() -> bool:
    """Whether the project's own store is in use (not a team server)."""
    return tracking_uri() == local_uri()


def quiet() -> None:
    """Silence MLflow's progress bars, info logs and advice (call after importing mlflow)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in SILENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", module=r"mlflow\..*")


def client() -> "MlflowClient":
    """An MLflow client on the tracking store, creating the local store on first use.

    Its calls raise `TrackingError` (naming the store) instead of MLflow's own errors.
    """
    import mlflow

    quiet()
    uri = tracking_uri()
    if is_local():
        local_database().parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        inner = mlflow.MlflowClient(uri, uri)
    except Exception as error:  # MLflow raises many kinds for a bad store
        raise TrackingError(f"tracking store {uri}: {_reason(error)}") from error
    return cast("MlflowClient", _TranslatingClient(inner))


def experiment_id(mlflow_client: "MlflowClient", name: str = EXPERIMENT) -> str:
    """The id of experiment `name` (default `shoprec`), created (artifacts under the project)
    if missing; either way it carries EXPERIMENT_TAGS."""
    experiment = mlflow_client.get_experiment_by_name(name)
    if experiment is None:
        location = local_artifacts() if name == EXPERIMENT else local_artifacts() / name
        uri = location.as_uri() if is_local() else None
        return mlflow_client.create_experiment(name, artifact_location=uri, tags=EXPERIMENT_TAGS)
    for key, value in EXPERIMENT_TAGS.items():
        if experiment.tags.get(key) != value:
            mlflow_client.set_experiment_tag(experiment.experiment_id, key, value)
    return experiment.experiment_id


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _root_cause(error: BaseException) -> BaseException:
    """The innermost error of a chain (MLflow wraps SQLAlchemy, which wraps the driver)."""
    seen = {id(error)}
    while (inner := error.__cause__ or error.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        error = inner
    return getattr(error, "orig", None) or error


def describe(error: BaseException) -> str:
    """A one-paragraph account of a tracking failure, naming the store and what to do."""
    if isinstance(error, TrackingError):
        return str(error)
    root = _root_cause(error)
    reason = _reason(root)
    if any(sign in reason.lower() for sign in READ_ONLY_SIGNS):
        return (
            f"tracking store {tracking_uri()} is read-only ({reason}): shoprec must write runs "
            "and registry changes there; make the database and its folder writable, or set "
            "MLFLOW_TRACKING_URI to a store you can write"
        )
    return f"tracking store {tracking_uri()}: {type(root).__name__}: {reason}"
