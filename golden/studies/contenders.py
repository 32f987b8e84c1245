"""The 30-epoch question, answered from the contenders' records (successive halving).

The stored 2-epoch grid promotes pairs to a 10-epoch rung, and that rung to a 30-epoch
rung (the rule is in :mod:`golden.experiments`); both rungs train folds 0, 1, 2 of the
10-fold cross-validation. Here the final rung's runs become per-pair results, the golden
pair is compared with every other pair paired by fold (never by position), the
comparisons are corrected together (Holm), and the verdict is a value whose prose is
built from its numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import matplotlib.pyplot as plt

from golden import experiments, plots, report, results
from golden.experiments import COMMON_PAIR, GOLDEN_PAIR
from golden.report import pair_label as label
from golden.results import Comparison, Group, Run, runs_of

ALPHA = results.FAMILY_ALPHA  # family-wise error rate of the comparisons with golden

Pair = tuple[float, float]
Runs = Iterable[dict | Run]


def pair_results(runs: Runs, epoch: int | None = None) -> dict[Pair, Group]:
    """Per-pair groups at ``epoch`` (default: each run's last), replicates keyed by fold
    (or by seed for runs on the fixed split). Diverged runs and runs that did not learn
    are counted, never averaged in."""
    return results.group(runs, epoch=epoch)


def compare_with_golden(groups: dict[Pair, Group]) -> list[Comparison]:
    """Paired t-tests by fold of the golden pair against every other pair with two or
    more shared folds (golden − pair), Holm-adjusted together."""
    golden = groups[GOLDEN_PAIR].values("test_acc")
    return results.family(
        results.compare(golden, group.values("test_acc"), GOLDEN_PAIR, pair)
        for pair, group in groups.items()
        if pair != GOLDEN_PAIR
    )


def _mean(group: Group, metric: str = "test_acc") -> float:
    return group.estimate(metric).mean if group.learned else -1.0


@dataclass(frozen=True)
class Verdict:
    """What the final rung says about the golden pair, with the numbers that say it."""

    finding: str  # "first", "tied", "beaten" or "no golden"
    ranking: list[Group]  # by mean final test accuracy, best first
    comparisons: list[Comparison] = field(default_factory=list)
    epochs: int = 0

    @property
    def golden_rank(self) -> int | None:
        pairs = [group.key for group in self.ranking]
        return pairs.index(GOLDEN_PAIR) + 1 if GOLDEN_PAIR in pairs else None

    def text(self) -> str:
        n = len(self.ranking)
        if self.finding == "no golden":
            return (
                f"**Verdict at {self.epochs} epochs.** The golden pair has fewer than "
                "two folds that trained to the end, so it cannot be compared: no "
                "verdict."
            )
        beaten = [c for c in self.comparisons if c.direction < 0]
        ahead = [c for c in self.comparisons if c.diff.mean < 0]
        head = (
            f"**Verdict at {self.epochs} epochs.** Among the {n} pairs of the final "
            f"rung, the golden pair ranks {self.golden_rank} of {n} by mean test "
            "accuracy"
        )
        if self.finding == "first" or not ahead:
            return head + (
                ". No pair of the final rung has a higher mean: at this length the "
                "claim holds, for the pairs this rule promoted."
                if self.finding == "first"
                else ". No pair ahead of it shares two folds with it: nothing shows "
                "that it is beaten."
            )
        best = min(ahead, key=lambda c: c.diff.mean)
        numbers = (
            f"{label(best.b)} is ahead by {-best.diff.mean:.4f} ± {best.diff.half:.4f} "
            f"(paired by fold, p = {best.p_value:.3f}, "
            f"Holm-corrected {best.p_adjusted:.3f})"
        )
        if self.finding == "beaten":
            names = ", ".join(label(c.b) for c in beaten)
            return (
                head + f"; {numbers}. {len(beaten)} pair(s) beat it after the Holm "
                f"correction for {len(self.comparisons)} comparisons ({names}): the "
                "claim that no pair beats the golden pair does **not** hold here."
            )
        return (
            head + f"; {numbers}. No difference survives the Holm correction for "
            f"{len(self.comparisons)} comparisons: the golden pair shares the first "
            "place within the noise of the folds, as the 2024 full text reports, but "
            "is not shown to be best."
        )


def verdict(runs: Runs) -> Verdict:
    """The verdict of the final rung's runs (see :class:`Verdict` for the findings)."""
    runs = runs_of(runs)
    groups = pair_results(runs)
    epochs = max((run.config.epochs for run in runs), default=0)
    ranking = sorted(groups.values(), key=lambda g: -_mean(g))
    golden = groups.get(GOLDEN_PAIR)
    if golden is None or len(golden.learned) < 2:
        return Verdict("no golden", ranking, epochs=epochs)
    comparisons = compare_with_golden(groups)
    if any(c.direction < 0 for c in comparisons):
        finding = "beaten"
    elif ranking[0].key == GOLDEN_PAIR:
        finding = "first"
    else:
        finding = "tied"
    return Verdict(finding, ranking, comparisons, epochs)


def table(found: Verdict) -> str:
    """The final rung as a Markdown table: mean ± 95% CI by fold, and each
    comparison."""
    by_pair = {c.b: c for c in found.comparisons}
    rows = []
    for rank, group in enumerate(found.ranking, start=1):
        c = by_pair.get(group.key)
        versus = (
            (
                f"{c.diff.mean:+.4f} ± {c.diff.half:.4f}",
                f"{c.p_value:.3f}",
                f"{c.p_adjusted:.3f}",
            )
            if c
            else ("—", "—", "—")
        )
        rows.append(
            (
                rank,
                f"{group.key[0]:g}",
                f"{group.key[1]:g}",
                f"{group.estimate('test_acc')}",
                len(group.learned),
                *versus,
            )
        )
    return report.table(
        (
            "rank",
            "η",
            "α",
            "test accuracy, mean ± 95% CI",
            "folds",
            "golden − pair",
            "p",
            "Holm p",
        ),
        rows,
    )


def ranks(groups: dict[Pair, Group]) -> dict[Pair, int]:
    """Rank of each pair by mean validation accuracy (the promotion rule's
    criterion); pairs without a learned run have none."""
    ordered = sorted(
        (g for g in groups.values() if g.learned), key=lambda g: -_mean(g, "val_acc")
    )
    return {group.key: rank for rank, group in enumerate(ordered, start=1)}


def missed(grid_runs: Runs, promoted: list[Pair]) -> tuple[Pair, int, float]:
    """The grid pair with the smallest learning rate that the rule left out, its 2-epoch
    rank and its mean validation accuracy: the kind of pair that a short first rung can
    miss."""
    groups = pair_results(grid_runs)
    grid_ranks = ranks(groups)
    left_out = [pair for pair in grid_ranks if pair not in promoted]
    slowest = min(left_out, key=lambda pair: (pair[0], grid_ranks[pair]))
    return slowest, grid_ranks[slowest], _mean(groups[slowest], "val_acc")


def missed_text(grid_runs: Runs, rung1_runs: Runs) -> str:
    """What the halving rule could have missed, with the grid's numbers."""
    grid_runs, rung1_runs = runs_of(grid_runs), runs_of(rung1_runs)
    promoted = sorted({run.pair for run in rung1_runs})
    slowest, rank, val = missed(grid_runs, promoted)
    epochs = max(run.config.epochs for run in grid_runs)
    folds = len({run.config.fold for run in rung1_runs})
    return (
        "**What the rule could have missed.** Halving keeps the pairs that are good "
        "early. A pair that learns slowly and overtakes late is cut before the first "
        f"rung: for example {label(slowest)}, rank {rank} of "
        f"{len(ranks(pair_results(grid_runs)))} after {epochs} "
        f"epoch{'s' * (epochs != 1)} (mean validation accuracy {val:.4f}), was never "
        "trained longer. Only the full protocol, every pair for 30 epochs, rules that "
        f"out; and with {folds} folds instead of ten, the intervals above are wider "
        "than the 2024 protocol's would be."
    )


def rank_figure(grid_runs: Runs, *rung_runs: Runs) -> plt.Figure:
    """How the ranks of the rung-1 pairs move from the grid through each rung (2, 10,
    30 epochs under ``book``; by mean validation accuracy, the rule's criterion); a pair
    cut after a rung ends there."""
    stages_runs = [runs_of(runs) for runs in (grid_runs, *rung_runs)]
    rung1 = pair_results(stages_runs[1])
    stages = [
        ranks({p: g for p, g in pair_results(stages_runs[0]).items() if p in rung1}),
        *(ranks(pair_results(runs)) for runs in stages_runs[1:]),
    ]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for pair in rung1:
        xs = [x for x, stage in enumerate(stages) if pair in stage]
        style = {
            GOLDEN_PAIR: dict(color="#b8860b", lw=2.6, zorder=3),
            COMMON_PAIR: dict(color="#1f77b4", lw=2.0, zorder=2),
        }.get(pair, dict(color="0.55", lw=1.2))
        ax.plot(xs, [stages[x][pair] for x in xs], marker="o", **style)
        ax.annotate(
            label(pair),
            (xs[-1], stages[xs[-1]][pair]),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=7.5,
            color=style["color"],
        )
    epochs = [max(run.config.epochs for run in runs) for runs in stages_runs]
    ax.set_xticks(range(len(stages)), [f"{e} epochs" for e in epochs])
    ax.set_xlim(-0.2, len(stages) - 0.1)
    ax.set_ylim(len(rung1) + 0.5, 0.5)
    ax.set_ylabel("rank by mean validation accuracy")
    ax.grid(axis="x", visible=False)
    return fig


def header(proto, rung1_runs: Runs, rung2_runs: Runs) -> str:
    """What the two rungs ran, in lines of at most 88 characters."""
    rung1_runs, rung2_runs = runs_of(rung1_runs), runs_of(rung2_runs)
    lines = [
        f"contenders, protocol '{proto.name}' [{proto.digest()}]",
        f"  data: {proto.data_line()}",
    ]
    for rung, runs in enumerate((rung1_runs, rung2_runs), start=1):
        pairs = {run.pair for run in runs}
        folds = sorted({run.config.fold for run in runs})
        epochs = max(run.config.epochs for run in runs)
        lines.append(
            f"  rung {rung}: {len(pairs)} pairs x folds {', '.join(map(str, folds))} "
            f"x {epochs} epochs, {len(runs)} runs, plain SGD with momentum"
        )
    hours = sum(run.wall_time_s for run in rung1_runs + rung2_runs) / 3600
    lines.append(
        f"  compute: {hours:.1f} core-hours "
        "(a promoted run's time includes its rung-1 part)"
    )
    return "\n".join(lines)


@dataclass(frozen=True)
class Halving:
    """The two rungs and the grid they were promoted from, under one protocol."""

    study: report.Study  # the final rung (contenders30), or the quick fallback
    rung1: tuple[Run, ...]
    grid: tuple[Run, ...]

    def header(self) -> str:
        return header(self.study.proto, self.rung1, self.study.runs)

    def verdict(self) -> Verdict:
        return verdict(self.study.runs)


def load() -> Halving:
    """The stored 30-epoch rung (else the quick fallback, see
    :func:`golden.experiments.stored_or_quick`), its first rung and its grid."""
    study = report.load("contenders30")
    rung1 = experiments.finished_runs("contenders10", study.proto, "the contenders")
    grid = experiments.finished_runs("grid", study.proto, "the contenders")
    return Halving(study, tuple(runs_of(rung1)), tuple(runs_of(grid)))


def ranks_figure(halving: Halving | None = None) -> plt.Figure:
    """:func:`rank_figure` of the stored rungs, stamped."""
    halving = halving or load()
    fig = rank_figure(halving.grid, halving.rung1, halving.study.runs)
    plots.stamp(fig, halving.study.stamp())
    return fig


FIGURES = {"contenders_ranks": ranks_figure}
