"""The Python each side runs in: the current one when it holds exactly the packages the side's
lock file pins (the lock it was built from is the side's), else a virtual environment built from
the side's own lock file with uv, kept by the lock's hash; and an empty tracking store made by
that Python's MLflow, copied into each side's worktree (creating MLflow's tables takes seconds).

The current environment is judged by what is installed, not by which lock file sits in the
project: a `.venv` not synced since the lock changed, or another checkout's environment, does
not pass for the side's."""

import fcntl
import hashlib
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import canonicalize_name
from packaging.version import Version

from shoprec.report.errors import SideFailed
from shoprec.tracking.provenance import LOCK_FILE

BUILT = ".shoprec-report-built"  # written last: a venv without it is rebuilt
# Installed beside a lock's packages by `make setup` and by build_venv: not part of any lock.
NOT_LOCKED = frozenset({"shoprec", "pip", "setuptools", "wheel", "uv"})
# A pinned requirement line of a lock file: name (extras), version, then an optional marker.
PIN = re.compile(
    r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)[ \t]*(?:;([^\\\n]*))?",
    re.MULTILINE,
)


@dataclass(frozen=True)
class Environment:
    """A Python interpreter a side's pipeline runs with, and where it came from."""

    python: Path
    description: str


def lock_sha256(lock: bytes) -> str:
    """The hash a lock file is known by (as the run records' `lock_sha256`)."""
    return hashlib.sha256(lock).hexdigest()


def pins(lock: bytes) -> dict[str, str]:
    """Each package a lock file pins for this platform, by normalised name, and its version."""
    found = {}
    for match in PIN.finditer(lock.decode()):
        name, version, marker = match.groups()
        if marker and not Marker(marker.strip()).evaluate():
            continue
        found[canonicalize_name(name)] = version
    return found


def mismatches(lock: bytes) -> list[str]:
    """How the current environment differs from what `lock` pins (empty: it is that lock's):
    a package missing or at another version, or one the lock does not have (an optional import
    can change what code does), the installers and shoprec itself aside."""
    installed = {
        canonicalize_name(dist.metadata["Name"]): dist.version
        for dist in metadata.distributions()
        if dist.metadata["Name"]
    }
    wanted = pins(lock)
    found = []
    for name, version in sorted(wanted.items()):
        if name not in installed:
            found.append(f"{name} {version} (not installed)")
        elif Version(installed[name]) != Version(version):
            found.append(f"{name} {version} (installed: {installed[name]})")
    found += [
        f"no {name} (installed: {installed[name]})"
        for name in sorted(set(installed) - set(wanted) - NOT_LOCKED)
    ]
    return found


def environment_for(lock: bytes, venvs: Path) -> Environment:
    """The current interpreter if it holds exactly what `lock` pins, else a venv built from
    `lock` under `venvs` (once per lock hash; later calls reuse it)."""
    differences = mismatches(lock)
    if not differences:
        return Environment(Path(sys.executable), "the current environment (its lock file's)")
    sha = lock_sha256(lock)
    shown = ", ".join(differences[:3]) + (
        f" and {len(differences) - 3} more" if len(differences) > 3 else ""
    )
    return Environment(
        build_venv(lock, venvs / sha[:16]),
        f"a venv built from its {LOCK_FILE} ({sha[:12]}; the current environment differs: {shown})",
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
