"""The 30-epoch question, answered from the contenders' records (successive halving).

The stored 2-epoch grid promotes pairs to a 10-epoch rung, and that rung to a 30-epoch
rung (the rule is in :mod:`golden.experiments`); both rungs train folds 0, 1, 2 of the
10-fold cross-validation. Here the final rung's runs become per-pair results, the golden
pair is compared with every other pair paired by fold (never by position), the
comparisons are corrected together (Holm), and the verdict is a value whose prose is
built from its numbers. Pairs are ranked with ties: equal means share a rank
(:func:`golden.results.tied_ranks`). The verdict and the table rank by mean *test*
accuracy, the claim's measure; the promotion rule, and so the rank figure, by mean
*validation* accuracy, so that the test set chooses nothing; the table shows both.

The compute of the two rungs and the cost of the 2024 protocol's full grid are computed
from the records' wall times (:func:`rung_hours`, :func:`full_grid_cost`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import matplotlib.pyplot as plt

from golden import experiments, plots, report, results
from golden.experiments import COMMON_PAIR, GOLDEN_PAIR
from golden.protocols import protocol
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


def _mean(group: Group, metric: str = "test_acc") -> float:
    return group.estimate(metric).mean if group.learned else -1.0


def ranks_by_test(groups: dict[Pair, Group]) -> dict[Pair, int]:
    """Rank of every pair by mean final test accuracy, ties shared; a pair without a
    learned run ranks last."""
    return results.tied_ranks({pair: _mean(g) for pair, g in groups.items()})


def _listing(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


@dataclass(frozen=True)
class Verdict:
    """What the final rung says about the golden pair, with the numbers that say it.

    ``finding``: "first" (no pair has a higher mean test accuracy; pairs with an equal
    mean share the first rank), "tied" (pairs have a higher mean, none significantly
    after Holm's correction), "beaten" (one is significantly ahead) or "no golden"
    (fewer than two golden folds learned).
    """

    finding: str
    ranking: list[Group]  # by mean final test accuracy, best first, ties by pair
    comparisons: list[Comparison] = field(default_factory=list)
    epochs: int = 0

    @property
    def ranks(self) -> dict[Pair, int]:
        """Rank by mean test accuracy; equal means share a rank."""
        return ranks_by_test({group.key: group for group in self.ranking})

    @property
    def golden_rank(self) -> int | None:
        return self.ranks.get(GOLDEN_PAIR)

    @property
    def tied_with_golden(self) -> list[Pair]:
        """The other pairs whose mean equals the golden pair's."""
        ranks = self.ranks
        return [
            pair
            for pair, rank in ranks.items()
            if rank == self.golden_rank and pair != GOLDEN_PAIR
        ]

    @property
    def ahead(self) -> list[Comparison]:
        """Comparisons with the pairs ranked above the golden pair, best first."""
        ranks = self.ranks
        above = [c for c in self.comparisons if ranks[c.b] < self.golden_rank]
        return sorted(above, key=lambda c: (ranks[c.b], c.b))

    def text(self) -> str:
        n = len(self.ranking)
        if self.finding == "no golden":
            return (
                f"**Verdict at {self.epochs} epochs.** The golden pair has fewer than "
                "two folds that trained to the end, so it cannot be compared: no "
                "verdict."
            )
        beaten = [c for c in self.comparisons if c.direction < 0]
        tied = self.tied_with_golden
        head = (
            f"**Verdict at {self.epochs} epochs.** Among the {n} pairs of the final "
            f"rung, the golden pair ranks {self.golden_rank} of {n} by mean test "
            "accuracy"
            + (
                f", tied with {_listing([label(p) for p in tied])} (equal means "
                "share a rank)"
                if tied
                else ""
            )
        )
        ahead = self.ahead
        if self.finding == "first" or not ahead:
            return head + (
                ". No pair of the final rung has a higher mean: at this length the "
                "claim holds, for the pairs this rule promoted."
                if self.finding == "first"
                else ". No pair ahead of it shares two folds with it: nothing shows "
                "that it is beaten."
            )
        top = [c for c in ahead if self.ranks[c.b] == self.ranks[ahead[0].b]]
        if len(top) == 1:
            best = top[0]
            numbers = (
                f"{label(best.b)} is ahead by {best.flipped:.4f} (paired by fold, "
                f"{best.p_text})"
            )
        else:
            numbers = (
                f"{_listing([label(c.b) for c in top])}, tied at rank "
                f"{self.ranks[top[0].b]} with equal means, are ahead of it by "
                + _listing([f"{c.flipped:.4f}" for c in top])
                + " respectively (paired by fold, p = "
                + _listing([f"{c.p_value:.3f}" for c in top])
                + ", Holm-corrected "
                + _listing([f"{c.p_adjusted:.3f}" for c in top])
                + ")"
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


def verdict(study: report.Study) -> Verdict:
    """The verdict of the final rung's runs (see :class:`Verdict` for the findings)."""
    groups = pair_results(study.runs)
    epochs = study.epochs if study.runs else 0
    ranks = ranks_by_test(groups)
    ranking = sorted(groups.values(), key=lambda g: (ranks[g.key], g.key))
    golden = groups.get(GOLDEN_PAIR)
    if golden is None or len(golden.learned) < 2:
        return Verdict("no golden", ranking, epochs=epochs)
    comparisons = results.against_the_rest(groups, GOLDEN_PAIR)
    finding = results.standing(comparisons, ranks[GOLDEN_PAIR])
    return Verdict(finding, ranking, comparisons, epochs)


def table(study: report.Study) -> str:
    """The final rung as a Markdown table: rank by mean test accuracy (the verdict's),
    rank by mean validation accuracy (the promotion rule's and the rank figure's),
    mean ± 95% CI by fold, and each comparison. Equal means share a rank."""
    found = verdict(study)
    by_pair = {c.b: c for c in found.comparisons}
    test_rank = found.ranks
    val_rank = ranks({group.key: group for group in found.ranking})
    rows = []
    for group in found.ranking:
        c = by_pair.get(group.key)
        versus = c.cells if c else ("—", "—", "—")
        rows.append(
            (
                test_rank[group.key],
                val_rank.get(group.key, "—"),
                f"{group.key[0]:g}",
                f"{group.key[1]:g}",
                f"{group.estimate('test_acc')}",
                len(group.learned),
                *versus,
            )
        )
    return report.table(
        (
            "rank (test)",
            "rank (validation)",
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
    criterion), equal means sharing a rank; pairs without a learned run have none."""
    return results.tied_ranks(
        {pair: _mean(g, "val_acc") for pair, g in groups.items() if g.learned}
    )


def missed(grid_runs: Runs, promoted: list[Pair]) -> tuple[Pair, int, float]:
    """The grid pair with the smallest learning rate that the rule left out (the kind
    of pair a short first rung can miss), its 2-epoch rank and its mean validation
    accuracy."""
    groups = pair_results(grid_runs)
    grid_ranks = ranks(groups)
    left_out = [pair for pair in grid_ranks if pair not in promoted]
    slowest = min(left_out, key=lambda pair: (pair[0], grid_ranks[pair]))
    return slowest, grid_ranks[slowest], _mean(groups[slowest], "val_acc")


def missed_text(halving: Halving) -> str:
    """What the halving rule could have missed, with the grid's numbers."""
    grid_runs, rung1_runs = halving.grid, halving.rung1
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


RANK_TITLE = (
    "ranked by mean validation accuracy, the promotion criterion\n"
    "(the verdict's table ranks by mean test accuracy)"
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
    ax.set_xticks(range(len(stages)), [f"{e} epoch{'s' * (e != 1)}" for e in epochs])
    ax.set_xlim(-0.2, len(stages) - 0.1)
    ax.set_ylim(len(rung1) + 0.5, 0.5)
    ax.set_ylabel("rank by mean validation accuracy")
    ax.set_title(RANK_TITLE, fontsize=9)
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
        sgd = report.OPTIMIZER_NAMES["sgd"]
        lines.append(
            f"  rung {rung}: {len(pairs)} pairs x folds {', '.join(map(str, folds))} "
            f"x {epochs} epochs, {len(runs)} runs, plain {sgd}"
        )
    lines.append(
        f"  compute: {rung_hours(rung1_runs, rung2_runs):.1f} core-hours, each epoch "
        "counted once"
    )
    return "\n".join(lines)


def _same_run(run: Run) -> tuple:
    """A run's configuration without its length: a promoted run and the rung-1 run it
    went on from share it."""
    config = run.config
    return (run.pair, config.fold, config.seed, config.optimizer, config.batch_size)


def rung_hours(rung1_runs: Runs, rung2_runs: Runs) -> float:
    """Core-hours of the two rungs, each trained epoch counted once.

    A promoted run goes on from the state its rung-1 run saved, and its stored wall
    time includes that rung-1 part (``golden.train`` carries the saved time forward),
    so the rung-1 runs that were promoted are not counted again: every rung-2 run's
    time, plus the rung-1 runs that were not promoted."""
    rung1_runs, rung2_runs = runs_of(rung1_runs), runs_of(rung2_runs)
    promoted = {_same_run(run) for run in rung2_runs}
    seconds = sum(run.wall_time_s for run in rung2_runs) + sum(
        run.wall_time_s for run in rung1_runs if _same_run(run) not in promoted
    )
    return seconds / 3600


@dataclass(frozen=True)
class GridCost:
    """What the 2024 protocol's full grid would cost on this machine, at the mean
    time per epoch of each stored experiment (one core a run)."""

    protocol: str
    runs: int
    epochs: int  # every run's epochs, summed
    per_epoch: dict[str, float]  # mean wall seconds per trained epoch, by experiment
    timed_on: str = ""  # the protocol of the timed runs, when its data differ

    def hours(self, experiment: str) -> float:
        return self.epochs * self.per_epoch[experiment] / 3600

    @property
    def low(self) -> float:
        return self.epochs * min(self.per_epoch.values()) / 3600

    @property
    def high(self) -> float:
        return self.epochs * max(self.per_epoch.values()) / 3600

    def text(self) -> str:
        """The estimate and what it rests on, in lines of at most 88 characters."""
        lines = [
            f"the full grid of protocol '{self.protocol}': {self.runs} runs, "
            f"{self.epochs:,} epochs",
        ]
        for name, seconds in self.per_epoch.items():
            lines.append(
                f"  at {seconds:.1f} s an epoch (mean of the stored {name} runs): "
                f"{self.hours(name):.0f} core-hours"
            )
        if self.timed_on:
            lines.append(
                f"  timed on protocol '{self.timed_on}', whose data are smaller: "
                "no estimate"
            )
        else:
            lines.append(
                f"  estimate: {self.low:.0f} to {self.high:.0f} core-hours on this "
                "machine"
            )
        return "\n".join(lines)


def seconds_per_epoch(runs: Runs) -> float:
    """Mean wall seconds per trained epoch of stored runs (a continued run's time
    covers all its epochs)."""
    runs = runs_of(runs)
    epochs = sum(len(run.metrics.get("train_loss", [])) for run in runs)
    if not epochs:
        raise ValueError("no trained epoch to time")
    return sum(run.wall_time_s for run in runs) / epochs


def full_grid_cost(
    samples: dict[str, Runs], timed_on=None, proto_name: str = "paper"
) -> GridCost:
    """The cost of the grid under ``proto_name`` (its runs and epochs from
    :mod:`golden.experiments`) at the time per epoch of each sample of stored runs,
    made under protocol ``timed_on``; a protocol with other data sizes (the quick
    fallback) gives no estimate."""
    proto = protocol(proto_name)
    configs = experiments.experiment("grid").configs(proto)
    per_epoch = {name: seconds_per_epoch(runs) for name, runs in samples.items()}
    other = timed_on is not None and timed_on.data_line() != proto.data_line()
    return GridCost(
        proto.name,
        len(configs),
        sum(c.epochs for c in configs),
        per_epoch,
        timed_on.name if other else "",
    )


@dataclass(frozen=True)
class Halving(report.Study):
    """The final rung (contenders30, or the quick fallback) with its first rung and
    the grid they were promoted from, under one protocol."""

    rung1: tuple[Run, ...] = ()
    grid: tuple[Run, ...] = ()

    def header(self) -> str:
        return header(self.proto, self.rung1, self.runs)

    def full_grid_cost(self, long_runs: Runs = ()) -> GridCost:
        """:func:`full_grid_cost` from the grid, both rungs and ``long_runs``."""
        samples = {"grid": self.grid, "long": long_runs}
        samples.update({"contenders10": self.rung1, "contenders30": self.runs})
        samples = {k: v for k, v in samples.items() if list(v)}
        return full_grid_cost(samples, self.proto)


def load() -> Halving:
    """The stored 30-epoch rung (else the quick fallback, see
    :func:`golden.report.stored_or_quick`), its first rung and its grid."""
    final = report.load("contenders30")
    rung1, grid = (
        experiments.finished_runs(name, final.proto, final.store, "the contenders")
        for name in ("contenders10", "grid")
    )
    return final.extended(
        Halving, rung1=tuple(runs_of(rung1)), grid=tuple(runs_of(grid))
    )


@plots.figure("contenders_ranks", load)
def ranks_figure(halving: Halving) -> plt.Figure:
    """:func:`rank_figure` of the stored rungs, stamped."""
    fig = rank_figure(halving.grid, halving.rung1, halving.runs)
    plots.stamp(fig, halving.stamp())
    return fig
