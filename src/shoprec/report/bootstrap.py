"""The paired bootstrap over test users: seeded, exact, the same on every machine.

Resample the test users with replacement (RESAMPLES times, from a seeded generator); in each
resample take the mean of every per-user metric, on both sides over the same drawn users, and
the difference head - base. The 95% interval is the 2.5th to 97.5th percentile of those
differences. Coverage is a catalogue-level number, not a mean over users: in each resample it is
the share of the catalogue found in the lists of the drawn users (a user drawn twice adds
nothing), so its interval reflects which users happened to be asked. A resample holds about 63%
of the users once or more, so it shows fewer items than the full sample: the resampled
differences are shifted by their mean bias to centre on the observed difference before the
percentiles are taken (for means there is no such bias, and no shift).

Sums are exact: per-user values in [0, 1] are put on a grid of 2**-b (b chosen so that any sum
of n of them stays below 2**52) and summed as integers held in float64, so no BLAS kernel or
SIMD path can change a digit. When the sides were scored on different held-out data (head
changed the data or the split), each side's users are resampled on their own: an unpaired
bootstrap, which the report says.
"""

from dataclasses import dataclass

import numpy as np

RESAMPLES = 2000
CONFIDENCE = 0.95
SEED = 42
BETTER, WORSE, NO_CHANGE = "better", "worse", "no significant change"
TOLERANCE = 1e-9  # a ratio of float sums may exceed 1 by rounding; clipped to [0, 1]


@dataclass(frozen=True)
class Estimate:
    """A metric on both sides, head - base, the interval of head - base and its verdict."""

    base: float
    head: float
    delta: float
    low: float
    high: float
    verdict: str

    def as_dict(self) -> dict[str, float | str]:
        """The JSON form: base, head, delta, low, high, verdict."""
        return {
            "base": self.base,
            "head": self.head,
            "delta": self.delta,
            "low": self.low,
            "high": self.high,
            "verdict": self.verdict,
        }


def verdict(low: float, high: float) -> str:
    """`better` when the whole interval is above 0, `worse` when below, else no change."""
    if low > 0:
        return BETTER
    if high < 0:
        return WORSE
    return NO_CHANGE


def draw_counts(n: int, stream: int, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """How often each of `n` users is drawn in each resample (resamples x n, whole numbers as
    floats, ready to multiply).

    `stream` names the population resampled (its own generator, `default_rng([seed, stream])`),
    so draws do not depend on what else the report resamples or in which order.
    """
    if n < 1:
        raise ValueError("cannot resample an empty set of users")
    drawn = np.random.default_rng([seed, stream]).integers(0, n, size=(resamples, n))
    offsets = np.arange(resamples)[:, None] * n
    counts = np.bincount((drawn + offsets).ravel(), minlength=resamples * n)
    return counts.reshape(resamples, n).astype(float)


def _grid_bits(n: int) -> int:
    """Bits after the binary point for values in [0, 1] so that n of them sum below 2**52."""
    return 52 - int(np.ceil(np.log2(n + 1)))


def resampled_sums(values: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, float]:
    """Each resample's sum of `values` (n x m, in [0, 1]) on the exact grid, and the grid unit.

    The sums are integers in float64: `sums * unit / n` are the resampled means.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 2 or values.shape[0] != counts.shape[1]:
        raise ValueError(f"values of shape {values.shape} do not match {counts.shape[1]} users")
    if not np.all((values >= -TOLERANCE) & (values <= 1 + TOLERANCE)):
        raise ValueError("per-user values must lie in [0, 1] (NaN is not allowed)")
    bits = _grid_bits(counts.shape[1])
    on_grid = np.rint(np.ldexp(np.clip(values, 0, 1), bits))
    return counts @ on_grid, float(np.ldexp(1.0, -bits))


def shown_items(ranked: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """How many distinct items the lists of the drawn users show, at each depth.

    `ranked[u, r]` is the index of the item user u gets at rank r + 1 (-1: none, or an item
    that does not count); `counts` is resamples x users. Returns depth x resamples.
    """
    drawn = counts > 0
    shown = np.zeros((counts.shape[0], int(ranked.max(initial=-1)) + 1), dtype=bool)
    found = np.empty((ranked.shape[1], counts.shape[0]))
    for rank in range(ranked.shape[1]):
        users = np.flatnonzero(ranked[:, rank] >= 0)
        order = np.argsort(ranked[users, rank], kind="stable")
        users = users[order]
        items = ranked[users, rank]
        if len(users):  # an item is shown if any of the users it is ranked for was drawn
            starts = np.flatnonzero(np.r_[True, items[1:] != items[:-1]])
            shown[:, items[starts]] |= np.logical_or.reduceat(drawn[:, users], starts, axis=1)
        found[rank] = np.count_nonzero(shown, axis=1)
    return found


def interval(delta_samples: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The percentile interval of the resampled differences."""
    tail = (1 - confidence) / 2
    low, high = np.quantile(delta_samples, [tail, 1 - tail])
    return float(low), float(high)


def estimate(base: float, head: float, delta_samples: np.ndarray) -> Estimate:
    """The estimate of head - base from the two full-sample values and resampled differences."""
    low, high = interval(delta_samples)
    return Estimate(base, head, head - base, low, high, verdict(low, high))


def compare_means(
    base: np.ndarray,
    head: np.ndarray,
    base_counts: np.ndarray,
    head_counts: np.ndarray | None = None,
) -> list[Estimate]:
    """One estimate per column of per-user values (n x m on each side).

    Paired (`head_counts` None): the rows are the same users on both sides, drawn by
    `base_counts`. Unpaired: each side's own users, drawn by its own counts. Point values are the
    plain means, as `shoprec.metrics.ranking_metrics` gives them.
    """
    base_sums, base_unit = resampled_sums(base, base_counts)
    if head_counts is None:  # paired: exact integer differences, then one division
        head_sums, _ = resampled_sums(head, base_counts)
        deltas = (head_sums - base_sums) * base_unit / base_counts.shape[1]
    else:
        head_sums, head_unit = resampled_sums(head, head_counts)
        deltas = head_sums * head_unit / head_counts.shape[1]
        deltas = deltas - base_sums * base_unit / base_counts.shape[1]
    return [
        estimate(_mean(base[:, j]), _mean(head[:, j]), deltas[:, j]) for j in range(base.shape[1])
    ]


def compare_coverage(
    base: np.ndarray,
    head: np.ndarray,
    universe: tuple[int, int],
    base_counts: np.ndarray,
    head_counts: np.ndarray | None = None,
) -> list[Estimate]:
    """Coverage at each depth on both sides (distinct items shown / `universe`'s base and head
    sizes), with its interval. `base` and `head` are ranked item indices as for `shown_items`;
    paired or not as for `compare_means`."""
    base_all = shown_items(base, np.ones((1, base.shape[0])))[:, 0] / universe[0]
    head_all = shown_items(head, np.ones((1, head.shape[0])))[:, 0] / universe[1]
    base_shown = shown_items(base, base_counts) / universe[0]
    head_shown = shown_items(head, base_counts if head_counts is None else head_counts)
    deltas = head_shown / universe[1] - base_shown
    estimates = []
    for depth in range(base.shape[1]):
        observed = head_all[depth] - base_all[depth]
        shift = float(np.mean(deltas[depth])) - observed
        estimates.append(estimate(base_all[depth], head_all[depth], deltas[depth] - shift))
    return estimates


def _mean(column: np.ndarray) -> float:
    """The mean as numpy sums a contiguous column (as `ranking_metrics` does)."""
    return float(np.mean(np.ascontiguousarray(column)))
