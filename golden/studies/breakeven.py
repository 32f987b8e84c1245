"""The break-even study (Jastrzebski et al. 2020), from its stored runs.

Runs at four learning rates of the grid, at the golden momentum and at the common one,
are probed through their first epoch (gradient noise and sharpness on a fixed probe
batch, see :mod:`golden.diagnostics`). Here those probes become the curves figure, the
table at the last probe, the Spearman trends of each measure in the effective step
η/(1−α) (Holm-corrected over the four measures) and the verdict, a value whose prose is
built from its numbers. Only runs that learned enter a mean or a trend; diverged runs
and runs at chance accuracy are counted in the table.

After one epoch the runs stand at very different stages of training (a small step has
learned far less), so a trend at the last probe may only say that larger steps are
further along. The trends are therefore also taken at *matched training loss*: each run
at the first probe where its loss on the probe batch has fallen to the highest level
that every run reaches (:func:`matched`). The verdict reports both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
from scipy import stats as scipy_stats

from golden import beyond, experiments, plots, report, stats, theory
from golden.results import FAMILY_ALPHA, Estimate, Group, Run, group

Pair = tuple[float, float]

MEASURES = {
    "grad_variance": "gradient variance tr(C)/B",
    "grad_top": "largest noise eigenvalue λmax(C)/B",
    "grad_conditioning": "conditioning λmax(C)/tr(C)",
    "sharpness": "sharpness (top Hessian eigenvalue)",
}
SHORT = {
    "grad_variance": "gradient variance",
    "grad_top": "largest noise eigenvalue",
    "grad_conditioning": "conditioning ratio",
    "sharpness": "sharpness",
}
COLUMNS = {
    "grad_variance": "gradient variance",
    "grad_top": "λmax(C)/B",
    "grad_conditioning": "conditioning",
    "sharpness": "sharpness",
}


def load() -> report.Study:
    """The stored break-even runs (or the quick fallback)."""
    return report.load("breakeven")


def probe(run: Run, key: str) -> list[float]:
    """A run's series of one measure at its probes; ``grad_top`` is λmax(C)/B, the
    product of tr(C)/B and λmax(C)/tr(C)."""
    if key == "grad_top":
        return [
            v * c
            for v, c in zip(
                run.probes["grad_variance"], run.probes["grad_conditioning"]
            )
        ]
    return list(run.probes[key])


def steps(study: report.Study) -> list[int]:
    """The steps at which the runs were probed (those of the first run with probes)."""
    return next(
        (list(run.probes["step"]) for run in study.runs if run.probes.get("step")), []
    )


def threshold_lines() -> str:
    """h_max of the sharpness threshold for the golden and the common pair."""
    common = experiments.COMMON_PAIR
    return (
        f"golden pair (η, α) = ({theory.ETA:.5f}, {theory.ALPHA:.5f}): h_max = "
        f"{beyond.sharpness_limit(theory.ETA, theory.ALPHA):.1f}\n"
        f"{report.pair_label(common)}: "
        f"h_max = {beyond.sharpness_limit(*common):.1f}"
    )


def design(study: report.Study) -> str:
    """The grid and the probing of this study's runs, in lines of at most 88 chars."""
    lrs = ", ".join(f"{lr:g}" for lr in sorted({run.config.lr for run in study.runs}))
    momenta = ", ".join(
        f"{m:g}" for m in sorted({run.config.momentum for run in study.runs})
    )
    every = sorted({run.config.probe_every for run in study.runs})
    probed = steps(study)
    last = f"; the last at step {probed[-1]}" if probed else ""
    return (
        f"  learning rates {lrs} x momenta {momenta}\n"
        f"  probes every {', '.join(map(str, every))} steps, before the step{last}"
    )


# --- the table at the last probe -----------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One pair at the last probe: each measure and test accuracy over learned runs."""

    pair: Pair
    measures: dict[str, Estimate]
    test_acc: Estimate
    runs: int
    learned: int

    @property
    def effective_step(self) -> float:
        return theory.effective_step(*self.pair)

    @property
    def limit(self) -> float:
        return beyond.sharpness_limit(*self.pair)

    @property
    def sharpness_share(self) -> float:
        return self.measures["sharpness"].mean / self.limit


