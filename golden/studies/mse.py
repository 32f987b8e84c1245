"""The loss study: cross-entropy against squared error, from the stored runs.

The ``loss`` experiment trains the golden and the common pair once with cross-entropy
and once with squared error on the softmax, from the same seeds (same initial weights,
batches and dropout masks), so the two losses are compared pair by pair, paired by seed,
and the comparisons of the pairs are corrected together with Holm's method. Speed is
read from the validation accuracy after the first epoch and from the first epoch
whose mean validation accuracy reaches :data:`TARGET`. Runs that diverged or finished at
chance accuracy are counted and left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib.pyplot as plt

from golden import plots, report, results
from golden.experiments import COMMON_PAIR, GOLDEN_PAIR
from golden.results import Comparison, Estimate, Group

TARGET = 0.98  # the validation accuracy whose first epoch measures speed
LOSSES = ("cross_entropy", "mse")
Pair = tuple[float, float]
Key = tuple[str, float, float]  # (loss, lr, momentum)


def load() -> report.Study:
    """The stored runs of the ``loss`` experiment (or the quick fallback)."""
    return report.load("loss")


def variant(run: results.Run) -> Key:
    return (run.config.loss, *run.pair)


def groups(study: report.Study) -> dict[Key, Group]:
    """The study's runs by (loss, learning rate, momentum), cross-entropy first."""
    found = results.group(study.runs, variant)
    return dict(sorted(found.items(), key=lambda item: _order(item[0])))


def _order(key: Key) -> tuple[int, float, float]:
    loss, lr, momentum = key
    return LOSSES.index(loss) if loss in LOSSES else len(LOSSES), lr, momentum


def pairs(study: report.Study) -> list[Pair]:
    """The pairs the study ran, the golden pair first."""
    return sorted({run.pair for run in study.runs}, key=lambda p: (p != GOLDEN_PAIR, p))


def name(key: Key) -> str:
    loss, lr, momentum = key
    pair = "golden" if (lr, momentum) == GOLDEN_PAIR else f"({lr:g}, {momentum:g})"
    return f"{report.LOSS_NAMES.get(loss, loss)}, {pair}"


def design(study: report.Study) -> str:
    """What is compared, in two lines: the pairs, then the losses."""
    losses = sorted(
        {run.config.loss for run in study.runs}, key=lambda k: _order((k, 0, 0))
    )
    return (
        f"pairs: {'; '.join(report.pair_label(p) for p in pairs(study))}\nlosses: "
        + ", ".join(report.LOSS_NAMES.get(loss, loss) for loss in losses)
    )


def first_epoch(group: Group) -> Estimate:
    """Validation accuracy after epoch 1 of the runs that learned by the end."""
    return Estimate.of(run.final("val_acc", 1) for run in group.learned.values())


def first_epoch_reaching(group: Group, target: float = TARGET) -> int | None:
    """The first epoch at which the mean validation accuracy of the learned runs reaches
    ``target`` (over the epochs all of them have); None if it never does."""
    curves = group.curves("val_acc")
    means = [sum(values) / len(values) for values in zip(*curves)]
    return next(
        (epoch for epoch, value in enumerate(means, start=1) if value >= target), None
    )


def comparisons(study: report.Study) -> dict[Pair, Comparison]:
    """Cross-entropy minus squared error in final test accuracy for each pair, paired by
    seed and Holm-adjusted over the pairs; a pair is absent without two shared seeds."""
    found = groups(study)
    tests = []
    for pair in pairs(study):
        ce, mse = found.get(("cross_entropy", *pair)), found.get(("mse", *pair))
        if ce and mse:
            tests.append(
                results.compare(
                    ce.values("test_acc"), mse.values("test_acc"), pair, pair
                )
            )
    return {c.a: c for c in results.family(tests)}


# --- tables -------------------------------------------------------------------


def accuracy_table(study: report.Study) -> str:
    """Per loss and pair: final test accuracy, first-epoch validation accuracy and the
    first epoch at 98% validation accuracy, with the runs left out."""
    rows = []
    for key, group in groups(study).items():
        reached = first_epoch_reaching(group) if group.learned else None
        rows.append(
            [
                key[0],
                f"{key[1]:g}",
                f"{key[2]:g}",
                format(group.estimate("test_acc"), ".4f"),
                format(first_epoch(group), ".4f"),
                reached or f"not within {study.epochs}",
                f"{group.diverged} / {group.unlearned}",
            ]
        )
    return report.table(
        [
            "loss",
            "η",
            "α",
            "test accuracy (mean ± 95% CI)",
            "val. accuracy after epoch 1",
            f"first epoch ≥ {TARGET:.0%} val.",
            "diverged / at chance",
        ],
        rows,
    )


def comparison_table(study: report.Study) -> str:
    """Cross-entropy − squared error per pair, paired by seed, with Holm's p-values."""
    tests = comparisons(study)
    rows = []
    for pair in pairs(study):
        c = tests.get(pair)
        rows.append(
            [report.pair_label(pair), "—", "—", "—", "0"]
            if c is None
            else [
                report.pair_label(pair),
                *c.cells,
                str(len(c.replicates)),
            ]
        )
    return report.table(
        [
            "pair",
            "cross-entropy − squared error (mean ± 95% CI)",
            "p (paired t)",
            "Holm p",
            "n",
        ],
        rows,
    )


# --- figure -------------------------------------------------------------------


