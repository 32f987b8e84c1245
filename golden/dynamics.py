"""Heavy-ball momentum in continuous time, and the effective step as a predictor of
accuracy.

Kovachki & Stuart (JMLR 2021) show that fixed-momentum methods follow the gradient flow
rescaled by 1/(1 - alpha) as the learning rate eta goes to zero, and a modified equation
at small but finite eta. This module checks both on the quadratic f(x) = x^T H x / 2
with a diagonal H, where everything can be computed:

* :func:`heavy_ball` runs the update itself (any gradient, numbers or SymPy symbols),
  and :func:`heavy_ball_quadratic` runs the same recurrence in C for the long runs of
  small eta;
* :func:`rescaled_flow` is the exact solution of dx/dt = -grad f(x) / (1 - alpha);
* :func:`rate_expansion` and :func:`startup_delay` derive, with SymPy, the finite-eta
  correction from the slow root of the characteristic polynomial, and
  :func:`modified_flow` evaluates the corrected flow from those SymPy results (nothing
  is retyped);
* :func:`convergence_study` measures the largest error over [t0, T] for a sequence of
  eta, and :func:`convergence_order` fits its order.

The identities behind the chapter's equations are registered in the book's one registry,
:data:`golden.identities.IDENTITIES`, built on first use (the SymPy series take
seconds), and are proved next to each labelled equation by :func:`check`.

The last part, :func:`predictive_measures`, asks how much of a grid's accuracy the
effective step eta / (1 - alpha) alone explains. It takes one row per grid pair (the
pair, its accuracies, its mean and interval), built by
:mod:`golden.studies.effective_lr`, and does not import torch.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
import sympy as sp

from golden import identities, theory
from golden.derivations.momentum import (
    alpha,
    eta,
    free_gradient,
    gradients,
    h,
    momentum_weights,
    quadratic_gradient,
    w0,
)
from golden.identities import Identity, register

__all__ = ["quadratic_gradient"]  # re-exported: the gradient the heavy ball runs on

# ----------------------------------------------------------------------- the heavy ball


def heavy_ball(gradient: Callable, x0, eta_value, alpha_value, steps: int) -> list:
    """Positions x_0, ..., x_steps of
    x_{k+1} = x_k - eta grad(x_k) + alpha (x_k - x_{k-1}), with x_{-1} = x_0.

    ``gradient(k, x)`` is the gradient used at step k (counted from 1) at position x,
    the convention of :func:`golden.derivations.momentum.momentum_weights` (for instance
    :func:`~golden.derivations.momentum.quadratic_gradient`). Plain arithmetic only, so
    the same code runs on numpy arrays and on SymPy symbols (the chapter proves it
    equals Eq. 32). Starting at rest (x_{-1} = x_0) is what an optimizer with a zero
    momentum buffer does.
    """
    positions = [x0]
    previous = x0
    for k in range(1, steps + 1):
        current = positions[-1]
        positions.append(
            current
            - eta_value * gradient(k, current)
            + alpha_value * (current - previous)
        )
        previous = current
    return positions


def heavy_ball_quadratic(
    curvatures, x0, eta_value: float, alpha_value: float, steps: int
) -> np.ndarray:
    """The same recurrence on f = x^T diag(curvatures) x / 2, shape (steps + 1, d).

    With a diagonal H every coordinate follows
    x_{k+1} = (1 + alpha - eta h) x_k - alpha x_{k-1} on its own. Started at rest,
    x_1 = (1 - eta h) x_0, which is the impulse response of the filter
    (1 - alpha z^-1) / (1 - (1 + alpha - eta h) z^-1 + alpha z^-2) times x_0; scipy's
    ``lfilter`` runs it in C, so the 10^5 steps of a small eta take milliseconds. The
    tests check it against :func:`heavy_ball` step by step.
    """
    from scipy import signal  # here, not at import: scipy.signal takes a while to load

    curvatures = np.atleast_1d(np.asarray(curvatures, dtype=float))
    x0 = np.broadcast_to(np.asarray(x0, dtype=float), curvatures.shape)
    impulse = np.zeros(steps + 1)
    impulse[0] = 1.0
    columns = [
        start
        * signal.lfilter(
            [1.0, -alpha_value],
            [1.0, -(1 + alpha_value - eta_value * curvature), alpha_value],
            impulse,
        )
        for curvature, start in zip(curvatures, x0)
    ]
    return np.stack(columns, axis=1)


def rescaled_flow(curvatures, x0, alpha_value: float, times) -> np.ndarray:
    """Exact solution x(t) = exp(-H t / (1 - alpha)) x_0 of
    dx/dt = -grad f(x) / (1 - alpha), shape (len(times), d)."""
    curvatures = np.atleast_1d(np.asarray(curvatures, dtype=float))
    times = np.asarray(times, dtype=float)
    decay = np.exp(-np.outer(times, curvatures) / (1 - alpha_value))
    return np.asarray(x0, dtype=float) * decay


# -------------------------------------------------------------- SymPy: the slow root

time_symbol = sp.Symbol("t", real=True)
complement = sp.Symbol("m", positive=True)
"""m = 1 - alpha > 0: series and limits need the sign of 1 - alpha, which a real alpha
does not carry."""

_TRACE = 1 + alpha - eta * h
_DISCRIMINANT = _TRACE**2 - 4 * alpha
SLOW_ROOT = (_TRACE + sp.sqrt(_DISCRIMINANT)) / 2
FAST_ROOT = (_TRACE - sp.sqrt(_DISCRIMINANT)) / 2
"""r_+ and r_- of chi(r) = r^2 - (1 + alpha - eta h) r + alpha
(golden.derivations.momentum.CHARACTERISTIC_POLYNOMIAL)."""

SLOW_AMPLITUDE = ((1 - eta * h) - FAST_ROOT) / (SLOW_ROOT - FAST_ROOT)
FAST_AMPLITUDE = (SLOW_ROOT - (1 - eta * h)) / (SLOW_ROOT - FAST_ROOT)
"""A_+ and A_- in x_k = (A_+ r_+^k + A_- r_-^k) x_0, fixed by x_0 and
x_1 = (1 - eta h) x_0 (start at rest)."""

EFFECTIVE_RATE = -sp.log(SLOW_ROOT) / eta
"""lambda(eta) with r_+ = exp(-lambda eta): the continuous decay rate of the slow mode
at finite eta."""


def _with_complement(expr):
    return expr.subs(alpha, 1 - complement)


def _back(expr):
    return sp.factor(sp.simplify(expr.subs(complement, 1 - alpha)))


def _series_coefficients(expr, order: int) -> tuple[sp.Expr, ...]:
    """Coefficients of eta^0 ... eta^(order - 1) in the expansion of expr at eta = 0
    (0 < alpha < 1)."""
    series = sp.series(_with_complement(expr), eta, 0, order).removeO()
    return tuple(_back(series.coeff(eta, power)) for power in range(order))


@lru_cache(maxsize=None)
def root_limits() -> tuple[sp.Expr, sp.Expr]:
    """lim_{eta -> 0} of r_+ and r_-, for 0 < alpha < 1: 1 (the slow root) and alpha
    (the fast one)."""
    return tuple(
        _back(sp.limit(_with_complement(root), eta, 0, "+"))
        for root in (SLOW_ROOT, FAST_ROOT)
    )


@lru_cache(maxsize=None)
def rate_expansion(order: int = 2) -> tuple[sp.Expr, ...]:
    """lambda(eta) = c_0 + c_1 eta + ...: the first ``order`` coefficients, derived by
    SymPy's series."""
    return _series_coefficients(EFFECTIVE_RATE, order)


