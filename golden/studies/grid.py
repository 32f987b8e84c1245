"""The grid of 60 pairs and the long run: figures, tables and the golden pair's verdict.

Runs become :class:`golden.results.Group` objects (one per pair, replicates keyed by
seed); diverged runs and runs that finished at chance accuracy are counted, never
averaged in. The golden pair is compared with every other pair by a paired t-test over
the seeds both learned, and the family of comparisons is Holm-corrected together. The
best other pair is picked by its test accuracy, so its raw p says little; its lead is
judged as the largest of the family by a max-t test that exchanges the golden and the
other pair within seeds (:func:`golden.stats.max_t`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib.pyplot as plt

from golden import plots, report, results, stats, theory
from golden.experiments import COMMON_PAIR, GOLDEN_PAIR, GRID_LRS, GRID_MOMENTA
from golden.report import Study, pair_label
from golden.results import Comparison, Estimate, Group

Pair = tuple[float, float]
# eta / (1 - alpha) of the golden pair
GOLDEN_STEP = float(theory.golden_effective_step())
OTHER_STEPS = (0.01, 0.1, 1.0)  # further curves of constant effective step


def load() -> Study:
    """The stored grid (or the quick fallback)."""
    return report.load("grid")


def load_long() -> Study:
    """The stored long run (or the quick fallback)."""
    return report.load("long")


def groups(study: Study) -> dict[Pair, Group]:
    return results.group(study.runs)


def ranking(study: Study) -> list[Group]:
    """Pairs with at least one learned run, by mean final test accuracy, best first."""
    learned = [g for g in groups(study).values() if g.learned]
    return sorted(learned, key=lambda g: -g.estimate("test_acc").mean)


def _replicates(study: Study) -> str:
    kind = "folds" if study.cross_validated else "seeds"
    return f"{kind} {', '.join(map(str, study.replicates))}"


def heatmap(study: Study, metric: str = "test_acc") -> plt.Figure:
    """The grid as a heatmap of mean test error (``metric="test_acc"``, in %, log colour
    scale) or of mean final training loss (``"train_loss"``); the golden, the best and
    the common pair outlined, the curves of constant effective step between the numbers.
    A pair without a learned run shows how its runs ended; a mean over fewer runs than
    the pair has is starred."""
    by_pair = groups(study)
    best = ranking(study)[0].key if ranking(study) else GOLDEN_PAIR
    cells: dict[Pair, float | None] = {}
    missing: dict[Pair, str] = {}
    for pair, group in by_pair.items():
        if not group.learned:
            cells[pair] = None
            missing[pair] = (
                "diverged" if group.diverged == len(group.runs) else "chance"
            )
            continue
        mean = group.estimate(metric).mean
        cells[pair] = 100 * (1 - mean) if metric == "test_acc" else mean
    fmt = "{:.2f}" if metric == "test_acc" else "{:.3g}"
    marks = {
        "golden pair (as rounded in the 2024 grid)": GOLDEN_PAIR,
        "best pair (highest mean test accuracy)": best,
        f"common pair {COMMON_PAIR}": COMMON_PAIR,
    }
    guides = {
        f"η/(1−α) = {GOLDEN_STEP:.3f}, through the golden pair": (GOLDEN_STEP,),
        "η/(1−α) = "
        + ", ".join(f"{s:g}" for s in OTHER_STEPS)
        + " (left to right)": OTHER_STEPS,
    }
    name = "mean test error (%)" if metric == "test_acc" else "mean final training loss"
    fig = plots.grid_heatmap(
        cells,
        GRID_LRS,
        GRID_MOMENTA,
        f"{name}, log scale",
        marks,
        guides,
        fmt,
        missing=missing,
        title=f"{name} after {study.epochs} epoch{'s' * (study.epochs != 1)}, "
        f"{_replicates(study)}",
    )
    starred = [
        pair
        for pair, group in by_pair.items()
        if group.learned and len(group.learned) < len(group.runs)
    ]
    ax = fig.axes[0]
    for text in ax.texts:
        pair = (
            GRID_LRS[round(text.get_position()[0])],
            GRID_MOMENTA[round(text.get_position()[1])],
        )
        if pair in starred:
            text.set_text(text.get_text() + "*")
    plots.stamp(
        fig, study.stamp("mean over the runs that learned; * some runs did not")
    )
    return fig


@plots.figure("grid_test_accuracy", load)
def test_accuracy_figure(study: Study) -> plt.Figure:
    return heatmap(study, "test_acc")


@plots.figure("grid_train_loss", load)
def train_loss_figure(study: Study) -> plt.Figure:
    return heatmap(study, "train_loss")


def _ended(group: Group) -> str:
    return f"{len(group.learned)} / {group.diverged} / {group.unlearned}"


def best_table(study: Study, top: int = 10) -> str:
    """The ``top`` pairs by mean test accuracy, with how their runs ended."""
    rows = [
        (
            rank,
            f"{g.key[0]:g}",
            f"{g.key[1]:g}",
            f"{g.estimate('test_acc')}",
            f"{g.estimate('val_acc')}",
            f"{g.estimate('train_loss').mean:.4f}",
            _ended(g),
        )
        for rank, g in enumerate(ranking(study)[:top], start=1)
    ]
    return report.table(
        (
            "rank",
            "η",
            "α",
            "test accuracy (mean ± 95% CI)",
            "validation accuracy",
            "final train loss",
            "learned / diverged / at chance",
        ),
        rows,
    )


def golden_rank_text(study: Study) -> str:
    ranked = [g.key for g in ranking(study)]
    golden = groups(study).get(GOLDEN_PAIR)
    if GOLDEN_PAIR not in ranked:
        return "The golden pair has no run that learned, so it has no rank."
    return (
        f"The golden pair ranks **{ranked.index(GOLDEN_PAIR) + 1}** of {len(ranked)} "
        f"with {golden.estimate('test_acc')}."
    )


def comparisons(study: Study) -> list[Comparison]:
    """The golden pair against every other pair in final test accuracy (golden − other),
    paired by seed, Holm-corrected as one family."""
    return results.against_the_rest(groups(study), GOLDEN_PAIR)


def family_line(study: Study) -> str:
    """How many comparisons the golden pair's family holds, and why not every pair
    (two lines of at most 88 characters)."""
    others = [pair for pair in groups(study) if pair != GOLDEN_PAIR]
    tested = len(comparisons(study))
    left = len(others) - tested
    return f"the golden pair against {tested} of the {len(others)} other pairs;\n" + (
        f"{left} have fewer than two seeds learned by both"
        if left
        else "every one shares two or more learned seeds with it"
    )


@dataclass(frozen=True)
class Selection:
    """The family's max-t test (:func:`golden.stats.max_t`) on other − golden, per seed:
    how often, with the labels of the golden and of every other pair exchanged within
    seeds, the largest t of the family reaches a comparison's."""

    adjusted: dict[Pair, float]  # max-t p of each compared pair (other ahead)
    maxima: tuple[float, ...]  # the family's largest t under each sign pattern
    replicates: int

    @property
    def patterns(self) -> int:
        return len(self.maxima)

    @property
    def smallest(self) -> float:
        """The smallest p the test can give: the identity pattern always counts."""
        return 1 / self.patterns if self.patterns else math.nan

    def reached(self, pair: Pair) -> int:
        """In how many sign patterns the family's largest t reaches ``pair``'s."""
        return round(self.adjusted[pair] * self.patterns)


