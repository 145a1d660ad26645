"""The Python each side runs in: the current one when its lock file equals the project's, else
a virtual environment built from the side's own lock file with uv, kept by the lock's hash; and
an empty tracking store made by that Python's MLflow, copied into each side's worktree (creating
MLflow's tables takes seconds)."""

import fcntl
import hashlib
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from shoprec.checksums import file_sha256
from shoprec.report.errors import SideFailed
from shoprec.tracking.provenance import LOCK_FILE

BUILT = ".shoprec-report-built"  # written last: a venv without it is rebuilt


@dataclass(frozen=True)
class Environment:
    """A Python interpreter a side's pipeline runs with, and where it came from."""

    python: Path
    description: str


def lock_sha256(lock: bytes) -> str:
    """The hash a lock file is known by (as the run records' `lock_sha256`)."""
    return hashlib.sha256(lock).hexdigest()


def current_lock_sha256(project: Path) -> str | None:
    """The hash of the lock file the current environment was built from (the project's)."""
    lock = project / LOCK_FILE
    return file_sha256(lock) if lock.is_file() else None


def environment_for(lock: bytes, current_lock: str | None, venvs: Path) -> Environment:
    """The current interpreter if `lock` is the current one's lock file, else a venv built from
    `lock` under `venvs` (once per lock hash; later calls reuse it)."""
    sha = lock_sha256(lock)
    if sha == current_lock:
        return Environment(Path(sys.executable), "the current environment (same lock file)")
    return Environment(
        build_venv(lock, venvs / sha[:16]), f"a venv built from its {LOCK_FILE} ({sha[:12]})"
    )


def build_venv(lock: bytes, directory: Path) -> Path:
    """A venv at `directory` holding exactly the packages of `lock` (uv); its Python.

    Built once: a complete venv is reused; concurrent callers wait for one another.
    """
    python = directory / "bin" / "python"
    with _exclusive(directory):
        if (directory / BUILT).is_file():
            return python
        requirements = directory.parent / f"{directory.name}-{LOCK_FILE}"
        requirements.write_bytes(lock)
        uv = [sys.executable, "-m", "uv"]
        for step in (
            [*uv, "venv", "--quiet", "--clear", "--python", sys.executable, str(directory)],
            [*uv, "pip", "sync", "--quiet", "--python", str(python), str(requirements)],
        ):
            result = subprocess.run(step, capture_output=True, text=True)
            if result.returncode:
                tail = " | ".join(result.stderr.strip().splitlines()[-5:])
                raise SideFailed(
                    f"building a venv from {requirements} failed ({' '.join(step[1:4])}): {tail}"
                )
        (directory / BUILT).write_text(lock_sha256(lock) + "\n")
    return python


def empty_tracking_store(environment: Environment, lock: bytes, stores: Path) -> Path:
    """An MLflow database with its tables and nothing else, made once per lock file by the
    environment's own MLflow; copy it to give a side's project an empty store."""
    database = stores / f"{lock_sha256(lock)[:16]}.db"
    with _exclusive(database):
        if not database.is_file():
            staging = database.with_suffix(".partial")
            staging.unlink(missing_ok=True)
            make = (
                "import sys\n"
                "from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore\n"
                "SqlAlchemyStore('sqlite:///' + sys.argv[1], sys.argv[2])\n"
            )
            result = subprocess.run(
                [str(environment.python), "-c", make, str(staging), str(stores / "artifacts")],
                capture_output=True,
                text=True,
            )
            if result.returncode:
                tail = " | ".join(result.stderr.strip().splitlines()[-3:])
                raise SideFailed(
                    f"making an empty tracking store with {environment.python}: {tail}"
                )
            staging.rename(database)
    return database


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path`'s lock file while building it (other reports wait)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with (path.parent / f"{path.name}.lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        yield