@lru_cache(maxsize=None)
def amplitude_expansion(order: int = 2) -> tuple[sp.Expr, ...]:
    """A_+ = a_0 + a_1 eta + ...: how much of x_0 the slow mode carries."""
    return _series_coefficients(SLOW_AMPLITUDE, order)


@lru_cache(maxsize=None)
def startup_delay() -> sp.Expr:
    """delta with A_+ = exp(c_0 delta) + O(eta^2): the time the slow mode lags behind,
    eta a_1 / c_0.

    SymPy finds it equal to eta alpha / (1 - alpha), whatever the curvature: starting
    from rest costs alpha / (1 - alpha) steps, the missing terms of the geometric sum of
    Eq. (32).
    """
    a0, a1 = amplitude_expansion(2)
    c0 = rate_expansion(2)[0]
    if sp.simplify(a0 - 1) != 0:
        raise AssertionError(f"the slow amplitude does not start at 1: {a0}")
    return sp.factor(sp.simplify(eta * a1 / c0))


def modified_loss_gradient(coordinate=w0) -> sp.Expr:
    """d/dx of f / (1 - alpha) + eta (1 + alpha) / (4 (1 - alpha)^3) |grad f|^2 for
    f = h x^2 / 2."""
    loss = h * coordinate**2 / 2
    gradient = sp.diff(loss, coordinate)
    correction = eta * (1 + alpha) / (4 * (1 - alpha) ** 3)
    modified = loss / (1 - alpha) + correction * gradient**2
    return sp.diff(modified, coordinate)


