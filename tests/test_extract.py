"""Tests for the notebook exporter: generated text, writing, checking and its errors."""

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from shoprec.cli import main as cli_main
from shoprec.devtools.extract import (
    Chunk,
    ExportError,
    NotebookReadError,
    check,
    collect_exports,
    extract,
)


def main(argv: list[str]) -> int:
    return cli_main(["extract", *argv])


HEADER = "# Generated from notebooks/lib/metrics.ipynb: edit the notebook, not this file."
METRICS = Path("src/shoprec/metrics.py")


def code(source: str, *tags: str) -> nbformat.NotebookNode:
    """A code cell with `source` and cell tags."""
    return new_code_cell(source, metadata={"tags": list(tags)} if tags else {})


def write_notebook(path: Path, *cells: nbformat.NotebookNode) -> Path:
    """Write a notebook of `cells` to `path`, creating its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=list(cells)), path)
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repo with the shoprec package, a models subpackage and an empty notebooks/lib."""
    for package in ("src/shoprec", "src/shoprec/models"):
        (tmp_path / package).mkdir(parents=True)
        (tmp_path / package / "__init__.py").write_text('"""Package."""\n')
    (tmp_path / "notebooks" / "lib").mkdir(parents=True)
    return tmp_path


@pytest.fixture
def metrics_notebook(repo: Path) -> Path:
    """notebooks/lib/metrics.ipynb exporting cells 2 and 4 (of 5) to shoprec.metrics."""
    return write_notebook(
        repo / "notebooks/lib/metrics.ipynb",
        new_markdown_cell("# Metrics"),
        code("import numpy as np\n\n", "export:metrics"),
        code("np.arange(3)  # exploration, not exported"),
        code("def hits(x):\n    total = 0\n    total += x\n    return total  \n", "export:metrics"),
        code("hits(1)"),
    )


def test_module_text_has_header_then_cells_joined_by_two_blank_lines(
    repo: Path, metrics_notebook: Path
) -> None:
    modules = collect_exports(repo / "notebooks", repo)

    generated = modules[METRICS]
    assert generated.text == (
        f"{HEADER}\n\nimport numpy as np\n\n\n"
        "def hits(x):\n    total = 0\n    total += x\n    return total\n"
    )
    assert generated.notebook == Path("notebooks/lib/metrics.ipynb")
    assert generated.chunks == (Chunk(1, 3, 3), Chunk(3, 6, 9))


def test_subpackage_module_path(repo: Path) -> None:
    write_notebook(
        repo / "notebooks/lib/popularity.ipynb", code("X = 1", "export:models.popularity")
    )

    assert list(collect_exports(repo / "notebooks", repo)) == [
        Path("src/shoprec/models/popularity.py")
    ]


def test_extract_writes_changed_modules_only(repo: Path, metrics_notebook: Path) -> None:
    assert extract(repo) == [METRICS]
    assert (repo / METRICS).read_text().startswith(HEADER + "\n\nimport numpy")
    assert extract(repo) == []


def test_check_reports_missing_module(repo: Path, metrics_notebook: Path) -> None:
    assert check(repo) == [
        "src/shoprec/metrics.py is missing: notebooks/lib/metrics.ipynb exports it "
        "(tag export:metrics); run make extract"
    ]


def test_check_passes_after_extract(repo: Path, metrics_notebook: Path) -> None:
    extract(repo)

    assert check(repo) == []


