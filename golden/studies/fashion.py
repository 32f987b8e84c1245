"""Does the golden pair travel? The grid and successive halving on Fashion-MNIST.

The same CNN, code and protocols as on MNIST, on a data set of the same shape (28 x 28
grey images, ten classes, 60,000 + 10,000) that is much harder, so that the pairs spread
out instead of sharing a noise floor. The figures, tables and per-stage verdicts are
those of :mod:`golden.studies.grid` and :mod:`golden.studies.contenders` applied to the
Fashion-MNIST records; what is new here is the comparison of the two landscapes and one
verdict over every stage that was trained.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, replace

import matplotlib.pyplot as plt
from scipy import stats

from golden import plots, report, theory
from golden.experiments import COMMON_PAIR, GOLDEN_PAIR
from golden.protocols import replicates_text
from golden.report import Study, pair_label
from golden.results import runs_of
from golden.studies import contenders, effective_lr, grid

DATASET = "fashion-mnist"
TOP = 10  # the pairs whose centre says where the best region lies
Pair = tuple[float, float]


@dataclass(frozen=True)
class Fashion(Study):
    """The Fashion-MNIST grid, with every stage stored under its protocol (the grid
    first, then each rung of successive halving) and the MNIST grid of that protocol."""

    stages: tuple[Study, ...] = ()
    mnist: Study | None = None


def load() -> Fashion:
    """The stored Fashion-MNIST grid (or the quick fallback), its stages and the MNIST
    grid under the same protocol, so that the two landscapes compare like with like."""
    study = report.load("grid", dataset=DATASET)
    mnist = report.load("grid", preferred=study.proto.name)
    return study.extended(Fashion, stages=tuple(load_stages(study)), mnist=mnist)


def load_stages(study: Study) -> list[Study]:
    """The grid and every complete rung of successive halving under its protocol
    (under the quick fallback, rung 1 is trained now); a rung that fell back to
    another protocol than the grid's is left out, never mixed in."""
    rung1 = report.load("contenders10", preferred=study.proto.name, dataset=DATASET)
    if rung1.proto != study.proto:
        return [study]
    # A rung read under the grid's protocol shows the grid's fallback, if it fell back.
    rung1 = replace(rung1, fell_back=study.fell_back)
    stages = [study, rung1]
    final = report.complete_runs("contenders30", rung1.proto, rung1.store)
    if final is not None:
        runs = tuple(runs_of(final))
        stages.append(replace(rung1, experiment="contenders30", runs=runs))
    return stages


# --- the stages ------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """Where the golden pair stands after one stage's epochs."""

    epochs: int
    pairs: int  # pairs with a learned run
    rank: int | None  # of the golden pair by mean test accuracy
    golden: str  # its mean test accuracy ± 95% CI, formatted
    finding: str  # the stage's own verdict: "first", "tied", "beaten", ...
    beaten_by: int  # pairs ahead of it after Holm
    tested: int  # comparisons in the Holm family
    replicates: str

    @property
    def beaten(self) -> bool:
        return self.finding == "beaten"


def stage(study: Study) -> Stage:
    """The grid's verdict for the grid, the contenders' for a rung."""
    replicates = replicates_text(study.replicates, study.cross_validated)
    if study.experiment == "grid":
        found = grid.verdict(study)
        return Stage(
            study.epochs,
            found.pairs,
            found.rank,
            f"{found.golden}",
            found.finding,
            len(found.beaten_by),
            found.tested,
            replicates,
        )
    found = contenders.verdict(study)
    golden = next((g for g in found.ranking if g.key == GOLDEN_PAIR), None)
    return Stage(
        study.epochs,
        len(found.ranking),
        None if found.finding == "no golden" else found.golden_rank,
        f"{golden.estimate('test_acc')}" if golden else "n/a",
        found.finding,
        sum(c.direction < 0 for c in found.comparisons),
        len(found.comparisons),
        replicates,
    )


def stages_table(study: Fashion) -> str:
    """Where the golden pair stands after each stage."""
    return report.table(
        (
            "epochs",
            "replicates",
            "pairs",
            "golden rank",
            "golden test accuracy",
            "pairs ahead after Holm",
            "stage finding",
        ),
        (
            (
                s.epochs,
                s.replicates,
                s.pairs,
                s.rank or "none",
                s.golden,
                f"{s.beaten_by} of {s.tested}",
                s.finding,
            )
            for s in map(stage, study.stages)
        ),
    )


@plots.figure("fashion_grid_test_accuracy", load)
def grid_figure(study: Fashion) -> plt.Figure:
    """The grid's heatmap of mean test error (:func:`golden.studies.grid.heatmap`)."""
    return grid.heatmap(study, "test_acc")


