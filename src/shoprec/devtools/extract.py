"""Export notebook cells tagged `export:<module>` to modules of the shoprec package.

A code cell tagged `export:metrics` goes to `src/shoprec/metrics.py`, one tagged
`export:models.popularity` to `src/shoprec/models/popularity.py`. A module comes from one
notebook: its tagged cells in notebook order, under a header naming the notebook, formatted
exactly as `ruff format` (the project's configuration, the lock file's ruff) would format it, so
that the pre-commit hooks leave a freshly extracted module alone. `--check` changes nothing and
reports modules that are missing, edited by hand, or no longer exported.
"""

import argparse
import bisect
import difflib
import keyword
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import reader

from shoprec.devtools.ruff import FormatError, format_text
from shoprec.errors import ShoprecError

EXPORT_PREFIX = "export:"
NOTEBOOKS_DIR = Path("notebooks")
PACKAGE_DIR = Path("src", "shoprec")
HEADER = "# Generated from {notebook}: edit the notebook, not this file."
GENERATED_MARK = "# Generated from "
CHUNK_SEPARATOR = "\n\n\n"


class ExportError(ShoprecError):
    """The notebooks cannot be exported as they stand; the message says where and what to fix."""


class NotebookReadError(ExportError):
    """A file is not a readable, valid notebook."""


@dataclass(frozen=True)
class Chunk:
    """One exported cell: its place in the notebook and the lines it fills in the module."""

    cell_index: int
    """0-based index of the cell in the notebook."""
    first_line: int
    """1-based number of the chunk's first line in the module."""
    last_line: int
    """1-based number of the chunk's last line in the module."""

    @property
    def cell_number(self) -> int:
        """The cell's number as JupyterLab counts cells (from 1)."""
        return self.cell_index + 1


@dataclass(frozen=True)
class GeneratedModule:
    """The text a generated module must have, and the notebook cells it comes from."""

    module: str
    """Dotted module name below `shoprec`, as in the tag."""
    notebook: Path
    """The exporting notebook, relative to the repo root."""
    text: str
    chunks: tuple[Chunk, ...]

    @property
    def tag(self) -> str:
        """The cell tag that exports to this module."""
        return EXPORT_PREFIX + self.module


def find_notebooks(notebooks_dir: Path) -> list[Path]:
    """All notebooks below `notebooks_dir` in sorted order, without Jupyter's checkpoint copies."""
    return sorted(
        path
        for path in notebooks_dir.rglob("*.ipynb")
        if ".ipynb_checkpoints" not in path.relative_to(notebooks_dir).parts
    )


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """The notebook at `path` in format 4; NotebookReadError naming the file if it is not one."""
    try:
        notebook = reader.reads(path.read_text(encoding="utf-8"))
        nbformat.validate(notebook)
    except nbformat.ValidationError as exc:
        raise NotebookReadError(f"{path}: not a valid notebook: {exc.message}") from exc
    except (OSError, ValueError, AttributeError, KeyError, TypeError) as exc:
        raise NotebookReadError(f"{path}: cannot read notebook: {exc}") from exc
    return nbformat.convert(notebook, 4)


def module_path(module: str) -> Path:
    """Where the dotted `module` lives, relative to the repo root."""
    *packages, name = module.split(".")
    return PACKAGE_DIR.joinpath(*packages, f"{name}.py")


def collect_exports(notebooks_dir: Path, repo_root: Path) -> dict[Path, GeneratedModule]:
    """The modules exported by the notebooks below `notebooks_dir`, by path relative to `repo_root`.

    `notebooks_dir` must lie inside `repo_root`. Raises ExportError for an unreadable notebook,
    a bad export tag, a module exported by two notebooks, or a target package without
    `__init__.py`.
    """
    cells: dict[Path, list[tuple[int, str]]] = {}
    exporters: dict[Path, tuple[str, Path, int]] = {}
    for path in find_notebooks(notebooks_dir):
        notebook = path.relative_to(repo_root)
        for module, cell_index, source in _exported_cells(path, notebook):
            target = module_path(module)
            _, first_notebook, first_index = exporters.setdefault(
                target, (module, notebook, cell_index)
            )
            if first_notebook != notebook:
                raise ExportError(
                    f"{target.as_posix()} is exported by two notebooks: "
                    f"{first_notebook.as_posix()} (cell {first_index + 1}) and "
                    f"{notebook.as_posix()} (cell {cell_index + 1}): "
                    "export each module from one notebook"
                )
            _require_packages(repo_root, target, f"{notebook.as_posix()}: cell {cell_index + 1}")
            cells.setdefault(target, []).append((cell_index, source))
    return {
        target: _formatted(_generate(module, notebook, cells[target]), target, repo_root)
        for target, (module, notebook, _) in exporters.items()
    }


