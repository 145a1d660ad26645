"""Intervals, tests and distances the monitor's decisions rest on (scipy does the statistics).

- `rate_interval`: Wilson score interval of a proportion (scipy's `binomtest(...).proportion_ci`);
- `compare_rates`: one-sided two-proportion z-test (pooled) that B's rate is below A's, with
  the Newcombe hybrid-score interval of the difference B - A;
- `psi` and `jensen_shannon`: how far one distribution moved from another.
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

CONFIDENCE = 0.95
PSI_EPSILON = 1e-4


@dataclass(frozen=True)
class Rate:
    """A proportion with its confidence interval; `value` is NaN when there is no sample."""

    successes: int
    trials: int
    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float | int]:
        """Plain numbers, for JSON."""
        return {"successes": self.successes, "trials": self.trials, "value": self.value,
                "low": self.low, "high": self.high}  # fmt: skip


def rate_interval(successes: int, trials: int, confidence: float = CONFIDENCE) -> Rate:
    """The rate `successes / trials` with its Wilson interval (NaNs for an empty sample)."""
    successes, trials = int(successes), int(trials)
    if trials < 0 or not 0 <= successes <= max(trials, 0):
        raise ValueError(f"{successes} successes out of {trials} trials: expected 0 <= s <= n")
    if trials == 0:
        return Rate(0, 0, math.nan, math.nan, math.nan)
    interval = stats.binomtest(successes, trials).proportion_ci(confidence, method="wilson")
    return Rate(successes, trials, successes / trials, float(interval.low), float(interval.high))


@dataclass(frozen=True)
class Comparison:
    """B against A: the difference of rates (B - A), its interval, and the one-sided p-value
    that B is worse than A."""

    a: Rate
    b: Rate
    difference: float
    low: float
    high: float
    p_worse: float


def compare_rates(
    a_successes: int, a_trials: int, b_successes: int, b_trials: int,
    confidence: float = CONFIDENCE,
) -> Comparison:  # fmt: skip
    """Is B's rate below A's? z-test p-value (one-sided) and Newcombe's interval of B - A."""
    a = rate_interval(a_successes, a_trials, confidence)
    b = rate_interval(b_successes, b_trials, confidence)
    if a.trials == 0 or b.trials == 0:
        return Comparison(a, b, math.nan, math.nan, math.nan, math.nan)
    pooled = (a.successes + b.successes) / (a.trials + b.trials)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / a.trials + 1 / b.trials))
    difference = b.value - a.value
    if spread == 0:
        p_worse = 0.0 if difference < 0 else 1.0
    else:
        p_worse = float(stats.norm.cdf(difference / spread))
    low = difference - math.sqrt((b.value - b.low) ** 2 + (a.high - a.value) ** 2)
    high = difference + math.sqrt((b.high - b.value) ** 2 + (a.value - a.low) ** 2)
    return Comparison(a, b, difference, low, high, p_worse)


def _distributions(expected: np.ndarray, actual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    expected = np.asarray(expected, dtype=float)
    actual = np.asarray(actual, dtype=float)
    if expected.shape != actual.shape or expected.ndim != 1:
        raise ValueError(f"counts of different shapes {expected.shape} and {actual.shape}")
    if (expected < 0).any() or (actual < 0).any() or expected.sum() == 0 or actual.sum() == 0:
        raise ValueError("counts must be non-negative with a positive total")
    return expected / expected.sum(), actual / actual.sum()


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of `actual` counts against `expected` (same bins)."""
    p, q = _distributions(expected, actual)
    p, q = np.maximum(p, PSI_EPSILON), np.maximum(q, PSI_EPSILON)
    return float(np.sum((q - p) * np.log(q / p)))


def jensen_shannon(expected: np.ndarray, actual: np.ndarray) -> float:
    """Jensen-Shannon divergence (base 2, from 0 to 1) of two count vectors over the same bins."""
    p, q = _distributions(expected, actual)
    return float(jensenshannon(p, q, base=2) ** 2)


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of how often each item was served (0: evenly; near 1: a few items)."""
    values = np.sort(np.asarray(counts, dtype=float))
    if len(values) == 0 or values.sum() == 0:
        return math.nan
    n = len(values)
    ranks = np.arange(1, n + 1)
    return float((2 * np.sum(ranks * values) / (n * values.sum())) - (n + 1) / n)