@plots.figure("fashion_ranks", load)
def ranks_figure(study: Fashion) -> plt.Figure:
    """How the promoted pairs' ranks move over the stages (the contenders' figure);
    with the grid alone, the command that trains the first rung."""
    stages = study.stages
    if len(stages) > 1:
        fig = contenders.rank_figure(*(s.runs for s in stages))
    else:
        fig, ax = plt.subplots(figsize=(6.4, 1.6))
        ax.axis("off")
        ax.text(
            0.5,
            0.5,
            "no rung of successive halving is stored under this protocol yet:\n"
            f"python -m golden sweep contenders --protocol {stages[0].proto.name} "
            f"--dataset {DATASET}",
            ha="center",
            va="center",
            fontsize=9,
        )
    plots.stamp(fig, stages[-1].stamp())
    return fig


# --- the two landscapes ------------------------------------------------------------


def mean_accuracies(study: Study) -> dict[Pair, float]:
    """Mean final test accuracy of every pair with a learned run."""
    return {g.key: g.estimate("test_acc").mean for g in grid.ranking(study)}


def spearman_interval(rho: float, n: int) -> tuple[float, float]:
    """95% interval of a Spearman correlation by Fisher's z with the standard error
    sqrt(1.06 / (n − 3)) of Fieller, Hartley and Pearson (1957)."""
    if n <= 3 or abs(rho) == 1:
        return rho, rho
    half = stats.norm.ppf(0.975) * math.sqrt(1.06 / (n - 3))
    z = math.atanh(rho)
    return math.tanh(z - half), math.tanh(z + half)


@dataclass(frozen=True)
class Region:
    """Where the ``TOP`` best pairs of one data set lie."""

    title: str
    best: Pair
    best_accuracy: float
    golden_rank: int | None
    pairs: int
    median_lr: float
    median_momentum: float
    median_step: float  # of η/(1 − α)


def region(study: Study, top: int = TOP) -> Region:
    ranked = grid.ranking(study)
    keys = [g.key for g in ranked]
    best = ranked[:top]
    return Region(
        study.proto.title,
        keys[0],
        ranked[0].estimate("test_acc").mean,
        keys.index(GOLDEN_PAIR) + 1 if GOLDEN_PAIR in keys else None,
        len(keys),
        statistics.median(g.key[0] for g in best),
        statistics.median(g.key[1] for g in best),
        statistics.median(float(theory.effective_step(*g.key)) for g in best),
    )


@dataclass(frozen=True)
class Transfer:
    """Whether the landscape of the grid carries over from MNIST to Fashion-MNIST."""

    pairs: int  # learned on both data sets
    rho: float  # Spearman correlation of the pairs' mean test accuracies
    low: float
    high: float
    p_value: float
    regions: tuple[Region, Region]  # MNIST, Fashion-MNIST

    @property
    def strength(self) -> str:
        """Judged by the interval, not the point: 'strong' if it lies above 0.7,
        'none shown' if it holds 0, else 'moderate'."""
        if self.low > 0.7:
            return "strong"
        if self.low <= 0 <= self.high:
            return "none shown"
        return "moderate"

    def text(self) -> str:
        mnist, fashion = self.regions
        moved = (
            "stays where it was"
            if fashion.best == mnist.best
            else f"moves from {pair_label(mnist.best)} to {pair_label(fashion.best)}"
        )
        return (
            f"Over the {self.pairs} pairs that learned on both, the Spearman rank "
            f"correlation of mean test accuracy between {mnist.title} and "
            f"{fashion.title} is {self.rho:.2f} (95% interval {self.low:.2f} to "
            f"{self.high:.2f}, p = {self.p_value:.2g}): a {self.strength} "
            f"correspondence. The best pair {moved}; the median effective step of "
            f"the {TOP} best pairs is {mnist.median_step:.3g} on {mnist.title} and "
            f"{fashion.median_step:.3g} on {fashion.title}."
        )


def transfer(mnist: Study, fashion: Study) -> Transfer:
    a, b = mean_accuracies(mnist), mean_accuracies(fashion)
    shared = sorted(set(a) & set(b))
    rho, p = stats.spearmanr([a[k] for k in shared], [b[k] for k in shared])
    low, high = spearman_interval(float(rho), len(shared))
    return Transfer(
        len(shared), float(rho), low, high, float(p), (region(mnist), region(fashion))
    )


