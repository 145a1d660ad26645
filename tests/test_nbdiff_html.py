"""Notebook diffs: nbdime's text diff, the static diff page (rendered in headless Chromium) and
the `nbdiff` subcommand, on small notebooks built in tmp_path."""

import html
import os
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from shoprec.cli import main
from shoprec.devtools.nbdiff_html import changed_notebooks, text_diff, write_diff_page


def make_notebook(size: int) -> nbformat.NotebookNode:
    """A notebook whose code cell's source line and output both show `size`."""
    return new_notebook(
        cells=[
            new_markdown_cell("# Basket size", id="intro"),
            new_code_cell(
                f"basket_size = {size}\nprint('basket size:', basket_size)",
                id="compute",
                execution_count=1,
                outputs=[new_output("stream", name="stdout", text=f"basket size: {size}\n")],
            ),
        ]
    )


def run_nbdiff(*argv: str) -> int:
    """Run `shoprec nbdiff ARGV` through a parser built the way the project's CLI builds it."""
    return main(["nbdiff", *argv])


def test_text_diff_shows_changed_source_line_and_output():
    diff = text_diff(make_notebook(41), make_notebook(42))

    assert "-  basket_size = 41" in diff
    assert "+  basket_size = 42" in diff
    assert "basket size: 42" in diff
    assert "\x1b[" not in diff


def test_text_diff_of_equal_notebooks_is_empty():
    assert text_diff(make_notebook(41), make_notebook(41)) == ""


def test_diff_page_is_self_contained(tmp_path):
    out_dir = tmp_path / "page"
    index = write_diff_page(make_notebook(41), make_notebook(42), out_dir, title="t.ipynb")

    assert index == out_dir / "index.html"
    page = index.read_text(encoding="utf-8")
    assert '<script src="static/nbdime.js">' in page
    assert (out_dir / "static" / "nbdime.js").is_file()
    assert not list(out_dir.rglob("*.map"))
    assert str(tmp_path) not in page
    assert "<h3>t.ipynb</h3>" in page


@pytest.fixture
def chromium() -> str:
    found = next(
        filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None
    )
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("Chromium is not installed: run .ci/install-browser")
    pytest.skip("Chromium is not installed (run .ci/install-browser to install it)")


def dump_dom(chromium: str, index: Path, profile: Path) -> str:
    """The DOM of `index` as headless Chromium renders it from file://."""
    return subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            index.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout


@pytest.mark.browser
def test_diff_page_renders_in_headless_chromium(tmp_path, chromium):
    index = write_diff_page(make_notebook(41), make_notebook(42), tmp_path / "page", title="t")

    dom = dump_dom(chromium, index, tmp_path / "profile")

    # Only what nbdime rendered, not the diff data and text diff in the page's header.
    rendered = dom.partition('id="nbdime-root"')[2]
    for css_class in (
        "jp-Notebook-diff",  # the notebook diff widget
        "jp-Diff-twoway",  # the changed cell
        "cm-merge-r-deleted",  # the source line, as it was
        "cm-merge-r-inserted",  # and as it is
        "jp-Diff-outputsContainer",  # the changed output
    ):
        assert css_class in rendered, f"nbdime did not render {css_class!r}"
    text = html.unescape(re.sub(r"<[^>]+>", "", rendered))
    assert "basket_size = 41" in text
    assert "basket_size = 42" in text
    assert "basket size: 42" in text
    assert '<details id="nbdiff-text">' in dom  # nbdime drew the diff, so its text diff is folded


@pytest.mark.browser
def test_diff_page_keeps_text_diff_open_when_nbdime_cannot_render(tmp_path, chromium):
    # nbdime 4.0.4's renderer throws on a blank line and text appended to a cell.
    base = new_notebook(cells=[new_markdown_cell("# Basket\nsize", id="intro")])
    remote = new_notebook(cells=[new_markdown_cell("# Basket\nsize\n\nand price", id="intro")])
    index = write_diff_page(base, remote, tmp_path / "page", title="t")

    dom = dump_dom(chromium, index, tmp_path / "profile")

    assert "jp-Cell-diff" not in dom.partition('id="nbdime-root"')[2]
    assert '<details id="nbdiff-text" open="">' in dom
    assert "+  and price" in dom


