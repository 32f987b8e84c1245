"""The effective learning rate η/(1−α): theory on a quadratic, and the grid against it.

The first part is theory only: heavy-ball paths next to the rescaled gradient flow, the
measured orders of convergence to the rescaled and to the modified flow, the slow rate
against its first correction and what the expansion says about the golden and the
common pair; every number comes from :mod:`golden.dynamics`. The second part reads the
stored grid: each pair's mean test accuracy against its effective step, the spline fit
of :func:`golden.dynamics.predictive_measures` and the answer, a value whose prose is
built from its numbers.

The spline is fitted to the logit of the accuracy, so the curve stays inside (0, 1). A
pair is judged against the spread of the pairs near it, not of the whole grid: the
leave-one-out residuals of the grid's pairs run from a few thousandths near the top of
the curve to tenths where the accuracy falls off, and a spread taken over all of them
could never flag a pair near the top (:func:`local_spread`). The curve's maximum is
reported as a peak only if the curve falls below it by more than two such spreads on
both sides within the grid and the pairs there come near it (:class:`Peak`).

On the grid a pair's mean is over every run that *finished*: diverged runs have no
accuracy and are left out (a pair with one is left out of the fit), but runs that ended
at chance accuracy are kept, because a step too small or too large to learn in the
protocol's few epochs is an outcome the effective step must predict, not a failed
measurement. (This is the rule the chapter has always used; it differs on purpose from
:attr:`golden.results.Group.learned`, and the printed summary counts such runs.)
"""

from __future__ import annotations

import functools
import math
import textwrap
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np

from golden import data, dynamics, experiments, plots, report, theory
from golden.results import Estimate, Run, group

Pair = tuple[float, float]

MOMENTA = {"golden α": theory.ALPHA, "α = 0.9": experiments.COMMON_PAIR[1]}
"""The two momenta of the theory figures: the golden one and the common pair's."""
SHOWN_ETAS = (4e-3, 1e-3, 2.5e-4)  # learning rates of the trajectory figure
RATE_ETAS = (1e-4, 1e-5, 1e-6)  # learning rates of the slow-rate check
STEEP = max(dynamics.CURVATURES)  # the slow-rate check's curvature
NAMED = {"golden pair": experiments.GOLDEN_PAIR, "common pair": experiments.COMMON_PAIR}
EXPECTED_ORDERS = {
    "rescaled flow, 0 ≤ t ≤ T": 1,
    "rescaled flow, t0 ≤ t ≤ T": 1,
    "modified flow, 0 ≤ t ≤ T": 1,
    "modified flow, t0 ≤ t ≤ T": 2,
}
"""The orders the expansion predicts for each of :data:`dynamics.COMPARISONS`."""
ORDER_TOLERANCE = 0.25  # a measured order within this of an integer is that order
OFF_CURVE = 2.0  # local residual spreads beyond which a pair is off the curve
NEIGHBOURS = 10  # pairs nearest in log effective step that make a local spread
LINK = "logit"  # the spline is fitted to logit(accuracy): it cannot leave (0, 1)
ALPHA_GAIN = 0.05  # rise of leave-one-out R² for the momentum to count as informative
F_LEVEL = 0.05  # level of the F-test of the α terms


def _title(name: str, momentum: float) -> str:
    return name if "=" in name else f"{name} = {momentum:.4g}"


# --- the quadratic --------------------------------------------------------------------


def problem_line() -> str:
    """The test problem of the theory figures."""
    return (
        f"curvatures {dynamics.CURVATURES}, start {dynamics.START}, "
        f"T = {dynamics.HORIZON}"
    )


