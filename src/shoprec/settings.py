"""Every setting shoprec reads from the environment, with its default: the one place that does.

Call `get_settings()` whenever a value is needed: a changed environment (a test's monkeypatch,
a service's launcher) or working directory is always seen. The same environment gives the same
(frozen) `Settings`, parsed once: commands ask for settings dozens of times.
"""

import functools
import os
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shoprec.errors import ConfigurationError

DEFAULT_PORTS = {"test": 8601, "staging": 8602, "production": 8603}
PREFIX = "SHOPREC_"  # of every variable but the third-party ones a field names (aliases)


class Settings(BaseSettings):
    """shoprec's settings; each field is read from `SHOPREC_<FIELD>` unless it says otherwise."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", frozen=True)

    project_dir: Path | None = Field(
        None, description="the project root (default: nearest folder up holding pyproject.toml)"
    )
    cache_dir: Path = Field(
        Path.home() / ".cache" / "shoprec", description="downloaded datasets and other caches"
    )
    movielens_dir: Path | None = Field(None, description="a folder holding MovieLens releases")
    port_test: int = Field(DEFAULT_PORTS["test"], ge=1, le=65535)
    port_staging: int = Field(DEFAULT_PORTS["staging"], ge=1, le=65535)
    port_production: int = Field(DEFAULT_PORTS["production"], ge=1, le=65535)
    tracking_uri: str | None = Field(
        None,
        validation_alias="MLFLOW_TRACKING_URI",
        description="MLflow tracking store (default: the project's SQLite file)",
    )
    events_url: SecretStr | None = Field(
        None, description="SQLAlchemy URL of the event store (default: SQLite under .shoprec/)"
    )
    api_key: SecretStr | None = Field(None, description="required by write endpoints when set")
    database_password: SecretStr | None = Field(
        None, description="password for a dataset's database URL (never a run parameter)"
    )
    workers: int | None = Field(
        None, ge=1, le=64, description="worker processes per service (default: one per core)"
    )
    log_max_bytes: int = Field(
        10_000_000, ge=10_000, description="a service log is rotated when it reaches this size"
    )
    log_backups: int = Field(5, ge=1, le=100, description="rotated service logs kept")
    spark_master: str = Field("local[*]", description="Spark master URL or sc:// endpoint")
    warm_kernels: bool = Field(
        True,
        description="fork notebook kernels from a warm template (shoprec.warm_kernels); "
        "false launches each kernel as jupyter_client does",
    )
    # Set by `shoprec deploy` / `start` for the service processes it launches (deploy.services).
    model_uri: str | None = Field(
        None, description="what a service loads when its control folder names no target"
    )
    environment: str = Field("local", description="the deployment environment a service serves")
    service_dir: Path | None = Field(None, description="a service's control folder")
    service_pid: int | None = Field(
        None, description="the pid of a service's master process (default: this process)"
    )
    kill_at_step: str | None = Field(
        None,
        description="tests only: a deploy, rollback, promote, start or stop kills itself "
        "(SIGKILL) on reaching this step ('<step>' or '<command>:<step>', "
        "shoprec.deploy.transaction.STEPS)",
    )
    # Read, never set, by shoprec: third-party names.
    java_home: str | None = Field(
        None, validation_alias="JAVA_HOME", description="the JDK pyspark starts"
    )
    pyspark_gateway_port: str | None = Field(
        None,
        validation_alias="PYSPARK_GATEWAY_PORT",
        description="set by spark-submit: a Spark gateway is already up",
    )

    @field_validator("project_dir", "cache_dir", "movielens_dir", mode="after")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value is not None else None

    def port(self, environment: str) -> int:
        """The port the named deployment environment listens on."""
        return getattr(self, f"port_{environment}")


def environment_variable(field: str) -> str:
    """The environment variable a settings field is read from."""
    alias = Settings.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else f"{PREFIX}{field.upper()}"


_ALIASES = frozenset(
    field.validation_alias.upper()
    for field in Settings.model_fields.values()
    if isinstance(field.validation_alias, str)
)


def _read_by_settings(variable: str) -> bool:
    """Whether `Settings` reads environment variable `variable` (names are not case-sensitive)."""
    name = variable.upper()
    return name.startswith(PREFIX) or name in _ALIASES


def get_settings() -> Settings:
    """The settings as the environment gives them now; a malformed value names its variable."""
    read = tuple(sorted((k, v) for k, v in os.environ.items() if _read_by_settings(k)))
    try:
        working_directory = os.getcwd()  # relative paths resolve against it
    except FileNotFoundError:
        working_directory = ""
    return _settings(read, working_directory)


@functools.lru_cache(maxsize=16)
def _settings(environment: tuple[tuple[str, str], ...], working_directory: str) -> Settings:
    """`Settings` parsed from the environment, cached by what it reads (the arguments)."""
    try:
        return Settings()
    except ValidationError as error:
        problems = []
        for item in error.errors():
            field = str(item["loc"][0]) if item["loc"] else "?"
            variable = environment_variable(field) if field in Settings.model_fields else field
            problems.append(f"{variable}={item.get('input')!r}: {item['msg']}")
        raise ConfigurationError("; ".join(problems)) from None