@lru_cache(maxsize=None)
def _numeric_coefficients() -> tuple[Callable, Callable, Callable]:
    c0, c1 = rate_expansion(2)
    return (
        sp.lambdify((h, alpha), c0, "numpy"),
        sp.lambdify((h, alpha), c1, "numpy"),
        sp.lambdify((eta, alpha), startup_delay(), "numpy"),
    )


def corrected_rates(curvatures, eta_value: float, alpha_value: float) -> np.ndarray:
    """c_0 + c_1 eta for each curvature, from the SymPy expansion."""
    c0, c1, _ = _numeric_coefficients()
    curvatures = np.asarray(curvatures, dtype=float)
    return c0(curvatures, alpha_value) + c1(curvatures, alpha_value) * eta_value


def modified_flow(
    curvatures, x0, eta_value: float, alpha_value: float, times
) -> np.ndarray:
    """exp(-(c_0 + c_1 eta)(t - delta)) x_0 per coordinate: the slow mode to O(eta^2),
    shape (len(times), d)."""
    *_, delay = _numeric_coefficients()
    rates = np.atleast_1d(corrected_rates(curvatures, eta_value, alpha_value))
    shifted = np.asarray(times, dtype=float) - float(delay(eta_value, alpha_value))
    return np.asarray(x0, dtype=float) * np.exp(-np.outer(shifted, rates))


def effective_rate(eta_value, alpha_value, curvature=1.0):
    """-log(r_+) / eta from the exact slow root, in floating point, without
    cancellation.

    (1 - r_+)(1 - r_-) = chi(1) = eta h and r_- = 2 alpha / (trace + sqrt(disc)), so
    1 - r_+ = eta h / (1 - r_-) and log1p keeps the digits a direct log(r_+) would lose.
    NaN where the roots are complex (no real slow mode).
    """
    eta_value, alpha_value, curvature = (
        np.asarray(v, dtype=float) for v in (eta_value, alpha_value, curvature)
    )
    trace = 1 + alpha_value - eta_value * curvature
    disc = trace**2 - 4 * alpha_value
    with np.errstate(invalid="ignore", divide="ignore"):
        fast = 2 * alpha_value / (trace + np.sqrt(disc))
        rate = -np.log1p(-eta_value * curvature / (1 - fast)) / eta_value
    return np.where(disc >= 0, rate, np.nan)


# ----------------------------------------------------------------- measuring the error