def test_a_module_is_what_ruff_format_makes_of_it(repo: Path, repo_root: Path) -> None:
    """A first export cell that starts with `def` (ruff wants two blank lines after the header),
    written loosely: the module is already as the ruff-format hook would leave it."""
    shutil.copy(repo_root / "pyproject.toml", repo)  # the project's line length and target
    write_notebook(
        repo / "notebooks/lib/popularity.ipynb",
        code("def percent(share,digits=1):\n  return f'{share:.{digits}%}'", "export:formatting"),
        code("percent(0.25)"),
    )
    extract(repo)
    module = repo / "src/shoprec/formatting.py"

    ruff = [sys.executable, "-m", "ruff", "format", "--check", "--diff", str(module)]
    result = subprocess.run(ruff, cwd=repo, capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    assert module.read_text() == (
        "# Generated from notebooks/lib/popularity.ipynb: edit the notebook, not this file.\n\n\n"
        'def percent(share, digits=1):\n    return f"{share:.{digits}%}"\n'
    )
    assert check(repo) == []


def test_a_hand_edit_is_located_after_ruff_moved_the_lines(
    repo: Path, metrics_notebook: Path
) -> None:
    """Cell 2's one call becomes five lines in the module (its magic trailing comma); an edit
    below is still cell 4's."""
    notebook = nbformat.read(metrics_notebook, as_version=4)
    notebook.cells[1].source = (
        "import numpy as np\n\nSIZES = dict(small=np.arange(3), medium=np.arange(30), "
        "large=np.arange(300),)\n"
    )
    nbformat.write(notebook, metrics_notebook)
    extract(repo)
    module = repo / METRICS
    text = module.read_text()
    assert "SIZES = dict(\n    small=np.arange(3),\n" in text
    module.write_text(text.replace("total += x", "total += 2 * x"))

    (problem,) = check(repo)
    assert "edit cell 4 (tagged export:metrics) of notebooks/lib/metrics.ipynb" in problem


def test_a_cell_that_is_not_python_is_named(repo: Path, metrics_notebook: Path) -> None:
    notebook = nbformat.read(metrics_notebook, as_version=4)
    notebook.cells[3].source = "def hits(x:\n    return x\n"
    nbformat.write(notebook, metrics_notebook)

    with pytest.raises(ExportError) as failure:
        extract(repo)

    assert str(failure.value).startswith(
        "notebooks/lib/metrics.ipynb: cell 4 (tagged export:metrics) is not valid Python: "
        "line 2, column 5: "
    )
    assert not (repo / METRICS).exists()


def test_hand_edit_is_located_in_its_cell(repo: Path, metrics_notebook: Path) -> None:
    extract(repo)
    module = repo / METRICS
    lines = module.read_text().splitlines(keepends=True)
    lines[6:8] = ["    total = 1\n", "    total *= x\n"]  # lines 7-8: inside cell 4
    module.write_text("".join(lines))

    assert check(repo) == [
        "src/shoprec/metrics.py differs from notebooks/lib/metrics.ipynb: lines 7-8 were "
        "edited by hand; edit cell 4 (tagged export:metrics) of notebooks/lib/metrics.ipynb "
        "and run make extract"
    ]


def test_appended_code_is_blamed_on_the_last_cell(repo: Path, metrics_notebook: Path) -> None:
    extract(repo)
    with (repo / METRICS).open("a") as module:
        module.write("\n\ndef extra():\n    pass\n")

    (problem,) = check(repo)
    assert "lines 10-13 were edited by hand; edit cell 4 (tagged export:metrics)" in problem


def test_edit_of_first_cell_names_it(repo: Path, metrics_notebook: Path) -> None:
    extract(repo)
    module = repo / METRICS
    module.write_text(module.read_text().replace("import numpy as np", "import numpy"))

    (problem,) = check(repo)
    assert "line 3 was edited by hand; edit cell 2 (tagged export:metrics)" in problem


def test_deleted_lines_are_located(repo: Path, metrics_notebook: Path) -> None:
    extract(repo)
    module = repo / METRICS
    module.write_text(module.read_text().replace("    total += x\n", ""))

    (problem,) = check(repo)
    assert "lines after line 7 were deleted by hand; edit cell 4" in problem


def test_changed_header_asks_for_extract(repo: Path, metrics_notebook: Path) -> None:
    extract(repo)
    module = repo / METRICS
    module.write_text(module.read_text().replace(": edit the notebook", ": edit the module"))

    assert check(repo) == [
        "src/shoprec/metrics.py differs from notebooks/lib/metrics.ipynb: line 1 is not the "
        "header make extract writes; run make extract"
    ]


def test_notebook_change_not_yet_extracted_is_reported(repo: Path, metrics_notebook: Path) -> None:
    extract(repo)
    notebook = nbformat.read(metrics_notebook, as_version=4)
    notebook.cells[1].source = "import numpy as np\nimport pandas as pd"
    nbformat.write(notebook, metrics_notebook)

    (problem,) = check(repo)
    assert "edit cell 2 (tagged export:metrics)" in problem
    extract(repo)
    assert check(repo) == []


def test_orphan_generated_module_is_reported(repo: Path, metrics_notebook: Path) -> None:
    extract(repo)
    write_notebook(metrics_notebook, code("import numpy as np"))  # tags removed
    (repo / "src/shoprec/handwritten.py").write_text('"""Not generated."""\n')

    assert check(repo) == [
        "src/shoprec/metrics.py was generated from a notebook, but no notebook exports to it "
        "anymore: delete it, or tag a cell export:metrics again"
    ]


def test_two_notebooks_may_not_export_the_same_module(repo: Path, metrics_notebook: Path) -> None:
    write_notebook(repo / "notebooks/other.ipynb", code("Y = 2", "export:metrics"))

    with pytest.raises(ExportError) as error:
        collect_exports(repo / "notebooks", repo)

    assert str(error.value) == (
        "src/shoprec/metrics.py is exported by two notebooks: notebooks/lib/metrics.ipynb "
        "(cell 2) and notebooks/other.ipynb (cell 1): export each module from one notebook"
    )


@pytest.mark.parametrize(
    "tag",
    ["export:", "export: metrics", "export:1metrics", "export:my-metrics", "export:models..x",
     "export:class", "export:metrics.py"],
)  # fmt: skip
def test_bad_export_tag_is_an_error(repo: Path, tag: str) -> None:
    write_notebook(repo / "notebooks/bad.ipynb", new_markdown_cell("# Bad"), code("X = 1", tag))

    with pytest.raises(ExportError, match=r"^notebooks/bad\.ipynb: cell 2: bad tag ") as error:
        collect_exports(repo / "notebooks", repo)

    assert repr(tag) in str(error.value)


def test_cell_with_two_export_tags_is_an_error(repo: Path) -> None:
    write_notebook(repo / "notebooks/two.ipynb", code("X = 1", "export:metrics", "export:other"))

    with pytest.raises(ExportError, match=r"cell 1 has 2 export tags \(export:metrics, export:"):
        collect_exports(repo / "notebooks", repo)


def test_markdown_cell_cannot_be_exported(repo: Path) -> None:
    cell = new_markdown_cell("Text", metadata={"tags": ["export:metrics"]})
    write_notebook(repo / "notebooks/md.ipynb", cell)

    with pytest.raises(ExportError, match="cell 1 is a markdown cell tagged export:metrics"):
        collect_exports(repo / "notebooks", repo)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "cannot read notebook"),
        ("[]", "cannot read notebook"),
        ('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}}', "not a valid notebook"),
    ],
)
def test_invalid_notebook_is_an_error_naming_the_file(
    repo: Path, content: str, problem: str
) -> None:
    broken = repo / "notebooks/lib/broken.ipynb"
    broken.write_text(content)

    with pytest.raises(NotebookReadError, match=f"^{broken}: {problem}"):
        collect_exports(repo / "notebooks", repo)


