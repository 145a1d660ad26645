"""Lint notebooks before they are committed.

A notebook passes when it has exactly one code cell tagged `parameters`, was run top to bottom
in a fresh kernel, shows no errors, absolute paths or secrets in its outputs, and keeps its
outputs small. Library notebooks (`notebooks/lib/`) also read as literate code: each exported
cell is at most `MAX_EXPORT_LINES` lines and is followed by an example, a code cell of its own
(markdown between is fine), before the next exported cell. Each problem names the notebook, the
cell (numbered from 1, as JupyterLab counts cells) and what was expected.
"""

import argparse
import json
import re
import sys
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

from nbformat import NotebookNode

from shoprec.devtools.extract import (
    EXPORT_PREFIX,
    NotebookReadError,
    find_notebooks,
    read_notebook,
)

PARAMETERS_TAG = "parameters"
MAX_OUTPUT_BYTES = 2_000_000
MAX_SINGLE_OUTPUT_BYTES = 1_000_000
RERUN = "restart the kernel, run all cells and save"
MAX_EXPORT_LINES = 60
"""The longest exported cell a library notebook may hold, in source lines."""
LIBRARY_DIR = ("notebooks", "lib")
"""Notebooks in a folder of this name inside one of this name are library notebooks."""

Cells = list[tuple[int, NotebookNode]]
"""A notebook's cells with their numbers, counted from 1."""

# Home, temporary and work directories on POSIX, drive paths on Windows; not URLs or relative paths.
ABSOLUTE_PATH = re.compile(
    r"(?<![\w.~/\\-])/(?:home|Users|tmp|work|root|mnt|private/var|var/folders)/[^\s'\"<>]*"
    r"|(?<!\w)[A-Z]:(?:\\\\?|/)[\w.$~-][^\s'\"<>]*"
)
# What each kind of secret looks like; a message names the kind, never the value.
SECRETS = {
    "an AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "a private key": re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"),
    "a GitHub token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_\w{22,})"),
    "a token, password or API key": re.compile(
        r"(?i)(?:token|password|passwd|api_?key|secret)\s*=\s*['\"]?"
        r"(?!None\b|null\b|[\s'\",;)&*<$])[^\s'\",;)&]+"
    ),
}


def lint_notebook(
    path: Path,
    *,
    max_output_bytes: int = MAX_OUTPUT_BYTES,
    max_single_output_bytes: int = MAX_SINGLE_OUTPUT_BYTES,
) -> list[str]:
    """The problems of the notebook at `path`, one message each; empty if it passes.

    Output sizes are those of the outputs' JSON; the total is per notebook.
    """
    try:
        notebook = read_notebook(path)
    except NotebookReadError as exc:
        return [str(exc)]
    cells = list(enumerate(notebook.cells, start=1))
    problems = chain(
        _parameters_problems(cells),
        _execution_problems(cells),
        _error_problems(cells),
        _content_problems(cells),
        _size_problems(cells, max_output_bytes, max_single_output_bytes),
        _literate_problems(cells) if _is_library_notebook(path) else (),
    )
    return [f"{path}: {problem}" for problem in problems]


def nblint_command(args: argparse.Namespace) -> int:
    """`shoprec nblint [PATH ...]`: print every problem found and exit 1 if there is any."""
    max_output = args.max_output_bytes or MAX_OUTPUT_BYTES
    max_single = args.max_single_output_bytes or MAX_SINGLE_OUTPUT_BYTES
    missing = [path for path in args.paths if not path.exists()]
    for path in missing:
        print(f"error: {path}: no such file or directory", file=sys.stderr)
    notebooks = [
        notebook
        for path in args.paths
        if path.exists()
        for notebook in (find_notebooks(path) if path.is_dir() else [path])
    ]
    problems = [
        problem
        for notebook in notebooks
        for problem in lint_notebook(
            notebook,
            max_output_bytes=max_output,
            max_single_output_bytes=max_single,
        )
    ]
    for problem in problems:
        print(problem)
    return 1 if problems or missing else 0


def _parameters_problems(cells: Cells) -> Iterator[str]:
    tagged = [(number, cell) for number, cell in cells if PARAMETERS_TAG in _tags(cell)]
    for number, cell in tagged:
        if cell.cell_type != "code":
            yield f"cell {number}: a {cell.cell_type} cell is tagged 'parameters': tag a code cell"
    code = [str(number) for number, cell in tagged if cell.cell_type == "code"]
    if not code:
        yield (
            "no cell tagged 'parameters': tag the cell holding the notebook's parameters "
            "(papermill needs it)"
        )
    elif len(code) > 1:
        yield (
            f"cells {', '.join(code)} are tagged 'parameters': expected exactly one; keep the "
            "tag on the cell holding the notebook's parameters (papermill needs it)"
        )