def selection(study: Study) -> Selection:
    """The max-t test of every pair compared with the golden pair."""
    by_pair = groups(study)
    golden = by_pair[GOLDEN_PAIR].values("test_acc") if GOLDEN_PAIR in by_pair else {}
    differences = {}
    for c in comparisons(study):
        other = by_pair[c.b].values("test_acc")
        differences[c.b] = {k: other[k] - golden[k] for k in c.replicates}
    found = stats.max_t(differences)
    replicates = {k for d in differences.values() for k in d}
    return Selection(found["adjusted"], tuple(found["maxima"]), len(replicates))


@dataclass(frozen=True)
class Verdict:
    """What the grid says about the golden pair, with the numbers that say it.

    ``finding``: "first" (highest mean, no pair significantly ahead), "beaten" (a pair
    ahead after Holm's correction), "suggestive" (the best other pair's lead survives
    the selection-aware max-t test, not Holm's correction), "tied" (ahead within the
    noise, its raw p taken alone or not) or "no golden" (fewer than two learned golden
    runs: nothing to compare).
    """

    finding: str
    rank: int | None
    pairs: int
    golden: Estimate
    best: Comparison | None  # golden − the best other pair by mean
    common: Comparison | None  # golden − the common pair
    beaten_by: tuple[Comparison, ...] = ()
    tested: int = 0  # comparisons in the Holm family
    epochs: int = 0
    selection: Selection | None = None

    @property
    def best_max_t(self) -> float:
        """The best other pair's selection-aware p (max-t), NaN without one."""
        if self.best is None or self.selection is None:
            return math.nan
        return self.selection.adjusted.get(self.best.b, math.nan)

    def _selection(self) -> str:
        sel = self.selection
        seeds = sel.replicates
        return (
            "the max-t test, which exchanges the labels of the golden and of every "
            f"other pair within a seed (all {sel.patterns} sign patterns of the "
            f"{seeds} seeds), finds the family's largest t at least as large as this "
            f"pair's in {sel.reached(self.best.b)} of them (p = "
            f"{self.best_max_t:.3f}; {seeds} seeds cannot give less than "
            f"{sel.smallest:.3f})"
        )

    def text(self) -> str:
        head = "**Verdict.** "
        if self.finding == "no golden":
            return head + (
                "The golden pair has fewer than two runs that learned, so it "
                "cannot be compared: no verdict."
            )
        if self.finding == "first":
            return head + (
                "Under this protocol the golden pair ranks first of "
                f"{self.pairs}: the claim holds."
            )
        best = self.best
        lead = f"Under this protocol the golden pair ranks {self.rank} of {self.pairs}"
        if best is None:
            lead += "; no pair ahead of it shares two seeds with it that learned. "
        else:
            lead += (
                f"; the best pair, {pair_label(best.b)}, differs from it by "
                f"{best.flipped} in test accuracy (paired by seed, {best.p_text}). "
            )
        if self.finding == "beaten":
            names = ", ".join(pair_label(c.b) for c in self.beaten_by)
            middle = (
                f"{len(self.beaten_by)} pair(s) beat it after the Holm correction "
                f"over the {self.tested} pairs compared ({names}): the claim that "
                "no pair beats the golden pair does **not** hold here."
            )
        elif self.finding == "suggestive":
            middle = (
                "That pair was picked as the best by its test accuracy, and "
                + self._selection()
                + ": its lead survives that selection, though not the Holm "
                f"correction over the {self.tested} pairs compared. The evidence "
                "that the golden pair is beaten is suggestive, not conclusive."
            )
        elif best is None:
            middle = "Nothing shows that it is beaten."
        elif best.p_value < results.FAMILY_ALPHA:
            middle = (
                "Taken alone that difference is significant at the 5% level, but the "
                f"pair was picked as the best of the {self.tested} compared, by its "
                "test accuracy, and "
                + self._selection()
                + f": a lead of this size is what picking the best of {self.tested} "
                "can produce by chance alone. Nothing shows that the golden pair is "
                "beaten: it shares the first place within the noise of the seeds, "
                "as the 2024 full text reports."
            )
        else:
            middle = (
                "The paired test does not find that difference significant, even "
                f"taken alone (max-t p = {self.best_max_t:.3f}): the golden pair "
                "shares the first place within the noise of the seeds, as the 2024 "
                "full text reports."
            )
        tail = (
            f" What the data do show is that the golden pair is not uniquely best: "
            f"{self.rank - 1} pair(s) have a higher mean"
        )
        if self.common is not None:
            tail += (
                f", and the common pair {COMMON_PAIR} differs from it by "
                f"{self.common.diff.mean:+.4f} ({self.common.p_text})"
            )
        return head + lead + middle + tail + "."


