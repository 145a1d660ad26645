"""Notebook diffs for review: nbdime's text diff, and a static page rendered by nbdime's web app.

nbdime's web app fetches its diff from the nbdime server (`POST api/diff`). The page written
here embeds that same response (`{"base": ..., "diff": ...}`) and answers the request from it,
so nbdime's own renderer draws the diff from `file://`, with no server. The page also shows
nbdime's text diff, folded away once the renderer has drawn the diff: nbdime 4.0.4 fails to
render some changes (e.g. a blank line and text appended to a cell) and then leaves it open.
"""

import argparse
import io
import re
import shutil
import subprocess
import sys
from pathlib import Path
from subprocess import DEVNULL

import jinja2
import nbdime
import nbformat
from nbdime.prettyprint import PrettyPrintConfig, pretty_print_diff

from shoprec.errors import EXIT_BAD_INPUT, ShoprecError

NBDIME_WEBAPP = Path(nbdime.__file__).parent / "webapp"
# Everything nbdime.js may load from its static folder (it resolves them against ./static/):
# its code chunks and licences, and the one font format current browsers pick.
STATIC_PATTERNS = ("*.js", "*.LICENSE.txt", "*.woff2")

PAGE_TEMPLATE = """\
{% extends "nbdimepage.html" %}
{% block nbdimeheader %}
<div id="nbdime-header" class="nbdime-Diff">
  <h3>{{ title }}</h3>
  <div id="nbdime-header-buttonrow">
    <label><input id="nbdime-hide-unchanged" type="checkbox">Hide unchanged cells</label>
    <button id="nbdime-trust" style="display: none">Trust outputs</button>
    <button id="nbdime-export" style="display: none">Export diff</button>
  </div>
  <div id="nbdime-header-banner" class="cm-merge-2pane">
    <span id="nbdime-header-base">Base</span>
    <span id="nbdime-header-remote">Remote</span>
  </div>
</div>
<details id="nbdiff-text" open><summary>Text diff</summary><pre>{{ text }}</pre></details>
<script id="nbdiff-data" type="application/json">{{ api_diff|tojson }}</script>
<script>
  // Answer nbdime's `POST api/diff` with the embedded response.
  document.title = {{ title|tojson }};
  const serverFetch = window.fetch;
  window.fetch = (request, init) => {
    const url = typeof request === "string" ? request : request.url;
    if (!/\\/api\\/diff([?#]|$)/.test(url)) return serverFetch(request, init);
    const body = document.getElementById("nbdiff-data").textContent;
    return Promise.resolve(
      new Response(body, { headers: { "Content-Type": "application/json" } }),
    );
  };
  // nbdime shows its Export button once it has drawn the diff; fold the text diff then.
  const exportButton = document.getElementById("nbdime-export");
  new MutationObserver((_, observer) => {
    if (exportButton.style.display === "none") return;
    document.getElementById("nbdiff-text").open = false;
    observer.disconnect();
  }).observe(exportButton, { attributes: true, attributeFilter: ["style"] });
</script>
{% endblock %}
"""


class NbdiffError(ShoprecError):
    """A notebook or git ref that cannot be diffed; the message names it."""

    exit_code = EXIT_BAD_INPUT


def text_diff(base: nbformat.NotebookNode, remote: nbformat.NotebookNode) -> str:
    """nbdime's plain-text diff from `base` to `remote`; empty if they do not differ."""
    return _pretty(base, nbdime.diff_notebooks(base, remote))


def write_diff_page(
    base: nbformat.NotebookNode, remote: nbformat.NotebookNode, out_dir: Path, *, title: str
) -> Path:
    """Write a static page showing the diff with nbdime's web renderer; return its index.html.

    The page and its assets go into `out_dir`; it works opened from `file://`.
    """
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [
                jinja2.DictLoader({"nbdiff.html": PAGE_TEMPLATE}),
                jinja2.FileSystemLoader(NBDIME_WEBAPP / "templates"),
            ]
        ),
        autoescape=True,
    )
    diff = nbdime.diff_notebooks(base, remote)
    page = env.get_template("nbdiff.html").render(
        title=title,
        text=_pretty(base, diff),
        api_diff={"base": base, "diff": diff},
        config_data={"base": "base", "remote": "remote", "baseUrl": "/"},
        static_url=lambda name: f"static/{name}",
    )
    static = out_dir / "static"
    static.mkdir(parents=True, exist_ok=True)
    for pattern in STATIC_PATTERNS:
        for asset in (NBDIME_WEBAPP / "static").glob(pattern):
            shutil.copyfile(asset, static / asset.name)
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def changed_notebooks(base_ref: str, repo: Path) -> list[str]:
    """Notebooks added, modified or deleted on HEAD since it forked from `base_ref`.

    Paths are relative to the top of `repo`'s work tree; a renamed notebook counts as deleted
    under its old path and added under its new one.
    """
    out = _git(repo, "diff", "--name-only", "--no-renames", f"{base_ref}...HEAD", "--", ":/*.ipynb")
    return out.splitlines()


