"""Differences between two runs: parameter by parameter, result by result, notebook by notebook."""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from shoprec.tracking import results

ABSENT = object()
# Notebook metadata that changes on every execution (papermill timings, kernel timestamps).
VOLATILE_METADATA = ("papermill", "execution")


@dataclass(frozen=True)
class Difference:
    """One name whose value differs between run A and run B (ABSENT where a run lacks it)."""

    name: str
    before: Any
    after: Any


@dataclass(frozen=True)
class Comparison:
    """How many values two tables share, and the ones that differ."""

    identical: int
    differences: list[Difference] = field(default_factory=list)


def compare(before: dict[str, Any], after: dict[str, Any]) -> Comparison:
    """Compare two flat tables value by value (exactly: reproducible runs agree to the bit)."""
    differences = [
        Difference(name, before.get(name, ABSENT), after.get(name, ABSENT))
        for name in sorted(set(before) | set(after))
        if before.get(name, ABSENT) != after.get(name, ABSENT)
    ]
    return Comparison(len(set(before) | set(after)) - len(differences), differences)


def show(value: Any) -> str:
    """A value as shown in a report: JSON, or `(absent)`."""
    return "(absent)" if value is ABSENT else json.dumps(value, sort_keys=True)


def report(title: str, comparison: Comparison) -> list[str]:
    """Report lines: a count line, then one indented line per difference."""
    lines = [f"{title}: {comparison.identical} identical, {len(comparison.differences)} different"]
    lines += [
        f"  {item.name}: {show(item.before)} -> {show(item.after)}"
        for item in comparison.differences
    ]
    return lines


def compare_runs(run_a: Path, run_b: Path) -> tuple[Comparison, Comparison]:
    """The parameter and metric (result) comparisons of two run directories."""
    return (
        compare(results.parameters(run_a), results.parameters(run_b)),
        compare(results.results(run_a), results.results(run_b)),
    )


def executed_notebook(run_dir: Path, notebook: str) -> nbformat.NotebookNode:
    """A run's executed notebook without per-execution metadata; empty if it never ran."""
    path = Path(run_dir) / "notebooks" / f"{notebook}.ipynb"
    if not path.is_file():
        return nbformat.v4.new_notebook()
    node = nbformat.read(path, as_version=4)
    for metadata in [node.metadata, *(cell.metadata for cell in node.cells)]:
        for key in VOLATILE_METADATA:
            metadata.pop(key, None)
    return node
