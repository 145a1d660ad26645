"""Clean a notebook's metadata before it is committed, keeping its outputs for nbval.

What stays: each cell's `tags` (papermill's `parameters`, `export:<module>`, nbval's tags), cell
ids, execution counts and outputs, and the notebook's kernel and language. Everything else is
what the editor or the executor wrote for itself and changes from one save or machine to the
next: JupyterLab's `editable`, `deletable`, `slideshow`, `collapsed`, `scrolled`,
`jp-MarkdownHeadingCollapsed` and `jupyter.source_hidden`, papermill's and nbclient's timings, the
Python patch version in `language_info`. nbstripout does the stripping; this module says what.
"""

import argparse
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from shoprec.devtools.extract import read_notebook

KEPT_CELL_METADATA = frozenset({"tags"})
"""The only cell metadata a committed notebook keeps."""
KEPT_NOTEBOOK_METADATA = frozenset({"kernelspec", "language_info"})
"""The only notebook metadata a committed notebook keeps."""
MACHINE_SPECIFIC = ("metadata.language_info.version",)
"""Kept sections' fields that differ between machines (the Python patch release)."""


def metadata_to_strip(notebook: NotebookNode) -> list[str]:
    """nbstripout's `extra_keys` that strip every metadata key the notebook should not keep."""
    cell_keys = {key for cell in notebook.cells for key in cell.get("metadata", {})}
    return sorted(
        [f"cell.metadata.{key}" for key in cell_keys - KEPT_CELL_METADATA]
        + [f"metadata.{key}" for key in set(notebook.metadata) - KEPT_NOTEBOOK_METADATA]
        + list(MACHINE_SPECIFIC)
    )


def clean(notebook: NotebookNode) -> NotebookNode:
    """The notebook with only the metadata it keeps (changed in place and returned)."""
    from nbstripout import strip_output

    strip_output(
        notebook,
        keep_output=True,
        keep_count=True,
        keep_id=True,
        extra_keys=metadata_to_strip(notebook),
    )
    for cell in notebook.cells:
        if cell.metadata.get("tags") == []:  # papermill gives every cell a list, empty or not
            del cell.metadata["tags"]
    return notebook


def clean_file(path: Path) -> bool:
    """Clean the notebook at `path` in place; whether its text changed.

    Raises NotebookReadError naming the file if it is not a valid notebook.
    """
    before = path.read_text(encoding="utf-8")
    text = nbformat.writes(clean(read_notebook(path))) + "\n"
    if text == before:
        return False
    path.write_text(text, encoding="utf-8", newline="\n")
    return True


def nbclean_command(args: argparse.Namespace) -> int:
    """`shoprec nbclean NOTEBOOK...`: clean each notebook; exit 1 if any changed, as a pre-commit
    hook that rewrote a file does."""
    changed = [path for path in args.notebooks if clean_file(path)]
    for path in changed:
        print(f"cleaned {path}")
    return 1 if changed else 0
