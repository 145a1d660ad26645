"""Re-executing a notebook gives back its committed file, byte for byte.

This is `make execute-notebooks` run a second time on a clean checkout, on whatever machine runs
the tests: formatted, executed headless with papermill, cleaned. Any difference (a timing, a
stream split another way, a machine's Python version) would show in every diff of the notebook.
The Spark notebook is left to nbval, which checks its outputs without starting a second JVM.
"""

import difflib
from pathlib import Path

import pytest

from shoprec.devtools.execute import execute_copy

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
LIBRARY = sorted(
    path for path in (NOTEBOOKS / "lib").glob("*.ipynb") if path.stem != "spark_engine"
)
PIPELINE = sorted(NOTEBOOKS.glob("0*.ipynb"))

pytestmark = pytest.mark.notebook


def assert_reproduces(notebook: Path, executed: Path) -> None:
    committed, again = notebook.read_text(), executed.read_text()
    if committed != again:
        diff = difflib.unified_diff(
            committed.splitlines(), again.splitlines(), "committed", "re-executed", lineterm=""
        )
        pytest.fail(f"{notebook.name} changed when executed again:\n" + "\n".join(list(diff)[:80]))


@pytest.mark.parametrize(
    "notebook",
    # Each in its notebook's nbval group: the two runs share the notebook's folder.
    [
        pytest.param(path, marks=pytest.mark.xdist_group(f"notebook-{path.stem}"))
        for path in LIBRARY
    ],
    ids=lambda path: path.name,
)
def test_a_library_notebook_executes_again_into_its_committed_file(
    notebook: Path, repo_root: Path, tmp_path: Path
) -> None:
    assert_reproduces(notebook, execute_copy(notebook, repo_root, tmp_path))


@pytest.mark.xdist_group("pipeline-notebooks")  # with nbval's run: both write ../runs/notebooks
def test_the_pipeline_notebooks_execute_again_into_their_committed_files(
    repo_root: Path, tmp_path: Path
) -> None:
    for notebook in PIPELINE:  # in order: 04_evaluate reads the model 03_train saved
        assert_reproduces(notebook, execute_copy(notebook, repo_root, tmp_path))
