"""A scratch clone of the checkout, as a new teammate has it after `make setup`, and the
commands they type in it (`git`, `make`, anything else) with none of the tests' settings."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def scratch_clone(repo_root: Path, directory: Path) -> Path:
    """A new git repository holding the checkout's tracked files as they are now (uncommitted
    edits included), one commit, with the checkout's .venv and its pre-commit hooks installed
    as `make setup` installs them."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo_root,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source, target = repo_root / name, directory / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    (directory / ".venv").symlink_to(repo_root / ".venv")
    for name in ("requirements.lock", "pyproject.toml"):  # older than the .venv's stamp, so a
        os.utime(directory / name, (0, 0))  # recursive make never reinstalls the shared .venv
    git(directory, "init", "-q", "-b", "main")
    git(directory, "add", "-A")
    git(directory, "commit", "-q", "--no-verify", "-m", "the project as cloned")
    run(directory, ".venv/bin/pre-commit", "install")
    return directory


def git(directory: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    identity = ["-c", "user.name=Dana Scientist", "-c", "user.email=dana@example.com"]
    return run(directory, "git", *identity, *args, check=check)


def run(
    directory: Path, *command: str, check: bool = True, **env: str
) -> subprocess.CompletedProcess:
    """Run `command` in the scratch repository, its package first on the path, as a user's
    shell would (no test settings leak in; `env`: what the user has set)."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SHOPREC_", "PYTEST_", "MLFLOW_", "GIT_"))
    }
    environment["PYTHONPATH"] = str(directory / "src")  # the clone's package, not the checkout's
    environment.update(env)
    result = subprocess.run(
        list(command), cwd=directory, env=environment, capture_output=True, text=True, timeout=600
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}{result.stderr}"
        )
    return result


def make(directory: Path, *targets: str, **env: str) -> subprocess.CompletedProcess:
    """`make TARGET` as after `make setup` (the shared .venv is not rebuilt for the copy)."""
    return run(
        directory, "make", "--no-print-directory", "-o", ".venv/bin/.shoprec-installed", *targets,
        **env,
    )  # fmt: skip
