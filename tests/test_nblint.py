"""Tests for the notebook linter: each rule passes clean notebooks and names the faulty cell."""

from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from shoprec.cli import main as cli_main
from shoprec.devtools.nblint import lint_notebook


def main(argv: list[str]) -> int:
    return cli_main(["nblint", *argv])


Write = Callable[..., Path]
PNG_WITH_PATH = "iVBORw0KGgo/home/alice/AKIAIOSFODNN7EXAMPLE/tmp/x=="


def code(
    source: str,
    count: int | None,
    *outputs: nbformat.NotebookNode,
    tags: tuple[str, ...] = (),
) -> nbformat.NotebookNode:
    """A code cell run as number `count`, with outputs and cell tags."""
    metadata = {"tags": list(tags)} if tags else {}
    return new_code_cell(source, execution_count=count, outputs=list(outputs), metadata=metadata)


def stream(text: str) -> nbformat.NotebookNode:
    """A stdout stream output."""
    return new_output("stream", name="stdout", text=text)


def result(count: int, data: dict[str, str]) -> nbformat.NotebookNode:
    """An execute_result output with `data` by MIME type."""
    return new_output("execute_result", data=data, execution_count=count)


def clean_cells() -> list[nbformat.NotebookNode]:
    """Cells of a notebook that passes: run top to bottom, small and clean outputs."""
    return [
        new_markdown_cell("# Train"),
        code('data_dir = "data"\nseed = 0', 1, tags=("parameters",)),
        code("print(data_dir)", 2, stream("data/tmp/events.csv https://example.com/home/x\n")),
        code(
            "plot()",
            3,
            result(3, {"text/plain": "<Figure>", "image/png": PNG_WITH_PATH}),
        ),
        code("config", 4, result(4, {"text/plain": "Config(token=None, password='<redacted>')"})),
        code("", None),
    ]


@pytest.fixture
def write(tmp_path: Path) -> Write:
    """Write a notebook of the given cells to tmp_path and return its path."""

    def write(cells: list[nbformat.NotebookNode], name: str = "nb.ipynb") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(new_notebook(cells=cells), path)
        return path

    return write


def test_clean_notebook_passes(write: Write) -> None:
    assert lint_notebook(write(clean_cells())) == []


def test_missing_parameters_cell(write: Write) -> None:
    cells = clean_cells()
    cells[1].metadata = {}
    path = write(cells)

    assert lint_notebook(path) == [
        f"{path}: no cell tagged 'parameters': tag the cell holding the notebook's parameters "
        "(papermill needs it)"
    ]


def test_two_parameters_cells(write: Write) -> None:
    cells = clean_cells()
    cells[2].metadata = {"tags": ["parameters"]}

    (problem,) = lint_notebook(write(cells))
    assert "cells 2, 3 are tagged 'parameters': expected exactly one" in problem


def test_parameters_tag_on_markdown_cell(write: Write) -> None:
    cells = clean_cells()
    cells[0].metadata = {"tags": ["parameters"]}

    (problem,) = lint_notebook(write(cells))
    assert "cell 1: a markdown cell is tagged 'parameters': tag a code cell" in problem


def test_out_of_order_execution(write: Write) -> None:
    cells = clean_cells()
    cells[2].execution_count, cells[3].execution_count = 3, 2
    path = write(cells)

    assert lint_notebook(path) == [
        f"{path}: cell 4: execution count 2 after 3 in cell 3: expected counts increasing top "
        "to bottom; restart the kernel, run all cells and save"
    ]


def test_first_count_must_be_one(write: Write) -> None:
    cells = clean_cells()
    for offset, cell in enumerate(cells[1:5]):
        cell.execution_count = 7 + offset

    (problem,) = lint_notebook(write(cells))
    assert "cell 2: execution count 7, expected 1 for the first cell" in problem


def test_unexecuted_cell(write: Write) -> None:
    cells = clean_cells()
    cells[3].execution_count = None
    cells[3].outputs = []

    (problem,) = lint_notebook(write(cells))
    assert problem.endswith("cell 4: not executed: expected an execution count; restart the "
                            "kernel, run all cells and save")  # fmt: skip


