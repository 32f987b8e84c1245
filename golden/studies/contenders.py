"""The 30-epoch question, answered from the contenders' records (successive halving).

The stored 2-epoch grid promotes pairs to a 10-epoch rung, and that rung to a 30-epoch
rung (the rule is in :mod:`golden.experiments`); both rungs train folds 0, 1, 2 of the
10-fold cross-validation. Here the final rung's runs become per-pair results, the golden
pair is compared with every other pair paired by fold (never by position), the
comparisons are corrected together (Holm), and the verdict is a value whose prose is
built from its numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import matplotlib.pyplot as plt

from golden import stats
from golden.data import CLASSES
from golden.experiments import COMMON_PAIR, GOLDEN_PAIR, pair_of

LEARNED = 2 / CLASSES  # a finished run below twice chance accuracy did not learn
ALPHA = 0.05  # family-wise error rate of the comparisons with the golden pair

Pair = tuple[float, float]


def label(pair: Pair) -> str:
    name = {GOLDEN_PAIR: " (golden)", COMMON_PAIR: " (common)"}.get(pair, "")
    return f"η={pair[0]:g}, α={pair[1]:g}{name}"


@dataclass(frozen=True)
class PairResult:
    """One pair's final test and validation accuracies by fold, from runs that
    learned."""

    pair: Pair
    test_by_fold: dict[int, float]
    val_by_fold: dict[int, float]
    diverged: int = 0  # runs whose loss stopped being finite
    unlearned: int = 0  # finished runs at chance accuracy

    @property
    def test_mean_ci(self) -> tuple[float, float]:
        return stats.mean_ci(list(self.test_by_fold.values()))

    @property
    def val_mean(self) -> float:
        return stats.mean_ci(list(self.val_by_fold.values()))[0]


def pair_results(runs: list[dict], epoch: int | None = None) -> dict[Pair, PairResult]:
    """Per-pair results at ``epoch`` (default: each run's last), replicates keyed by
    fold (or by seed for runs on the fixed split). Diverged runs and runs that did not
    learn are counted, never averaged in."""
    grouped: dict[Pair, dict] = {}
    for run in runs:
        pair = pair_of(run["config"])
        entry = grouped.setdefault(
            pair, {"test": {}, "val": {}, "diverged": 0, "unlearned": 0}
        )
        config = run["config"]
        replicate = config["fold"] if config.get("fold", -1) >= 0 else config["seed"]
        index = -1 if epoch is None else epoch - 1
        if run["diverged"] or len(run["val_acc"]) < (1 if epoch is None else epoch):
            entry["diverged"] += run["diverged"]
            continue
        if run["val_acc"][index] < LEARNED:
            entry["unlearned"] += 1
            continue
        entry["test"][replicate] = run["test_acc"][index]
        entry["val"][replicate] = run["val_acc"][index]
    return {
        pair: PairResult(pair, e["test"], e["val"], e["diverged"], e["unlearned"])
        for pair, e in sorted(grouped.items())
    }


@dataclass(frozen=True)
class Comparison:
    """Golden pair minus another pair in final test accuracy, over the folds both
    finished."""

    pair: Pair
    folds: tuple[int, ...]
    mean_diff: float
    ci: float
    p_value: float
    p_adjusted: float


def compare_with_golden(results: dict[Pair, PairResult]) -> list[Comparison]:
    """Paired t-tests by fold of the golden pair against every other pair with two or
    more shared folds, Holm-adjusted together."""
    golden = results[GOLDEN_PAIR]
    tests = {}
    for pair, result in results.items():
        folds = tuple(sorted(set(golden.test_by_fold) & set(result.test_by_fold)))
        if pair == GOLDEN_PAIR or len(folds) < 2:
            continue
        tests[pair] = (
            folds,
            stats.paired_t(
                [golden.test_by_fold[k] for k in folds],
                [result.test_by_fold[k] for k in folds],
            ),
        )
    adjusted = stats.holm({pair: test["p_value"] for pair, (_, test) in tests.items()})
    return [
        Comparison(
            pair, folds, test["mean_diff"], test["ci"], test["p_value"], adjusted[pair]
        )
        for pair, (folds, test) in tests.items()
    ]


@dataclass(frozen=True)
class Verdict:
    """What the final rung says about the golden pair, with the numbers that say it."""

    finding: str  # "first", "tied", "beaten" or "no golden"
    ranking: list[PairResult]  # by mean final test accuracy, best first
    comparisons: list[Comparison] = field(default_factory=list)
    epochs: int = 0

    @property
    def golden_rank(self) -> int | None:
        pairs = [result.pair for result in self.ranking]
        return pairs.index(GOLDEN_PAIR) + 1 if GOLDEN_PAIR in pairs else None

    def text(self) -> str:
        n = len(self.ranking)
        if self.finding == "no golden":
            return (
                f"**Verdict at {self.epochs} epochs.** The golden pair has fewer than "
                "two folds that trained to the end, so it cannot be compared: no "
                "verdict."
            )
        beaten = [
            c for c in self.comparisons if c.mean_diff < 0 and c.p_adjusted < ALPHA
        ]
        ahead = [c for c in self.comparisons if c.mean_diff < 0]
        head = (
            f"**Verdict at {self.epochs} epochs.** Among the {n} pairs of the final "
            f"rung, the golden pair ranks {self.golden_rank} by mean test accuracy"
        )
        if self.finding == "first":
            return head + (
                ". No pair of the final rung has a higher mean: at this length the "
                "claim holds, for the pairs this rule promoted."
            )
        best = min(ahead, key=lambda c: c.mean_diff)
        numbers = (
            f"{label(best.pair)} is ahead by {-best.mean_diff:.4f} ± {best.ci:.4f} "
            f"(paired by fold, p = {best.p_value:.3f}, "
            f"Holm-adjusted {best.p_adjusted:.3f})"
        )
        if self.finding == "beaten":
            names = ", ".join(label(c.pair) for c in beaten)
            return (
                head
                + f"; {numbers}. {len(beaten)} pair(s) beat it after the correction "
                f"for {len(self.comparisons)} comparisons ({names}): the claim that no "
                "pair beats the golden pair does **not** hold here."
            )
        return (
            head + f"; {numbers}. No difference survives the correction for "
            f"{len(self.comparisons)} comparisons: the golden pair shares the first "
            "place within the noise of the folds, as the 2024 full text reports, but "
            "is not shown to be best."
        )


def verdict(runs: list[dict]) -> Verdict:
    """The verdict of the final rung's runs (see :class:`Verdict` for the findings)."""
    results = pair_results(runs)
    epochs = max((run["config"]["epochs"] for run in runs), default=0)
    ranking = sorted(
        results.values(), key=lambda r: -(r.test_mean_ci[0] if r.test_by_fold else -1)
    )
    golden = results.get(GOLDEN_PAIR)
    if golden is None or len(golden.test_by_fold) < 2:
        return Verdict("no golden", ranking, epochs=epochs)
    comparisons = compare_with_golden(results)
    if any(c.mean_diff < 0 and c.p_adjusted < ALPHA for c in comparisons):
        finding = "beaten"
    elif ranking[0].pair == GOLDEN_PAIR:
        finding = "first"
    else:
        finding = "tied"
    return Verdict(finding, ranking, comparisons, epochs)


def table(found: Verdict) -> str:
    """The final rung as a Markdown table: mean ± 95% CI by fold, and each
    comparison."""
    by_pair = {c.pair: c for c in found.comparisons}
    lines = [
        (
            "| rank | η | α | test accuracy, mean ± 95% CI | folds | golden − pair "
            "| p | Holm p |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for rank, result in enumerate(found.ranking, start=1):
        mean, ci = result.test_mean_ci
        c = by_pair.get(result.pair)
        versus = (
            f"{c.mean_diff:+.4f} ± {c.ci:.4f} | {c.p_value:.3f} | {c.p_adjusted:.3f}"
            if c
            else "— | — | —"
        )
        lines.append(
            f"| {rank} | {result.pair[0]:g} | {result.pair[1]:g} | "
            f"{mean:.4f} ± {ci:.4f} | {len(result.test_by_fold)} | {versus} |"
        )
    return "\n".join(lines)


def ranks(results: dict[Pair, PairResult]) -> dict[Pair, int]:
    """Rank of each pair by mean validation accuracy (the promotion rule's
    criterion)."""
    ordered = sorted(
        (r for r in results.values() if r.val_by_fold), key=lambda r: -r.val_mean
    )
    return {result.pair: rank for rank, result in enumerate(ordered, start=1)}


def missed(grid_runs: list[dict], promoted: list[Pair]) -> tuple[Pair, int, float]:
    """The grid pair with the smallest learning rate that the rule left out, its 2-epoch
    rank and its mean validation accuracy: the kind of pair that a short first rung can
    miss."""
    results = pair_results(grid_runs)
    grid_ranks = ranks(results)
    left_out = [pair for pair in grid_ranks if pair not in promoted]
    slowest = min(left_out, key=lambda pair: (pair[0], grid_ranks[pair]))
    return slowest, grid_ranks[slowest], results[slowest].val_mean


def missed_text(grid_runs: list[dict], rung1_runs: list[dict]) -> str:
    """What the halving rule could have missed, with the grid's numbers."""
    promoted = sorted({pair_of(run["config"]) for run in rung1_runs})
    slowest, rank, val = missed(grid_runs, promoted)
    epochs = max(run["config"]["epochs"] for run in grid_runs)
    folds = len({run["config"]["fold"] for run in rung1_runs})
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


def rank_figure(
    grid_runs: list[dict], rung1_runs: list[dict], rung2_runs: list[dict]
) -> plt.Figure:
    """How the ranks of the rung-1 pairs move from 2 to 10 to 30 epochs (by mean
    validation accuracy, the rule's criterion); a pair cut after 10 epochs ends
    there."""
    rung1 = pair_results(rung1_runs)
    stages = [
        ranks({p: r for p, r in pair_results(grid_runs).items() if p in rung1}),
        ranks(rung1),
        ranks(pair_results(rung2_runs)),
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
    epochs = [
        max(run["config"]["epochs"] for run in runs)
        for runs in (grid_runs, rung1_runs, rung2_runs)
    ]
    ax.set_xticks(range(3), [f"{e} epochs" for e in epochs])
    ax.set_xlim(-0.2, 2.9)
    ax.set_ylim(len(rung1) + 0.5, 0.5)
    ax.set_ylabel("rank by mean validation accuracy")
    ax.grid(axis="x", visible=False)
    return fig


def header(proto, rung1_runs: list[dict], rung2_runs: list[dict]) -> str:
    """What the two rungs ran, in lines of at most 88 characters."""
    lines = [
        f"contenders under protocol '{proto.name}' [{proto.digest()}]: "
        f"{proto.data_line()}"
    ]
    for rung, runs in enumerate((rung1_runs, rung2_runs), start=1):
        pairs = {pair_of(run["config"]) for run in runs}
        folds = sorted({run["config"]["fold"] for run in runs})
        epochs = max(run["config"]["epochs"] for run in runs)
        lines.append(
            f"  rung {rung}: {len(pairs)} pairs x folds {', '.join(map(str, folds))} "
            f"x {epochs} epochs, {len(runs)} runs, plain SGD with momentum"
        )
    hours = sum(run["wall_time_s"] for run in rung1_runs + rung2_runs) / 3600
    lines.append(
        f"  compute: {hours:.1f} core-hours "
        "(a promoted run's time includes its rung-1 part)"
    )
    return "\n".join(lines)
