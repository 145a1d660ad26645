"""nbval turns a moved metric in a committed notebook into a failing test with a readable diff."""

import json
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.notebook


def run_nbval(notebook, repo_root) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider", "-q",
            "--nbval", "--nbval-current-env",
            "--nbval-sanitize-with", str(repo_root / ".nbval-sanitize.cfg"),
            "--rootdir", str(notebook.parent), str(notebook),
        ],
        capture_output=True, text=True, timeout=300, check=False, cwd=notebook.parent,
    )  # fmt: skip


@pytest.fixture
def committed_metrics_notebook(tmp_path, repo_root):
    target = tmp_path / "notebooks" / "lib" / "metrics.ipynb"
    target.parent.mkdir(parents=True)
    shutil.copy(repo_root / "notebooks" / "lib" / "metrics.ipynb", target)
    return target


def test_committed_notebook_passes_as_is(committed_metrics_notebook, repo_root):
    result = run_nbval(committed_metrics_notebook, repo_root)
    assert result.returncode == 0, result.stdout[-2000:]


def test_a_moved_metric_fails_with_a_diff_naming_both_values(committed_metrics_notebook, repo_root):
    notebook = json.loads(committed_metrics_notebook.read_text())
    moved = False
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            text = "".join(output.get("data", {}).get("text/plain", []))
            if "'precision': 0.2222" in text:
                output["data"]["text/plain"] = text.replace("0.2222", "0.2345")
                moved = True
    assert moved, "the worked example's output was not found in the committed notebook"
    committed_metrics_notebook.write_text(json.dumps(notebook))
    result = run_nbval(committed_metrics_notebook, repo_root)
    assert result.returncode != 0
    assert "0.2345" in result.stdout and "0.2222" in result.stdout
    assert "metrics.ipynb" in result.stdout