CURVATURES = (1.0, 10.0)
START = (1.0, 1.0)
HORIZON = 1.0
LAYER_END = 0.1
"""The study's quadratic, start and time window; errors after t0 = LAYER_END skip the
initial layer."""
STUDY_ETAS = tuple(1e-3 / 2**j for j in range(11))
ASYMPTOTIC_LIMIT = 0.1
"""Orders are fitted where eta * max(h) / (1 - alpha)^2 <= this: the expansion parameter
is small."""

COMPARISONS = {
    "rescaled flow, 0 ≤ t ≤ T": ("rescaled", 0.0),
    "rescaled flow, t0 ≤ t ≤ T": ("rescaled", LAYER_END),
    "modified flow, 0 ≤ t ≤ T": ("modified", 0.0),
    "modified flow, t0 ≤ t ≤ T": ("modified", LAYER_END),
}


def max_error(
    trajectory: np.ndarray, reference: np.ndarray, times, t_start: float = 0.0
) -> float:
    """max over t_start <= t_k of the Euclidean distance between the trajectories."""
    mask = np.asarray(times) >= t_start - 1e-12
    return float(np.max(np.linalg.norm(trajectory[mask] - reference[mask], axis=1)))


def errors_for(
    eta_value: float,
    alpha_value: float,
    curvatures=CURVATURES,
    x0=START,
    horizon: float = HORIZON,
    comparisons=None,
) -> dict[str, float]:
    """Run the heavy ball to t = horizon (time t = k eta) and measure each comparison's
    largest error."""
    steps = int(round(horizon / eta_value))
    times = np.arange(steps + 1) * eta_value
    path = heavy_ball_quadratic(curvatures, x0, eta_value, alpha_value, steps)
    flows = {
        "rescaled": rescaled_flow(curvatures, x0, alpha_value, times),
        "modified": modified_flow(curvatures, x0, eta_value, alpha_value, times),
    }
    return {
        name: max_error(path, flows[flow], times, start)
        for name, (flow, start) in (comparisons or COMPARISONS).items()
    }


def asymptotic(
    etas, alpha_value: float, curvatures=CURVATURES, limit: float = ASYMPTOTIC_LIMIT
) -> np.ndarray:
    """Which eta lie in the small-step regime, eta max(h) / (1 - alpha)^2 <= limit."""
    return np.asarray(etas) * max(curvatures) / (1 - alpha_value) ** 2 <= limit


def convergence_order(etas, errors) -> float:
    """Slope of log(error) against log(eta), least squares: the measured order of
    convergence."""
    slope, _ = np.polyfit(
        np.log(np.asarray(etas, dtype=float)),
        np.log(np.asarray(errors, dtype=float)),
        1,
    )
    return float(slope)


def convergence_study(
    alpha_value: float,
    etas=STUDY_ETAS,
    curvatures=CURVATURES,
    x0=START,
    horizon: float = HORIZON,
) -> dict:
    """Errors of every comparison for every eta, and the orders fitted over the
    small-step regime."""
    etas = np.asarray(etas, dtype=float)
    table = [errors_for(value, alpha_value, curvatures, x0, horizon) for value in etas]
    errors = {name: np.array([row[name] for row in table]) for name in COMPARISONS}
    fit = asymptotic(etas, alpha_value, curvatures)
    if fit.sum() < 3:
        raise ValueError(
            "fewer than three eta in the small-step regime: extend the sequence of eta"
        )
    orders = {
        name: convergence_order(etas[fit], values[fit])
        for name, values in errors.items()
    }
    return {
        "alpha": alpha_value,
        "etas": etas,
        "fitted": fit,
        "errors": errors,
        "orders": orders,
    }


# ------------------------------------------------------------------------- identities


def _unit_slow_mode_log():
    """log of the slow mode A_+ r_+^(t/eta) minus log of the modified flow, per unit
    x_0."""
    c0, c1 = rate_expansion(2)
    modified_log = -(c0 + c1 * eta) * (time_symbol - startup_delay())
    return sp.log(SLOW_AMPLITUDE) - EFFECTIVE_RATE * time_symbol - modified_log


