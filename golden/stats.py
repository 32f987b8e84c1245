"""Small statistics for few seeds: means with t-intervals and paired comparisons."""

from __future__ import annotations

import math

from scipy import stats

CONFIDENCE = 0.95


def mean_ci(values: list[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Mean and half-width of its Student-t confidence interval (NaN where
    undefined)."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    mean = sum(values) / n
    if n == 1:
        return mean, math.nan
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)


def paired_t(a: list[float], b: list[float]) -> dict:
    """Paired t-test of a - b over seeds: mean difference, its interval and the
    two-sided p-value."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(
            "a paired test needs two equally long lists of at least two values"
        )
    diffs = [x - y for x, y in zip(a, b)]
    mean, half = mean_ci(diffs)
    if all(d == diffs[0] for d in diffs):
        p = 1.0 if diffs[0] == 0 else 0.0
    else:
        p = float(stats.ttest_rel(a, b).pvalue)
    return {"mean_diff": mean, "ci": half, "p_value": p, "n": len(a)}


def holm(p_values: dict) -> dict:
    """Holm's step-down adjustment of p-values for multiple comparisons (controls the
    family-wise error rate, uniformly more powerful than Bonferroni): the one correction
    the book applies, so a threshold is never hand-rolled."""
    ordered = sorted(p_values, key=p_values.get)
    adjusted, running = {}, 0.0
    for i, key in enumerate(ordered):
        running = max(running, min(1.0, (len(ordered) - i) * p_values[key]))
        adjusted[key] = running
    return adjusted
