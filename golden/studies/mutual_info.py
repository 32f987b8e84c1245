"""The mutual-information study (after Vasudevan 2020), from its stored runs.

Each run stores the confusion matrix of the validation split after every epoch;
:func:`load` turns them into per-epoch metrics (``val_mi``: I(Y; Ŷ) in bits,
``val_label_bits``: H(Y), ``val_nmi``: their ratio), so that everything below reads
typed runs. Here they become the two figures, the tables, the check of the MI-driven
decay against its rule, and the verdict, a value whose prose is built from its numbers.
Only runs that learned enter a mean, a correlation or a comparison; comparisons pair
runs by seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import sympy as sp
from scipy import stats as scipy_stats

from golden import beyond, diagnostics, experiments, plots, report
from golden.data import CLASSES
from golden.results import Comparison, Run, compare, family, group

Variant = tuple[float, float, str]  # (lr, momentum, schedule)
CONSTANT = (*experiments.GOLDEN_PAIR, "constant")
DECAY = (*experiments.GOLDEN_PAIR, "mi_decay")
CLOSE = 0.95  # Spearman's ρ from which mutual information follows accuracy closely
TOLERANCE = 1e-9  # bits of slack below Fano's bound that rounding may cost
WORDS = {
    2: "two",
    3: "three",
    4: "four",
    5: "five",
    6: "six",
    7: "seven",
    8: "eight",
    9: "nine",
    10: "ten",
}


def with_information(record: dict) -> dict:
    """A stored run with the information measures of its confusion matrices added."""
    confusions = record.get("val_confusion", [])
    return {
        **record,
        "val_mi": [diagnostics.mutual_information(c) for c in confusions],
        "val_label_bits": [diagnostics.label_entropy(c) for c in confusions],
        "val_nmi": [diagnostics.normalised_mutual_information(c) for c in confusions],
    }


def load(preferred: str = "book") -> report.Study:
    """:func:`golden.report.load` of ``mutual_info``, with the measures of
    :func:`with_information` among each run's metrics."""
    return report.load("mutual_info", preferred, with_information)


def variant(run: Run) -> Variant:
    return run.config.lr, run.config.momentum, run.config.schedule


def name(key: Variant) -> str:
    return report.pair_label(key[:2]) + (", MI decay" if key[2] == "mi_decay" else "")


def design(study: report.Study) -> str:
    """The pairs and schedules this study ran, in lines of at most 88 characters."""
    keys = sorted({variant(run) for run in study.runs})
    constant = [report.pair_label(k[:2]) for k in keys if k[2] == "constant"]
    decayed = [report.pair_label(k[:2]) for k in keys if k[2] == "mi_decay"]
    lines, line = [], "  at a constant rate:"
    for label in constant:
        if len(line) + len(label) + 2 > 88:
            lines.append(line.rstrip(";"))
            line = "   "
        line += f" {label};"
    lines.append(line.rstrip(";"))
    if decayed:
        lines.append(f"  under the MI-driven decay: {'; '.join(decayed)}")
    return "\n".join(lines)


def _seeds(study: report.Study) -> str:
    return ", ".join(map(str, study.replicates))


# --- how mutual information tracks accuracy ------------------------------------------


@dataclass(frozen=True)
class Tracking:
    """Mutual information against accuracy, every epoch of every run that learned."""

    points: int
    least_slack: float  # bits above Fano's bound, the smallest over the points
    rho: float  # Spearman's rank correlation of accuracy and mutual information
    max_residual: float  # bits, from a straight line in accuracy
    low: float
    high: float

    def lines(self) -> str:
        where = (
            "all on or above Fano's bound"
            if self.least_slack >= -TOLERANCE
            else "SOME BELOW Fano's bound"
        )
        return (
            f"{self.points} (run, epoch) points; {where} (least slack "
            f"{self.least_slack:.4f} bits)\n"
            "Spearman rank correlation of accuracy and mutual information: "
            f"{self.rho:.4f}\n"
            "a straight line in accuracy leaves residuals of at most "
            f"{self.max_residual:.4f} bits\n"
            f"(range of I: {self.low:.3f} to {self.high:.3f} bits)"
        )