def _pretty(base: nbformat.NotebookNode, diff: list) -> str:
    out = io.StringIO()
    config = PrettyPrintConfig(out=out, use_git=False, use_diff=False, use_color=False)
    pretty_print_diff(base, diff, "", config)
    return out.getvalue()


def nbdiff_command(args: argparse.Namespace) -> int:
    """`shoprec nbdiff`: the diff of two notebooks, or of every notebook changed since a ref."""
    if args.git_base is not None:
        if args.base or args.remote or args.html:
            raise NbdiffError("--git-base takes no notebooks and no --html (use --html-dir)")
        _diff_changed(args.git_base, Path.cwd(), args.summary, args.html_dir)
    else:
        if not (args.base and args.remote) or args.summary or args.html_dir:
            raise NbdiffError("give BASE.ipynb and REMOTE.ipynb, or --git-base REF")
        base, remote = _read_file(Path(args.base)), _read_file(Path(args.remote))
        print(text_diff(base, remote), end="")
        if args.html:
            title = f"{Path(args.base).name} → {Path(args.remote).name}"
            page = write_diff_page(base, remote, args.html, title=title)
            print(f"wrote {page}", file=sys.stderr)
    return 0


def _diff_changed(base_ref: str, repo: Path, summary: Path | None, html_dir: Path | None) -> None:
    fork = _git(repo, "merge-base", base_ref, "HEAD").strip()
    paths = changed_notebooks(base_ref, repo)
    sections = [f"## Notebook diffs against `{base_ref}`\n"]
    if not paths:
        sections.append("No notebook changed.\n")
    for path in paths:
        base, remote = _read_revision(repo, fork, path), _read_revision(repo, "HEAD", path)
        sections.append(f"### `{path}`\n\n{_fenced(text_diff(base, remote))}\n")
        if html_dir is not None:
            write_diff_page(base, remote, html_dir / path.replace("/", "__"), title=path)
        print(f"diffed {path}")
    if summary is not None:
        with summary.open("a", encoding="utf-8") as out:
            out.write("\n".join(sections))


def _fenced(text: str) -> str:
    """`text` as a markdown code block, fenced so that no backtick run inside it closes it."""
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall("`+", text)), default=0))
    return f"{fence}diff\n{text or 'no differences'}\n{fence}\n"


def _read_file(path: Path) -> nbformat.NotebookNode:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise NbdiffError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise NbdiffError(f"{path}: cannot read: {exc}") from exc
    return _parse(text, str(path))


def _read_revision(repo: Path, rev: str, path: str) -> nbformat.NotebookNode:
    """The notebook at `path` in commit `rev`; an empty notebook if it is not there."""
    exists = subprocess.run(["git", "cat-file", "-e", f"{rev}:{path}"], cwd=repo, stderr=DEVNULL)
    if exists.returncode:
        return nbformat.v4.new_notebook()
    return _parse(_git(repo, "show", f"{rev}:{path}"), f"{path} at {rev}")


def _parse(text: str, name: str) -> nbformat.NotebookNode:
    try:
        notebook = nbformat.reads(text, as_version=4)
        nbformat.validate(notebook)
    except (ValueError, KeyError, TypeError, AttributeError, nbformat.ValidationError) as exc:
        reason = str(exc).partition("\n")[0]
        raise NbdiffError(f"{name}: not a notebook: {reason}") from exc
    return notebook


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=repo, capture_output=True, encoding="utf-8")
    if result.returncode:
        lines = result.stderr.strip().splitlines() or [f"failed with exit code {result.returncode}"]
        raise NbdiffError(f"git {' '.join(args)}: {lines[0]}")
    return result.stdout
