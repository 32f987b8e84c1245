"""The heavy ball on the effective-step chapter's quadratic, in numbers: its paths
against the rescaled and the modified flow, the measured orders of convergence, the
exact slow rate against its first correction, and what the expansion says about the
golden and the common pair.

:func:`heavy_ball_quadratic` runs the update on f(x) = x^T H x / 2 with a diagonal H;
the flows and rates it is measured against are those derived in
:mod:`golden.derivations.effective_step`. :func:`convergence_study` measures the
largest error over [t0, T] for a sequence of eta and fits its order. The figures and
tables are the chapter's; each check that decides a sentence of the chapter is a value
whose prose is built from its numbers (:class:`Orders`, :class:`RateCheck`).
"""

from __future__ import annotations

import functools
import math
import textwrap
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np

from golden import plots, theory
from golden.derivations.effective_step import (
    corrected_rates,
    effective_rate,
    modified_flow,
    rescaled_flow,
)

# ----------------------------------------------------------------------- the heavy ball


def heavy_ball_quadratic(
    curvatures, x0, eta_value: float, alpha_value: float, steps: int
) -> np.ndarray:
    """The heavy ball of :func:`golden.derivations.effective_step.heavy_ball` on
    f = x^T diag(curvatures) x / 2, shape (steps + 1, d).

    With a diagonal H every coordinate follows
    x_{k+1} = (1 + alpha - eta h) x_k - alpha x_{k-1} on its own. Started at rest,
    x_1 = (1 - eta h) x_0, which is the impulse response of the filter
    (1 - alpha z^-1) / (1 - (1 + alpha - eta h) z^-1 + alpha z^-2) times x_0; scipy's
    ``lfilter`` runs it in C, so the 10^5 steps of a small eta take milliseconds. The
    tests check it against
    :func:`golden.derivations.effective_step.heavy_ball` step by step.
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


@dataclass(frozen=True)
class Convergence:
    """The largest errors of the heavy ball against each flow, for each eta, at one
    momentum, and the orders fitted where the expansion parameter is small."""

    alpha: float
    etas: np.ndarray
    fitted: np.ndarray  # which eta enter the fit
    errors: dict[str, np.ndarray]  # by comparison of COMPARISONS
    orders: dict[str, float]


def convergence_study(
    alpha_value: float,
    etas=STUDY_ETAS,
    curvatures=CURVATURES,
    x0=START,
    horizon: float = HORIZON,
) -> Convergence:
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
    return Convergence(alpha_value, etas, fit, errors, orders)


# ----------------------------------------------------- the chapter's figures and tables

MOMENTA = {"golden α": theory.ALPHA, "α = 0.9": theory.COMMON_PAIR[1]}
"""The two momenta of the theory figures: the golden one and the common pair's."""
SHOWN_ETAS = (4e-3, 1e-3, 2.5e-4)  # learning rates of the trajectory figure
RATE_ETAS = (1e-4, 1e-5, 1e-6)  # learning rates of the slow-rate check
STEEP = max(CURVATURES)  # the slow-rate check's curvature
EXPECTED_ORDERS = {
    "rescaled flow, 0 ≤ t ≤ T": 1,
    "rescaled flow, t0 ≤ t ≤ T": 1,
    "modified flow, 0 ≤ t ≤ T": 1,
    "modified flow, t0 ≤ t ≤ T": 2,
}
"""The orders the expansion predicts for each of :data:`COMPARISONS`."""
ORDER_TOLERANCE = 0.25  # a measured order within this of an integer is that order


def _table(headers, rows) -> str:
    """:func:`golden.report.table`, imported here rather than at import: golden.report
    loads torch, which nothing else in this module needs."""
    from golden import report

    return report.table(headers, rows)


def _title(name: str, momentum: float) -> str:
    return name if "=" in name else f"{name} = {momentum:.4g}"


def problem_line() -> str:
    """The test problem of the theory figures."""
    return f"curvatures {CURVATURES}, start {START}, T = {HORIZON}"


@plots.figure("elr_trajectories")
def trajectories_figure() -> plt.Figure:
    """Heavy-ball paths at :data:`SHOWN_ETAS` next to the rescaled flow, one panel per
    momentum of :data:`MOMENTA`."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    times = np.linspace(0, HORIZON, 2001)
    for ax, (name, momentum) in zip(axes, MOMENTA.items()):
        for value in SHOWN_ETAS:
            steps = int(round(HORIZON / value))
            path = heavy_ball_quadratic(CURVATURES, START, value, momentum, steps)
            ax.plot(path[:, 0], path[:, 1], lw=1, label=f"heavy ball, η = {value:g}")
        flow = rescaled_flow(CURVATURES, START, momentum, times)
        ax.plot(flow[:, 0], flow[:, 1], "k--", lw=1.5, label="rescaled gradient flow")
        ax.set(title=_title(name, momentum), xlabel="$x_1$ (curvature 1)")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("$x_2$ (curvature 10)")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    plots.stamp(fig, "f = (x1² + 10 x2²)/2, start (1, 1), 0 ≤ t = kη ≤ 1")
    return fig


@functools.lru_cache(maxsize=None)
def _convergence(momentum: float) -> Convergence:
    return convergence_study(momentum)


def convergence_studies() -> dict[str, Convergence]:
    """One convergence study per momentum of :data:`MOMENTA` (computed once)."""
    return {name: _convergence(momentum) for name, momentum in MOMENTA.items()}


def study_lines() -> str:
    """The study's η, window and fitting rule, in lines of at most 88 characters."""
    etas = ", ".join(f"{value:.3g}" for value in STUDY_ETAS)
    return "\n".join(
        textwrap.wrap(
            f"η = {etas}; T = {HORIZON}, t0 = {LAYER_END}; fit where "
            f"η·max(h)/(1−α)² ≤ {ASYMPTOTIC_LIMIT}",
            88,
            break_on_hyphens=False,
        )
    )