def extract(repo_root: Path) -> list[Path]:
    """Write each exported module whose text changed; return their paths relative to `repo_root`.

    Raises ExportError, writing nothing, if a module to write exists but was not generated.
    """
    modules = collect_exports(repo_root / NOTEBOOKS_DIR, repo_root)
    for path, generated in modules.items():
        target = repo_root / path
        if target.exists() and not _is_generated(target):
            raise ExportError(
                f"{path.as_posix()} was not generated from a notebook, yet "
                f"{generated.notebook.as_posix()} exports to it (tag {generated.tag}): "
                "change the tag or move the hand-written module away"
            )
    written = []
    for path, generated in modules.items():
        target = repo_root / path
        if _read(target) != generated.text:
            target.write_text(generated.text, encoding="utf-8", newline="\n")
            written.append(path)
    return written


def check(repo_root: Path) -> list[str]:
    """What keeps the modules from matching the notebooks: missing, differing and orphan modules.

    Raises ExportError if the notebooks cannot be exported at all.
    """
    modules = collect_exports(repo_root / NOTEBOOKS_DIR, repo_root)
    problems = []
    for path, generated in modules.items():
        actual = _read(repo_root / path)
        if actual is None:
            problems.append(
                f"{path.as_posix()} is missing: {generated.notebook.as_posix()} exports it "
                f"(tag {generated.tag}); run make extract"
            )
        elif actual != generated.text:
            problems.append(_describe_difference(path, generated, actual))
    for path in _orphans(repo_root, modules):
        module = ".".join(path.relative_to(PACKAGE_DIR).with_suffix("").parts)
        problems.append(
            f"{path.as_posix()} was generated from a notebook, but no notebook exports to it "
            f"anymore: delete it, or tag a cell export:{module} again"
        )
    return problems


def extract_command(args: argparse.Namespace) -> int:
    """`shoprec extract [--check]`: write the generated modules, or report how they differ."""
    try:
        if args.check:
            problems = check(args.root)
            for problem in problems:
                print(problem)
            return 1 if problems else 0
        for path in extract(args.root):
            print(f"wrote {path.as_posix()}")
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _exported_cells(path: Path, notebook: Path) -> Iterator[tuple[str, int, str]]:
    """(module, cell index, source) of each cell of the notebook at `path` tagged for export."""
    for index, cell in enumerate(read_notebook(path).cells):
        tags = [tag for tag in cell.metadata.get("tags", []) if tag.startswith(EXPORT_PREFIX)]
        if not tags:
            continue
        where = f"{notebook.as_posix()}: cell {index + 1}"
        if len(tags) > 1:
            raise ExportError(
                f"{where} has {len(tags)} export tags ({', '.join(tags)}): "
                "a cell exports to one module; split the cell or drop a tag"
            )
        module = tags[0].removeprefix(EXPORT_PREFIX)
        if not _is_module_name(module):
            raise ExportError(
                f"{where}: bad tag {tags[0]!r}: expected export:<module> with a dotted Python "
                "module name, such as export:metrics or export:models.popularity"
            )
        if cell.cell_type != "code":
            raise ExportError(
                f"{where} is a {cell.cell_type} cell tagged {tags[0]}: only code cells export"
            )
        yield module, index, cell.source


def _is_module_name(name: str) -> bool:
    """Whether `name` is a dotted module name, and not a file name such as `metrics.py`."""
    return not name.endswith(".py") and all(
        part.isidentifier() and not keyword.iskeyword(part) for part in name.split(".")
    )


def _require_packages(repo_root: Path, target: Path, where: str) -> None:
    """Raise ExportError unless each directory from `src/shoprec` down to `target` is a package."""
    for package in reversed([p for p in target.parents if p.is_relative_to(PACKAGE_DIR)]):
        init = package / "__init__.py"
        if not (repo_root / init).is_file():
            raise ExportError(
                f"{where}: cannot export to {target.as_posix()}: package "
                f"{package.as_posix()} has no __init__.py; create {init.as_posix()}"
            )


def _generate(module: str, notebook: Path, cells: list[tuple[int, str]]) -> GeneratedModule:
    bodies = [source.rstrip() for _, source in cells]
    chunks = []
    first_line = 3  # after the header and a blank line
    for (cell_index, _), body in zip(cells, bodies, strict=True):
        last_line = first_line + body.count("\n")
        chunks.append(Chunk(cell_index, first_line, last_line))
        first_line = last_line + CHUNK_SEPARATOR.count("\n")
    header = HEADER.format(notebook=notebook.as_posix())
    text = f"{header}\n\n{CHUNK_SEPARATOR.join(bodies)}\n"
    return GeneratedModule(module, notebook, text, tuple(chunks))