@plots.figure("elr_trajectories")
def trajectories_figure() -> plt.Figure:
    """Heavy-ball paths at :data:`SHOWN_ETAS` next to the rescaled flow, one panel per
    momentum of :data:`MOMENTA`."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    times = np.linspace(0, dynamics.HORIZON, 2001)
    for ax, (name, momentum) in zip(axes, MOMENTA.items()):
        for value in SHOWN_ETAS:
            steps = int(round(dynamics.HORIZON / value))
            path = dynamics.heavy_ball_quadratic(
                dynamics.CURVATURES, dynamics.START, value, momentum, steps
            )
            ax.plot(path[:, 0], path[:, 1], lw=1, label=f"heavy ball, η = {value:g}")
        flow = dynamics.rescaled_flow(
            dynamics.CURVATURES, dynamics.START, momentum, times
        )
        ax.plot(flow[:, 0], flow[:, 1], "k--", lw=1.5, label="rescaled gradient flow")
        ax.set(title=_title(name, momentum), xlabel="$x_1$ (curvature 1)")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("$x_2$ (curvature 10)")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    plots.stamp(fig, "f = (x1² + 10 x2²)/2, start (1, 1), 0 ≤ t = kη ≤ 1")
    return fig


@dataclass(frozen=True)
class Convergence:
    """The largest errors of the heavy ball against each flow, for each η, at one
    momentum, and the orders fitted where the expansion parameter is small."""

    name: str
    alpha: float
    etas: np.ndarray
    fitted: np.ndarray  # which η enter the fit
    errors: dict[str, np.ndarray]  # by comparison of dynamics.COMPARISONS
    orders: dict[str, float]


@functools.lru_cache(maxsize=None)
def _convergence(name: str, momentum: float) -> Convergence:
    study = dynamics.convergence_study(momentum)
    return Convergence(
        name,
        study["alpha"],
        study["etas"],
        study["fitted"],
        study["errors"],
        study["orders"],
    )


def convergence_studies() -> dict[str, Convergence]:
    """One convergence study per momentum of :data:`MOMENTA` (computed once)."""
    return {name: _convergence(name, momentum) for name, momentum in MOMENTA.items()}


def study_lines() -> str:
    """The study's η, window and fitting rule, in lines of at most 88 characters."""
    etas = ", ".join(f"{value:.3g}" for value in dynamics.STUDY_ETAS)
    return "\n".join(
        textwrap.wrap(
            f"η = {etas}; T = {dynamics.HORIZON}, t0 = {dynamics.LAYER_END}; fit where "
            f"η·max(h)/(1−α)² ≤ {dynamics.ASYMPTOTIC_LIMIT}",
            88,
            break_on_hyphens=False,
        )
    )