def verdict(study: Study) -> Verdict:
    """The verdict of the grid (see :class:`Verdict` for the findings)."""
    ranked = [g.key for g in ranking(study)]
    golden = groups(study).get(GOLDEN_PAIR)
    epochs = study.epochs if study.runs else 0
    if golden is None or len(golden.learned) < 2:
        estimate = golden.estimate("test_acc") if golden else Estimate.of([])
        return Verdict(
            "no golden", None, len(ranked), estimate, None, None, epochs=epochs
        )
    tested = comparisons(study)
    by_pair = {c.b: c for c in tested}
    rank = ranked.index(GOLDEN_PAIR) + 1
    others = [pair for pair in ranked if pair != GOLDEN_PAIR and pair in by_pair]
    best = by_pair[others[0]] if others else None
    beaten = tuple(
        sorted((c for c in tested if c.direction < 0), key=lambda c: c.diff.mean)
    )
    chosen = selection(study)
    best_max_t = chosen.adjusted.get(best.b, math.nan) if best else math.nan
    finding = results.standing(tested, rank)
    lead = best is not None and best.diff.mean < 0
    if finding == "tied" and lead and best_max_t < results.FAMILY_ALPHA:
        finding = "suggestive"
    return Verdict(
        finding,
        rank,
        len(ranked),
        golden.estimate("test_acc"),
        best,
        by_pair.get(COMMON_PAIR),
        beaten,
        len(tested),
        epochs,
        chosen,
    )


