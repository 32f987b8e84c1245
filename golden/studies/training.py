"""The training chapter: the book's protocols, and two short runs from one seed.

The two runs (the golden pair and the common pair, same seed, so the same initial
weights, batches and dropout masks) are the experiment ``training``, stored by the
runner like every other: a few epochs on the full split under ``book``, one epoch on
the quick subset under ``quick``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib.pyplot as plt

from golden import experiments, plots, report
from golden.experiments import COMMON_PAIR, TRAINING_PAIRS, TRAINING_SEED
from golden.results import Run
from golden.store import Store

# The two runs as the chapter names them, in the order of the experiment.
PAIRS = dict(zip(("golden (η, α)", f"common {COMMON_PAIR}"), TRAINING_PAIRS))


def protocols_table(store: Store | None = None) -> str:
    """Every protocol of the runner, what it keeps of the 2024 protocol and how many
    grid runs of it are stored in ``store`` (default: the one loads read), then a
    sentence on the 50% subset."""
    store = report.store_in_force(store)
    rows, half = [], {}
    for proto in experiments.PROTOCOLS.values():
        stored = len(store.load("grid", proto))
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


def load(store: Store | None = None) -> report.Study:
    """The stored two runs (else the quick fallback, see
    :func:`golden.report.stored_or_quick`)."""
    return report.load("training", store=store)


def named_runs(study: report.Study) -> dict[str, Run]:
    """The study's two runs by the chapter's names, golden first."""
    by_pair = {run.pair: run for run in study.runs}
    return {name: by_pair[pair] for name, pair in PAIRS.items()}


def runs_table(study: report.Study) -> str:
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
        for name, run in named_runs(study).items()
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


@plots.figure("training_curves", load)
def curves_figure(study: report.Study) -> plt.Figure:
    """Training loss and test accuracy per epoch of the two runs, stamped."""
    runs = named_runs(study)
    fig, (left, right) = plt.subplots(1, 2, figsize=(7.5, 3.2))
    for ax, metric, name in (
        (left, "train_loss", "training loss"),
        (right, "test_acc", "test accuracy"),
    ):
        plots.learning_curves(
            {label: [run.metrics[metric]] for label, run in runs.items()}, name, ax
        )
    fig.suptitle("The CNN of the 2024 protocol on MNIST, one seed")
    fig.tight_layout()
    plots.stamp(fig, study.stamp(f"seed {TRAINING_SEED}"))
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
        lead = f"After {self.epochs} epoch(s) from seed {TRAINING_SEED}, "
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


def verdict(study: report.Study) -> Verdict:
    """Which run ends ahead; a diverged run has no final accuracy (NaN)."""
    golden, common = named_runs(study).values()
    a, b = (math.nan if r.diverged else r.final("test_acc") for r in (golden, common))
    if golden.diverged or common.diverged:
        finding = "diverged"
    else:
        finding = "equal" if a == b else "golden ahead" if a > b else "common ahead"
    return Verdict(finding, a, b, study.epochs)
