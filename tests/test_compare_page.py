"""`shoprec runs compare A B --html DIR`: an index page with the headline table and a link to each
notebook's diff page."""

import json
import re
from pathlib import Path

import nbformat
import pytest
from test_tracking_ui import fake_run

from shoprec.cli import main
from shoprec.runs import EVALUATION_FILE, PIPELINE_NOTEBOOKS, executed_notebook


def test_compare_html_writes_an_index_linking_every_notebook_page(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_run(project, "run-a")
    run_b = fake_run(project, "run-b", k=5)
    evaluation = json.loads((run_b / EVALUATION_FILE).read_text())
    evaluation["metrics"]["candidate"]["ndcg"] = 0.3
    (run_b / EVALUATION_FILE).write_text(json.dumps(evaluation))
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("k = 5")])
    nbformat.write(notebook, executed_notebook(run_b, "04_evaluate"))
    pages = project / "diff"

    assert main(["runs", "compare", "run-a", "run-b", "--html", str(pages)]) == 0

    assert f"wrote {pages / 'index.html'}" in capsys.readouterr().err
    index = (pages / "index.html").read_text()
    assert "<title>run A run-a → run B run-b</title>" in index
    rows = re.findall(r"<tr><td>(\w+@k)</td>(.*?)</tr>", index, re.S)
    cells = {name: re.findall(r'class="number">([^<]*)<', row) for name, row in rows}
    assert cells["ndcg@k"] == ["0.2500", "0.3000", "+0.0500"]
    assert cells["recall@k"] == ["0.3300", "0.3300", "+0.0000"]
    assert "<code>k: 10 -&gt; 5  (04_evaluate)</code>" in index
    links = re.findall(r'<a href="([^"]+)">([^<]+)</a>', index)
    assert [text for _, text in links] == [f"{nb}.ipynb" for nb in PIPELINE_NOTEBOOKS]
    for href, _ in links:
        assert (pages / href).is_file(), href  # each notebook's nbdime page, beside the index
    states = re.findall(r"\.ipynb</a></td>\s*<td[^>]*>(\w+)</td>", index)
    assert states == ["unchanged", "unchanged", "unchanged", "changed"]
