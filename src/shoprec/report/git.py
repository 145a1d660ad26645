"""The git operations a report needs: resolve refs, read files at commits, worktrees, diffs."""

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shoprec.report.errors import ReportError

SHORT = 10  # characters of a commit id shown in names and folders


def git(repo: Path, *args: str) -> str:
    """Run `git args` in `repo` and return its output; a failure names the command."""
    result = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
    if result.returncode:
        lines = result.stderr.strip().splitlines() or [f"exit code {result.returncode}"]
        raise ReportError(f"git {' '.join(args)} in {repo}: {lines[0]}")
    return result.stdout


def repository_root(path: Path) -> Path:
    """The top of the git work tree holding `path`."""
    result = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"], cwd=path, capture_output=True, text=True
    )
    if result.returncode:
        raise ReportError(
            f"{path} is not in a git repository: shoprec report compares two commits of one"
        )
    return Path(result.stdout.strip())


def resolve_commit(repo: Path, ref: str, option: str) -> str:
    """The full id of the commit `ref` names; `option` (e.g. `--base`) is named in the error."""
    result = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    if result.returncode or not ref:
        raise ReportError(
            f"{option} {ref!r}: no such commit in {repo} (a branch, tag or commit id; for a "
            "branch of a remote, `git fetch` it first and give origin/NAME)"
        )
    return result.stdout.strip()


def short(commit: str) -> str:
    """A commit id as shown: its first characters."""
    return commit[:SHORT]


def uncommitted_paths(repo: Path) -> list[str]:
    """Tracked files whose content in the work tree differs from HEAD (staged or not)."""
    out = git(repo, "diff", "--name-only", "--no-renames", "-z", "HEAD")
    return sorted(path for path in out.split("\0") if path)


def show(repo: Path, commit: str, path: str) -> bytes | None:
    """The content of `path` at `commit`, or None if the commit has no such file."""
    result = subprocess.run(
        ["git", "show", f"{commit}:{path}"], cwd=repo, capture_output=True, check=False
    )
    return result.stdout if result.returncode == 0 else None


def changed_paths(repo: Path, base: str, head: str, *pathspecs: str) -> list[tuple[str, str]]:
    """(status, path) of every path that differs between two commits: A, M or D (renames are a
    deletion and an addition)."""
    out = git(repo, "diff", "--name-status", "--no-renames", "-z", base, head, "--", *pathspecs)
    fields = out.split("\0")[:-1]
    return list(zip(fields[0::2], fields[1::2], strict=True))


def line_counts(repo: Path, base: str, head: str, *pathspecs: str) -> dict[str, tuple[int, int]]:
    """Lines added and deleted per changed text file between two commits."""
    out = git(repo, "diff", "--numstat", "--no-renames", "-z", base, head, "--", *pathspecs)
    counts = {}
    for entry in out.split("\0"):
        added, deleted, path = (entry.split("\t", 2) + ["", "", ""])[:3]
        if path and added.isdigit() and deleted.isdigit():
            counts[path] = (int(added), int(deleted))
    return counts


@contextmanager
def worktree(repo: Path, commit: str, path: Path) -> Iterator[Path]:
    """A detached git worktree of `commit` at `path`, removed (with what ran in it) afterwards."""
    git(repo, "worktree", "add", "--detach", "--quiet", str(path), commit)
    try:
        yield path
    finally:
        removed = subprocess.run(
            ["git", "worktree", "remove", "--force", str(path)], cwd=repo, capture_output=True
        )
        shutil.rmtree(path, ignore_errors=True)
        if removed.returncode:  # its folder went first: drop git's record of it
            subprocess.run(["git", "worktree", "prune"], cwd=repo, capture_output=True)