def tracking(study: report.Study) -> Tracking:
    learned = [run for run in study.runs if run.learned()]
    acc = np.array([a for run in learned for a in run.metrics["val_acc"]])
    bits = np.array([i for run in learned for i in run.metrics["val_mi"]])
    label_bits = np.array([h for run in learned for h in run.metrics["val_label_bits"]])
    if len(acc) < 3:
        return Tracking(len(acc), math.nan, math.nan, math.nan, math.nan, math.nan)
    slack = bits - beyond.least_information(1 - acc, CLASSES, label_bits)
    rho = float(scipy_stats.spearmanr(acc, bits).statistic)
    residual = bits - np.polyval(np.polyfit(acc, bits, 1), acc)
    return Tracking(
        len(acc),
        float(slack.min()),
        rho,
        float(np.abs(residual).max()),
        float(bits.min()),
        float(bits.max()),
    )


@plots.figure("mi_tracks_accuracy", load)
def tracking_figure(study: report.Study) -> plt.Figure:
    """Left: I(Y; Ŷ) per epoch of each constant-rate pair; right: every (run, epoch) of
    those pairs against accuracy, with Fano's lower bound and H(Y)."""
    constant = [
        run for run in study.runs if run.config.schedule == "constant" and run.learned()
    ]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    curves = {name(k): g.curves("val_mi") for k, g in group(constant, variant).items()}
    plots.learning_curves(curves, "I(Y; Ŷ) on validation (bits)", left)
    left.legend(fontsize=8)
    if constant:
        accuracy = np.array([a for run in constant for a in run.metrics["val_acc"]])
        bits = np.array([i for run in constant for i in run.metrics["val_mi"]])
        label_bits = constant[0].metrics["val_label_bits"][0]
        right.scatter(accuracy, bits, s=12, alpha=0.7, label="one run after one epoch")
        # stop short of zero error, where numpy reads 0 log 0 as NaN
        grid = np.linspace(max(accuracy.min() - 0.01, 0.5), 0.9995, 200)
        right.plot(
            grid,
            beyond.least_information(1 - grid, CLASSES, label_bits),
            "k--",
            lw=1,
            label="Fano's lower bound",
        )
        right.axhline(
            label_bits, color="0.5", lw=1, ls=":", label=f"H(Y) = {label_bits:.3f} bits"
        )
    right.set(xlabel="validation accuracy", ylabel="I(Y; Ŷ) (bits)")
    right.legend(fontsize=8)
    plots.stamp(
        fig,
        study.stamp(f"{study.epochs} epochs, seeds {_seeds(study)}, constant rates"),
    )
    return fig


def table(study: report.Study) -> str:
    """Final mutual information and accuracies of every variant, over learned runs."""
    body = []
    for key, g in group(study.runs, variant).items():
        nmi = g.estimate("val_nmi").mean
        body.append(
            [
                name(key),
                f"{key[0]:g}",
                f"{key[1]:g}",
                key[2],
                format(g.estimate("val_mi"), ".4f"),
                "n/a" if math.isnan(nmi) else f"{nmi:.4f}",
                format(g.estimate("val_acc"), ".4f"),
                format(g.estimate("test_acc"), ".4f"),
                f"{len(g.learned)} of {len(g.runs)}",
            ]
        )
    return report.table(
        [
            "run",
            "η",
            "α",
            "schedule",
            "final I(Y; Ŷ), bits (mean ± 95% CI)",
            "I / H(Y)",
            "validation accuracy",
            "test accuracy",
            "runs learned",
        ],
        body,
    )


# --- the MI-driven decay -------------------------------------------------------------

_RULE = sp.lambdify(
    (beyond.base_rate, beyond.normalised_information), beyond.MI_DECAY_RULE
)


def expected_rates(run: Run) -> list[float]:
    """The rates {eq}`mi-decay` gives a run: its base rate, then the rule applied to the
    normalised information after each epoch but the last."""
    base = run.config.lr
    return [base] + [float(_RULE(base, i)) for i in run.metrics["val_nmi"][:-1]]


