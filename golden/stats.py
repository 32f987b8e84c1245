"""Small statistics for few seeds: means with t-intervals, paired comparisons, Holm and
max-t, and a spline fit scored out of sample (:func:`spline_fit`)."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from typing import Callable, Hashable

import numpy as np
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


# ----------------------------------------------------- a spline in log x, out of sample

KNOT_QUANTILES = (0.25, 0.5, 0.75)
"""Interior knots of the cubic regression spline in log10 x, at these quantiles."""
EXTRA_TERMS = 3
"""z, z^2 and z log10 x: what the extended model adds to the spline."""
LOGIT_FLOOR = 0.5e-4
"""Values are clipped to [floor, 1 - floor] before the logit (half a test image in
10,000), so an accuracy of exactly 0 or 1 has a finite logit."""
LINKS = ("identity", "logit")


def _design(
    u: np.ndarray, knots: np.ndarray, extra: np.ndarray | None = None
) -> np.ndarray:
    """Cubic regression spline in u (truncated-power basis), optionally plus the terms
    in ``extra``: extra, extra^2 and extra u."""
    u = np.asarray(u, dtype=float)
    columns = [u**power for power in range(4)]
    columns += [np.clip(u - knot, 0, None) ** 3 for knot in knots]
    if extra is not None:
        columns += [extra, extra**2, extra * u]
    return np.column_stack(columns)


@dataclass(frozen=True)
class _Solution:
    """A least-squares fit on the scale it was fitted on."""

    coefficients: np.ndarray
    residuals: np.ndarray
    loo_residuals: np.ndarray
    rss: float

    @property
    def parameters(self) -> int:
        return len(self.coefficients)


def _least_squares(design: np.ndarray, y: np.ndarray) -> _Solution:
    """The fit and its leave-one-out residuals (exact for least squares, via the hat
    matrix)."""
    coefficients, *_ = np.linalg.lstsq(design, y, rcond=None)
    residuals = y - design @ coefficients
    leverage = np.einsum("ij,ji->i", design, np.linalg.pinv(design))
    loo = residuals / (1 - leverage)
    return _Solution(coefficients, residuals, loo, float(residuals @ residuals))


def _link(y: np.ndarray, link: str) -> tuple[np.ndarray, Callable]:
    """The fitted target and the map back to y: identity, or the logit, whose inverse
    keeps every fitted value inside (0, 1)."""
    if link == "identity":
        return y, lambda v: v
    if link == "logit":
        clipped = np.clip(y, LOGIT_FLOOR, 1 - LOGIT_FLOOR)
        return np.log(clipped / (1 - clipped)), lambda v: 1 / (1 + np.exp(-v))
    raise ValueError(f"unknown link {link!r}: choose one of {', '.join(LINKS)}")


@dataclass(frozen=True)
class Model:
    """One model of a :class:`SplineFit`, mapped back to the scale of y."""

    parameters: int
    fitted: np.ndarray  # in sample
    loo_predicted: np.ndarray  # each point by the fit without it
    r2: float
    r2_loo: float


def _on_scale(fit: _Solution, target: np.ndarray, y: np.ndarray, back) -> Model:
    """A fit's in-sample and leave-one-out predictions and R^2, on the scale of y (the
    identity link leaves them as they are)."""
    fitted = back(target - fit.residuals)
    loo_predicted = back(target - fit.loo_residuals)
    residuals, loo = y - fitted, y - loo_predicted
    total = float(np.sum((y - y.mean()) ** 2))
    return Model(
        fit.parameters,
        fitted,
        loo_predicted,
        1 - float(residuals @ residuals) / total,
        1 - float(loo @ loo) / total,
    )


@dataclass(frozen=True)
class SplineFit:
    """y against a smooth curve in log10 x alone, and with a second variable z."""

    x: np.ndarray
    y: np.ndarray
    link: str
    alone: Model  # the spline in log10 x
    extended: Model  # the spline plus z, z^2 and z log10 x
    spearman: float  # rank correlation of x and y
    spearman_p: float
    f: float  # F-test of the added terms, on the scale of the link
    f_p: float
    sigma: float  # residual standard deviation of the spline alone
    curve_x: np.ndarray  # the spline alone, over the range of x
    curve_y: np.ndarray

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def loo_residuals(self) -> np.ndarray:
        """y minus the spline fitted without each point (above the curve is
        positive)."""
        return self.y - self.alone.loo_predicted


def spline_fit(x, y, z, link: str = "identity") -> SplineFit:
    """How well a smooth curve in u = log10 x predicts y, and whether z adds to it.

    * Spearman's rank correlation between x and y (monotone association);
    * a cubic regression spline in u with knots at the quartiles of u (7 parameters),
      scored by R^2 in sample and leave one out (a curve, not a rank, because y need
      not rise monotonically with x);
    * the same spline plus z, z^2 and z u (10 parameters), and the F-test of the added
      terms: does z carry information that x does not?

    With ``link="logit"`` both models are fitted to the logit of y (and the F-test is
    made there), so the curve cannot leave (0, 1); R^2, predictions and the curve are
    mapped back to y. Raises ValueError with fewer than twice the parameters of the
    larger model.
    """
    x, y, z = (np.asarray(values, dtype=float) for values in (x, y, z))
    n = len(y)
    parameters = 4 + len(KNOT_QUANTILES) + EXTRA_TERMS
    if n < 2 * parameters:
        raise ValueError(f"only {n} points: too few to fit and compare the two models")
    target, back = _link(y, link)
    u_raw = np.log10(x)
    centre = u_raw.mean()
    u = u_raw - centre
    knots = np.quantile(u, KNOT_QUANTILES)
    alone = _least_squares(_design(u, knots), target)
    both = _least_squares(_design(u, knots, z), target)
    extra = both.parameters - alone.parameters
    residual_freedom = n - both.parameters
    f_stat = ((alone.rss - both.rss) / extra) / (both.rss / residual_freedom)
    rho, rho_p = stats.spearmanr(x, y)
    alone_y = _on_scale(alone, target, y, back)
    residuals = y - alone_y.fitted
    grid_u = np.linspace(u.min(), u.max(), 400)
    return SplineFit(
        x,
        y,
        link,
        alone_y,
        _on_scale(both, target, y, back),
        float(rho),
        float(rho_p),
        float(f_stat),
        float(stats.f.sf(f_stat, extra, residual_freedom)),
        math.sqrt(float(residuals @ residuals) / (n - alone.parameters)),
        10 ** (grid_u + centre),
        back(_design(grid_u, knots) @ alone.coefficients),
    )