def _formatted(generated: GeneratedModule, path: Path, repo_root: Path) -> GeneratedModule:
    """`generated` as `ruff format` writes it at `path`, its chunks moved to their new lines.

    Raises ExportError naming the notebook cell when a cell is not valid Python.
    """
    try:
        text = format_text(generated.text, path, repo_root)
    except FormatError as error:
        raise ExportError(_describe_syntax_error(generated, path, error.detail)) from None
    if text == generated.text:
        return generated
    before = generated.text.splitlines()
    after = text.splitlines()
    chunks = tuple(
        Chunk(
            chunk.cell_index,
            _moved_line(before, after, chunk.first_line),
            _moved_line(before, after, chunk.last_line, last=True),
        )
        for chunk in generated.chunks
    )
    return GeneratedModule(generated.module, generated.notebook, text, chunks)


def _moved_line(before: list[str], after: list[str], line: int, *, last: bool = False) -> int:
    """Where 1-based `line` of `before` is in `after`, a reformatted copy: a line that was
    reformatted maps to the first line of what replaced it (the last line, with `last`)."""
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if i1 <= line - 1 < i2:
            if tag == "equal":
                return j1 + (line - 1 - i1) + 1
            return max(j2, j1 + 1) if last else j1 + 1
    return len(after)


def _describe_syntax_error(generated: GeneratedModule, path: Path, stderr: str) -> str:
    """Which cell of which notebook ruff could not parse, from ruff's message about `path`."""
    found = re.search(rf"{re.escape(path.as_posix())}:(\d+):(\d+): (.*)", stderr)
    if found is None:
        return f"ruff could not format {path.as_posix()}: {stderr.strip()}"
    line = int(found[1])
    chunk = next(
        (chunk for chunk in generated.chunks if chunk.first_line <= line <= chunk.last_line),
        generated.chunks[-1],
    )
    return (
        f"{generated.notebook.as_posix()}: cell {chunk.cell_number} (tagged {generated.tag}) "
        f"is not valid Python: line {line - chunk.first_line + 1}, column {found[2]}: {found[3]}"
    )


def _read(path: Path) -> str | None:
    """The exact text of `path` (line endings kept), or None if there is no such file."""
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None


def _is_generated(path: Path) -> bool:
    """Whether the file at `path` starts with the header of a module generated from a notebook."""
    with path.open(encoding="utf-8", errors="replace") as file:
        first_line = file.readline()
    return first_line.startswith(GENERATED_MARK) and ".ipynb" in first_line


def _orphans(repo_root: Path, exported: dict[Path, GeneratedModule]) -> list[Path]:
    """Generated modules (relative to `repo_root`) that no notebook exports to."""
    return sorted(
        path.relative_to(repo_root)
        for path in (repo_root / PACKAGE_DIR).rglob("*.py")
        if path.relative_to(repo_root) not in exported and _is_generated(path)
    )


def _describe_difference(path: Path, generated: GeneratedModule, actual: str) -> str:
    """Say where `actual` first departs from the generated text, and which cell to edit."""
    notebook = generated.notebook.as_posix()
    prefix = f"{path.as_posix()} differs from {notebook}"
    matcher = difflib.SequenceMatcher(
        None,
        generated.text.splitlines(keepends=True),
        actual.splitlines(keepends=True),
        autojunk=False,
    )
    edits = [(i1, j1, j2) for op, i1, _, j1, j2 in matcher.get_opcodes() if op != "equal"]
    if all(i1 == 0 for i1, _, _ in edits):
        return f"{prefix}: line 1 is not the header make extract writes; run make extract"
    edits = [edit for edit in edits if edit[0] > 0]
    starts = [chunk.first_line - 1 for chunk in generated.chunks]

    def chunk_at(line: int) -> Chunk:
        return generated.chunks[max(bisect.bisect_right(starts, line) - 1, 0)]

    chunk = chunk_at(edits[0][0])
    spans = [(j1, j2) for i1, j1, j2 in edits if chunk_at(i1) == chunk]
    first, last = spans[0][0], spans[-1][1]
    if first == last:
        what = f"lines after line {first} were deleted by hand"
    elif last - first == 1:
        what = f"line {last} was edited by hand"
    else:
        what = f"lines {first + 1}-{last} were edited by hand"
    return (
        f"{prefix}: {what}; edit cell {chunk.cell_number} (tagged {generated.tag}) "
        f"of {notebook} and run make extract"
    )
