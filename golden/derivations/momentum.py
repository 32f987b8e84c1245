"""Heavy-ball momentum, Eq. (32): the update, PyTorch's form of it, and its stability.

The chapter chapters/momentum.md displays these expressions and checks the identities
registered here; :func:`stability_figure` draws its figure.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
import sympy as sp

from golden import identities, plots, theory
from golden.identities import register, symbols

# Real rather than positive, so that SymPy derives the sign conditions instead of
# assuming them.
eta, h = symbols("eta h", 0.001, 1.0, real=True)
alpha = symbols("alpha", 0.01, 0.99, real=True)
r = symbols("r", -2.0, 2.0, real=True)
w0 = symbols("w_0", -2.0, 2.0, real=True)
UNROLLED_STEPS = 6
gradients = symbols(f"g_1:{UNROLLED_STEPS + 1}", -2.0, 2.0, real=True)
step_etas = symbols(f"eta_1:{UNROLLED_STEPS + 1}", 0.001, 1.0, positive=True)
k = sp.Symbol("k", integer=True, nonnegative=True)
t = symbols("t", 1, 40, integer=True, positive=True)

Gradient = Callable[[int, sp.Expr], sp.Expr]
"""``gradient(t, w)``: the gradient seen at step t (counted from 1) at weight w."""


def momentum_weights(etas: Sequence, momentum, gradient: Gradient, start) -> list:
    """Weights w(0), ..., w(T) under Eq. (32), dw(t) = -eta_t g(t) + alpha dw(t-1).

    Starts at rest; ``gradient(t, w)`` is the gradient seen at step t (counted from 1)
    at weight w.
    """
    weights, step = [start], 0
    for step_number, eta_t in enumerate(etas, start=1):
        step = -eta_t * gradient(step_number, weights[-1]) + momentum * step
        weights.append(weights[-1] + step)
    return weights


def torch_sgd_weights(lrs: Sequence, momentum, gradient: Gradient, start) -> list:
    """Weights under torch.optim.SGD's rule (no dampening, no Nesterov).

    v <- mu v + g, w <- w - lr v, from v = 0.
    """
    weights, velocity = [start], 0
    for step_number, lr in enumerate(lrs, start=1):
        velocity = momentum * velocity + gradient(step_number, weights[-1])
        weights.append(weights[-1] - lr * velocity)
    return weights


def free_gradient(step_number: int, weight) -> sp.Symbol:
    """Any gradient sequence at all: the symbol g_t, whatever the weight."""
    return gradients[step_number - 1]


def quadratic_gradient(curvatures) -> Gradient:
    """The gradient H w of f(w) = w^T H w / 2 with H = diag(curvatures), as a Gradient.

    ``curvatures`` is a sequence of numbers (numpy arithmetic on arrays of weights) or
    one SymPy curvature, such as ``h`` for the one-dimensional f(w) = h w^2 / 2.
    """
    if isinstance(curvatures, sp.Basic):
        diagonal = curvatures
    else:
        diagonal = np.asarray(curvatures, dtype=float)
    return lambda step_number, weight: diagonal * weight


def _steps(weights: list) -> list:
    return [after - before for before, after in zip(weights, weights[1:])]


def effective_step_limit() -> sp.Expr:
    """lim_{t->oo} of the constant-gradient step -eta g (1 - alpha^t)/(1 - alpha).

    With alpha = e^-s, s > 0.
    """
    decay = sp.Symbol("s", positive=True)
    g = sp.Symbol("g", real=True)
    step = -eta * g * (1 - sp.exp(-decay * t)) / (1 - alpha)
    return sp.limit(step, t, sp.oo)


def schedule_gap() -> sp.Expr:
    """w(2) under Eq. (32) minus w(2) under torch's rule when the rate changes."""
    two_steps = step_etas[:2]
    ours = momentum_weights(two_steps, alpha, free_gradient, w0)[-1]
    theirs = torch_sgd_weights(two_steps, alpha, free_gradient, w0)[-1]
    return sp.factor(ours - theirs)