@plots.figure("mse_curves", load)
def curves_figure(study: report.Study) -> plt.Figure:
    """Validation (left) and test (right) accuracy per epoch, one line per loss and pair
    (solid: cross-entropy, dashed: squared error), the mean over the learned seeds with
    a 95% band."""
    learned = {name(key): g for key, g in groups(study).items() if g.learned}
    styles = {
        name(key): {"ls": "-" if key[0] == "cross_entropy" else "--"}
        for key in groups(study)
    }
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric, label in zip(
        axes, ("val_acc", "test_acc"), ("validation accuracy", "test accuracy")
    ):
        if learned:
            plots.learning_curves(
                {k: g.curves(metric) for k, g in learned.items()},
                label,
                ax,
                styles=styles,
            )
    seeds = ", ".join(map(str, study.replicates))
    plots.stamp(
        fig, study.stamp(f"{study.epochs} epochs, mean over seeds {seeds}, 95% bands")
    )
    return fig


# --- verdict ------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """What the study says about the two losses at the golden pair, with its numbers.

    ``finding``: "slower" (squared error's mean validation accuracy after one epoch is
    below cross-entropy's, as the gradient argument predicts), "not slower", or
    "untested" (the golden pair has no learned run under one of the losses). The final
    accuracies are compared pair by pair in ``comparisons`` (cross-entropy minus squared
    error, Holm-adjusted).
    """

    finding: str
    epochs: int
    final: tuple[Estimate, Estimate]  # golden pair's test accuracy: cross-entropy, MSE
    first: tuple[Estimate, Estimate]  # its validation accuracy after epoch 1: CE, MSE
    comparisons: tuple[Comparison, ...] = ()
    left_out: int = 0
    protocol: str = ""

    def ahead(self, direction: int) -> list[Pair]:
        """Pairs where cross-entropy is significantly ahead (+1) or behind (-1)."""
        return [c.a for c in self.comparisons if c.direction == direction]

    def _final(self) -> str:
        n = len(self.comparisons)
        if not n:
            return (
                "No pair has two seeds learned with both losses, so final accuracies "
                "are not compared. "
            )
        said = []
        for direction, who in ((1, "Cross-entropy"), (-1, "Squared error")):
            if self.ahead(direction):
                names = " and the ".join(_pair_name(p) for p in self.ahead(direction))
                said.append(f"{who} is ahead in final accuracy for the {names} pair")
        family = f"paired by seed, Holm-corrected over the {n} pair{'s' * (n != 1)}"
        if not said:
            return f"No difference in final accuracy is significant ({family}). "
        return "; ".join(said) + f" ({family}). "

    def text(self) -> str:
        if self.finding == "untested":
            return (
                f"**Verdict after {self.epochs} epochs.** The golden pair has no run "
                "that learned under one of the two losses, so the losses cannot be "
                f"compared: no verdict. ({self.protocol})"
            )
        (final_ce, final_mse), (first_ce, first_mse) = self.final, self.first
        left_out = (
            f"{self.left_out} run(s) that diverged or finished at chance accuracy "
            "are left out. "
            if self.left_out
            else ""
        )
        if self.finding == "not slower":
            return (
                f"**Verdict.** Squared error learned at least as fast as cross-entropy "
                f"in the first epoch here ({first_mse.mean:.4f} against "
                f"{first_ce.mean:.4f}), against the gradient argument above. "
                + self._final()
                + left_out
                + f"({self.protocol})"
            )
        return (
            f"**Verdict.** With the golden pair, cross-entropy reaches {final_ce:.4f} "
            f"test accuracy after {self.epochs} epochs and squared error "
            f"{final_mse:.4f}; after one epoch the validation accuracies are "
            f"{first_ce.mean:.4f} and {first_mse.mean:.4f}. "
            + self._final()
            + left_out
            + "The data agree with the gradient argument above: squared error, whose "
            "first steps are a fifth of cross-entropy's, learns more slowly from the "
            "same pair. This is in line with the 2021 AIPR abstract, which says the "
            "loss is based on cross-entropy (the 2020 abstract only contrasts its loss "
            "with the mean squared error, and names no cross-entropy-type loss); it "
            "says nothing about the 2020 paper's own loss, which is not available. "
            f"({self.protocol})"
        )


def _pair_name(pair: Pair) -> str:
    names = {GOLDEN_PAIR: "golden", COMMON_PAIR: "common"}
    return names.get(pair, report.pair_label(pair))


def verdict(study: report.Study) -> Verdict:
    """The verdict of the study's runs (see :class:`Verdict` for the findings)."""
    found = groups(study)
    golden = [found.get((loss, *GOLDEN_PAIR)) for loss in LOSSES]
    epochs = study.epochs if study.runs else 0
    left_out = sum(g.diverged + g.unlearned for g in found.values())
    tests = comparisons(study)
    ordered = tuple(tests[p] for p in pairs(study) if p in tests)
    nothing = Estimate(math.nan, math.nan, 0)
    if not all(g and g.learned for g in golden):
        return Verdict(
            "untested",
            epochs,
            (nothing, nothing),
            (nothing, nothing),
            ordered,
            left_out,
            study.stamp(),
        )
    final = tuple(g.estimate("test_acc") for g in golden)
    first = tuple(first_epoch(g) for g in golden)
    finding = "slower" if first[1].mean < first[0].mean else "not slower"
    return Verdict(finding, epochs, final, first, ordered, left_out, study.stamp())
