"""What changed from base to head: notebook parameters (as each run resolved them), the model
trained (algorithm and hyperparameters, tuned ones included), notebooks (each with an nbdime diff
page), package modules and the lock file's packages."""

import json
from pathlib import Path
from typing import Any

import nbformat

from shoprec.devtools.nbdiff_html import write_diff_page
from shoprec.report import git
from shoprec.report.cache import SIDE_RECORD
from shoprec.report.environments import pins
from shoprec.tracking import compare, results
from shoprec.tracking.provenance import LOCK_FILE

PACKAGE = "src/shoprec"
DIFF_PAGES = Path("notebook-diffs")
STATUS = {"A": "added", "M": "modified", "D": "deleted", "T": "type changed"}


def changed(
    repo: Path,
    base: str,
    head: str,
    runs: tuple[Path, Path],
    trainings: tuple[dict[str, Any], dict[str, Any]],
    out: Path,
) -> dict[str, Any]:
    """Everything that changed, as report.json's `changed`, from both sides' commits, run folders
    and training records; diff pages are written under `out`."""
    paths = git.changed_paths(repo, base, head)
    return {
        "parameters": parameters(*runs),
        "model": model(*trainings),
        "notebooks": notebooks(repo, base, head, paths, out),
        "modules": modules(repo, base, head, paths),
        "lock": lock(repo, base, head),
        "other_files": sorted(
            path
            for _, path in paths
            if not path.endswith(".ipynb")
            and not path.startswith(f"{PACKAGE}/")
            and path != LOCK_FILE
        ),
    }


def parameters(base_run: Path, head_run: Path) -> list[dict[str, Any]]:
    """Each notebook parameter whose resolved value differs between the two runs (paths inside a
    run written `<run>/...`, as `shoprec runs compare` shows them)."""
    found = compare.compare(_parameters(base_run), _parameters(head_run))
    rows = []
    for item in found.differences:
        notebook, _, name = item.name.partition(".")
        rows.append(
            {
                "notebook": notebook,
                "name": name,
                "base": None if item.before is compare.ABSENT else item.before,
                "head": None if item.after is compare.ABSENT else item.after,
                "in_base": item.before is not compare.ABSENT,
                "in_head": item.after is not compare.ABSENT,
            }
        )
    return rows


def model(base_training: dict[str, Any], head_training: dict[str, Any]) -> dict[str, Any]:
    """The algorithm each side trained, and each hyperparameter whose value differs (as
    03_train recorded them: tuned, given or defaults)."""
    before = base_training.get("hyperparameters", {})
    after = head_training.get("hyperparameters", {})
    return {
        "algorithm": {
            "base": base_training.get("algorithm"),
            "head": head_training.get("algorithm"),
        },
        "hyperparameters": [
            {"name": name, "base": before.get(name), "head": after.get(name)}
            for name in sorted(set(before) | set(after))
            if before.get(name) != after.get(name)
        ],
    }


def notebooks(
    repo: Path, base: str, head: str, paths: list[tuple[str, str]], out: Path
) -> list[dict[str, Any]]:
    """Each changed notebook, with the nbdime diff page written for it under `out`."""
    rows = []
    for status, path in paths:
        if not path.endswith(".ipynb"):
            continue
        page = DIFF_PAGES / path.replace("/", "__")
        before, after = _notebook(repo, base, path), _notebook(repo, head, path)
        write_diff_page(before, after, out / page, title=f"{path}: base → head")
        rows.append(
            {
                "path": path,
                "status": STATUS.get(status, status),
                "diff_page": str(page / "index.html"),
            }
        )
    return rows


def modules(repo: Path, base: str, head: str, paths: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Each changed file of the package, with lines added and deleted."""
    counts = git.line_counts(repo, base, head, PACKAGE)
    return [
        {
            "path": path,
            "status": STATUS.get(status, status),
            "added": counts.get(path, (0, 0))[0],
            "deleted": counts.get(path, (0, 0))[1],
        }
        for status, path in paths
        if path.startswith(f"{PACKAGE}/")
    ]


def lock(repo: Path, base: str, head: str) -> dict[str, Any]:
    """Whether the lock file changed, and each package whose pinned version did."""
    before = (git.show(repo, base, LOCK_FILE) or b"").decode()
    after = (git.show(repo, head, LOCK_FILE) or b"").decode()
    old, new = pins(before.encode()), pins(after.encode())
    packages = [
        {"name": name, "base": old.get(name), "head": new.get(name)}
        for name in sorted(set(old) | set(new), key=str.lower)
        if old.get(name) != new.get(name)
    ]
    return {"changed": before != after, "packages": packages}


def _notebook(repo: Path, commit: str, path: str) -> nbformat.NotebookNode:
    """The notebook at `path` in `commit`; an empty notebook where it does not exist."""
    text = git.show(repo, commit, path)
    if text is None:
        return nbformat.v4.new_notebook()
    return nbformat.reads(text.decode(), as_version=4)


def _parameters(side: Path) -> dict[str, Any]:
    """A side's resolved parameters by `<notebook>.<name>`, with the run folder it ran in (in
    its worktree, since removed) written as `<run>`."""
    where = json.loads((side / SIDE_RECORD).read_text())["run_dir"]
    flat = {}
    for key, value in results.parameters(side).items():
        if isinstance(value, str) and (value == where or value.startswith(where + "/")):
            value = results.RUN_DIR_PLACEHOLDER + value[len(where) :]
        flat[key] = value
    return flat