def orders_table(studies: dict[str, Convergence]) -> str:
    """The measured order of every comparison at each momentum, with its caption."""
    rows = [
        [comparison, *(f"{study.orders[comparison]:.3f}" for study in studies.values())]
        for comparison in COMPARISONS
    ]
    fits = ", ".join(
        f"the {int(study.fitted.sum())} smallest η for {name}"
        for name, study in studies.items()
    )
    return (
        _table(
            [
                "error of the heavy ball against",
                *(f"order, {name}" for name in studies),
            ],
            rows,
        )
        + "\n\nMeasured orders of convergence (slopes of the log–log fits over "
        + f"{fits})."
    )


@plots.figure("elr_convergence")
def convergence_figure(studies: dict[str, Convergence] | None = None) -> plt.Figure:
    """Largest error against η on log–log axes, for three comparisons at each momentum,
    with reference slopes 1 and 2; η outside the fitted range circled in grey."""
    studies = studies or convergence_studies()
    shown = {
        "rescaled flow, 0 ≤ t ≤ T": "o-",
        "rescaled flow, t0 ≤ t ≤ T": "s:",
        "modified flow, t0 ≤ t ≤ T": "^-",
    }
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, (name, study) in zip(axes, studies.items()):
        etas, fit = study.etas, study.fitted
        for comparison, style in shown.items():
            errors = study.errors[comparison]
            ax.loglog(
                etas,
                errors,
                style,
                ms=4,
                lw=1,
                label=f"{comparison}: order {study.orders[comparison]:.2f}",
            )
            ax.loglog(etas[~fit], errors[~fit], "o", ms=8, mfc="none", mec="0.6")
        for power, anchor in (
            (1, study.errors["rescaled flow, 0 ≤ t ≤ T"]),
            (2, study.errors["modified flow, t0 ≤ t ≤ T"]),
        ):
            reference = anchor[-1] * (etas / etas[-1]) ** power
            ax.loglog(etas, reference * 0.5, color="0.5", lw=0.8, ls="--")
            ax.annotate(
                f"slope {power}",
                (etas[0], reference[0] * 0.5),
                fontsize=8,
                color="0.4",
                ha="right",
            )
        ax.set(title=_title(name, study.alpha), xlabel="learning rate η")
        ax.legend(fontsize=8, loc="lower right")
    axes[0].set_ylabel("largest error over the time window")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    plots.stamp(fig, "grey circles: outside the fitted range; dashed: reference slopes")
    return fig


@dataclass(frozen=True)
class Orders:
    """The measured orders against the expansion's (:data:`EXPECTED_ORDERS`)."""

    measured: dict[str, dict[str, float]]  # momentum name -> comparison -> order

    def departures(self) -> list[tuple[str, str, float]]:
        """(momentum, comparison, order) for each order not within the tolerance."""
        return [
            (name, comparison, order)
            for name, orders in self.measured.items()
            for comparison, order in orders.items()
            if abs(order - EXPECTED_ORDERS[comparison]) > ORDER_TOLERANCE
        ]

    @property
    def holds(self) -> bool:
        return not self.departures()

    def _orders(self, comparison: str) -> str:
        return ", ".join(
            f"{orders[comparison]:.2f}" for orders in self.measured.values()
        )

    def text(self) -> str:
        first, second = "rescaled flow, 0 ≤ t ≤ T", "modified flow, t0 ≤ t ≤ T"
        if self.holds:
            return (
                "Measured against the rescaled flow, the error falls in proportion to "
                f"$\\eta$ (orders {self._orders(first)}): the heavy ball converges to "
                "{eq}`elr-rescaled-flow` at first order, the limit that "
                "{cite:t}`kovachki2021continuous` establish for vanishing learning "
                "rate. The third curve, against the modified flow derived next, falls "
                f"in proportion to $\\eta^2$ (orders {self._orders(second)})."
            )
        listed = "; ".join(
            f"{comparison} for {name}: {order:.2f}, expected "
            f"{EXPECTED_ORDERS[comparison]}"
            for name, comparison, order in self.departures()
        )
        return (
            "The measured orders do **not** all match the expansion "
            f"({listed}): the fitted range is not yet asymptotic, and the orders "
            "quoted below are what the expansion predicts, not what was measured."
        )