def _row(pair: Pair, grouped: Group) -> Row:
    learned = [grouped.learned[k] for k in sorted(grouped.learned)]
    measures = {
        key: Estimate.of(probe(run, key)[-1] for run in learned) for key in MEASURES
    }
    return Row(
        pair, measures, grouped.estimate("test_acc"), len(grouped.runs), len(learned)
    )


def rows(study: report.Study) -> list[Row]:
    """Every pair of the study, by effective step."""
    return sorted(
        (_row(pair, g) for pair, g in group(study.runs).items()),
        key=lambda row: row.effective_step,
    )


def _g(estimate: Estimate) -> str:
    if math.isnan(estimate.mean):
        return "n/a"
    if math.isnan(estimate.half):
        return f"{estimate.mean:.4g}"
    return f"{estimate.mean:.4g} ± {estimate.half:.2g}"


def table(study: report.Study) -> str:
    """The measures at the last probe, mean ± 95% CI over the runs that learned."""
    body = []
    for row in rows(study):
        marker = " **(golden)**" if row.pair == experiments.GOLDEN_PAIR else ""
        share = row.sharpness_share
        share = "n/a" if math.isnan(share) else f"{share:.3f}"
        body.append(
            [
                f"{row.pair[0]:g}{marker}",
                f"{row.pair[1]:g}",
                f"{row.effective_step:.4g}",
                *(_g(row.measures[key]) for key in MEASURES),
                share,
                format(row.test_acc, ".4f"),
                f"{row.learned} of {row.runs}",
            ]
        )
    return report.table(
        [
            "η",
            "α",
            "η/(1−α)",
            *COLUMNS.values(),
            "sharpness / h_max",
            "test accuracy after 1 epoch",
            "runs learned",
        ],
        body,
    )


# --- trends in the effective step ----------------------------------------------------


@dataclass(frozen=True)
class Trend:
    """Spearman's ρ of one measure at the last probe against the effective step."""

    key: str
    rho: float
    p_value: float
    p_adjusted: float  # Holm over the four measures
    n: int

    @property
    def direction(self) -> int:
        """-1: falls, +1: rises as the step grows, 0: no trend after the correction."""
        if math.isnan(self.p_adjusted) or self.p_adjusted >= FAMILY_ALPHA:
            return 0
        return 1 if self.rho > 0 else -1

    def phrase(self) -> str:
        if self.direction == 0:
            return f"shows no clear trend (ρ = {self.rho:+.2f})"
        return f"{'falls' if self.direction < 0 else 'rises'} (ρ = {self.rho:+.2f})"


def _trends(learned: list[Run], value) -> dict[str, Trend]:
    """Spearman's ρ of ``value(run, key)`` against the effective step for each measure,
    over ``learned``, Holm-corrected together."""
    xs = [theory.effective_step(*run.pair) for run in learned]
    tests = {}
    for key in MEASURES:
        ys = [value(run, key) for run in learned]
        if len(learned) < 3 or len(set(xs)) < 2 or len(set(ys)) < 2:
            tests[key] = (math.nan, math.nan)  # no rank correlation is defined
            continue
        result = scipy_stats.spearmanr(xs, ys)
        tests[key] = (float(result.statistic), float(result.pvalue))
    adjusted = stats.holm({k: p for k, (_, p) in tests.items() if not math.isnan(p)})
    return {
        key: Trend(key, rho, p, adjusted.get(key, math.nan), len(learned))
        for key, (rho, p) in tests.items()
    }


def trends(study: report.Study) -> dict[str, Trend]:
    """Each measure's trend at the last probe over the learned runs (one family)."""
    learned = [run for run in study.runs if run.learned()]
    return _trends(learned, lambda run, key: probe(run, key)[-1])


# --- at matched training loss --------------------------------------------------------