CHARACTERISTIC_POLYNOMIAL = r**2 - (1 + alpha - eta * h) * r + alpha
"""Put w(t) = r^t into the heavy-ball recurrence and divide by r^(t-1)."""


def heavy_ball_roots() -> tuple[sp.Expr, sp.Expr]:
    """The two roots r of the characteristic polynomial: w(t) combines their powers."""
    return tuple(sp.solve(CHARACTERISTIC_POLYNOMIAL, r))


def stability_conditions() -> sp.Boolean:
    """Both roots of a monic quadratic c(r) lie inside the unit circle iff
    c(1) > 0, c(-1) > 0 and |c(0)| < 1."""

    def at(value):
        return sp.expand(CHARACTERISTIC_POLYNOMIAL.subs(r, value))

    return sp.And(at(1) > 0, at(-1) > 0, sp.Abs(at(0)) < 1)


def largest_stable_eta_h() -> sp.Expr:
    """The edge of the stable region in eta*h for a given alpha: where c(-1) = 0."""
    (edge,) = sp.solve(CHARACTERISTIC_POLYNOMIAL.subs(r, -1), eta)
    return sp.expand(edge * h)


@lru_cache(maxsize=None)
def _stability_test() -> Callable:
    return sp.lambdify((eta, h, alpha), stability_conditions(), "numpy")


def is_stable(eta_value, alpha_value, curvature=1.0):
    """The stability conditions, evaluated numerically (works on numpy arrays)."""
    return _stability_test()(eta_value, curvature, alpha_value)


def spectral_radius(eta_value, alpha_value, curvature=1.0):
    """max |r| over both roots: the factor by which the error shrinks per step.

    Works on numpy arrays.
    """
    alpha_value = np.asarray(alpha_value, dtype=float)
    trace = 1 + alpha_value - np.asarray(eta_value, dtype=float) * curvature
    root_of_discriminant = np.sqrt(trace.astype(complex) ** 2 - 4 * alpha_value)
    return np.maximum(
        np.abs((trace + root_of_discriminant) / 2),
        np.abs((trace - root_of_discriminant) / 2),
    )


def pair_summary(
    eta_value: float, alpha_value: float, curvature: float = 1.0
) -> dict[str, float]:
    """What a (learning rate, momentum) pair does on f(w) = h w^2 / 2."""
    largest_eta_h = float(largest_stable_eta_h().subs(alpha, alpha_value))
    radius = float(spectral_radius(eta_value, alpha_value, curvature))
    return {
        "learning rate": eta_value,
        "momentum": alpha_value,
        "effective step": theory.effective_step(eta_value, alpha_value),
        "largest stable h": largest_eta_h / eta_value,
        f"spectral radius at h = {curvature:g}": radius,
    }


@identities.builds
def _identities() -> None:
    constant_eta = [eta] * UNROLLED_STEPS
    register(
        "momentum-equivalence",
        sp.Matrix(momentum_weights(constant_eta, alpha, free_gradient, w0)),
        sp.Matrix(torch_sgd_weights(constant_eta, alpha, free_gradient, w0)),
        f"constant learning rate eta = lr, alpha = mu, both start at rest; "
        f"{UNROLLED_STEPS} steps",
    )
    register(
        "momentum-smoothing",
        _steps(momentum_weights(constant_eta, alpha, free_gradient, w0))[-1],
        -eta
        * sum(
            alpha**lag * gradients[UNROLLED_STEPS - 1 - lag]
            for lag in range(UNROLLED_STEPS)
        ),
        "starts at rest, dw(0) = 0",
    )
    register(
        "momentum-geometric",
        (1 - alpha) * sp.Sum(alpha**k, (k, 0, t - 1)),
        1 - alpha**t,
        "any alpha; divide by 1 - alpha when alpha != 1",
    )
    torch_weights = torch_sgd_weights(step_etas, alpha, free_gradient, w0)
    torch_schedule_steps = _steps(torch_weights)
    register(
        "sgd-schedule",
        torch_schedule_steps[-1],
        -step_etas[-1] * gradients[UNROLLED_STEPS - 1]
        + alpha * step_etas[-1] / step_etas[-2] * torch_schedule_steps[-2],
        "learning rate eta_t changing from step to step",
    )
    weights = momentum_weights(constant_eta, alpha, quadratic_gradient(h), w0)
    register(
        "heavy-ball-recurrence",
        sp.Matrix(weights[2:]),
        sp.Matrix(
            [
                (1 + alpha - eta * h) * current - alpha * previous
                for previous, current in zip(weights, weights[1:-1])
            ]
        ),
        "f(w) = h w^2 / 2, t >= 1",
    )
    register(
        "heavy-ball-roots",
        sp.Mul(*[r - root for root in heavy_ball_roots()]),
        CHARACTERISTIC_POLYNOMIAL,
        "any eta, h, alpha",
    )
    register(
        "heavy-ball-jury",
        sp.Matrix(
            [sp.Subs(CHARACTERISTIC_POLYNOMIAL, r, value) for value in (1, -1, 0)]
        ),
        sp.Matrix([eta * h, 2 * (1 + alpha) - eta * h, alpha]),
        "any eta, h, alpha",
    )
    register(
        "heavy-ball-product",
        sp.Mul(*heavy_ball_roots()),
        alpha,
        "any eta, h, alpha (Vieta)",
    )
    register(
        "heavy-ball-discriminant",
        sp.discriminant(CHARACTERISTIC_POLYNOMIAL, r),
        ((1 - sp.sqrt(alpha)) ** 2 - eta * h) * ((1 + sp.sqrt(alpha)) ** 2 - eta * h),
        "alpha > 0",
    )