@pytest.fixture
def notebooks(tmp_path) -> tuple[Path, Path]:
    base, remote = tmp_path / "base.ipynb", tmp_path / "remote.ipynb"
    nbformat.write(make_notebook(41), base)
    nbformat.write(make_notebook(42), remote)
    return base, remote


def test_cli_prints_text_diff_and_writes_page(notebooks, tmp_path, capsys):
    assert run_nbdiff(*map(str, notebooks), "--html", str(tmp_path / "page")) == 0

    assert "+  basket_size = 42" in capsys.readouterr().out
    assert (tmp_path / "page" / "index.html").is_file()


def test_cli_rejects_missing_file(notebooks, tmp_path, capsys):
    missing = tmp_path / "missing.ipynb"

    assert run_nbdiff(str(notebooks[0]), str(missing)) == 2
    assert f"{missing}: no such file" in capsys.readouterr().err


def test_cli_rejects_file_that_is_not_a_notebook(notebooks, tmp_path, capsys):
    not_notebook = tmp_path / "notes.ipynb"
    not_notebook.write_text("just some notes\n", encoding="utf-8")

    assert run_nbdiff(str(not_notebook), str(notebooks[1])) == 2
    err = capsys.readouterr().err
    assert f"{not_notebook}: not a notebook" in err
    assert len(err.splitlines()) == 1


def git(repo: Path, *args: str) -> None:
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]
    settings = ["-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main"]
    subprocess.run(["git", *identity, *settings, *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path) -> Path:
    """A git repo whose branch `feature` modifies, adds and deletes notebooks since forking `main`,
    while `main` moved on with a notebook of its own."""
    repo = tmp_path / "repo"
    (repo / "notebooks" / "lib").mkdir(parents=True)
    git(repo, "init")
    nbformat.write(make_notebook(41), repo / "notebooks" / "basket.ipynb")
    nbformat.write(make_notebook(7), repo / "notebooks" / "retired.ipynb")
    (repo / "README.md").write_text("shop\n")
    git(repo, "add", ".")
    git(repo, "commit", "-m", "base")
    git(repo, "checkout", "-b", "feature")
    nbformat.write(make_notebook(42), repo / "notebooks" / "basket.ipynb")
    nbformat.write(make_notebook(5), repo / "notebooks" / "lib" / "added.ipynb")
    (repo / "notebooks" / "retired.ipynb").unlink()
    (repo / "README.md").write_text("shop, recommended\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-m", "feature")
    git(repo, "checkout", "main")
    nbformat.write(make_notebook(1), repo / "notebooks" / "main_only.ipynb")
    git(repo, "add", ".")
    git(repo, "commit", "-m", "main moves on")
    git(repo, "checkout", "feature")
    return repo


def test_changed_notebooks_since_fork(repo):
    assert sorted(changed_notebooks("main", repo)) == [
        "notebooks/basket.ipynb",
        "notebooks/lib/added.ipynb",
        "notebooks/retired.ipynb",
    ]


def test_cli_git_base_writes_summary_and_pages(repo, tmp_path, monkeypatch):
    summary, pages = tmp_path / "summary.md", tmp_path / "pages"
    summary.write_text("# Earlier step\n", encoding="utf-8")
    monkeypatch.chdir(repo / "notebooks")

    assert run_nbdiff("--git-base", "main", f"--summary={summary}", f"--html-dir={pages}") == 0

    text = summary.read_text(encoding="utf-8")
    assert text.startswith("# Earlier step\n")
    basket = text.partition("### `notebooks/basket.ipynb`")[2].partition("###")[0]
    assert "-  basket_size = 41" in basket
    assert "+  basket_size = 42" in basket
    added = text.partition("### `notebooks/lib/added.ipynb`")[2].partition("###")[0]
    assert re.search(r"^\+ +basket_size = 5$", added, re.MULTILINE)
    retired = text.partition("### `notebooks/retired.ipynb`")[2]
    assert re.search(r"^- +basket_size = 7$", retired, re.MULTILINE)
    assert "main_only" not in text
    assert sorted(page.parent.name for page in pages.glob("*/index.html")) == [
        "notebooks__basket.ipynb",
        "notebooks__lib__added.ipynb",
        "notebooks__retired.ipynb",
    ]


def test_cli_git_base_rejects_bad_ref(repo, monkeypatch, capsys):
    monkeypatch.chdir(repo)

    assert run_nbdiff("--git-base", "origin/no-such-branch") == 2
    assert "origin/no-such-branch" in capsys.readouterr().err
