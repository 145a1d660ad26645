"""Re-execute committed notebooks in place, top to bottom, so their outputs are current.

Each notebook's code is formatted as the ruff-format hook formats it; the notebook then runs with
its own default parameters (the smoke profile, fixed seeds) in its own folder through
`shoprec.execution` (papermill, streams coalesced) and is cleaned by `shoprec.devtools.nbclean`.
The same code gives the same file, byte for byte, and the commit hooks leave it alone. A
notebook is only replaced once it ran to the end: when a cell fails, it is left as it was and
the partial run is kept aside. The pipeline notebooks (`notebooks/0*.ipynb`) run one after
another in name order, as the pipeline runs them (`04_evaluate` reads the model `03_train`
saved); library notebooks are independent, and up to `jobs` notebooks run at once.
"""

import argparse
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from shoprec.devtools.extract import find_notebooks
from shoprec.devtools.nbclean import clean_file
from shoprec.devtools.ruff import FormatError, format_text
from shoprec.errors import ShoprecError, UsageError
from shoprec.execution import NotebookFailed, execute_notebook

PIPELINE_PREFIX = "0"
"""Notebooks in `notebooks/` whose names start with this form the pipeline, run in name order."""


class ExecuteError(ShoprecError):
    """A notebook could not be executed; it is left unchanged."""


def execute_copy(notebook: Path, root: Path, scratch: Path) -> Path:
    """Format, execute top to bottom (in the notebook's own folder) and clean a copy of
    `notebook`, of the repository at `root`, into the folder `scratch`; the copy's path.

    Raises ExecuteError naming the cell that failed and where the partial run is kept, or what
    ruff could not parse.
    """
    formatted, executed = scratch / f"formatted-{notebook.name}", scratch / notebook.name
    try:
        relative = notebook.resolve().relative_to(root.resolve())
        formatted.write_text(format_text(notebook.read_text(encoding="utf-8"), relative, root))
        execute_notebook(formatted, executed, {}, cwd=notebook.parent)
    except (FormatError, NotebookFailed) as error:
        raise ExecuteError(f"{error}; {notebook} is unchanged") from None
    clean_file(executed)
    return executed


def execute_in_place(notebook: Path, root: Path) -> None:
    """Replace `notebook` with its formatted, executed and cleaned copy (`execute_copy`); when
    that fails, the notebook is unchanged and the partial run is kept."""
    scratch = Path(tempfile.mkdtemp(prefix=f"shoprec-execute-{notebook.stem}-"))
    shutil.copyfile(execute_copy(notebook, root, scratch), notebook)
    shutil.rmtree(scratch)


def chains(notebooks: Iterable[Path]) -> list[list[Path]]:
    """The notebooks grouped into sequences that must run in order: the pipeline notebooks in
    name order as one sequence, every other notebook alone."""
    pipeline, others = [], []
    for path in notebooks:
        in_pipeline = path.parent.name == "notebooks" and path.name.startswith(PIPELINE_PREFIX)
        (pipeline if in_pipeline else others).append(path)
    sequences = [[path] for path in others]
    if pipeline:
        sequences.insert(0, sorted(pipeline, key=lambda path: path.name))
    return sequences


def execute_all(notebooks: Sequence[Path], root: Path, jobs: int) -> list[str]:
    """Execute `notebooks` of the repository at `root` in place, `jobs` at a time; the failures'
    messages (empty: none)."""
    sequences = chains(notebooks)
    with ProcessPoolExecutor(max_workers=max(1, min(jobs, len(sequences)))) as pool:
        outcomes = pool.map(_execute_chain, sequences, [root] * len(sequences))
        return [message for messages in outcomes for message in messages]


def execute_command(args: argparse.Namespace) -> int:
    """`shoprec execute [NOTEBOOK...]`: re-execute notebooks in place (default: all of them)."""
    notebooks = args.notebooks or find_notebooks(args.root / "notebooks")
    missing = [str(path) for path in notebooks if not path.is_file()]
    if missing:
        raise UsageError(f"no such notebook: {', '.join(missing)}")
    failures = execute_all(notebooks, args.root, args.jobs or os.cpu_count() or 1)
    if failures:
        raise ExecuteError("\n".join(failures))
    return 0


def _execute_chain(chain: list[Path], root: Path) -> list[str]:
    """Execute `chain` in order, stopping at the first failure; its message, if any."""
    for notebook in chain:
        print(f"executing {notebook}", flush=True)
        try:
            execute_in_place(notebook, root)
        except ShoprecError as error:
            skipped = [str(path) for path in chain[chain.index(notebook) + 1 :]]
            after = f"\nnot executed, as they follow it: {', '.join(skipped)}" if skipped else ""
            return [f"{error}{after}"]
    return []
