"""Issue 11, fault 3: a database password given in a URL was written in clear to run.json, the
executed notebook's injected-parameters cell, and MLflow params and artifacts.

The canary tests run the pipeline with a password in the URL and grep every file the run wrote,
and the tracking store (database and artifacts), for it.
"""

import json
import socket
from pathlib import Path

import pytest
import sqlalchemy

from shoprec.redact import (
    DATABASE_PASSWORD_VARIABLE,
    MASK,
    RedactingFilter,
    SecretError,
    redact,
    split_secrets,
)

pytestmark = pytest.mark.faults


def test_redact_masks_url_credentials_and_secret_names() -> None:
    given = {
        "dataset_options": {
            "url": "postgresql://alice:S3cretPw@db.example:5432/shop?sslpassword=xyz&x=1",
            "query": "select 1",
            "api_key": "k-123",
        },
        "k": 10,
        "path": "https://example.org/data.csv",
    }
    masked = redact(given)
    assert masked["dataset_options"]["url"] == (
        f"postgresql://alice:{MASK}@db.example:5432/shop?sslpassword={MASK}&x=1"
    )
    assert masked["dataset_options"]["api_key"] == MASK
    assert masked["k"] == 10 and masked["path"] == given["path"]
    plan, environment = split_secrets(given)
    assert environment == {DATABASE_PASSWORD_VARIABLE: "S3cretPw"}
    assert "S3cretPw" not in json.dumps(plan)
    with pytest.raises(SecretError, match="different passwords"):
        split_secrets({"a": "postgresql://a:one@h/d", "b": "postgresql://b:two@h/d"})


def test_log_filter_masks_secrets() -> None:
    import logging

    record = logging.LogRecord(
        "x", logging.INFO, "f", 1, "url %s pw %s", ("p://u:pw1@h", "pw2"), None
    )
    RedactingFilter(["pw2"]).filter(record)
    assert record.getMessage() == f"url p://u:{MASK}@h pw {MASK}"


def _files_holding(root: Path, canary: bytes) -> list[str]:
    return [
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink() and canary in path.read_bytes()
    ]


def _assert_nowhere(project: Path, canary: str, *outputs: str) -> None:
    written = list((project / "runs").rglob("*")) + list((project / ".shoprec").rglob("*"))
    assert any(path.name == "run.json" for path in written)
    assert any(path.name == "mlflow.db" for path in written), "the run was not tracked"
    assert _files_holding(project, canary.encode()) == []
    for output in outputs:
        assert canary not in output


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.notebook
def test_canary_password_of_a_failing_run_is_stored_nowhere(project: Path, shoprec) -> None:
    canary = "Canary-Fails-7f3a9"
    url = f"postgresql://alice:{canary}@127.0.0.1:{_closed_port()}/shop"
    options = json.dumps({"url": url, "query": "select * from orders"})
    result = shoprec(
        "pipeline", "--profile", "smoke", "--dataset", "sql", "--quiet",
        "-p", f"dataset_options={options}",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "notebook 01_explore_data.ipynb failed" in result.stderr
    run_dir = next(path for path in (project / "runs").iterdir() if path.name.startswith("20"))
    record = json.loads((run_dir / "run.json").read_text())
    assert record["overrides"]["dataset_options"]["url"] == url.replace(canary, MASK)
    _assert_nowhere(project, canary, result.stdout, result.stderr)


@pytest.mark.notebook
@pytest.mark.postgres
def test_canary_password_of_a_postgres_run_is_stored_nowhere(
    project: Path, shoprec, postgres_url: str, smoke_data
) -> None:
    canary = "Canary-Pg-5e1b2"
    engine = sqlalchemy.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("drop table if exists shop_events")
        connection.exec_driver_sql("drop role if exists alice")
        connection.exec_driver_sql(f"create role alice login password '{canary}'")
        smoke_data.interactions.to_sql("shop_events", connection, index=False)
        connection.exec_driver_sql("grant select on shop_events to alice")
    engine.dispose()
    server = sqlalchemy.make_url(postgres_url)
    url = f"postgresql://alice:{canary}@{server.host}:{server.port}/{server.database}"
    options = json.dumps(
        {"url": url, "query": "select user_id, item_id, weight, timestamp from shop_events"}
    )
    result = shoprec(
        "pipeline", "--profile", "smoke", "--dataset", "sql", "--quiet",
        "-p", f"dataset_options={options}", "-p", "algorithm=popularity",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    run_dir = (project / "runs" / "latest").resolve()
    executed = (run_dir / "notebooks" / "01_explore_data.ipynb").read_text()
    assert url.replace(canary, MASK) in executed  # the injected cell shows the masked URL
    training = json.loads((run_dir / "03_train" / "model" / "model.json").read_text())
    assert MASK in training["metadata"]["training"]["dataset_options"]["url"]
    _assert_nowhere(project, canary, result.stdout, result.stderr)
