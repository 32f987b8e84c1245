"""The effective step in continuous time: the heavy ball, its slow root and the
finite-eta correction, derived with SymPy.

Kovachki & Stuart (JMLR 2021) show that fixed-momentum methods follow the gradient flow
rescaled by 1/(1 - alpha) as the learning rate eta goes to zero, and a modified equation
at small but finite eta. On one coordinate of the quadratic f(x) = x^T H x / 2 with a
diagonal H everything can be derived:

* :func:`heavy_ball` runs the update itself, on numbers or on SymPy symbols;
* :func:`rate_expansion` and :func:`startup_delay` derive the finite-eta correction from
  the slow root of the characteristic polynomial, and :func:`modified_loss_gradient`
  the modified loss whose gradient flow it is;
* :func:`rescaled_flow`, :func:`modified_flow`, :func:`corrected_rates` and
  :func:`effective_rate` evaluate the flows and rates in floating point, from those
  SymPy results (nothing is retyped); :mod:`golden.dynamics` measures the heavy ball
  against them.

The identities behind the chapter's equations are registered in the book's one registry,
:data:`golden.identities.IDENTITIES`, built on first use (the SymPy series take
seconds); the chapter proves each next to its labelled equation with
:func:`golden.identities.check`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np
import sympy as sp

from golden import identities
from golden.derivations.momentum import (
    alpha,
    eta,
    free_gradient,
    gradients,
    h,
    momentum_weights,
    w0,
)
from golden.identities import register

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


# ------------------------------------------------------------------ in floating point


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


def rescaled_flow(curvatures, x0, alpha_value: float, times) -> np.ndarray:
    """Exact solution x(t) = exp(-H t / (1 - alpha)) x_0 of
    dx/dt = -grad f(x) / (1 - alpha), shape (len(times), d)."""
    curvatures = np.atleast_1d(np.asarray(curvatures, dtype=float))
    times = np.asarray(times, dtype=float)
    decay = np.exp(-np.outer(times, curvatures) / (1 - alpha_value))
    return np.asarray(x0, dtype=float) * decay


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