@dataclass(frozen=True)
class RuleCheck:
    """Whether every MI-decay run used the rates the rule gives."""

    followed: tuple[int, ...]  # seeds of the runs that did
    broken: tuple[int, ...]  # seeds of the runs that did not
    seed: int | None = None  # the run whose rates are shown
    rates: tuple[float, ...] = ()

    def lines(self) -> str:
        if not self.followed and not self.broken:
            return "no run used the MI-driven decay"
        text = f"{len(self.followed)} runs follow the rule"
        if self.broken:
            text += (
                f"; {len(self.broken)} do NOT (seeds "
                f"{', '.join(map(str, self.broken))})"
            )
        if self.seed is not None:
            text += f"\nlearning rates per epoch (seed {self.seed}): " + ", ".join(
                f"{lr:.5f}" for lr in self.rates
            )
        return text


def rule_check(study: report.Study) -> RuleCheck:
    decayed = sorted(
        (run for run in study.runs if run.config.schedule == "mi_decay"),
        key=lambda run: run.replicate,
    )
    follows = {
        run.replicate: len(run.metrics["lr"]) == len(expected_rates(run))
        and bool(np.allclose(run.metrics["lr"], expected_rates(run), rtol=1e-12))
        for run in decayed
    }
    shown = next((run for run in decayed if not run.diverged), None)
    return RuleCheck(
        tuple(k for k, ok in follows.items() if ok),
        tuple(k for k, ok in follows.items() if not ok),
        None if shown is None else shown.replicate,
        () if shown is None else tuple(shown.metrics["lr"]),
    )


@plots.figure("mi_decay", load)
def decay_figure(study: report.Study) -> plt.Figure:
    """Learning rate and test accuracy per epoch of the golden pair, constant and under
    the MI-driven decay."""
    runs = [run for run in study.runs if variant(run) in (CONSTANT, DECAY)]
    groups = group(runs, variant)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    plots.learning_curves(
        {name(k): g.curves("lr") for k, g in groups.items()},
        "learning rate of the epoch",
        left,
    )
    left.set_yscale("log")
    plots.learning_curves(
        {name(k): g.curves("test_acc") for k, g in groups.items()},
        "test accuracy",
        right,
    )
    for ax in (left, right):
        ax.legend(fontsize=8)
    plots.stamp(fig, study.stamp(f"{study.epochs} epochs, seeds {_seeds(study)}"))
    return fig


def decay_comparison(study: report.Study) -> Comparison | None:
    """MI decay minus constant golden pair in final test accuracy, paired by seed over
    the seeds that learned under both (a family of one); None with fewer than two."""
    groups = group(study.runs, variant)
    if CONSTANT not in groups or DECAY not in groups:
        return None
    found = family(
        [
            compare(
                groups[DECAY].values("test_acc"),
                groups[CONSTANT].values("test_acc"),
                DECAY,
                CONSTANT,
            )
        ]
    )
    return found[0] if found else None


def decay_table(study: report.Study) -> str:
    """Test accuracy of the golden pair, constant and under the decay, and their
    difference paired by seed."""
    groups = group(study.runs, variant)
    body = [
        [
            label,
            format(groups[key].estimate("test_acc"), ".4f"),
            f"{len(groups[key].learned)} of {len(groups[key].runs)}",
        ]
        for label, key in (("constant rate", CONSTANT), ("MI-driven decay", DECAY))
        if key in groups
    ]
    c = decay_comparison(study)
    body.append(
        [
            "MI decay − constant, paired by seed",
            "n/a (fewer than two seeds learned under both)"
            if c is None
            else f"{c} (p = {c.p_value:.3f})",
            "—" if c is None else f"{c.diff.n} seeds",
        ]
    )
    return report.table(["golden pair", "test accuracy (mean ± 95% CI)", "runs"], body)