SAMPLING = {
    eta: (1e-4, 1e-2),
    h: (0.1, 10.0),
    alpha: (0.05, 0.95),
    time_symbol: (0.0, 2.0),
    w0: (-2.0, 2.0),
    **{g: (-2.0, 2.0) for g in gradients},
}
"""Where the numeric checks of this module's identities sample each symbol: small steps
eta, where the expansions hold."""


def _register(name: str, lhs, rhs, assumptions: str) -> None:
    register(name, lhs, rhs, assumptions, ranges=SAMPLING)


@identities.builds
def _identities() -> None:
    steps = 4
    _register(
        "elr-heavy-ball",
        sp.Matrix(heavy_ball(free_gradient, w0, eta, alpha, steps)),
        sp.Matrix(momentum_weights([eta] * steps, alpha, free_gradient, w0)),
        f"any gradients g_1, ..., g_{steps}; both start at rest",
    )
    flow = w0 * sp.exp(-h * time_symbol / (1 - alpha))
    _register(
        "elr-rescaled-flow",
        sp.Matrix([sp.diff(flow, time_symbol), flow.subs(time_symbol, 0)]),
        sp.Matrix([-h * flow / (1 - alpha), w0]),
        "one coordinate of a diagonal H, alpha != 1",
    )
    _register(
        "elr-slow-root",
        sp.Matrix(root_limits()),
        sp.Matrix([1, alpha]),
        "eta -> 0+, 0 < alpha < 1, any h",
    )
    _register(
        "elr-modes",
        sp.Matrix(
            [
                SLOW_AMPLITUDE + FAST_AMPLITUDE,
                SLOW_AMPLITUDE * SLOW_ROOT + FAST_AMPLITUDE * FAST_ROOT,
            ]
        ),
        sp.Matrix([1, 1 - eta * h]),
        "distinct roots; x_0 = 1, x_1 = 1 - eta h (start at rest)",
    )
    _register(
        "elr-rate-expansion",
        sp.Matrix(rate_expansion(2)),
        sp.Matrix([h / (1 - alpha), h**2 * (1 + alpha) / (2 * (1 - alpha) ** 3)]),
        "series at eta = 0, 0 < alpha < 1",
    )
    c0, c1 = rate_expansion(2)
    _register(
        "elr-modified-loss",
        modified_loss_gradient(),
        (c0 + c1 * eta) * w0,
        "f = h x^2 / 2 per coordinate, alpha != 1",
    )
    _register(
        "elr-startup-delay",
        sp.Matrix([*amplitude_expansion(2), startup_delay()]),
        sp.Matrix([1, alpha * h / (1 - alpha) ** 2, eta * alpha / (1 - alpha)]),
        "series at eta = 0, 0 < alpha < 1",
    )
    _register(
        "elr-modified-flow",
        sp.Matrix(_series_coefficients(_unit_slow_mode_log(), 2)),
        sp.Matrix([0, 0]),
        "series at eta = 0, 0 < alpha < 1, fixed t",
    )


def check(name: str) -> Identity:
    """Prove the identity ``name`` (SymPy residual zero) and return it for the chapter
    to show; the same as :func:`golden.identities.check`."""
    return identities.check(name)


# ------------------------------------------------------ the effective step on a grid

KNOT_QUANTILES = (0.25, 0.5, 0.75)
"""Interior knots of the cubic regression spline in log10 of the effective step, at
these quantiles."""
ALPHA_TERMS = 3
"""alpha, alpha^2 and alpha * log10(effective step): what the second model adds to the
spline."""