def test_notebook_never_run(write: Write) -> None:
    cells = [code("x = 1", None, tags=("parameters",)), code("x", None)]
    path = write(cells)

    assert lint_notebook(path) == [
        f"{path}: not executed: no code cell has an execution count; restart the kernel, "
        "run all cells and save"
    ]


def test_error_output(write: Write) -> None:
    cells = clean_cells()
    error = new_output(
        "error", ename="ZeroDivisionError", evalue="division by zero", traceback=["..."]
    )
    cells[2].outputs.append(error)

    (problem,) = lint_notebook(write(cells))
    assert "cell 3: error output ZeroDivisionError: division by zero: expected the notebook" in (
        problem
    )


@pytest.mark.parametrize(
    "text",
    [
        "saved to /home/alice/shoprec/model.npz",
        "/Users/bob/data.csv",
        "wrote /tmp/tmpa1b2/run.json",
        "reading '/work/main/data/events.csv'",
        "cache in /root/.cache/shoprec",
        r"C:\Users\bob\data.csv",
        r"'C:\\Users\\bob\\data.csv'",
    ],
)
def test_absolute_path_in_stream_output(write: Write, text: str) -> None:
    cells = clean_cells()
    cells[2].outputs = [stream(text)]

    (problem,) = lint_notebook(write(cells))
    assert "cell 3: output shows absolute path " in problem
    assert "expected paths relative to the repo" in problem


def test_absolute_path_in_html_output(write: Write) -> None:
    cells = clean_cells()
    cells[3].outputs = [result(3, {"text/html": '<a href="/home/alice/report.html">report</a>'})]

    (problem,) = lint_notebook(write(cells))
    assert "cell 4: output shows absolute path '/home/alice/report.html'" in problem


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("key AKIAIOSFODNN7EXAMPLE", "an AWS access key id"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow", "a private key"),
        ("-----BEGIN PRIVATE KEY-----", "a private key"),
        ("ghp_" + "a1B2" * 9, "a GitHub token"),
        ("https://api.example.com/?token=s3cr3tvalue", "a token, password or API key"),
        ("Config(password='s3cr3tvalue')", "a token, password or API key"),
        ("api_key = s3cr3tvalue", "a token, password or API key"),
    ],
)
def test_secret_in_output_is_reported_without_its_value(write: Write, text: str, kind: str) -> None:
    cells = clean_cells()
    cells[2].outputs = [stream(text)]

    (problem,) = lint_notebook(write(cells))
    assert f"cell 3: output contains what looks like {kind}: expected no secrets" in problem
    assert "s3cr3t" not in problem and "AKIA" not in problem and "ghp_" not in problem


@pytest.mark.parametrize(
    "text", ["max_tokens=5", "token=None", "password=<redacted>", "api_key=${API_KEY}"]
)
def test_harmless_assignments_are_not_secrets(write: Write, text: str) -> None:
    cells = clean_cells()
    cells[2].outputs = [stream(text)]

    assert lint_notebook(write(cells)) == []


def test_oversized_single_output(write: Write) -> None:
    cells = clean_cells()
    cells[3].outputs = [result(3, {"text/plain": "x" * 1_100_000})]

    (problem,) = lint_notebook(write(cells))
    assert "cell 4: output 1 is 1.1 MB, over the 1.0 MB limit for one output" in problem


def test_oversized_notebook_names_largest_cell(write: Write) -> None:
    cells = clean_cells()
    cells[2].outputs = [stream("x" * 700_000)]
    cells[3].outputs = [result(3, {"text/plain": "y" * 900_000})]
    cells[4].outputs = [stream("z" * 800_000)]
    path = write(cells)

    (problem,) = lint_notebook(path)
    assert problem.startswith(f"{path}: outputs total 2.4 MB, over the 2.0 MB limit per notebook")
    assert "cell 4 has the largest outputs (900.1 kB): shrink or clear them" in problem


def test_output_limits_can_be_set(write: Write) -> None:
    path = write(clean_cells())

    problems = lint_notebook(path, max_output_bytes=200, max_single_output_bytes=100)

    assert any("over the 100 bytes limit for one output" in p for p in problems)
    assert any("over the 200 bytes limit per notebook" in p for p in problems)


