"""Differences between two runs: parameter by parameter, result by result, notebook by notebook."""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from shoprec.runs import executed_notebook as executed_path
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
    """The parameter and result comparisons of two run directories (every value, for
    `reproduce`: tuning tables included)."""
    return (
        compare(results.parameters(run_a), results.parameters(run_b)),
        compare(results.results(run_a), results.results(run_b)),
    )


def compare_metrics(run_a: Path, run_b: Path) -> Comparison:
    """The metrics of two runs as MLflow records them (tuning tables are not metrics)."""
    return compare(results.metrics(run_a), results.metrics(run_b))


def executed_notebook(run_dir: Path, notebook: str) -> nbformat.NotebookNode:
    """A run's executed notebook as compared: no per-execution metadata, cell ids by position,
    and the run's own directory written `<run>`; empty if the notebook never ran."""
    run_dir = Path(run_dir)
    path = executed_path(run_dir, notebook)
    if not path.is_file():
        return nbformat.v4.new_notebook()
    text = path.read_text().replace(str(run_dir.resolve()), results.RUN_DIR_PLACEHOLDER)
    node = nbformat.reads(text.replace(str(run_dir), results.RUN_DIR_PLACEHOLDER), as_version=4)
    for index, cell in enumerate(node.cells):
        cell["id"] = f"cell-{index}"
    for metadata in [node.metadata, *(cell.metadata for cell in node.cells)]:
        for key in VOLATILE_METADATA:
            metadata.pop(key, None)
    return node


@dataclass(frozen=True)
class Headline:
    """A headline metric of the candidate model in two runs."""

    name: str
    before: float | None
    after: float | None

    def line(self) -> str:
        """`ndcg@10  0.2477 -> 0.2501  (+0.0024)`."""
        shown = [
            f"{value:.4f}" if value is not None else "(absent)"
            for value in (self.before, self.after)
        ]
        delta = (
            f"  ({self.after - self.before:+.4f})"
            if self.before is not None and self.after is not None
            else ""
        )
        return f"  {self.name:<14} {shown[0]} -> {shown[1]}{delta}"


def headlines(run_a: Path, run_b: Path) -> list[Headline]:
    """The candidate's evaluation metrics (nDCG, precision, recall, MAP) in both runs."""
    metric_names = ("ndcg", "precision", "recall", "map", "map_at_k", "coverage")
    a, b = results.metrics(run_a), results.metrics(run_b)
    rows = []
    for name in metric_names:
        key = f"evaluation.candidate.{name}"
        if key in a or key in b:
            rows.append(Headline(f"{name}@k", a.get(key), b.get(key)))
    return rows


def changed_parameters(parameters: Comparison) -> list[str]:
    """Changed parameters, one line per name, naming the notebooks where it changed."""
    by_name: dict[tuple[str, str, str], list[str]] = {}
    for item in parameters.differences:
        notebook, _, name = item.name.partition(".")
        by_name.setdefault((name, show(item.before), show(item.after)), []).append(notebook)
    return [
        f"  {name}: {before} -> {after}  ({', '.join(notebooks)})"
        for (name, before, after), notebooks in sorted(by_name.items())
    ]