def orders(studies: dict[str, Convergence]) -> Orders:
    return Orders({name: dict(study.orders) for name, study in studies.items()})


# ----------------------------------------------------- the slow rate and its correction


@dataclass(frozen=True)
class RateRow:
    """The exact slow rate at one η against the leading rate and its correction."""

    name: str
    eta: float
    exact: float
    leading: float
    corrected: float

    @property
    def ratio(self) -> float:
        """(λ − h/(1−α)) / (c₁η): 1 when the correction is exact."""
        return (self.exact - self.leading) / (self.corrected - self.leading)


def rate_rows(etas: tuple[float, ...] = RATE_ETAS) -> list[RateRow]:
    """The exact λ(η) of the steep coordinate for each momentum and η."""
    rows = []
    for name, momentum in MOMENTA.items():
        leading = float(corrected_rates([STEEP], 0.0, momentum)[0])
        for value in etas:
            rows.append(
                RateRow(
                    name,
                    value,
                    float(effective_rate(value, momentum, STEEP)),
                    leading,
                    float(corrected_rates([STEEP], value, momentum)[0]),
                )
            )
    return rows


def rate_table(rows: list[RateRow] | None = None) -> str:
    rows = rate_rows() if rows is None else rows
    return _table(
        [
            "momentum",
            "η",
            "exact λ(η)",
            "h/(1−α)",
            "with the correction",
            "(λ − h/(1−α)) / (c₁η)",
        ],
        [
            [
                row.name,
                f"{row.eta:g}",
                f"{row.exact:.6f}",
                f"{row.leading:.6f}",
                f"{row.corrected:.6f}",
                f"{row.ratio:.4f}",
            ]
            for row in rows
        ],
    )


@dataclass(frozen=True)
class RateCheck:
    """Whether the rate table's ratio tends to 1, departing in proportion to η."""

    departures: dict[str, tuple[float, ...]]  # momentum -> ratio − 1, by decreasing η
    shrink: tuple[float, ...]  # each departure over the next, across every momentum
    factor: float  # the ratio of successive η

    @property
    def tends_to_one(self) -> bool:
        return all(
            abs(values[-1]) < 0.01 and abs(values[-1]) < abs(values[0])
            for values in self.departures.values()
        )

    @property
    def proportional(self) -> bool:
        """Each departure shrinks by the factor of η, within a factor of two."""
        return all(self.factor / 2 <= s <= self.factor * 2 for s in self.shrink)

    def text(self) -> str:
        if not self.tends_to_one:
            return (
                "The last column does **not** tend to 1 as $\\eta$ shrinks: the "
                "correction of {eq}`elr-rate-expansion` does not describe the exact "
                "rate here."
            )
        if self.proportional:
            return (
                "The last column tends to 1 as $\\eta$ shrinks, with a departure "
                "proportional to $\\eta$: the next term of the series above."
            )
        return (
            "The last column tends to 1 as $\\eta$ shrinks, but its departure does not "
            "shrink in proportion to $\\eta$ (successive ratios "
            f"{', '.join(f'{s:.3g}' for s in self.shrink)}): rounding, or more than "
            "one further term, is visible."
        )


def rate_check(rows: list[RateRow] | None = None) -> RateCheck:
    rows = rate_rows() if rows is None else rows
    departures: dict[str, list[float]] = {}
    etas: dict[str, list[float]] = {}
    for row in rows:
        departures.setdefault(row.name, []).append(row.ratio - 1)
        etas.setdefault(row.name, []).append(row.eta)
    shrink = tuple(
        a / b for values in departures.values() for a, b in zip(values, values[1:])
    )
    first = next(iter(etas.values()))
    factor = first[0] / first[1] if len(first) > 1 else math.nan
    return RateCheck(
        {name: tuple(values) for name, values in departures.items()}, shrink, factor
    )


# ----------------------------------------------------------------------- the two pairs


def pairs_table() -> str:
    """Effective step, expansion parameter, start-up delay and the curvature up to which
    the roots are real, at the golden and the common pair."""
    pairs = {
        "golden pair": (theory.ETA, theory.ALPHA),
        "common pair": theory.COMMON_PAIR,
    }
    rows = [
        [
            name,
            f"{lr:.4g}",
            f"{momentum:.4g}",
            f"{theory.effective_step(lr, momentum):.4f}",
            f"{lr / (1 - momentum) ** 2:.4f}",
            f"{momentum / (1 - momentum):.2f}",
            f"{(1 - np.sqrt(momentum)) ** 2 / lr:.4f}",
        ]
        for name, (lr, momentum) in pairs.items()
    ]
    return _table(
        [
            "pair",
            "η",
            "α",
            "η/(1−α)",
            "η/(1−α)²",
            "start-up delay α/(1−α), steps",
            "largest h with real roots",
        ],
        rows,
    )
