"""Shared fixtures: a small deterministic shop, its split, fitted models, a scratch project, and
one real smoke-profile pipeline run for the tests that only read a run."""

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from shoprec.datasets import Dataset, load_dataset
from shoprec.interactions import split_interactions
from shoprec.models import Recommender, make_model
from shoprec.tracking.store import local_database

# Every JVM the tests start (the Spark sessions of the tests, of the notebooks' kernels and the
# Spark Connect server) lives for seconds to minutes on small data: the C1 compiler alone (no C2
# compile threads competing for the two cores) and the serial collector spend about a fifth less
# CPU there; Spark's results do not depend on either. A deeper thread stack than the default
# 1 MiB holds ALS's iteration lineage under C1's larger frames. The pipeline itself runs the JVM
# as the user's Java is configured.
os.environ.setdefault("JAVA_TOOL_OPTIONS", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xss16m")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def smoke_data() -> Dataset:
    return load_dataset("synthetic", "smoke", seed=7)


@pytest.fixture(scope="session")
def smoke_split(smoke_data: Dataset) -> tuple[pd.DataFrame, pd.DataFrame]:
    return split_interactions(smoke_data.interactions, 0.2)


@pytest.fixture(scope="session")
def spark():
    """One `local[2]` Spark session for every test of the Spark engine (marked `spark`, in the
    xdist group "spark" so that one worker owns it); skipped, saying why, without pyspark or a
    Java 17+."""
    pytest.importorskip("pyspark", reason="the Spark engine needs the 'spark' extra")
    from shoprec.spark.session import java_problem, spark_session

    problem = java_problem()
    if problem is not None:
        pytest.skip(f"no Java for Spark 4: {problem} (run .ci/install-jdk)")
    # The tests run hundreds of queries on a few thousand rows, where planning again after each
    # stage (adaptive execution) and compiling Java code for each query cost more than the rows:
    # off here, 163-170 -> 122 CPU-s for these tests. The Spark notebook (nbval) and the Spark
    # pipeline (tests/test_spark_pipeline.py) keep Spark's defaults, so that path runs too (its
    # Connect server got no cheaper with these settings: 136 -> 134 CPU-s).
    session = spark_session(
        "local[2]",
        config={
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.sql.adaptive.enabled": "false",
            "spark.sql.codegen.wholeStage": "false",
            "spark.sql.codegen.factoryMode": "NO_CODEGEN",
        },
    )
    yield session
    session.stop()


@pytest.fixture(scope="session")
def smoke_frames(smoke_split, spark):
    """The smoke split as cached Spark DataFrames (the canonical columns)."""
    columns = ["user_id", "item_id", "weight", "timestamp"]
    train, test = smoke_split
    return (
        spark.createDataFrame(train[columns]).cache(),
        spark.createDataFrame(test[columns]).cache(),
    )


@pytest.fixture(scope="session")
def cooccurrence_model(smoke_split) -> Recommender:
    return make_model("cooccurrence").fit(smoke_split[0])


@pytest.fixture(scope="session")
def popularity_model(smoke_split) -> Recommender:
    return make_model("popularity").fit(smoke_split[0])


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tracking database with MLflow's tables and nothing else, copied by each test."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    directory = tmp_path_factory.mktemp("store")
    SqlAlchemyStore(f"sqlite:///{directory / 'mlflow.db'}", str(directory / "artifacts"))
    return directory / "mlflow.db"


def pipeline_project(directory: Path, repo_root: Path, empty_store: Path) -> Path:
    """Make `directory` a project with the repository's notebooks, lock file and deploy policy,
    and a tracking store of its own (copied from `empty_store`)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("notebooks", "requirements.lock", "policy"):
        (directory / name).symlink_to(repo_root / name)
    (directory / ".shoprec").mkdir()
    shutil.copyfile(empty_store, directory / ".shoprec" / "mlflow.db")
    return directory


@pytest.fixture
def project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repo_root: Path, empty_store: Path
) -> Path:
    """A scratch project directory with the repository's notebooks and lock file, and its own
    tracking store (MLflow's tables made once per session: creating them takes seconds)."""
    monkeypatch.setenv("SHOPREC_PROJECT_DIR", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the project's own store
    pipeline_project(tmp_path, repo_root, empty_store)
    assert local_database() == tmp_path / ".shoprec" / "mlflow.db"
    return tmp_path


@dataclass(frozen=True)
class SmokeRun:
    """A finished `shoprec pipeline --profile smoke` (default algorithm) and what it printed."""

    project: Path
    run_dir: Path
    returncode: int
    stdout: str
    stderr: str

    @property
    def environment(self) -> dict[str, str]:
        """The variables that make `shoprec` in a child process work on this run's project."""
        return {"SHOPREC_PROJECT_DIR": str(self.project)}


@pytest.fixture(scope="session")
def smoke_run(
    tmp_path_factory: pytest.TempPathFactory, worker_id: str, repo_root: Path, empty_store: Path
) -> SmokeRun:
    """One real smoke-profile pipeline run, tracked and registered as version 1 in a project of
    its own, made once for the whole session (all xdist workers) and shared by the tests that
    read a run, reproduce it or re-run its recipe elsewhere. They must leave it as it is: no
    deploy from it, nothing that moves its `runs/latest` or registers in its store."""
    root = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        root = root.parent  # the folder every worker's own temporary folder is in
    home, outcome = root / "smoke-run", root / "smoke-run.json"
    with (root / "smoke-run.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not outcome.is_file():
            pipeline_project(home, repo_root, empty_store)
            environment = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
            result = subprocess.run(
                [sys.executable, "-m", "shoprec.cli", "pipeline", "--profile", "smoke", "--quiet"],
                capture_output=True,
                text=True,
                env={**environment, "SHOPREC_PROJECT_DIR": str(home)},
                timeout=600,
                check=False,
            )
            run_dir = (home / "runs" / "latest").resolve()
            fields = {"returncode": result.returncode, "run_dir": str(run_dir)}
            outcome.write_text(
                json.dumps({**fields, "stdout": result.stdout, "stderr": result.stderr})
            )
    fields = json.loads(outcome.read_text())
    return SmokeRun(home, Path(fields.pop("run_dir")), **fields)


@pytest.fixture
def shoprec() -> Callable[..., subprocess.CompletedProcess]:
    """Runs the `shoprec` command line in a child process (extra environment as keywords)."""

    def run(*args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "shoprec.cli", *args],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            timeout=300,
            check=False,
        )

    return run


@pytest.fixture
def no_data_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No MovieLens dir, a project with no shared data beside it, and an empty cache."""
    monkeypatch.delenv("SHOPREC_MOVIELENS_DIR", raising=False)
    monkeypatch.setenv("SHOPREC_PROJECT_DIR", str(tmp_path / "work" / "project"))
    monkeypatch.setenv("SHOPREC_CACHE_DIR", str(tmp_path / "cache"))


from postgres import postgres_database, postgres_server  # noqa: E402, F401 - shared fixtures
