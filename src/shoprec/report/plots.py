"""The report's figures (PNG): each metric at k = 1..20 on both sides, head - base with its
interval at each k, and head - base by segment."""

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from shoprec.report.bootstrap import BETTER, WORSE
from shoprec.report.comparison import LABELS, METRICS, Comparison

METRICS_AT_K = "metrics_at_k.png"
DELTAS_AT_K = "deltas_at_k.png"
SEGMENT_DELTAS = "segment_deltas.png"
PLOTS = (METRICS_AT_K, DELTAS_AT_K, SEGMENT_DELTAS)
COLOURS = {"base": "#7f7f7f", "head": "#1f77b4", BETTER: "#2ca02c", WORSE: "#d62728"}
UNCHANGED = "#7f7f7f"
DPI = 110


def write_plots(comparison: Comparison, out: Path) -> list[str]:
    """Write the three figures into `out`; their file names."""
    for name, draw in (
        (METRICS_AT_K, _metrics_at_k),
        (DELTAS_AT_K, _deltas_at_k),
        (SEGMENT_DELTAS, _segment_deltas),
    ):
        figure = draw(comparison)
        figure.savefig(out / name, dpi=DPI, metadata={"Software": None})
    return list(PLOTS)


def _grid(title: str, *, share_k: bool = True) -> tuple[Figure, np.ndarray]:
    """Six panels, one per metric; k along the bottom row when the panels share it."""
    figure = Figure(figsize=(11, 6), layout="constrained")
    figure.suptitle(title)
    axes = figure.subplots(2, 3, sharex=share_k)
    if share_k:
        for ax in axes[-1]:
            ax.set_xlabel("k")
    return figure, axes.ravel()


def _metrics_at_k(comparison: Comparison) -> Figure:
    figure, axes = _grid("Each metric at k: base and head")
    ks = np.arange(1, comparison.depth + 1)
    for ax, name in zip(axes, METRICS, strict=True):
        curve = comparison.curves[name]
        for side in ("base", "head"):
            values = [getattr(estimate, side) for estimate in curve]
            ax.plot(ks, values, marker="o", markersize=3, color=COLOURS[side], label=side)
        ax.axvline(comparison.k, color="black", linewidth=0.8, linestyle=":")
        ax.set(title=f"{LABELS[name]}@k")
        ax.set_xticks(ks[::2] if len(ks) > 10 else ks)
    axes[0].legend(loc="best")
    return figure


def _deltas_at_k(comparison: Comparison) -> Figure:
    method = "paired" if comparison.paired else "unpaired"
    figure, axes = _grid(
        f"head - base at each k, with its 95% {method} bootstrap interval\n"
        "(green: better, red: worse, grey: no significant change)"
    )
    ks = np.arange(1, comparison.depth + 1)
    for ax, name in zip(axes, METRICS, strict=True):
        curve = comparison.curves[name]
        low = [estimate.low for estimate in curve]
        high = [estimate.high for estimate in curve]
        ax.fill_between(ks, low, high, color=COLOURS["head"], alpha=0.2, linewidth=0)
        ax.plot(ks, [estimate.delta for estimate in curve], color=COLOURS["head"])
        colours = [COLOURS.get(estimate.verdict, UNCHANGED) for estimate in curve]
        ax.scatter(ks, [estimate.delta for estimate in curve], c=colours, s=12, zorder=3)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.axvline(comparison.k, color="black", linewidth=0.8, linestyle=":")
        ax.set(title=f"{LABELS[name]}@k: head - base")
        ax.set_xticks(ks[::2] if len(ks) > 10 else ks)
    return figure


def _segment_deltas(comparison: Comparison) -> Figure:
    k = comparison.k
    figure, axes = _grid(
        f"head - base at k = {k} by segment, with 95% intervals\n"
        "(green: better, red: worse, grey: no significant change)",
        share_k=False,
    )
    rows = [("all test users", comparison.metrics)]
    rows += [(segment.name, segment.metrics) for segment in comparison.segments]
    positions = np.arange(len(rows))[::-1]
    for ax, name in zip(axes, METRICS, strict=True):
        for position, (_, metrics) in zip(positions, rows, strict=True):
            if name not in metrics:
                continue
            found = metrics[name]
            colour = COLOURS.get(found.verdict, UNCHANGED)
            ax.errorbar(
                found.delta,
                position,
                xerr=[[found.delta - found.low], [found.high - found.delta]],
                fmt="o",
                color=colour,
                capsize=3,
            )
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_yticks(positions, [label for label, _ in rows])
        ax.set(title=f"{LABELS[name]}@{k}: head - base")
    return figure