def regions_table(study: Fashion) -> str:
    """Where the best pairs lie on each data set."""
    found = transfer(study.mnist, study)
    return report.table(
        (
            "data",
            "best pair",
            "its test accuracy",
            "golden rank",
            f"top {TOP}: median η",
            "median α",
            "median η/(1−α)",
        ),
        (
            (
                r.title,
                pair_label(r.best),
                f"{r.best_accuracy:.4f}",
                f"{r.golden_rank} of {r.pairs}" if r.golden_rank else "none",
                f"{r.median_lr:g}",
                f"{r.median_momentum:g}",
                f"{r.median_step:.3g}",
            )
            for r in found.regions
        ),
    )


@plots.figure("fashion_transfer", load)
def transfer_figure(fashion: Fashion) -> plt.Figure:
    """Each pair's rank on Fashion-MNIST against its rank on MNIST (by mean test
    accuracy, 1 = best); on the diagonal the landscapes agree."""
    mnist = fashion.mnist
    ranks = [
        {key: rank for rank, key in enumerate(mean_accuracies(s), start=1)}
        for s in (mnist, fashion)
    ]
    shared = sorted(set(ranks[0]) & set(ranks[1]))
    fig, ax = plt.subplots(figsize=(5.6, 5.2))
    ax.plot([1, len(shared)], [1, len(shared)], color="0.75", lw=1, zorder=1)
    ax.scatter(
        [ranks[0][k] for k in shared],
        [ranks[1][k] for k in shared],
        s=18,
        color="0.45",
        zorder=2,
    )
    for pair, colour in ((GOLDEN_PAIR, "#b8860b"), (COMMON_PAIR, "#1f77b4")):
        if pair in shared:
            ax.scatter(ranks[0][pair], ranks[1][pair], s=70, color=colour, zorder=3)
            ax.annotate(
                pair_label(pair),
                (ranks[0][pair], ranks[1][pair]),
                xytext=(8, -4),
                textcoords="offset points",
                fontsize=8,
                color=colour,
            )
    ax.set_xlabel(f"rank on {mnist.proto.title} (mean test accuracy)")
    ax.set_ylabel(f"rank on {fashion.proto.title}")
    ax.invert_xaxis()
    ax.invert_yaxis()
    plots.stamp(fig, fashion.stamp(f"against grid on MNIST [{mnist.proto.digest()}]"))
    return fig


@plots.figure("fashion_effective_step", load)
def effective_step_figure(study: Fashion) -> plt.Figure:
    """The effective-step view of :mod:`golden.studies.effective_lr` on this grid."""
    return effective_lr.grid_step_figure(study)


# --- the verdict -------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """What Fashion-MNIST says about the golden pair, resting on the longest stage.

    ``finding``: "holds" (no pair beats it after Holm at the longest stage), "beaten"
    (some pair does) or "no golden" (it has no rank there: too few learned runs).
    """

    finding: str
    stages: tuple[Stage, ...]
    transfer: Transfer

    def text(self) -> str:
        last = self.stages[-1]
        head = f"**Verdict on Fashion-MNIST, after {last.epochs} epochs.** "
        if self.finding == "no golden":
            body = (
                "The golden pair has too few runs that learned to be compared: "
                "no verdict."
            )
        else:
            body = (
                f"The golden pair ranks {last.rank} of {last.pairs} with test accuracy "
                f"{last.golden} ({last.replicates}). "
            )
            ahead = (
                "no pair has a higher mean"
                if last.rank == 1
                else f"{last.rank - 1} pair(s) have a higher mean"
            )
            body += (
                f"{last.beaten_by} of the {last.tested} pairs compared with it beat it "
                "after the Holm correction: the claim that no pair beats the golden "
                "pair does **not** hold on this data set."
                if self.finding == "beaten"
                else f"{ahead.capitalize()}, and none of the {last.tested} pairs "
                "compared with it beats it after the Holm correction: the claim that "
                "no pair beats the golden pair is not refuted on this data set at this "
                "length of training"
                + (
                    "."
                    if last.rank == 1
                    else ", but the golden pair is not shown to be best either."
                )
            )
        earlier = "; ".join(
            f"after {s.epochs} epoch{'s' * (s.epochs != 1)} rank {s.rank or 'none'} "
            f"of {s.pairs} ({s.finding})"
            for s in self.stages[:-1]
        )
        if earlier:
            body += f" Earlier stages: {earlier}."
        return head + body + " " + self.transfer.text()


def verdict(study: Fashion) -> Verdict:
    """The verdict at the longest stage (see :class:`Verdict` for the findings), with
    the transfer of the landscape from MNIST."""
    found = tuple(stage(s) for s in study.stages)
    last = found[-1]
    finding = (
        "no golden"
        if last.finding == "no golden" or last.rank is None
        else "beaten"
        if last.beaten
        else "holds"
    )
    return Verdict(finding, found, transfer(study.mnist, study))
