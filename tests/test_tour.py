"""The README's tour for a data scientist, taken as they take it, in a scratch git repository.

A new export cell and its example go into a library notebook, then `make extract`, `make
execute-notebook`, the tests, and `git commit` with the project's real pre-commit hooks: the
commit must pass the first time and leave nothing for a second one.
"""

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell
from scratch import git, make, run, scratch_clone

pytestmark = pytest.mark.notebook

NOTEBOOK = "notebooks/lib/popularity.ipynb"
EXPORT_CELL = '''def percent(share: float, digits: int = 1) -> str:
    """`share`, a fraction such as 0.25, as a percentage: "25.0%"."""
    return f"{share:.{digits}%}"
'''
EXAMPLE_CELL = "percent(0.25), percent(1 / 3, digits=2)"


def test_a_new_export_cell_reaches_a_commit_at_the_first_try(
    repo_root: Path, tmp_path: Path
) -> None:
    clone = scratch_clone(repo_root, tmp_path / "shoprec")

    # 1. A new exported function and its example, at the end of a library notebook.
    path = clone / NOTEBOOK
    notebook = nbformat.read(path, as_version=4)
    notebook.cells += [
        new_markdown_cell("## Shares as percentages\n\nReports show shares as percentages."),
        new_code_cell(EXPORT_CELL, metadata={"tags": ["export:formatting"]}),
        new_code_cell(EXAMPLE_CELL),
    ]
    nbformat.write(notebook, path)

    # 2. make extract writes the module; 3. make execute-notebook refreshes the outputs.
    assert "wrote src/shoprec/formatting.py" in make(clone, "extract").stdout
    make(clone, "execute-notebook", f"NB={NOTEBOOK}")
    executed = nbformat.read(path, as_version=4)
    assert executed.cells[-1].outputs[0]["data"]["text/plain"] == "('25.0%', '33.33%')"
    counts = [cell.execution_count for cell in executed.cells if cell.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1))

    # 4. The tests that read the new module: its layer, the export, the lint, the notebook.
    run(
        clone, ".venv/bin/pytest", "-q", "-p", "no:cacheprovider", "tests/test_architecture.py",
        "tests/test_extract.py", "tests/test_nblint.py", "--nbval", "--nbval-current-env",
        "--nbval-sanitize-with", ".nbval-sanitize.cfg", NOTEBOOK,
    )  # fmt: skip

    # 5. The commit, through the real hooks, passes the first time and leaves nothing behind.
    git(clone, "add", "-A")
    commit = git(clone, "commit", "-m", "formatting.percent: shares as percentages", check=False)
    assert commit.returncode == 0, commit.stdout + commit.stderr
    assert git(clone, "status", "--porcelain").stdout == ""
    committed = git(clone, "show", "--name-only", "--format=", "HEAD").stdout.split()
    assert committed == [NOTEBOOK, "src/shoprec/formatting.py"]
