"""How much of the grid's accuracy the effective step η/(1−α) alone predicts, and
whether the golden pair stands off the curve it draws.

The study reads the stored grid: each pair's mean test accuracy against its effective
step, the spline fit of :func:`golden.stats.spline_fit` and the verdict, a value whose
prose is built from its numbers. (The theory of the effective step, on a quadratic, is
in :mod:`golden.derivations.effective_step` and :mod:`golden.dynamics`.)

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

import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np

from golden import data, experiments, plots, report, stats, theory
from golden.report import Study
from golden.results import Estimate, Run, group
from golden.studies import grid

Pair = tuple[float, float]

NAMED = {"golden pair": experiments.GOLDEN_PAIR, "common pair": experiments.COMMON_PAIR}
OFF_CURVE = 2.0  # local residual spreads beyond which a pair is off the curve
NEIGHBOURS = 10  # pairs nearest in log effective step that make a local spread
LINK = "logit"  # the spline is fitted to logit(accuracy): it cannot leave (0, 1)
ALPHA_GAIN = 0.05  # rise of leave-one-out R² for the momentum to count as informative
F_LEVEL = 0.05  # level of the F-test of the α terms


load = grid.load  # the study reads the stored grid (or its quick fallback)


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


def steps_per_run(study: Study) -> int:
    """SGD steps of the longest run: epochs times batches of the training split."""
    train = (
        data.QUICK_SIZES["train"]
        if study.proto.quick_data
        else 60_000 - int(60_000 * data.VALIDATION_FRACTION)
    )
    batch = max(run.config.batch_size for run in study.runs)
    return study.epochs * -(-train // batch)


def run_summary(study: Study) -> str:
    """Runs, their length and the pairs with diverged or unlearned runs (≤ 88 chars)."""
    shown = points(study.runs)
    diverged = sum(p.diverged > 0 for p in shown)
    unlearned = sum(p.unlearned > 0 for p in shown)
    return (
        f"{len(study.runs)} runs of {steps_per_run(study)} SGD steps each; "
        f"{diverged} pairs with at least one diverged seed\n"
        f"{unlearned} pairs with a run at chance accuracy (kept in their means)"
    )


@dataclass(frozen=True)
class Fitted:
    """A pair in the fit: its mean accuracy and its leave-one-out residual from the
    spline (above the curve is positive)."""

    pair: Pair
    step: float
    accuracy: float
    loo_residual: float


def local_spread(
    points: tuple[Fitted, ...], step: float, exclude: Pair | None = None
) -> tuple[float, list[Fitted]]:
    """The root mean square of the leave-one-out residuals of the
    :data:`NEIGHBOURS` pairs nearest to ``step`` in log effective step (``exclude``, a
    pair, left out), and those pairs: the spread that a pair at ``step`` is judged
    against. Near the top of the curve it is a few thousandths, where the grid's
    overall residual deviation is tenths."""
    others = [p for p in points if p.pair != exclude]
    near = sorted(others, key=lambda p: (abs(math.log10(p.step / step)), p.pair))
    near = near[:NEIGHBOURS]
    spread = math.sqrt(sum(p.loo_residual**2 for p in near) / len(near))
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


def peak(curve_steps, curve_acc, points: tuple[Fitted, ...]) -> Peak:
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
        max(p.accuracy for p in points),
    )


@dataclass(frozen=True)
class Measures:
    """How well the effective step alone predicts the mean test accuracy: the spline
    fit over the pairs without a diverged run, and the named pairs and the curve's
    maximum judged against the local spread."""

    fit: stats.SplineFit  # x: effective step, y: mean accuracy, z: momentum
    points: tuple[Fitted, ...]  # the pairs fitted, in the order of the fit
    excluded: int  # pairs with a diverged run
    peak: Peak
    named: dict[str, Placed]

    @property
    def n(self) -> int:
        return self.fit.n

    @property
    def gain(self) -> float:
        """Rise of the leave-one-out R² when the α terms are added."""
        return self.fit.extended.r2_loo - self.fit.alone.r2_loo

    @property
    def alpha_matters(self) -> bool:
        return self.fit.f_p < F_LEVEL and self.gain > ALPHA_GAIN


def measures(shown: list[Point], named: dict[str, Pair] | None = None) -> Measures:
    """The spline fit over the points without a diverged run; raises ValueError with
    too few such points to fit both models."""
    named = NAMED if named is None else named
    used = [p for p in shown if p.diverged == 0 and not math.isnan(p.accuracy.mean)]
    fit = stats.spline_fit(
        [p.step for p in used],
        [p.accuracy.mean for p in used],
        [p.alpha for p in used],
        link=LINK,
    )
    fitted = tuple(
        Fitted(p.pair, float(fit.x[i]), float(fit.y[i]), float(fit.loo_residuals[i]))
        for i, p in enumerate(used)
    )
    placed = {}
    for name, pair in named.items():
        i = next((i for i, p in enumerate(fitted) if p.pair == pair), None)
        if i is None:
            continue
        point = fitted[i]
        spread, near = local_spread(fitted, point.step, exclude=pair)
        accuracies = [p.accuracy for p in near]
        placed[name] = Placed(
            pair,
            point.step,
            point.accuracy,
            float(fit.alone.loo_predicted[i]),
            point.loo_residual,
            spread,
            (min(accuracies), max(accuracies)),
        )
    return Measures(
        fit,
        fitted,
        len(shown) - len(used),
        peak(fit.curve_x, fit.curve_y, fitted),
        placed,
    )


SPLINE_LABEL = "cubic spline in log₁₀ η/(1−α), fitted to logit(accuracy)"


@plots.figure("elr_grid_effective_step", load)
def grid_step_figure(study: Study) -> plt.Figure:
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
        fitted.fit.curve_x,
        fitted.fit.curve_y,
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
    fit = m.fit
    rows = [
        ["pairs used (no seed diverged)", f"{m.n} of {m.n + m.excluded}"],
        [
            "Spearman ρ(effective step, accuracy)",
            f"{fit.spearman:.3f} (p = {fit.spearman_p:.2g})",
        ],
        [
            f"R², spline in log effective step ({fit.alone.parameters} parameters)",
            f"{fit.alone.r2:.3f} (leave-one-out {fit.alone.r2_loo:.3f})",
        ],
        [
            f"R², spline + α terms ({fit.extended.parameters} parameters)",
            f"{fit.extended.r2:.3f} (leave-one-out {fit.extended.r2_loo:.3f})",
        ],
        [
            "F-test of the α terms (in logit accuracy)",
            f"F = {fit.f:.2f}, p = {fit.f_p:.2g}",
        ],
        ["residual standard deviation of the spline, all pairs", f"{fit.sigma:.4f}"],
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
class Verdict:
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
        m, fit = self.measures, self.measures.fit
        text = [
            f"**Answer.** Over the {m.n} pairs without divergence the effective step "
            f"alone explains {fit.alone.r2_loo:.0%} of the variance of the mean test "
            f"accuracy out of sample ({fit.alone.r2:.0%} in sample; Spearman ρ = "
            f"{fit.spearman:.2f}). Adding α brings this to "
            f"{fit.extended.r2_loo:.0%} (F-test p = {fit.f_p:.2g}): "
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


def verdict(study: Study) -> Verdict:
    return Verdict(measures(points(study.runs)), steps_per_run(study), study.stamp())
