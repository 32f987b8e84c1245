"""Small statistics for few seeds: means with t-intervals and paired comparisons."""

from __future__ import annotations

import itertools
import math
import random
from typing import Hashable

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


def t_statistic(values: list[float]) -> float:
    """One-sample t of ``values`` against zero; ±inf for equal non-zero values, 0 for
    all zero."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    if sd == 0:
        return 0.0 if mean == 0 else math.copysign(math.inf, mean)
    return mean / (sd / math.sqrt(n))


MAX_PATTERNS = 4096  # beyond this many sign patterns, a fixed random sample of them


def max_t(differences: dict[Hashable, dict[int, float]]) -> dict:
    """Westfall and Young's single-step max-t test of a family of paired differences
    that share their replicates (one-sided: large positive differences).

    Under the null hypothesis that the two sides of every comparison are exchangeable
    within a replicate, flipping the sign of a replicate's differences, in every
    comparison at once (which keeps their dependence), is as likely as the data. The
    adjusted p of a comparison is the share of sign patterns whose *largest* t over
    the family reaches its t: the chance that the best of the family looks this good
    when nothing differs. Every pattern of the replicates is used (the identity
    among them, so p is at least one over their number), or a fixed random sample of
    :data:`MAX_PATTERNS` when there are more. Comparisons with fewer than two
    replicates are left out."""
    tested = {k: d for k, d in differences.items() if len(d) >= 2}
    replicates = sorted({r for d in tested.values() for r in d})
    if not tested:
        return {"observed": {}, "adjusted": {}, "maxima": [], "patterns": 0}
    if 2 ** len(replicates) <= MAX_PATTERNS:
        patterns = list(itertools.product((1, -1), repeat=len(replicates)))
    else:
        rng = random.Random(0)
        patterns = [(1,) * len(replicates)] + [
            tuple(rng.choice((1, -1)) for _ in replicates)
            for _ in range(MAX_PATTERNS - 1)
        ]
    observed = {k: t_statistic(list(d.values())) for k, d in tested.items()}
    maxima = []
    for signs in patterns:
        flip = dict(zip(replicates, signs))
        maxima.append(
            max(
                t_statistic([flip[r] * v for r, v in d.items()])
                for d in tested.values()
            )
        )
    adjusted = {
        k: sum(m >= t - 1e-9 * abs(t) for m in maxima) / len(maxima)
        if math.isfinite(t)
        else sum(m == t for m in maxima) / len(maxima)
        for k, t in observed.items()
    }
    return {
        "observed": observed,
        "adjusted": adjusted,
        "maxima": maxima,
        "patterns": len(patterns),
    }