def test_unreadable_notebook_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "broken.ipynb"
    path.write_text("{not json")

    (problem,) = lint_notebook(path)
    assert problem.startswith(f"{path}: cannot read notebook")


def test_main_lints_notebooks_dir_by_default(
    tmp_path: Path,
    write: Write,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write(clean_cells(), "notebooks/good.ipynb")
    write([code("x = 1", 5)], "notebooks/.ipynb_checkpoints/stale-checkpoint.ipynb")
    write([code("x = 1", 2)], "notebooks/lib/bad.ipynb")
    monkeypatch.chdir(tmp_path)

    assert main([]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "notebooks/lib/bad.ipynb: no cell tagged 'parameters': tag the cell holding the "
        "notebook's parameters (papermill needs it)",
        "notebooks/lib/bad.ipynb: cell 1: execution count 2, expected 1 for the first cell; "
        "restart the kernel, run all cells and save",
    ]


def test_main_passes_clean_files_and_rejects_missing_ones(
    tmp_path: Path, write: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write(clean_cells())

    assert main([str(good)]) == 0
    assert main([str(good), str(tmp_path / "nope.ipynb")]) == 1
    assert "nope.ipynb: no such file or directory" in capsys.readouterr().err


def test_registered_subcommand_runs(write: Write) -> None:
    good = write(clean_cells())
    assert main([str(good), "--max-output-bytes", "100"]) == 1


def library_cells(*body: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    """A library notebook's cells: a parameters cell, then `body` renumbered from 2."""
    cells = [code("seed = 0", 1, tags=("parameters",)), *body]
    count = 1
    for cell in cells[1:]:
        if cell.cell_type == "code":
            count += 1
            cell.execution_count = count
    return cells


def export(source: str) -> nbformat.NotebookNode:
    """A code cell exported to module `things`."""
    return code(source, None, tags=("export:things",))


def test_literate_library_notebook_passes(write: Write) -> None:
    cells = library_cells(
        export("def one() -> int:\n    return 1\n" + "\n" * 56 + "ONE = 1"),  # 60 lines
        code("one()", None),
        new_markdown_cell("## Two"),
        export("def two() -> int:\n    return 2"),
        new_markdown_cell("Two, shown:"),
        code("two()", None),
    )
    assert lint_notebook(write(cells, "notebooks/lib/things.ipynb")) == []


def test_long_exported_cell_is_reported(write: Write) -> None:
    cells = library_cells(
        export("def one() -> int:\n    return 1"),
        code("one()", None),
        export("\n".join(f"X{n} = {n}" for n in range(61))),
        code("X0", None),
    )

    (problem,) = lint_notebook(write(cells, "notebooks/lib/things.ipynb"))
    assert "things.ipynb: cell 4: exported cell has 61 lines, over the 60-line limit" in problem
    assert "split it" in problem


@pytest.mark.parametrize(
    ("after", "cell"),
    [
        ([], 2),  # the last cell of the notebook
        ([new_markdown_cell("More:"), export("X = 1"), code("X", None)], 2),  # the next export
        ([code("", None), export("X = 1"), code("X", None)], 2),  # an empty cell is no example
    ],
)
def test_exported_cell_without_example_is_reported(
    write: Write, after: list[nbformat.NotebookNode], cell: int
) -> None:
    cells = library_cells(export("def one() -> int:\n    return 1"), *after)
    path = write(cells, "notebooks/lib/things.ipynb")
    assert lint_notebook(path) == [
        f"{path}: cell {cell}: exported cell is not followed by an "
        "example: expected a code cell that is not exported, showing it works, before the next "
        "exported cell (markdown between is fine)"
    ]


def test_literate_rule_is_for_library_notebooks_only(write: Write) -> None:
    cells = library_cells(export("\n".join(f"X{n} = {n}" for n in range(61))))
    assert lint_notebook(write(cells, "notebooks/things.ipynb")) == []
    assert len(lint_notebook(write(cells, "notebooks/lib/things.ipynb"))) == 2