def _execution_problems(cells: Cells) -> Iterator[str]:
    code = [(number, cell) for number, cell in cells if cell.cell_type == "code"]
    if all(cell.execution_count is None for _, cell in code):
        if any(cell.source.strip() for _, cell in code):
            yield f"not executed: no code cell has an execution count; {RERUN}"
        return
    previous: tuple[int, int] | None = None
    for number, cell in code:
        count = cell.execution_count
        if count is None:
            if cell.source.strip():
                yield f"cell {number}: not executed: expected an execution count; {RERUN}"
        elif previous is None and count != 1:
            yield f"cell {number}: execution count {count}, expected 1 for the first cell; {RERUN}"
        elif previous is not None and count <= previous[1]:
            yield (
                f"cell {number}: execution count {count} after {previous[1]} in cell "
                f"{previous[0]}: expected counts increasing top to bottom; {RERUN}"
            )
        if count is not None:
            previous = (number, count)


def _error_problems(cells: Cells) -> Iterator[str]:
    for number, cell in cells:
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                evalue = output.get("evalue", "").strip().splitlines()
                message = f"{output.get('ename', 'Error')}: {evalue[0] if evalue else ''}"
                yield (
                    f"cell {number}: error output {_shorten(message)}: expected the notebook "
                    "to run without errors; fix the cell and re-run"
                )


def _content_problems(cells: Cells) -> Iterator[str]:
    for number, cell in cells:
        texts = [text for output in cell.get("outputs", []) for text in _output_texts(output)]
        paths = [match.group() for text in texts for match in ABSOLUTE_PATH.finditer(text)]
        if paths:
            more = f" (and {len(paths) - 1} more)" if len(paths) > 1 else ""
            yield (
                f"cell {number}: output shows absolute path {_shorten(paths[0])!r}{more}: "
                "expected paths relative to the repo; print relative paths and re-run"
            )
        for kind, pattern in SECRETS.items():
            if any(pattern.search(text) for text in texts):
                yield (
                    f"cell {number}: output contains what looks like {kind}: expected no "
                    "secrets in outputs; clear the output, read the secret from the "
                    "environment, and revoke the exposed one"
                )


def _size_problems(
    cells: Cells, max_output_bytes: int, max_single_output_bytes: int
) -> Iterator[str]:
    sizes = {
        number: [_size(output) for output in cell.get("outputs", [])] for number, cell in cells
    }
    for number, cell_sizes in sizes.items():
        for index, size in enumerate(cell_sizes, start=1):
            if size > max_single_output_bytes:
                yield (
                    f"cell {number}: output {index} is {_bytes(size)}, over the "
                    f"{_bytes(max_single_output_bytes)} limit for one output: shrink it "
                    "(fewer rows or points, smaller figures) or save it to a file"
                )
    total = sum(map(sum, sizes.values()))
    if total > max_output_bytes:
        largest = max(sizes, key=lambda number: sum(sizes[number]))
        yield (
            f"outputs total {_bytes(total)}, over the {_bytes(max_output_bytes)} limit per "
            f"notebook; cell {largest} has the largest outputs ({_bytes(sum(sizes[largest]))}): "
            "shrink or clear them"
        )


def _is_library_notebook(path: Path) -> bool:
    return Path(path).absolute().parent.parts[-2:] == LIBRARY_DIR


def _literate_problems(cells: Cells) -> Iterator[str]:
    """Exported cells that are too long, or not followed by an example before the next export."""
    for place, (number, cell) in enumerate(cells):
        if not _is_exported(cell):
            continue
        lines = len(cell.source.splitlines())
        if lines > MAX_EXPORT_LINES:
            yield (
                f"cell {number}: exported cell has {lines} lines, over the {MAX_EXPORT_LINES}-line "
                "limit for library notebooks: split it into smaller functions or classes, each "
                "in its own exported cell followed by its example"
            )
        following = (later for _, later in cells[place + 1 :] if later.cell_type != "markdown")
        example = next(following, None)
        if example is None or not _is_example(example):
            yield (
                f"cell {number}: exported cell is not followed by an example: expected a code "
                "cell that is not exported, showing it works, before the next exported cell "
                "(markdown between is fine)"
            )


def _is_example(cell: NotebookNode) -> bool:
    return cell.cell_type == "code" and bool(cell.source.strip()) and not _is_exported(cell)


def _is_exported(cell: NotebookNode) -> bool:
    return cell.cell_type == "code" and any(tag.startswith(EXPORT_PREFIX) for tag in _tags(cell))


def _tags(cell: NotebookNode) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _output_texts(output: NotebookNode) -> Iterator[str]:
    """The text an output shows: stream text and non-image data, JSON data serialised."""
    if output.output_type == "stream":
        yield output.text
    elif output.output_type in ("execute_result", "display_data"):
        for mime, value in output.get("data", {}).items():
            if not mime.startswith("image/"):
                yield value if isinstance(value, str) else json.dumps(value)


def _size(output: NotebookNode) -> int:
    return len(json.dumps(output, ensure_ascii=False).encode())


def _bytes(size: int) -> str:
    if size >= 1_000_000:
        return f"{size / 1_000_000:.1f} MB"
    if size >= 1_000:
        return f"{size / 1_000:.1f} kB"
    return f"{size} bytes"


def _shorten(text: str, width: int = 80) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."