def orders_table(studies: dict[str, Convergence]) -> str:
    """The measured order of every comparison at each momentum, with its caption."""
    rows = [
        [comparison, *(f"{study.orders[comparison]:.3f}" for study in studies.values())]
        for comparison in dynamics.COMPARISONS
    ]
    fits = ", ".join(
        f"the {int(study.fitted.sum())} smallest η for {name}"
        for name, study in studies.items()
    )
    return (
        report.table(
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


# --- the slow rate and its correction -------------------------------------------------


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
        leading = float(dynamics.corrected_rates([STEEP], 0.0, momentum)[0])
        for value in etas:
            rows.append(
                RateRow(
                    name,
                    value,
                    float(dynamics.effective_rate(value, momentum, STEEP)),
                    leading,
                    float(dynamics.corrected_rates([STEEP], value, momentum)[0]),
                )
            )
    return rows


def rate_table(rows: list[RateRow] | None = None) -> str:
    rows = rate_rows() if rows is None else rows
    return report.table(
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


# --- the two pairs --------------------------------------------------------------------


def pairs_table() -> str:
    """Effective step, expansion parameter, start-up delay and the curvature up to which
    the roots are real, at the golden and the common pair."""
    pairs = {
        "golden pair": (theory.ETA, theory.ALPHA),
        "common pair": experiments.COMMON_PAIR,
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
    return report.table(
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


# --- the grid -------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """One grid pair: its mean test accuracy over the runs that finished."""

    pair: Pair
    accuracies: tuple[float, ...]  # final test accuracy of each finished run, by seed
    runs: int  # stored runs (fewer than the protocol's seeds if some are missing)
    diverged: int
    unlearned: int  # finished runs at chance accuracy (in the mean)

    @property
    def accuracy(self) -> Estimate:
        """Over the finished runs, those at chance accuracy included."""
        return Estimate.of(self.accuracies)

    @property
    def alpha(self) -> float:
        return self.pair[1]

    @property
    def step(self) -> float:
        return theory.effective_step(*self.pair)

    @property
    def all_diverged(self) -> bool:
        return self.diverged == self.runs


def _finished(runs: tuple[Run, ...]) -> tuple[float, ...]:
    return tuple(run.final("test_acc") for run in runs if not run.diverged)


def points(runs) -> list[Point]:
    """One point per pair, in the order of :func:`golden.results.group`."""
    return [
        Point(pair, _finished(g.runs), len(g.runs), g.diverged, g.unlearned)
        for pair, g in group(runs).items()
    ]


def steps_per_run(study: report.Study) -> int:
    """SGD steps of the longest run: epochs times batches of the training split."""
    train = (
        data.QUICK_SIZES["train"]
        if study.proto.quick_data
        else 60_000 - int(60_000 * data.VALIDATION_FRACTION)
    )
    batch = max(run.config.batch_size for run in study.runs)
    return study.epochs * -(-train // batch)


def run_summary(study: report.Study) -> str:
    """Runs, their length and the pairs with diverged or unlearned runs (≤ 88 chars)."""
    shown = points(study.runs)
    diverged = sum(p.diverged > 0 for p in shown)
    unlearned = sum(p.unlearned > 0 for p in shown)
    return (
        f"{len(study.runs)} runs of {steps_per_run(study)} SGD steps each; "
        f"{diverged} pairs with at least one diverged seed\n"
        f"{unlearned} pairs with a run at chance accuracy (kept in their means)"
    )


def local_spread(points: list[dict], step: float, exclude=None) -> tuple[float, list]:
    """The root mean square of the leave-one-out residuals of the
    :data:`NEIGHBOURS` pairs nearest to ``step`` in log effective step (``exclude``, a
    pair, left out), and those pairs' points: the spread that a pair at ``step`` is
    judged against. Near the top of the curve it is a few thousandths, where the
    grid's overall residual deviation is tenths."""
    others = [p for p in points if p["pair"] != exclude]
    near = sorted(others, key=lambda p: (abs(math.log10(p["step"] / step)), p["pair"]))[
        :NEIGHBOURS
    ]
    spread = math.sqrt(sum(p["loo_residual"] ** 2 for p in near) / len(near))
    return spread, near


@dataclass(frozen=True)
class Placed:
    """A named pair against the spline fitted without it, judged against the spread of
    the pairs nearest to it in effective step."""

    pair: Pair
    step: float
    accuracy: float
    predicted: float
    residual: float  # leave-one-out: above the curve is positive
    spread: float  # local: root mean square residual of its nearest pairs
    near: tuple[float, float]  # lowest and highest mean accuracy of those pairs

    @property
    def z(self) -> float:
        """The residual in local spreads."""
        return (
            self.residual / self.spread
            if self.spread
            else math.copysign(math.inf, self.residual)
        )

    @property
    def off(self) -> bool:
        return abs(self.z) > OFF_CURVE

    @property
    def detectable(self) -> bool:
        """Whether any accuracy could lie :data:`OFF_CURVE` spreads above the curve
        here: otherwise "above" is ruled out by the design, whatever the data."""
        return self.predicted + OFF_CURVE * self.spread < 1

    def place(self) -> str:
        side = "above" if self.residual > 0 else "below"
        return (
            f"{abs(self.residual):.4f} {side} the curve ({self.z:+.1f} local "
            "residual spreads)"
        )


@dataclass(frozen=True)
class Peak:
    """The curve's maximum, the band of steps where the curve stays within
    :data:`OFF_CURVE` local spreads of it, and whether it survives as a peak."""

    step: float
    accuracy: float
    spread: float  # local spread at the maximum
    low: float  # the band of steps, around the maximum
    high: float
    interior: bool  # the curve leaves the band on both sides within the grid
    best: float  # the highest mean accuracy of any pair

    @property
    def supported(self) -> bool:
        """Some pair's mean comes within the band's depth of the maximum: the curve
        does not overshoot every pair."""
        return self.best >= self.accuracy - OFF_CURVE * self.spread

    @property
    def survives(self) -> bool:
        return self.interior and self.supported

    def contains(self, step: float) -> bool:
        return self.low <= step <= self.high


def peak(curve_steps, curve_acc, points: list[dict]) -> Peak:
    """The :class:`Peak` of a fitted curve, judged against the local spread of the
    pairs nearest to its maximum."""
    steps, acc = np.asarray(curve_steps), np.asarray(curve_acc)
    top = int(np.argmax(acc))
    spread, _ = local_spread(points, float(steps[top]))
    inside = acc >= acc[top] - OFF_CURVE * spread
    low = high = top
    while low > 0 and inside[low - 1]:
        low -= 1
    while high < len(acc) - 1 and inside[high + 1]:
        high += 1
    return Peak(
        float(steps[top]),
        float(acc[top]),
        spread,
        float(steps[low]),
        float(steps[high]),
        low > 0 and high < len(acc) - 1,
        max(p["acc"] for p in points),
    )


@dataclass(frozen=True)
class Measures:
    """How well the effective step alone predicts the mean test accuracy (see
    :func:`golden.dynamics.predictive_measures`)."""

    n: int  # pairs without a diverged seed
    excluded: int
    spearman: float
    spearman_p: float
    r2_step: float
    r2_step_loo: float
    r2_both: float
    r2_both_loo: float
    parameters_step: int
    parameters_both: int
    f: float
    f_p: float
    sigma: float
    curve_steps: np.ndarray
    curve_acc: np.ndarray
    peak: Peak
    named: dict[str, Placed]
    points: tuple[dict, ...] = ()  # step, accuracy, fit, leave-one-out residual

    @property
    def gain(self) -> float:
        """Rise of the leave-one-out R² when the α terms are added."""
        return self.r2_both_loo - self.r2_step_loo

    @property
    def alpha_matters(self) -> bool:
        return self.f_p < F_LEVEL and self.gain > ALPHA_GAIN


def measures(shown: list[Point], named: dict[str, Pair] | None = None) -> Measures:
    """The spline fits over the points without a diverged run; raises ValueError with
    too few such points to fit both models."""
    named = NAMED if named is None else named
    rows = [
        {
            "pair": p.pair,
            "test_acc": list(p.accuracies),
            "diverged": p.diverged,
            "test_acc_mean": p.accuracy.mean,
            "test_acc_ci": p.accuracy.half,
        }
        for p in shown
    ]  # the rows dynamics.predictive_measures reads
    m = dynamics.predictive_measures(rows, named, link=LINK)
    placed = {}
    for name, info in m["named"].items():
        spread, near = local_spread(m["points"], info["step"], exclude=info["pair"])
        accuracies = [p["acc"] for p in near]
        placed[name] = Placed(
            info["pair"],
            info["step"],
            info["acc"],
            info["predicted"],
            info["residual"],
            spread,
            (min(accuracies), max(accuracies)),
        )
    return Measures(
        m["n"],
        m["excluded"],
        m["spearman"],
        m["spearman_p"],
        m["r2_step"],
        m["r2_step_loo"],
        m["r2_both"],
        m["r2_both_loo"],
        m["parameters_step"],
        m["parameters_both"],
        m["f"],
        m["f_p"],
        m["sigma"],
        m["curve_steps"],
        m["curve_acc"],
        peak(m["curve_steps"], m["curve_acc"], m["points"]),
        placed,
        tuple(m["points"]),
    )


SPLINE_LABEL = "cubic spline in log₁₀ η/(1−α), fitted to logit(accuracy)"


@plots.figure("elr_grid_effective_step", functools.partial(report.load, "grid"))
def grid_step_figure(study: report.Study) -> plt.Figure:
    """Mean test accuracy of every grid pair against its effective step, coloured by α,
    with 95% t-intervals, the spline and the golden and common pair marked."""
    shown = points(study.runs)
    fitted = measures(shown)
    fig, ax = plt.subplots(figsize=(8, 4.8))
    colour = plt.get_cmap("viridis")
    norm = plt.Normalize(min(experiments.GRID_MOMENTA), max(experiments.GRID_MOMENTA))
    for p in shown:
        c = colour(norm(p.alpha))
        if p.all_diverged:
            ax.plot(p.step, 0.02, "x", color=c, ms=7)
            continue
        ci = 0.0 if math.isnan(p.accuracy.half) else p.accuracy.half
        ax.errorbar(
            p.step,
            p.accuracy.mean,
            yerr=ci,
            fmt="o",
            ms=5,
            color=c,
            mfc=c if p.diverged == 0 else "white",
            elinewidth=0.8,
            capsize=2,
            alpha=0.9,
        )
    ax.plot(
        fitted.curve_steps,
        fitted.curve_acc,
        color="0.4",
        lw=1.5,
        label=SPLINE_LABEL,
    )
    for name, info in fitted.named.items():
        golden = info.pair == experiments.GOLDEN_PAIR
        marker, mark = ("*", "tab:red") if golden else ("s", "tab:orange")
        ax.plot(
            info.step,
            info.accuracy,
            marker,
            ms=14 if golden else 9,
            mfc="none",
            mec=mark,
            mew=2,
            zorder=5,
        )
        ax.annotate(
            f"{name} η={info.pair[0]:g}, α={info.pair[1]:g}",
            (info.step, info.accuracy),
            xytext=(-90, 35) if golden else (15, -40),
            textcoords="offset points",
            fontsize=8,
            arrowprops={"arrowstyle": "->", "color": mark},
        )
    fig.colorbar(
        plt.cm.ScalarMappable(norm=norm, cmap=colour), ax=ax, label="momentum α"
    )
    ax.set(
        xscale="log",
        ylim=(0, 1),
        xlabel="effective step η/(1−α)",
        ylabel="mean test accuracy",
    )
    ax.legend(loc="lower center", fontsize=8)  # clear of the points, low and right
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    plots.stamp(fig, study.stamp("95% t-intervals over seeds"))
    return fig


def peak_text(found: Peak) -> str:
    """The curve's maximum and its band, in one table cell."""
    band = (
        f"within {OFF_CURVE:g} local spreads from {found.low:.2g} to {found.high:.2g}"
    )
    if found.survives:
        return (
            f"a peak at η/(1−α) = {found.step:.2g} (accuracy {found.accuracy:.4f}); "
            + band
        )
    why = []
    if not found.interior:
        why.append("the band reaches the edge of the grid")
    if not found.supported:
        why.append(f"no pair comes near it (best {found.best:.4f})")
    return (
        f"no peak survives: maximum {found.accuracy:.4f} at η/(1−α) = "
        f"{found.step:.2g}, {band}; " + ", ".join(why)
    )


def measures_table(m: Measures) -> str:
    rows = [
        ["pairs used (no seed diverged)", f"{m.n} of {m.n + m.excluded}"],
        [
            "Spearman ρ(effective step, accuracy)",
            f"{m.spearman:.3f} (p = {m.spearman_p:.2g})",
        ],
        [
            f"R², spline in log effective step ({m.parameters_step} parameters)",
            f"{m.r2_step:.3f} (leave-one-out {m.r2_step_loo:.3f})",
        ],
        [
            f"R², spline + α terms ({m.parameters_both} parameters)",
            f"{m.r2_both:.3f} (leave-one-out {m.r2_both_loo:.3f})",
        ],
        [
            "F-test of the α terms (in logit accuracy)",
            f"F = {m.f:.2f}, p = {m.f_p:.2g}",
        ],
        ["residual standard deviation of the spline, all pairs", f"{m.sigma:.4f}"],
        ["the curve's maximum", peak_text(m.peak)],
    ]
    for name, info in m.named.items():
        rows.append(
            [
                f"{name} (η = {info.pair[0]:g}, α = {info.pair[1]:g}, η/(1−α) = "
                f"{info.step:.3f}): accuracy, curve without it, residual, local "
                f"spread of its {NEIGHBOURS} nearest pairs (their accuracies)",
                f"{info.accuracy:.4f}, {info.predicted:.4f}, {info.residual:+.4f} "
                f"({info.z:+.2f} local spreads), {info.spread:.4f} "
                f"({info.near[0]:.4f}–{info.near[1]:.4f})",
            ]
        )
    return report.table(["measure", "value"], rows)


@dataclass(frozen=True)
class Answer:
    """Does the effective step alone predict the accuracy, and is the golden pair off
    the curve it draws?"""

    measures: Measures
    steps_per_run: int
    source: str  # the study's stamp

    @property
    def golden(self) -> Placed | None:
        return self.measures.named.get("golden pair")

    @property
    def common(self) -> Placed | None:
        return self.measures.named.get("common pair")

    @property
    def finding(self) -> str:
        """'missing' (the golden pair had a diverged seed), 'below' (more than
        :data:`OFF_CURVE` local spreads under the curve), 'undetectable' (the curve
        plus that margin reaches an accuracy of 1, so no result could count as above
        it), 'above', or 'on'."""
        golden = self.golden
        if golden is None:
            return "missing"
        if golden.off and golden.z < 0:
            return "below"
        if not golden.detectable:
            return "undetectable"
        return "above" if golden.off else "on"

    def _peak(self) -> str:
        return " " + _peak_sentence(
            self.measures.peak,
            theory.effective_step(*experiments.GOLDEN_PAIR),
            theory.effective_step(*experiments.COMMON_PAIR),
        )

    def text(self) -> str:
        m = self.measures
        text = [
            f"**Answer.** Over the {m.n} pairs without divergence the effective step "
            f"alone explains {m.r2_step_loo:.0%} of the variance of the mean test "
            f"accuracy out of sample ({m.r2_step:.0%} in sample; Spearman ρ = "
            f"{m.spearman:.2f}). Adding α brings this to {m.r2_both_loo:.0%} (F-test "
            f"p = {m.f_p:.2g}): "
            + (
                "α carries real information beyond η/(1−α), so the accuracy is *not* "
                "a function of the effective step alone under this protocol. "
                if m.alpha_matters
                else "the momentum adds little once the effective step is known. "
            )
        ]
        if self.finding == "missing":
            text.append("The golden pair had a diverged seed and is not on the curve.")
        else:
            text.append(f"The golden pair lies {self.golden.place()}")
            text.append(
                f", the common pair {self.common.place()}. " if self.common else ". "
            )
        if self.finding == "above":
            text.append(
                "The golden pair is therefore **special** here: it does better "
                "than its effective step predicts."
            )
        elif self.finding == "below":
            text.append(
                "The golden pair does **worse** than its effective step "
                "predicts, so it is special only in the wrong direction."
            )
        elif self.finding == "undetectable":
            text.append(
                f"The curve predicts {self.golden.predicted:.4f} for the golden pair, "
                f"and {OFF_CURVE:g} local spreads above that is an accuracy of 1 or "
                "more: no result could count as above the curve, so the design "
                "cannot tell whether the golden pair is special."
            )
        elif self.finding == "on":
            common, placed = experiments.COMMON_PAIR, self.common
            if placed is None:
                beside = ""
            elif not placed.off:
                beside = f", and ({common[0]:g}, {common[1]:g}) sits on the same curve"
            else:
                side = "above" if placed.z > 0 else "below"
                beside = f", although the common pair itself lies {side} that curve"
            text.append(
                "The golden pair is therefore **not special**: it is one point on the "
                "curve that the effective step draws" + beside + "."
            )
        if self.finding != "missing":
            text.append(self._peak())
        if m.alpha_matters:
            top = max(experiments.GRID_MOMENTA)
            text.append(
                " Part of the dependence on α may be the start-up delay of "
                f"{{eq}}`elr-startup-delay`: these runs have {self.steps_per_run} "
                "steps, and the momentum needs α/(1−α) steps (up to "
                f"{top / (1 - top):.0f} on this grid) to build up."
            )
        return "".join(text) + f" ({self.source})"


def _peak_sentence(found: Peak, golden: float, common: float) -> str:
    """Where the curve is highest, and whether the golden and the common pair's steps
    lie in its top band."""
    band = (
        f"within {OFF_CURVE:g} local residual spreads ({OFF_CURVE * found.spread:.4f}) "
        f"of its maximum from η/(1−α) = {found.low:.2g} to {found.high:.2g}"
    )
    inside = [
        f"the {name} pair ({step:.3f}) "
        + ("inside" if found.contains(step) else "outside")
        for name, step in (("golden", golden), ("common", common))
    ]
    where = ", ".join(inside) + " that band."
    if found.survives:
        return (
            f"The curve peaks near η/(1−α) = {found.step:.2g} (accuracy "
            f"{found.accuracy:.4f}), staying {band}: " + where
        )
    why = (
        "it stays "
        + band
        + (", up to the edge of the grid" if not found.interior else "")
    )
    if not found.supported:
        why += (
            f", and its maximum lies more than that above every pair's mean (best "
            f"{found.best:.4f})"
        )
    return f"No peak of the curve survives: {why}; " + where


def answer(study: report.Study) -> Answer:
    return Answer(measures(points(study.runs)), steps_per_run(study), study.stamp())
