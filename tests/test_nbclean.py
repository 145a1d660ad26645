"""The notebook clean-up of the pre-commit hook and `shoprec execute`: what it strips and keeps."""

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from shoprec.cli import main
from shoprec.devtools.extract import find_notebooks
from shoprec.devtools.nbclean import clean

LAB_CELL_METADATA = {
    "editable": False,
    "deletable": False,
    "slideshow": {"slide_type": "slide"},
    "collapsed": True,
    "scrolled": True,
    "jupyter": {"source_hidden": True, "outputs_hidden": True},
    "jp-MarkdownHeadingCollapsed": True,
    "execution": {"iopub.status.busy": "2026-12-04T10:00:00.1Z"},
    "papermill": {"duration": 0.5, "status": "completed"},
}


def lab_saved_notebook() -> nbformat.NotebookNode:
    """A notebook as JupyterLab and papermill leave it: their metadata on every cell."""
    parameters = new_code_cell(
        'profile = "smoke"', metadata={"tags": ["parameters"], **LAB_CELL_METADATA}
    )
    parameters.execution_count = 1
    export = new_code_cell(
        "def f():\n    return 1",
        metadata={"tags": ["export:metrics", "nbval-ignore-output"], **LAB_CELL_METADATA},
    )
    export.execution_count = 2
    export.outputs = [new_output("stream", name="stdout", text="hello\n")]
    notebook = new_notebook(
        cells=[
            new_markdown_cell("# Title", metadata={**LAB_CELL_METADATA, "tags": []}),
            parameters,
            export,
        ],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python", "version": "3.11.7"},
            "papermill": {"duration": 12.0},
            "widgets": {"state": {}},
            "toc": {"nav_menu": {}},
        },
    )
    return notebook


def test_lab_and_papermill_metadata_go_and_tags_outputs_counts_and_ids_stay() -> None:
    notebook = lab_saved_notebook()
    ids = [cell.id for cell in notebook.cells]

    cleaned = clean(notebook)

    assert [cell.metadata for cell in cleaned.cells] == [
        {},
        {"tags": ["parameters"]},
        {"tags": ["export:metrics", "nbval-ignore-output"]},
    ]
    assert [cell.id for cell in cleaned.cells] == ids
    assert [cell.get("execution_count") for cell in cleaned.cells] == [None, 1, 2]
    assert cleaned.cells[2].outputs[0]["text"] == "hello\n"
    assert cleaned.metadata == {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    }


def test_the_command_cleans_files_reports_them_and_is_a_fixed_point(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "report.ipynb"
    nbformat.write(lab_saved_notebook(), path)

    assert main(["nbclean", str(path)]) == 1  # changed: a hook that rewrote a file fails
    assert capsys.readouterr().out == f"cleaned {path}\n"
    cleaned = path.read_text()
    assert main(["nbclean", str(path)]) == 0
    assert path.read_text() == cleaned
    assert nbformat.read(path, as_version=4).cells[1].metadata == {"tags": ["parameters"]}


def test_a_file_that_is_not_a_notebook_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.ipynb"
    path.write_text('{"cells": [')

    assert main(["nbclean", str(path)]) == 1
    assert f"{path}: cannot read notebook" in capsys.readouterr().err
    assert path.read_text() == '{"cells": ['


@pytest.mark.parametrize(
    "notebook",
    find_notebooks(Path(__file__).resolve().parents[1] / "notebooks"),
    ids=lambda path: f"{path.parent.name}/{path.name}",
)
def test_every_committed_notebook_is_clean(notebook: Path) -> None:
    text = notebook.read_text(encoding="utf-8")
    assert nbformat.writes(clean(nbformat.reads(text, as_version=4))) + "\n" == text