def effective_step_points(rows: Sequence[dict]) -> list[dict]:
    """One point per grid pair: eta, alpha, eta / (1 - alpha), mean test accuracy and
    its interval."""
    points = []
    for row in rows:
        lr, momentum = row["pair"]
        finished = len(row["test_acc"])
        points.append(
            {
                "pair": row["pair"],
                "eta": lr,
                "alpha": momentum,
                "step": theory.effective_step(lr, momentum),
                "acc": row["test_acc_mean"],
                "ci": row["test_acc_ci"],
                "per_seed": list(row["test_acc"]),
                "diverged": row["diverged"],
                "seeds": finished + row["diverged"],
            }
        )
    return points


def _design(
    u: np.ndarray, knots: Sequence[float], momenta: np.ndarray | None = None
) -> np.ndarray:
    """Cubic regression spline in u (truncated-power basis), optionally plus the alpha
    terms."""
    u = np.asarray(u, dtype=float)
    columns = [u**power for power in range(4)]
    columns += [np.clip(u - knot, 0, None) ** 3 for knot in knots]
    if momenta is not None:
        columns += [momenta, momenta**2, momenta * u]
    return np.column_stack(columns)


def _least_squares(design: np.ndarray, y: np.ndarray) -> dict:
    """Fit, in-sample R^2, leave-one-out R^2 (exact for least squares, via the hat
    matrix) and LOO residuals."""
    coefficients, *_ = np.linalg.lstsq(design, y, rcond=None)
    residuals = y - design @ coefficients
    leverage = np.einsum("ij,ji->i", design, np.linalg.pinv(design))
    loo = residuals / (1 - leverage)
    total = float(np.sum((y - y.mean()) ** 2))
    return {
        "coefficients": coefficients,
        "residuals": residuals,
        "loo_residuals": loo,
        "rss": float(residuals @ residuals),
        "r2": 1 - float(residuals @ residuals) / total,
        "r2_loo": 1 - float(loo @ loo) / total,
        "parameters": design.shape[1],
    }


LOGIT_FLOOR = 0.5e-4
"""Accuracies are clipped to [floor, 1 - floor] before the logit (half a test image in
10,000), so a run at exactly 0 or 1 has a finite logit."""
LINKS = ("identity", "logit")


def _link(y: np.ndarray, link: str) -> tuple[np.ndarray, Callable]:
    """The fitted target and the map back to accuracy: identity, or the logit, whose
    inverse keeps every fitted value inside (0, 1)."""
    if link == "identity":
        return y, lambda v: v
    if link == "logit":
        clipped = np.clip(y, LOGIT_FLOOR, 1 - LOGIT_FLOOR)
        return np.log(clipped / (1 - clipped)), lambda v: 1 / (1 + np.exp(-v))
    raise ValueError(f"unknown link {link!r}: choose one of {', '.join(LINKS)}")


def _on_accuracy(fit: dict, target: np.ndarray, y: np.ndarray, back) -> dict:
    """In-sample and leave-one-out predictions, residuals and R^2 of a fit, mapped back
    to accuracy (the identity link leaves them as they are)."""
    fitted = back(target - fit["residuals"])
    loo_predicted = back(target - fit["loo_residuals"])
    residuals, loo = y - fitted, y - loo_predicted
    total = float(np.sum((y - y.mean()) ** 2))
    return {
        "fitted": fitted,
        "loo_predicted": loo_predicted,
        "residuals": residuals,
        "loo_residuals": loo,
        "rss": float(residuals @ residuals),
        "r2": 1 - float(residuals @ residuals) / total,
        "r2_loo": 1 - float(loo @ loo) / total,
    }