def test_target_package_without_init_is_an_error(repo: Path) -> None:
    (repo / "src/shoprec/serving").mkdir()
    write_notebook(repo / "notebooks/api.ipynb", code("X = 1", "export:serving.api"))

    with pytest.raises(ExportError) as error:
        collect_exports(repo / "notebooks", repo)

    assert str(error.value) == (
        "notebooks/api.ipynb: cell 1: cannot export to src/shoprec/serving/api.py: package "
        "src/shoprec/serving has no __init__.py; create src/shoprec/serving/__init__.py"
    )


def test_extract_does_not_overwrite_a_handwritten_module(
    repo: Path, metrics_notebook: Path
) -> None:
    write_notebook(repo / "notebooks/lib/base.ipynb", code("B = 1", "export:models.base"))
    handwritten = repo / METRICS
    handwritten.write_text('"""Hand-written metrics."""\n')

    with pytest.raises(ExportError, match="src/shoprec/metrics.py was not generated"):
        extract(repo)

    assert handwritten.read_text() == '"""Hand-written metrics."""\n'
    assert not (repo / "src/shoprec/models/base.py").exists()


def test_checkpoint_copies_are_ignored(repo: Path, metrics_notebook: Path) -> None:
    write_notebook(
        repo / "notebooks/lib/.ipynb_checkpoints/metrics-checkpoint.ipynb",
        code("OLD = 1", "export:metrics"),
    )

    assert extract(repo) == [METRICS]