def comparison_table(study: Study) -> str:
    """The golden pair against the best other pair and the common pair."""
    found = verdict(study)
    rows = []
    for name, c in (("best other pair", found.best), ("common pair", found.common)):
        if c is not None:
            rows.append(
                (
                    name,
                    f"{c.b[0]:g}",
                    f"{c.b[1]:g}",
                    *c.cells,
                    f"{found.selection.adjusted[c.b]:.3f}",
                    c.diff.n,
                )
            )
    return report.table(
        (
            "golden pair against",
            "η",
            "α",
            "golden − other, mean ± 95% CI",
            "p (paired t)",
            "Holm p",
            "max-t p",
            "seeds",
        ),
        rows,
    )


@plots.figure("long_run_curves", load_long)
def long_run_figure(study: Study) -> plt.Figure:
    """Training loss (log scale) and test accuracy per epoch of the long run's pairs,
    mean over the seeds that learned with a 95% band."""
    by_pair = groups(study)
    fig, (left, right) = plt.subplots(1, 2, figsize=(7.5, 3.4))
    for ax, metric, name in (
        (left, "train_loss", "training loss"),
        (right, "test_acc", "test accuracy"),
    ):
        plots.learning_curves(
            {pair_label(p): g.curves(metric) for p, g in by_pair.items() if g.learned},
            name,
            ax,
        )
    left.set_yscale("log")
    left.get_legend().remove()
    right.legend(fontsize=7)
    fig.tight_layout()
    plots.stamp(fig, study.stamp("long run, 95% bands"))
    return fig


def long_table(study: Study) -> str:
    """The long run's pairs by mean final test accuracy."""
    ranked = sorted(
        (g for g in groups(study).values() if g.learned),
        key=lambda g: -g.estimate("test_acc").mean,
    )
    failed = [g for g in groups(study).values() if not g.learned]
    rows = [
        (
            rank,
            f"{g.key[0]:g}",
            f"{g.key[1]:g}",
            f"{g.estimate('test_acc')}",
            f"{g.estimate('train_loss').mean:.4f}",
            _ended(g),
        )
        for rank, g in enumerate(ranked, start=1)
    ]
    rows += [
        ("—", f"{g.key[0]:g}", f"{g.key[1]:g}", "n/a", "n/a", _ended(g)) for g in failed
    ]
    return report.table(
        (
            "rank",
            "η",
            "α",
            "test accuracy (mean ± 95% CI)",
            "final train loss",
            "learned / diverged / at chance",
        ),
        rows,
    )


@dataclass(frozen=True)
class SelfCheck:
    """One stored run retrained now: the largest difference in accuracy per epoch."""

    stored: tuple[float, ...]  # stored test accuracy per epoch
    again: tuple[float, ...]  # retrained now
    worst: float  # over validation and test accuracy, every epoch
    tolerance: float

    @property
    def passed(self) -> bool:
        return len(self.again) == len(self.stored) and self.worst <= self.tolerance

    def text(self) -> str:
        stored = ", ".join(f"{a:.4f}" for a in self.stored)
        again = ", ".join(f"{a:.4f}" for a in self.again)
        return (
            f"stored test accuracy per epoch: {stored}\n"
            f"retrained now:                  {again}\n"
            f"largest difference: {self.worst:.6f} (tolerance {self.tolerance})"
        )


TOLERANCE = 0.005  # absolute, on accuracies in [0, 1]: 50 of 10,000 test images


def compare_runs(
    stored: results.Run, again: results.Run, tolerance: float = TOLERANCE
) -> SelfCheck:
    worst = max(
        (
            abs(a - b)
            for key in ("val_acc", "test_acc")
            for a, b in zip(stored.metrics[key], again.metrics[key])
        ),
        default=math.inf,
    )
    return SelfCheck(
        tuple(stored.metrics["test_acc"]),
        tuple(again.metrics["test_acc"]),
        worst,
        tolerance,
    )


def self_check(study: Study, tolerance: float = TOLERANCE) -> SelfCheck:
    """Retrain the stored golden run of replicate 0 through the runner and compare."""
    from golden import runner

    stored = next(
        run for run in study.runs if run.pair == GOLDEN_PAIR and run.replicate == 0
    )
    again = results.Run.from_record(
        runner.run_one(stored.config, study.proto.quick_data)
    )
    return compare_runs(stored, again, tolerance)
