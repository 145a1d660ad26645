"""The comparison of two sides: every metric at k = 1..20 and by segment, with intervals.

Both sides are scored with one ruler, `shoprec.metrics.per_user_metrics` of the package this
report runs; each side's own evaluation.json is checked against it (a difference means the
metric code differs between the report and that side, and is reported).
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from shoprec.metrics import per_user_metrics, rank_recommendations
from shoprec.report import bootstrap
from shoprec.report.bootstrap import Estimate
from shoprec.report.inputs import SideData
from shoprec.report.segments import Population, populations

PER_USER = ("ndcg", "precision", "recall", "map", "hit_rate")
COVERAGE = "coverage"
METRICS = (*PER_USER, COVERAGE)
LABELS = {
    "ndcg": "nDCG",
    "precision": "precision",
    "recall": "recall",
    "map": "MAP",
    "hit_rate": "hit rate",
    "coverage": "coverage",
}
CURVE_DEPTH = 20  # the curves run k = 1..20
UNPAIRED_STREAM = 1000  # head's draws when unpaired: streams apart from base's
AGREEMENT = 5e-7  # evaluation.json keeps 6 decimals: the report agrees with it to those


@dataclass(frozen=True)
class SegmentComparison:
    """The metrics at k within one segment."""

    name: str
    definition: str
    users: dict[str, int]  # test users in the segment, per side
    metrics: dict[str, Estimate]


@dataclass(frozen=True)
class Comparison:
    """Everything the report says about the two sides' metrics."""

    k: int
    paired: bool
    users: dict[str, int]
    metrics: dict[str, Estimate]  # at k
    curves: dict[str, list[Estimate]]  # at k = 1..depth
    segments: list[SegmentComparison]
    notes: list[str] = field(default_factory=list)

    @property
    def depth(self) -> int:
        """The largest k of the curves."""
        return len(next(iter(self.curves.values())))


def compare(base: SideData, head: SideData) -> Comparison:
    """Compare head with base on their test users (paired when the held-out data agree)."""
    k = head.k
    notes = []
    if base.k != k:
        notes.append(f"base's deploy policy scores at k = {base.k}, head's at {k}: shown at {k}")
    depth = min(CURVE_DEPTH, base.depth, head.depth)
    if depth < k:
        raise ValueError(f"the lists go {depth} deep, less than the policy's k = {k}")
    paired = base.same_held_out_data(head)
    if not paired:
        notes.append(
            "base and head were scored on different held-out data (head changes the data or "
            "the split): each side's users are resampled on their own (unpaired bootstrap), "
            "and the segments are cut on each side's own data"
        )
    base_lists, head_lists = rank_recommendations(base.lists), rank_recommendations(head.lists)
    base_users, head_users = _users(base.test), _users(head.test)
    base_counts = bootstrap.draw_counts(len(base_users), 0)
    head_counts = None if paired else bootstrap.draw_counts(len(head_users), UNPAIRED_STREAM)
    curves: dict[str, list[Estimate]] = {name: [] for name in PER_USER}
    for at in range(1, depth + 1):
        base_values = per_user_metrics(base_lists, base.test, at, metrics=PER_USER)
        head_values = per_user_metrics(head_lists, head.test, at, metrics=PER_USER)
        means = bootstrap.compare_means(
            base_values.to_numpy(), head_values.to_numpy(), base_counts, head_counts
        )
        for name, found in zip(PER_USER, means, strict=True):
            curves[name].append(found)
    curves[COVERAGE] = bootstrap.compare_coverage(
        _ranked(base_lists, base_users, base.catalogue, depth),
        _ranked(head_lists, head_users, head.catalogue, depth),
        (len(base.catalogue), len(head.catalogue)),
        base_counts,
        head_counts,
    )
    metrics = {name: curves[name][k - 1] for name in METRICS}
    for name, side in (("base", base), ("head", head)):
        notes += _disagreements(name, side, {m: getattr(e, name) for m, e in metrics.items()})
    segments = _segments(base, head, base_lists, head_lists, k, paired)
    users = {"base": len(base_users), "head": len(head_users)}
    return Comparison(k, paired, users, metrics, curves, segments, notes)


