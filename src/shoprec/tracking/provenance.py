"""What a run was made with: code version, lock file, packages, Python and platform."""

import hashlib
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from shoprec.checksums import file_sha256

LOCK_FILE = "requirements.lock"


def _git(root: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    return result.stdout if result.returncode == 0 else None


def git_commit(root: Path) -> str | None:
    """The commit checked out in `root`, or None outside a git work tree."""
    out = _git(root, "rev-parse", "HEAD")
    return out.strip() or None if out else None


def git_dirty(root: Path) -> bool | None:
    """Whether tracked files in `root` differ from the commit; None outside a git work tree."""
    out = _git(root, "status", "--porcelain", "--untracked-files=no")
    return None if out is None else bool(out.strip())


def installed_packages() -> dict[str, str]:
    """Every installed distribution and its version, by normalised name."""
    packages = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            packages[name.lower().replace("_", "-")] = dist.version
    return dict(sorted(packages.items()))


def packages_sha256(packages: dict[str, str]) -> str:
    """A content hash of a package list."""
    return hashlib.sha256(json.dumps(packages, sort_keys=True).encode()).hexdigest()


def environment(root: Path, packages: dict[str, str]) -> dict[str, Any]:
    """The provenance fields a run record keeps (see `differences`)."""
    return {
        "git_commit": git_commit(root),
        "git_dirty": git_dirty(root),
        "lock_sha256": file_sha256(lock) if (lock := root / LOCK_FILE).is_file() else None,
        "packages_sha256": packages_sha256(packages),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def differences(
    recorded: dict[str, Any],
    now: dict[str, Any],
    recorded_packages: dict[str, str] | None,
    packages: dict[str, str],
) -> list[str]:
    """One line per way the current code, lock file, packages or platform differ from a record."""
    lines = []
    if recorded.get("git_commit") != now["git_commit"]:
        lines.append(
            f"code differs: run made at commit {recorded.get('git_commit')}, "
            f"now at {now['git_commit']}"
        )
    if recorded.get("git_dirty"):
        lines.append("code differs: the run was made from a work tree with uncommitted changes")
    if now["git_dirty"]:
        lines.append("code differs: the work tree has uncommitted changes now")
    if recorded.get("lock_sha256") != now["lock_sha256"]:
        lines.append(f"packages differ: {LOCK_FILE} changed since the run")
    if recorded_packages is not None and recorded_packages != packages:
        changed = sorted(
            name
            for name in set(recorded_packages) | set(packages)
            if recorded_packages.get(name) != packages.get(name)
        )
        shown = ", ".join(
            f"{name} {recorded_packages.get(name, '-')} -> {packages.get(name, '-')}"
            for name in changed[:10]
        )
        more = f" and {len(changed) - 10} more" if len(changed) > 10 else ""
        lines.append(f"packages differ: {shown}{more}")
    for field in ("python", "platform"):
        if recorded.get(field) != now[field]:
            lines.append(f"{field} differs: {recorded.get(field)} -> {now[field]}")
    return lines