def test_main_extracts_then_checks(
    repo: Path, metrics_notebook: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--check", "--root", str(repo)]) == 1
    assert "src/shoprec/metrics.py is missing" in capsys.readouterr().out

    assert main(["--root", str(repo)]) == 0
    assert capsys.readouterr().out == "wrote src/shoprec/metrics.py\n"

    assert main(["--check", "--root", str(repo)]) == 0
    assert capsys.readouterr().out == ""


def test_main_reports_export_errors(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_notebook(repo / "notebooks/bad.ipynb", code("X = 1", "export:"))

    assert main(["--root", str(repo)]) == 1
    assert capsys.readouterr().err.startswith("error: notebooks/bad.ipynb: cell 1: bad tag")


def test_runs_from_the_repo_root(repo: Path, metrics_notebook: Path) -> None:
    command = [sys.executable, "-m", "shoprec.cli", "extract", "--check"]

    result = subprocess.run(command, cwd=repo, capture_output=True, text=True, check=False)

    assert result.returncode == 1
    assert result.stdout.startswith("src/shoprec/metrics.py is missing: notebooks/lib/")


def test_pre_commit_refuses_a_hand_edit_names_the_cell_and_keeps_the_edit(
    repo: Path, metrics_notebook: Path, repo_root: Path
) -> None:
    """The project's own hook configuration, run by pre-commit on a commit of the edit."""
    shutil.copy(repo_root / ".pre-commit-config.yaml", repo)
    (repo / ".venv").symlink_to(repo_root / ".venv")
    extract(repo)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "start", "--no-verify"], cwd=repo, check=True)
    module = repo / METRICS
    edited = module.read_text().replace("total += x", "total += 2 * x")
    module.write_text(edited)

    config = yaml.safe_load((repo / ".pre-commit-config.yaml").read_text())
    local_hooks = [
        hook["id"] for hook in config["repos"][0]["hooks"] if hook["language"] == "system"
    ]
    outputs = []
    for hook in local_hooks:  # every hook: all run the tools of the project's .venv
        result = subprocess.run(
            [str(repo_root / ".venv/bin/pre-commit"), "run", hook, "--files", str(METRICS)],
            cwd=repo,
            capture_output=True,
            text=True,
            check=False,
        )
        outputs.append((hook, result.returncode, result.stdout))
        assert module.read_text() == edited, f"hook {hook} rewrote the hand edit"

    assert "extract-check" in local_hooks
    assert any(code == 1 for _, code, _ in outputs)
    message = "edit cell 4 (tagged export:metrics) of notebooks/lib/metrics.ipynb"
    assert any(message in out for _, _, out in outputs), outputs