def predictive_measures(
    rows: Sequence[dict],
    named: dict[str, tuple[float, float]] | None = None,
    link: str = "identity",
) -> dict:
    """How well eta / (1 - alpha) alone predicts mean test accuracy over the pairs with
    no diverged seed.

    * Spearman's rank correlation between effective step and accuracy (monotone
      association);
    * R^2 of a smooth curve in u = log10(eta / (1 - alpha)): a cubic regression spline
      with knots at the quartiles of u (7 parameters), in-sample and leave-one-out (a
      smooth curve, not a rank, because too large a step lowers the accuracy again);
    * R^2 of the same spline plus alpha, alpha^2 and alpha u (10 parameters), and the
      F-test of the added terms: does alpha carry information that the effective step
      does not?
    * for each ``named`` pair, its leave-one-out residual from the spline (fitted
      without it), also in units of the spline's residual standard deviation (above the
      curve is positive).

    With ``link="logit"`` both models are fitted to the logit of the accuracy (and the
    F-test is made there), so the curve cannot leave (0, 1); R^2, residuals and the
    curve are then mapped back to accuracy. ``points`` gives each pair's step,
    accuracy, fitted value and leave-one-out residual, in accuracy.
    """
    from scipy import stats as scipy_stats  # here, not at import: it takes a while

    points = [
        p
        for p in effective_step_points(rows)
        if p["diverged"] == 0 and not math.isnan(p["acc"])
    ]
    n = len(points)
    parameters = 4 + len(KNOT_QUANTILES) + ALPHA_TERMS
    if n < 2 * parameters:
        raise ValueError(
            f"only {n} pairs without divergence: "
            "too few to fit and compare the two models"
        )
    steps = np.array([p["step"] for p in points])
    momenta = np.array([p["alpha"] for p in points])
    y = np.array([p["acc"] for p in points])
    target, back = _link(y, link)
    u_raw = np.log10(steps)
    centre = u_raw.mean()
    u = u_raw - centre
    knots = np.quantile(u, KNOT_QUANTILES)
    alone = _least_squares(_design(u, knots), target)
    both = _least_squares(_design(u, knots, momenta), target)
    extra = both["parameters"] - alone["parameters"]
    residual_freedom = n - both["parameters"]
    f_stat = ((alone["rss"] - both["rss"]) / extra) / (both["rss"] / residual_freedom)
    f_p = float(scipy_stats.f.sf(f_stat, extra, residual_freedom))
    rho, rho_p = scipy_stats.spearmanr(steps, y)
    alone_acc = _on_accuracy(alone, target, y, back)
    both_acc = _on_accuracy(both, target, y, back)
    sigma = math.sqrt(alone_acc["rss"] / (n - alone["parameters"]))
    grid_u = np.linspace(u.min(), u.max(), 400)
    curve = back(_design(grid_u, knots) @ alone["coefficients"])
    index = {p["pair"]: i for i, p in enumerate(points)}
    pairs = {}
    for name, pair in (named or {}).items():
        if pair in index:
            i = index[pair]
            residual = alone_acc["loo_residuals"][i]
            pairs[name] = {
                "pair": pair,
                "step": float(steps[i]),
                "acc": float(y[i]),
                "predicted": float(alone_acc["loo_predicted"][i]),
                "residual": float(residual),
                "z": float(residual / sigma),
            }
    return {
        "n": n,
        "excluded": len(rows) - n,
        "link": link,
        "spearman": float(rho),
        "spearman_p": float(rho_p),
        "r2_step": alone_acc["r2"],
        "r2_step_loo": alone_acc["r2_loo"],
        "r2_both": both_acc["r2"],
        "r2_both_loo": both_acc["r2_loo"],
        "parameters_step": alone["parameters"],
        "parameters_both": both["parameters"],
        "f": float(f_stat),
        "f_p": f_p,
        "sigma": sigma,
        "curve_steps": 10 ** (grid_u + centre),
        "curve_acc": curve,
        "peak_step": float(10 ** (grid_u[np.argmax(curve)] + centre)),
        "named": pairs,
        "points": [
            {
                "pair": p["pair"],
                "step": float(steps[i]),
                "acc": float(y[i]),
                "fitted": float(alone_acc["fitted"][i]),
                "loo_residual": float(alone_acc["loo_residuals"][i]),
            }
            for i, p in enumerate(points)
        ],
    }