def match_level(runs: list[Run]) -> float:
    """The highest probe-batch loss that every run reaches in the epoch: the largest,
    over the runs, of each run's lowest probed loss."""
    return max(min(run.probes["probe_loss"]) for run in runs)


def matched_probe(run: Run, level: float) -> int:
    """The first probe at which the run's probe-batch loss is at or below ``level``."""
    return next(i for i, loss in enumerate(run.probes["probe_loss"]) if loss <= level)


class _Reading:
    """What the ``trends`` of a class that holds them say about the noise."""

    trends: dict[str, Trend]

    @property
    def noise_falls(self) -> bool:
        return all(self.trends[k].direction < 0 for k in ("grad_variance", "grad_top"))

    @property
    def spread_improves(self) -> bool:
        return self.trends["grad_conditioning"].direction < 0


@dataclass(frozen=True)
class Matched(_Reading):
    """The trends at matched training loss, and how closely the probes match."""

    level: float  # the matched probe-batch loss
    trends: dict[str, Trend]
    steps: tuple[int, int]  # the earliest and the latest step at which runs match
    losses: tuple[float, float]  # the lowest and the highest loss at those probes


def matched(study: report.Study) -> Matched | None:
    """The trends with each learned run at the first probe where its probe-batch loss
    is at or below :func:`match_level`; None where a record has no probed loss or fewer
    than three runs learned."""
    learned = [run for run in study.runs if run.learned()]
    if len(learned) < 3 or not all(run.probes.get("probe_loss") for run in learned):
        return None
    level = match_level(learned)
    at = {id(run): matched_probe(run, level) for run in learned}
    found = _trends(learned, lambda run, key: probe(run, key)[at[id(run)]])
    steps = [run.probes["step"][at[id(run)]] for run in learned]
    losses = [run.probes["probe_loss"][at[id(run)]] for run in learned]
    return Matched(level, found, (min(steps), max(steps)), (min(losses), max(losses)))


def matched_table(study: report.Study) -> str:
    """Spearman's ρ of each measure at matched training loss, with Holm's p."""
    found = matched(study)
    if found is None:
        return "The records hold no probe-batch loss: no comparison at matched loss."
    return _trend_table("at matched training loss", found.trends)


def matched_lines(study: report.Study) -> str:
    """Where the runs were matched, in lines of at most 88 characters."""
    found = matched(study)
    if found is None:
        return "no probe-batch loss in the records: runs not matched"
    return (
        f"matched at probe-batch loss <= {found.level:.3f}, the highest every run "
        "reaches;\n"
        f"  matched probes at steps {found.steps[0]} to {found.steps[1]}, losses "
        f"{found.losses[0]:.3f} to {found.losses[1]:.3f}"
    )


def trend_table(study: report.Study) -> str:
    """Spearman's ρ of each measure against the effective step, with Holm's p."""
    return _trend_table("at the last probe", trends(study))


def _trend_table(where: str, found: dict[str, Trend]) -> str:
    """The trends ``found`` as a table; its first column says ``where`` they are."""
    return report.table(
        [f"measure {where}", "Spearman ρ", "p", "Holm p", "runs"],
        [
            [
                MEASURES[t.key],
                f"{t.rho:+.3f}",
                f"{t.p_value:.2g}",
                f"{t.p_adjusted:.2g}",
                t.n,
            ]
            for t in found.values()
        ],
    )


# --- the verdict ---------------------------------------------------------------------