# --------------------------------------------------------------------------- the figure

MARKED_PAIRS = {
    "golden pair": (theory.ETA, theory.ALPHA),
    "(0.01, 0.9)": (0.01, 0.9),
    "(0.1, 0.9)": (0.1, 0.9),
}
"""The pairs the stability figure marks: the golden pair and two common ones."""


@plots.figure("heavy_ball_stability")
def stability_figure():
    """Steps to shrink the error tenfold over the (eta, alpha) plane at h = 1, stamped.

    White is unstable; the dashed curves bound the band where rho = sqrt(alpha).
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    etas = np.logspace(-4, np.log10(5), 400)
    alphas = np.linspace(0, 0.999, 300)
    eta_grid, alpha_grid = np.meshgrid(etas, alphas)
    radius = np.where(
        is_stable(eta_grid, alpha_grid), spectral_radius(eta_grid, alpha_grid), np.nan
    )
    steps_per_decade = np.log(10) / -np.log(radius)

    fig, ax = plt.subplots()
    mesh = ax.pcolormesh(
        eta_grid,
        alpha_grid,
        steps_per_decade,
        shading="auto",
        cmap="viridis_r",
        norm=LogNorm(),
    )
    fig.colorbar(mesh, ax=ax, label="steps to shrink the error tenfold")
    ax.plot(
        2 * (1 + alphas),
        alphas,
        "k-",
        lw=1.5,
        label=r"stability edge $\eta h = 2(1+\alpha)$",
    )
    for sign, label in ((-1, r"band where $\rho = \sqrt{\alpha}$"), (1, None)):
        ax.plot((1 + sign * np.sqrt(alphas)) ** 2, alphas, "w--", lw=1, label=label)
    markers = ["*", "o", "s"]
    for (name, (eta_value, alpha_value)), marker in zip(MARKED_PAIRS.items(), markers):
        size = 12 if marker == "*" else 7
        ax.plot(
            eta_value,
            alpha_value,
            marker,
            color="tab:red",
            markeredgecolor="k",
            markersize=size,
            label=name,
        )
    ax.set(xscale="log", xlim=(etas[0], etas[-1]), ylim=(0, 1))
    ax.set(
        xlabel=r"learning rate $\eta$ (curvature $h = 1$)", ylabel=r"momentum $\alpha$"
    )
    ax.set_title("Heavy ball on $f(w) = h w^2/2$: where it converges, and how fast")
    ax.legend(
        loc="lower left", fontsize=8, facecolor="white", framealpha=0.8, frameon=True
    )
    plots.stamp(fig, "h = 1")
    return fig


"""The chapter's figure, for :mod:`golden.figures`."""
