"""The training chapter: the book's protocols, and two short runs from one seed.

The two runs (the golden pair and the common pair, same seed, so the same initial
weights, batches and dropout masks) are trained on demand, not stored: a few epochs on
the full split in full mode, one epoch on the quick subset in quick mode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib.pyplot as plt

from golden import experiments, plots, report, settings, theory
from golden.data import MnistSplits, splits
from golden.results import Run
from golden.train import TrainConfig, train

Pair = tuple[float, float]
PAIRS = {
    "golden (η, α)": (theory.ETA, theory.ALPHA),
    f"common {experiments.COMMON_PAIR}": experiments.COMMON_PAIR,
}
FULL_EPOCHS, QUICK_EPOCHS = 5, 1
SEED = 0


def protocols_table() -> str:
    """Every protocol of the runner, what it keeps of the 2024 protocol and how many
    grid runs of it are stored, then a sentence on the 50% subset."""
    rows, half = [], {}
    for proto in experiments.PROTOCOLS.values():
        stored = len(experiments.load_records("grid", proto))
        if proto.data_fraction < 1:
            half[proto.name] = stored
        size = f"{proto.data_fraction:.0%}" if proto.data_fraction < 1 else "all"
        kind = "folds" if proto.cross_validation else "seeds"
        rows.append(
            (
                f"`{proto.name}`",
                proto.epochs,
                f"{len(proto.seeds)} {kind}",
                "yes" if proto.cross_validation else "no",
                "quick subset" if proto.quick_data else size,
                stored,
            )
        )
    table = report.table(
        (
            "protocol",
            "epochs per grid run",
            "replicates",
            "cross-validation",
            "training images",
            "grid runs stored",
        ),
        rows,
    )
    return table + "\n\n" + subset_note(half)


def subset_note(half: dict[str, int]) -> str:
    """What the book says about the 50% subset, given the protocols that train on it
    and their stored grid runs."""
    if not half:
        return (
            "No protocol trains on the 50% subset yet, so the book does not test the "
            "subset result."
        )
    if any(half.values()):
        return (
            f"Grid runs on the 50% subset are stored ({', '.join(half)}); "
            "{doc}`grid` names the protocol of every result it shows."
        )
    names = ", ".join(f"`{name}`" for name in half)
    return (
        f"The 50% subset is trained by {names}, but no grid runs of it are stored, so "
        "the book does not test the subset result; a reader with the compute runs it "
        f"with `python -m golden sweep grid --protocol {next(iter(half))}`."
    )


@dataclass(frozen=True)
class ShortTraining:
    """The two runs from one seed, by name, and the data they saw."""

    runs: dict[str, Run]
    train_images: int
    test_images: int

    @property
    def epochs(self) -> int:
        return max(run.config.epochs for run in self.runs.values())

    def protocol(self) -> str:
        """What the runs were, in one line of at most 88 characters."""
        return (
            f"{settings.mode_name()} mode: {self.train_images:,} training images, "
            f"{self.epochs} epoch(s), batch 64, seed {SEED}, test on "
            f"{self.test_images:,} images"
        )


def short_training(
    data: MnistSplits | None = None, epochs: int | None = None, seed: int = SEED
) -> ShortTraining:
    """Train the golden and the common pair from ``seed`` (default epochs: 5, or 1 in
    quick mode) on ``data`` (default: the mode's MNIST split)."""
    data = data or splits()
    epochs = epochs or (QUICK_EPOCHS if settings.quick_mode() else FULL_EPOCHS)
    runs = {
        name: Run.from_record(
            train(
                TrainConfig(lr=lr, momentum=m, epochs=epochs, seed=seed),
                data,
                progress=False,
            ).as_dict()
        )
        for name, (lr, m) in PAIRS.items()
    }
    return ShortTraining(runs, len(data.train), len(data.test))


def runs_table(found: ShortTraining) -> str:
    """Each run's final training loss and accuracies, and its time."""
    rows = [
        (
            name,
            f"{run.config.lr:.6g}",
            f"{run.config.momentum:.6g}",
            f"{run.final('train_loss'):.4f}",
            f"{run.final('val_acc'):.4f}",
            f"{run.final('test_acc'):.4f}",
            f"{run.wall_time_s:.0f}",
        )
        for name, run in found.runs.items()
    ]
    return report.table(
        (
            "pair",
            "η",
            "α",
            "final train loss",
            "val accuracy",
            "test accuracy",
            "time (s)",
        ),
        rows,
    )


@plots.figure("training_curves")
def curves_figure(found: ShortTraining | None = None) -> plt.Figure:
    """Training loss and test accuracy per epoch of the two runs, stamped."""
    found = found or short_training()
    fig, (left, right) = plt.subplots(1, 2, figsize=(7.5, 3.2))
    for ax, metric, name in (
        (left, "train_loss", "training loss"),
        (right, "test_acc", "test accuracy"),
    ):
        plots.learning_curves(
            {label: [run.metrics[metric]] for label, run in found.runs.items()},
            name,
            ax,
        )
    fig.suptitle("The CNN of the 2024 protocol on MNIST, one seed")
    fig.tight_layout()
    plots.stamp(fig, found.protocol())
    return fig


@dataclass(frozen=True)
class Verdict:
    """Which of the two runs ends ahead in test accuracy, and by how much; one seed
    decides nothing, which the prose says whatever the finding."""

    finding: str  # "golden ahead", "common ahead", "equal" or "diverged"
    golden: float  # final test accuracy (NaN if the run diverged)
    common: float
    epochs: int

    def text(self) -> str:
        gap = abs(self.golden - self.common)
        lead = f"After {self.epochs} epoch(s) from seed {SEED}, "
        if self.finding == "diverged":
            lead += "a run diverged, so the two cannot be compared. "
        elif self.finding == "equal":
            lead += f"both runs reach the same test accuracy, {self.golden:.4f}. "
        else:
            ahead, behind = (
                ("golden", "common")
                if self.golden > self.common
                else ("common", "golden")
            )
            lead += (
                f"the {ahead} pair ends ahead in test accuracy by {gap:.4f} "
                f"({max(self.golden, self.common):.4f} against "
                f"{min(self.golden, self.common):.4f} for the {behind} pair). "
            )
        return lead + (
            "One seed says little about which pair is better: differences of this "
            "size are what another seed could reverse. The next chapter, {doc}`grid`, "
            "answers the question with the whole grid of 60 pairs of the 2024 "
            "protocol, several seeds per pair and confidence intervals."
        )


def verdict(found: ShortTraining) -> Verdict:
    """Which run ends ahead; a diverged run has no final accuracy (NaN)."""
    golden, common = found.runs.values()
    a, b = (math.nan if r.diverged else r.final("test_acc") for r in (golden, common))
    if golden.diverged or common.diverged:
        finding = "diverged"
    else:
        finding = "equal" if a == b else "golden ahead" if a > b else "common ahead"
    return Verdict(finding, a, b, found.epochs)