def _listing(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


@dataclass(frozen=True)
class Verdict(_Reading):
    """What the first epoch says about the effective step and about the golden pair.

    ``finding``: "on the line" (every measure of the golden pair lies between those of
    its neighbours by effective step), "off the line" (some do not), "alone" (no other
    pair learned) or "no golden" (the golden pair has no run that learned).
    """

    finding: str
    trends: dict[str, Trend]
    ranked: tuple[Row, ...]  # the pairs with a learned run, by effective step
    position: int | None = None  # the golden pair's, 1-based
    between: tuple[str, ...] = ()  # the measures where it lies between its neighbours
    matched: Matched | None = None  # the trends at matched training loss

    @property
    def stages(self) -> tuple[float, float]:
        """The lowest and the highest mean test accuracy of a pair after the epoch."""
        means = [row.test_acc.mean for row in self.ranked]
        return (min(means), max(means)) if means else (math.nan, math.nan)

    @property
    def golden(self) -> Row | None:
        return None if self.position is None else self.ranked[self.position - 1]

    @property
    def neighbours(self) -> list[Row]:
        if self.position is None:
            return []
        i = self.position - 1
        return [self.ranked[j] for j in (i - 1, i + 1) if 0 <= j < len(self.ranked)]

    def _stages(self) -> str:
        low, high = self.stages
        head = (
            f"These runs end the epoch at very different stages (mean test "
            f"accuracy from {low:.4f} to {high:.4f}), so the trends may only say "
            "that larger steps are further along. "
        )
        m = self.matched
        if m is None:
            return head + (
                "Their records hold no loss at each probe, so they cannot "
                "be compared at matched loss, and these trends mix the "
                "effect of the step with how far each run has come. "
            )
        t = m.trends
        said = (
            f"Compared instead at matched training loss (each run at its first "
            f"probe with a probe-batch loss at or below {m.level:.3f}, the highest "
            f"level every run reaches; steps {m.steps[0]} to {m.steps[1]}, losses "
            f"{m.losses[0]:.3f} to {m.losses[1]:.3f}, as the probes fall), the "
            f"gradient variance {t['grad_variance'].phrase()}, the largest "
            f"eigenvalue of the noise {t['grad_top'].phrase()}, the conditioning "
            f"ratio {t['grad_conditioning'].phrase()} and the sharpness "
            f"{t['sharpness'].phrase()}: "
        )
        if m.noise_falls == self.noise_falls:
            said += (
                "the fall in gradient noise with the step survives the matching, "
                if self.noise_falls
                else "at matched loss too the gradient noise does not clearly fall, "
            )
        else:
            said += (
                "the fall in gradient noise does not survive the matching: it "
                "came from the larger steps being further along, "
                if self.noise_falls
                else "at matched loss the gradient noise does fall with the step, "
                "which the end of the epoch hid, "
            )
        said += (
            "and so does the better spread. "
            if m.spread_improves and self.spread_improves
            else "and the noise is better spread at matched loss. "
            if m.spread_improves
            else "and the noise is not better spread. "
        )
        return head + said

    def text(self) -> str:
        t = self.trends
        n = next(iter(t.values())).n if t else 0
        parts = [
            "**Verdict.** After one epoch, as the effective step grows, the gradient "
            f"variance {t['grad_variance'].phrase()}, the largest eigenvalue of the "
            "noise "
            f"{t['grad_top'].phrase()}, the conditioning ratio "
            f"{t['grad_conditioning'].phrase()} and the sharpness "
            f"{t['sharpness'].phrase()} (Spearman's ρ over {n} runs that learned, "
            f"Holm-corrected over the {len(t)} measures). ",
            "Larger steps early thus lead to less gradient noise, as Jastrzebski et "
            "al. describe, "
            if self.noise_falls
            else "Larger steps early do not clearly lead to less gradient noise here, "
            "against what Jastrzebski et al. describe, ",
            "and to better-spread noise. "
            if self.spread_improves
            else "but not to better-spread noise by the measure used here: the share "
            "of the noise along its largest direction does not fall"
            + (
                " (the noise along its largest direction shrinks more slowly than the "
                "total). "
                if self.noise_falls
                else ". "
            ),
            self._stages(),
        ]
        if self.finding == "no golden":
            parts.append(
                "The golden pair has no run that learned, so where it sits in "
                "the early phase cannot be said."
            )
            return "".join(parts)
        golden = self.golden
        where = (
            "The golden pair, with effective step "
            f"{golden.effective_step:.3f}, is number {self.position} of "
            f"{len(self.ranked)} by effective step"
        )
        share = f"Its sharpness ends at {golden.sharpness_share:.0%} of its h_max."
        if self.finding == "alone":
            parts.append(
                where + ", but no other pair learned to compare it with. " + share
            )
            return "".join(parts)
        between = [SHORT[key] for key in self.between]
        gap = max(
            abs(row.test_acc.mean - golden.test_acc.mean) for row in self.neighbours
        )
        parts.append(
            where
            + ", between "
            + " and ".join(report.pair_label(row.pair) for row in self.neighbours)
            + f" (whose mean test accuracy after the epoch is within {gap:.4f} of its "
            "own, so here the runs compared stand at a like stage); "
            + (
                f"its {_listing(between)} lie between theirs, "
                if between
                else "none of its measures lies between theirs, "
            )
            + (
                "so the early phase does not single it out beyond its effective step. "
                if self.finding == "on the line"
                else "and the early phase places it off the line its effective step "
                f"would predict for {len(MEASURES) - len(between)} of {len(MEASURES)} "
                "measures. "
            )
            + share
        )
        return "".join(parts)


def verdict(study: report.Study) -> Verdict:
    """The verdict of the study's runs (see :class:`Verdict` for the findings)."""
    found = trends(study)
    at_loss = matched(study)
    ranked = tuple(row for row in rows(study) if row.learned)
    pairs = [row.pair for row in ranked]
    if experiments.GOLDEN_PAIR not in pairs:
        return Verdict("no golden", found, ranked, matched=at_loss)
    position = pairs.index(experiments.GOLDEN_PAIR) + 1
    result = Verdict("alone", found, ranked, position, matched=at_loss)
    if not result.neighbours:
        return result
    golden, beside = result.golden, result.neighbours
    between = tuple(
        key
        for key in MEASURES
        if min(row.measures[key].mean for row in beside)
        <= golden.measures[key].mean
        <= max(row.measures[key].mean for row in beside)
    )
    finding = "on the line" if len(between) == len(MEASURES) else "off the line"
    return Verdict(finding, found, ranked, position, between, at_loss)


# --- the figure ----------------------------------------------------------------------


@plots.figure("breakeven_curves", load)
def curves_figure(study: report.Study) -> plt.Figure:
    """The four measures through the first epoch: colour is the learning rate, solid the
    golden momentum, dashed the common one; mean over the learned seeds, band from the
    lowest to the highest; dotted: h_max at the golden momentum where it is in view."""
    groups = group(study.runs)
    lrs = sorted({pair[0] for pair in groups})
    colours = dict(zip(lrs, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    styles = {
        report.pair_label(pair): {
            "color": colours[pair[0]],
            "marker": None,
            "ls": "--" if pair[1] == experiments.COMMON_PAIR[1] else "-",
        }
        for pair in groups
    }
    x = steps(study)
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5))
    axes = axes.ravel()
    for ax, (key, label) in zip(axes, MEASURES.items()):
        curves = {
            report.pair_label(pair): [
                probe(g.learned[k], key) for k in sorted(g.learned)
            ]
            for pair, g in groups.items()
            if g.learned
        }
        plots.learning_curves(
            curves, label, ax, x=x, xlabel="step", styles=styles, band="range"
        )
        ax.get_legend().remove()
        if key != "grad_conditioning":
            ax.set_yscale("log")
    top = max(
        (max(probe(run, "sharpness")) for run in study.runs if run.learned()),
        default=math.nan,
    )
    for lr in lrs:
        limit = beyond.sharpness_limit(lr, experiments.GOLDEN_GRID_MOMENTUM)
        if limit < 2 * top:
            axes[3].axhline(limit, color=colours[lr], ls=":", lw=1)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=4, fontsize=8)
    fig.tight_layout(rect=(0, 0.02, 1, 0.92))
    seeds = ", ".join(map(str, study.replicates))
    plots.stamp(fig, study.stamp(f"first epoch, probe batch of 256, seeds {seeds}"))
    return fig
