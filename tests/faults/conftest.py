"""Fixtures for the fault-injection suite: a real PostgreSQL server, a scratch project, a store.

`postgres_url` starts Debian's PostgreSQL 15 once per session (initdb + pg_ctl as an
unprivileged user, since pg_ctl refuses root). Without the binaries the tests that need it are
skipped, except under CI, where a missing server is a failure.
"""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_BIN = Path(os.environ.get("SHOPREC_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "postgres"  # the unprivileged account Debian's package creates
SUPERUSER_PASSWORD = "fixture-superuser"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", PG_USER, "--", *command]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A SQLAlchemy URL of a real PostgreSQL server's superuser (password auth over TCP)."""
    if not (PG_BIN / "pg_ctl").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL binaries not found in {PG_BIN}; CI must install them")
        pytest.skip(f"PostgreSQL binaries not found in {PG_BIN}")
    root = Path(tempfile.mkdtemp(prefix="shoprec-pg-"))
    data, port = root / "data", _free_port()
    password_file = root / "password"
    password_file.write_text(SUPERUSER_PASSWORD + "\n")
    if os.geteuid() == 0:
        account = pwd.getpwnam(PG_USER)
        for path in (root, password_file):
            os.chown(path, account.pw_uid, account.pw_gid)
    run = {"check": True, "capture_output": True, "text": True, "timeout": 120}
    subprocess.run(
        _as_server_user(
            [
                str(PG_BIN / "initdb"),
                "-D", str(data), "-U", "postgres", "--pwfile", str(password_file),
                "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync",
            ]
        ),
        **run,
    )  # fmt: skip
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_server_user(
            [str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"),
             "-w", "start"]
        ),
        **run,
    )  # fmt: skip
    try:
        yield f"postgresql+psycopg://postgres:{SUPERUSER_PASSWORD}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_server_user([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
            capture_output=True,
            timeout=120,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)


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
    """Writes a finished pipeline run without running notebooks: record, model, evaluation.

    `status` is the evaluation's outcome under the project's deploy policy: passed, failed or
    incomplete (production could not be fetched).
    """
    import json

    from shoprec.artifact import save_model
    from shoprec.policy import decide, load_policy

    def make(project: Path, run_id: str, model, status: str = "passed") -> Path:
        run_dir = project / "runs" / run_id
        save_model(model, run_dir / "03_train" / "model", {"run_id": run_id})
        production = (
            {"status": "unavailable", "reason": "store down"}
            if status == "incomplete"
            else {"status": "none"}
        )
        ndcg = {"candidate": 0.3 if status != "failed" else 0.01, "baseline": 0.1}
        evaluation = decide(load_policy(), ndcg, production)
        evaluation["metrics"] = {"candidate": {"ndcg": ndcg["candidate"]}}
        assert evaluation["status"] == status
        (run_dir / "04_evaluate").mkdir()
        (run_dir / "04_evaluate" / "evaluation.json").write_text(json.dumps(evaluation))
        record = {
            "run_id": run_id,
            "status": "succeeded",
            "evaluation_passed": evaluation["passed"],
            "evaluation_status": status,
            "parameters": {"03_train": {"algorithm": model.algorithm, "seed": 42}},
        }
        (run_dir / "run.json").write_text(json.dumps(record))
        return run_dir

    return make