def _segments(
    base: SideData,
    head: SideData,
    base_lists: pd.DataFrame,
    head_lists: pd.DataFrame,
    k: int,
    paired: bool,
) -> list[SegmentComparison]:
    base_segments = populations(base.test, base.train, base.catalogue)
    head_segments = base_segments if paired else populations(head.test, head.train, head.catalogue)
    found = []
    for stream, (on_base, on_head) in enumerate(
        zip(base_segments, head_segments, strict=True), start=1
    ):
        users = {"base": len(on_base.users), "head": len(on_head.users)}
        if not all(users.values()):  # e.g. no test user holds a held-out tail item
            found.append(SegmentComparison(on_base.name, on_base.definition, users, {}))
            continue
        base_counts = bootstrap.draw_counts(len(on_base.users), stream)
        head_counts = (
            None if paired else bootstrap.draw_counts(len(on_head.users), UNPAIRED_STREAM + stream)
        )
        base_values = _segment_values(base_lists, base.test, on_base, k)
        head_values = _segment_values(head_lists, head.test, on_head, k)
        means = bootstrap.compare_means(base_values, head_values, base_counts, head_counts)
        base_items = _universe(on_base, base.catalogue)
        head_items = _universe(on_head, head.catalogue)
        coverage = bootstrap.compare_coverage(
            _ranked(base_lists, on_base.users, base_items, k),
            _ranked(head_lists, on_head.users, head_items, k),
            (len(base_items), len(head_items)),
            base_counts,
            head_counts,
        )[-1]
        definition = on_base.definition
        if on_head.definition != definition:
            definition = f"base: {definition}; head: {on_head.definition}"
        found.append(
            SegmentComparison(
                on_base.name,
                definition,
                users,
                {**dict(zip(PER_USER, means, strict=True)), COVERAGE: coverage},
            )
        )
    return found


def _segment_values(
    lists: pd.DataFrame, test: pd.DataFrame, segment: Population, k: int
) -> np.ndarray:
    """Per-user metrics at k of the segment's users, against the segment's held-out items."""
    held_out = test[test["user_id"].isin(segment.users)]
    if segment.items is not None:
        held_out = held_out[held_out["item_id"].isin(segment.items)]
    values = per_user_metrics(lists, held_out, k, metrics=PER_USER)
    return values.reindex(segment.users).to_numpy()


def _universe(segment: Population, catalogue: np.ndarray) -> np.ndarray:
    return catalogue if segment.items is None else segment.items


def _users(test: pd.DataFrame) -> np.ndarray:
    return np.sort(test["user_id"].unique())


def _ranked(lists: pd.DataFrame, users: np.ndarray, items: np.ndarray, depth: int) -> np.ndarray:
    """users x depth: the index in `items` of each user's item at each rank (-1: none, or an item
    not in `items`); `users` and `items` ascending, `lists` ranked 1, 2, ... per user."""
    top = lists[(lists["rank"] <= depth) & lists["user_id"].isin(users)]
    top = top[top["item_id"].isin(items)]
    ranked = np.full((len(users), depth), -1, dtype=np.int64)
    rows = np.searchsorted(users, top["user_id"].to_numpy())
    ranked[rows, top["rank"].to_numpy() - 1] = np.searchsorted(items, top["item_id"].to_numpy())
    return ranked


def _disagreements(label: str, side: SideData, found: dict[str, float]) -> list[str]:
    """Lines for each metric where the side's own evaluation disagrees with the report's."""
    own = side.evaluation.get("metrics", {}).get("candidate", {})
    return [
        f"{label}'s own evaluation gives {LABELS[name]}@{side.k} = {own[name]:.6f}, the report's "
        f"metrics {value:.6f}: the metric code differs between {label} and this report"
        for name, value in found.items()
        if name in own and abs(own[name] - value) > AGREEMENT
    ]
