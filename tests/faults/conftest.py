"""Fixtures for the fault-injection suite: a PostgreSQL database, a scratch project, a store.

`postgres_url` is a fresh database on the tests' own PostgreSQL server (see `tests/postgres.py`),
as a SQLAlchemy URL with its driver and the superuser's password.
"""

import shutil
from pathlib import Path

import pytest


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    """A SQLAlchemy URL (psycopg driver, superuser) of an empty database, dropped afterwards."""
    return postgres_database.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture
def store_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_store: Path, repo_root: Path
) -> Path:
    """A scratch project (notebooks, lock file, deploy policy) with its own tracking store."""
    from shoprec.tracking.store import local_database

    for name in ("notebooks", "requirements.lock", "policy"):
        (tmp_path / name).symlink_to(repo_root / name)
    monkeypatch.setenv("SHOPREC_PROJECT_DIR", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    local_database().parent.mkdir()
    shutil.copyfile(empty_store, local_database())
    return tmp_path


@pytest.fixture
def fake_run():
    """Writes a finished pipeline run without running notebooks: record, model, evaluation
    (`deployment.make_run`).

    `status` is the evaluation's outcome under the project's deploy policy: passed, failed or
    incomplete (production could not be fetched).
    """
    from deployment import make_run

    from shoprec.policy import decide, load_policy

    def make(project: Path, run_id: str, model, status: str = "passed") -> Path:
        production = (
            {"status": "unavailable", "reason": "store down"}
            if status == "incomplete"
            else {"status": "none"}
        )
        ndcg = {"candidate": 0.3 if status != "failed" else 0.01, "baseline": 0.1}
        evaluation = decide(load_policy(), ndcg, production)
        evaluation["metrics"] = {"candidate": {"ndcg": ndcg["candidate"]}}
        assert evaluation["status"] == status
        record = {
            "evaluation_status": status,
            "parameters": {"03_train": {"algorithm": model.algorithm, "seed": 42}},
        }
        return make_run(project, run_id, model, evaluation=evaluation, record=record)

    return make