# --- the verdict ---------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """What the study says about mutual information and about the MI-driven decay.

    ``tracking``: "close" (Spearman's ρ ≥ 0.95), "loose", "violates" (a point below
    Fano's bound: the records are wrong) or "no data" (fewer than three run-epochs that
    learned). ``decay``: "higher" or "lower" (significant at the 5% level), "tied" (not
    significant) or "untested" (fewer than two seeds learned under both).
    ``cuts``: how far the decay cuts the learning rate after the first epoch, its
    second rate over its first, for each seed that learned under it (by seed); the
    text gives their range, not one seed's value.
    """

    tracking: str
    decay: str
    fit: Tracking
    comparison: Comparison | None = None
    cuts: tuple[float, ...] = ()  # the decay's second rate over its first, per seed

    @property
    def cut_range(self) -> tuple[float, float]:
        """The lowest and the highest of :attr:`cuts` (NaN, NaN without any)."""
        return (min(self.cuts), max(self.cuts)) if self.cuts else (math.nan, math.nan)

    def _cut_text(self) -> str:
        low, high = self.cut_range
        if math.isnan(low):
            return ""
        seeds = WORDS.get(len(self.cuts), str(len(self.cuts)))
        if f"{low:.1%}" == f"{high:.1%}":
            share = f"to {low:.1%} of its value"
            where = f" in each of the {seeds} seeds" if len(self.cuts) > 1 else ""
        else:
            share = f"to between {low:.1%} and {high:.1%} of its value"
            where = f" across the {seeds} seeds"
        return (
            f", which cuts the golden learning rate {share} after the first "
            f"epoch{where},"
        )

    def text(self) -> str:
        if self.tracking == "violates":
            return (
                "**Verdict.** A stored confusion matrix lies below Fano's bound "
                f"(by {-self.fit.least_slack:.4f} bits), which no classifier can "
                "do: the records are wrong, and this page draws no conclusion "
                "from them."
            )
        if self.tracking == "no data":
            head = (
                "**Verdict.** Fewer than three run-epochs learned, so mutual "
                "information cannot be compared with accuracy. "
            )
        else:
            close = self.tracking == "close"
            head = (
                "**Verdict.** On validation data, mutual information "
                + (
                    "follows accuracy almost monotonically"
                    if close
                    else "follows accuracy only loosely"
                )
                + f" (Spearman ρ = {self.fit.rho:.3f} over {self.fit.points} "
                "run-epochs) and stays above Fano's bound. "
                + (
                    "As a diagnostic of these networks it therefore adds little "
                    "to accuracy; what it adds is the shape of the errors, the "
                    "distance above the bound. "
                    if close
                    else ""
                )
            )
        if self.decay == "untested":
            return head + (
                "The MI-driven decay cannot be compared with the constant "
                "golden pair: fewer than two seeds learned under both."
            )
        c = self.comparison
        cut = self._cut_text()
        sign = "higher" if c.diff.mean > 0 else "lower"
        seeds = WORDS.get(c.diff.n, str(c.diff.n))
        return (
            head + f"The MI-driven decay{cut} ends with a {sign} mean test "
            "accuracy than the constant golden pair "
            f"({c.diff.mean:+.4f}, paired by seed, "
            f"p = {c.p_value:.3f}"
            + (
                "): the difference is significant at the 5% level."
                if self.decay != "tied"
                else f"), a difference the {seeds} seeds cannot tell from noise."
            )
        )


def verdict(study: report.Study) -> Verdict:
    """The verdict of the study's runs (see :class:`Verdict` for the findings)."""
    fit = tracking(study)
    if fit.points < 3:
        found = "no data"
    elif fit.least_slack < -TOLERANCE:
        found = "violates"
    else:
        found = "close" if fit.rho >= CLOSE else "loose"
    c = decay_comparison(study)
    decay = (
        "untested" if c is None else {1: "higher", -1: "lower", 0: "tied"}[c.direction]
    )
    decayed = group(study.runs, variant).get(DECAY)
    cuts: tuple[float, ...] = ()
    if decayed is not None:
        learned = decayed.learned
        rates = [learned[seed].metrics["lr"] for seed in sorted(learned)]
        cuts = tuple(lr[1] / lr[0] for lr in rates if len(lr) > 1)
    return Verdict(found, decay, fit, c, cuts)
