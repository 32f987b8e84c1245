"""The label-noise study: SGD at the golden pair against Adam, from the stored runs.

The book's own question, not a claim of its sources (the abstract of Bui et al. 2026
says nothing about Adam or noise): does SGD with the golden values generalise better
than Adam, and is it more robust to label noise? The ``noise`` experiment trains both
optimizers at each noise level from the same seeds (same corrupted labels, initial
weights and batches), so every comparison here pairs runs by seed. Two families of
comparisons are each corrected with Holm's method: the final test accuracy, SGD minus
Adam, at every noise level; and the accuracy lost from clean to noisy labels, Adam's
loss minus SGD's, at every noisy level. Runs that diverged or finished at chance
accuracy are counted and left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt

from golden import plots, report, results
from golden.experiments import GOLDEN_PAIR
from golden.results import Comparison, Estimate, Group

Key = tuple[float, str]  # (label noise, optimizer)
OPTIMIZERS = ("sgd", "adam")


def load() -> report.Study:
    """The stored runs of the ``noise`` experiment (or the quick fallback)."""
    return report.load("noise")


def variant(run: results.Run) -> Key:
    return run.config.label_noise, run.config.optimizer


def groups(study: report.Study) -> dict[Key, Group]:
    """The study's runs by (noise level, optimizer)."""
    return results.group(study.runs, variant)


def levels(study: report.Study) -> list[float]:
    """The noise levels the study ran, lowest first."""
    return sorted({run.config.label_noise for run in study.runs})


def optimizer_name(group: Group) -> str:
    """The optimizer's name (:data:`golden.report.OPTIMIZER_NAMES`) with its pair, or
    with Adam's learning rate, from the group."""
    config = group.runs[0].config
    name = report.OPTIMIZER_NAMES.get(config.optimizer, config.optimizer)
    if config.optimizer == "adam":
        return f"{name}, lr {config.lr:g}"
    pair = group.runs[0].pair
    return (
        f"{name}, {'golden pair' if pair == GOLDEN_PAIR else report.pair_label(pair)}"
    )


def design(study: report.Study) -> str:
    """What is compared, in one line: the two optimizers and the noise levels."""
    found = groups(study)
    names = [
        optimizer_name(found[key])
        for key in sorted(found, key=_order)
        if key[0] == levels(study)[0]
    ]
    return (
        f"{' against '.join(names)}; label noise {report.percent_list(levels(study))}"
    )


def _order(key: Key) -> tuple[float, int]:
    """By noise level, then SGD before Adam (any other optimizer last)."""
    level, optimizer = key
    known = optimizer in OPTIMIZERS
    return level, OPTIMIZERS.index(optimizer) if known else len(OPTIMIZERS)


# --- comparisons --------------------------------------------------------------


def accuracy_comparisons(study: report.Study) -> dict[float, Comparison]:
    """SGD minus Adam in final test accuracy at each level, paired by seed and
    Holm-adjusted over the levels; a level is absent without two seeds both learned."""
    found = groups(study)
    tests = []
    for level in levels(study):
        sgd, adam = found.get((level, "sgd")), found.get((level, "adam"))
        if sgd and adam:
            tests.append(
                results.compare(
                    sgd.values("test_acc"),
                    adam.values("test_acc"),
                    (level, "sgd"),
                    (level, "adam"),
                )
            )
    return {c.a[0]: c for c in results.family(tests)}


def drops(group_clean: Group, group_noisy: Group) -> dict[int, float]:
    """Test accuracy lost from clean to noisy labels, per seed that learned at both."""
    clean, noisy = group_clean.values("test_acc"), group_noisy.values("test_acc")
    return {seed: clean[seed] - noisy[seed] for seed in sorted(set(clean) & set(noisy))}


def drop_comparisons(study: report.Study) -> dict[float, Comparison]:
    """Adam's drop minus SGD's drop at each noisy level (positive: SGD loses less),
    paired by seed and Holm-adjusted over the noisy levels."""
    found, all_levels = groups(study), levels(study)
    tests = []
    for level in all_levels[1:]:
        keys = [(lv, opt) for lv in (all_levels[0], level) for opt in OPTIMIZERS]
        if all(key in found for key in keys):
            sgd = drops(found[(all_levels[0], "sgd")], found[(level, "sgd")])
            adam = drops(found[(all_levels[0], "adam")], found[(level, "adam")])
            tests.append(results.compare(adam, sgd, (level, "adam"), (level, "sgd")))
    return {c.a[0]: c for c in results.family(tests)}


# --- tables -------------------------------------------------------------------


def _pair_counts(found: dict[Key, Group], level: float, count: str) -> str:
    return " / ".join(
        str(getattr(found[(level, opt)], count)) if (level, opt) in found else "—"
        for opt in OPTIMIZERS
    )


def _versus(c: Comparison | None) -> list[str]:
    if c is None:
        return ["—", "—", "—", "0"]
    return [*c.cells, str(len(c.replicates))]


def accuracy_table(study: report.Study) -> str:
    """Final test accuracy per level and optimizer, and SGD − Adam paired by seed."""
    found, tests = groups(study), accuracy_comparisons(study)

    def estimate(level: float, optimizer: str) -> str:
        group = found.get((level, optimizer))
        return format(group.estimate("test_acc"), ".4f") if group else "—"

    rows = [
        [
            f"{level:.0%}",
            estimate(level, "sgd"),
            estimate(level, "adam"),
            *_versus(tests.get(level)),
            _pair_counts(found, level, "diverged"),
            _pair_counts(found, level, "unlearned"),
        ]
        for level in levels(study)
    ]
    return report.table(
        [
            "label noise",
            "SGD, golden pair (mean ± 95% CI)",
            "Adam (mean ± 95% CI)",
            "SGD − Adam (mean ± 95% CI)",
            "p (paired t)",
            "Holm p",
            "seeds paired",
            "diverged (SGD / Adam)",
            "at chance (SGD / Adam)",
        ],
        rows,
    )


def drop_table(study: report.Study) -> str:
    """Mean accuracy lost from clean labels to each noisy level, and Adam's − SGD's."""
    found, tests, all_levels = groups(study), drop_comparisons(study), levels(study)

    def mean_drop(level: float, optimizer: str) -> str:
        keys = ((all_levels[0], optimizer), (level, optimizer))
        if not all(key in found for key in keys):
            return "—"
        return f"{Estimate.of(drops(*(found[key] for key in keys)).values()).mean:.4f}"

    rows = [
        [
            f"{level:.0%}",
            mean_drop(level, "sgd"),
            mean_drop(level, "adam"),
            *_versus(tests.get(level)),
        ]
        for level in all_levels[1:]
    ]
    return report.table(
        [
            "label noise",
            "drop, SGD golden",
            "drop, Adam",
            "Adam's drop − SGD's drop (mean ± 95% CI)",
            "p (paired t)",
            "Holm p",
            "seeds paired",
        ],
        rows,
    )


# --- figures ------------------------------------------------------------------


def _band_note(study: report.Study, what: str) -> str:
    seeds = ", ".join(map(str, study.replicates))
    return study.stamp(f"{study.epochs} epochs, mean over seeds {seeds}, 95% {what}")


@plots.figure("noise_curves", load)
def curves_figure(study: report.Study) -> plt.Figure:
    """Test accuracy of every epoch, one panel per noise level, one line per optimizer
    (mean over the seeds that learned, 95% band)."""
    found, all_levels = groups(study), levels(study)
    fig, axes = plt.subplots(
        1, len(all_levels), figsize=(10, 3.8), sharey=True, squeeze=False
    )
    for ax, level in zip(axes[0], all_levels):
        curves = {
            f"{optimizer_name(g)}, noise {level:.0%}": g.curves("test_acc")
            for key, g in sorted(found.items(), key=lambda item: _order(item[0]))
            if key[0] == level and g.learned
        }
        if curves:
            plots.learning_curves(curves, "test accuracy", ax)
        ax.set_title(f"{level:.0%} of training labels wrong")
    plots.stamp(fig, _band_note(study, "bands"))
    return fig


@plots.figure("noise_final", load)
def final_figure(study: report.Study) -> plt.Figure:
    """Final test accuracy against the noise level, per optimizer, 95% intervals."""
    found, all_levels = groups(study), levels(study)
    fig, ax = plt.subplots(figsize=(6, 4))
    for optimizer in OPTIMIZERS:
        present = [level for level in all_levels if (level, optimizer) in found]
        if not present:
            continue
        estimates = [
            found[(level, optimizer)].estimate("test_acc") for level in present
        ]
        ax.errorbar(
            [100 * level for level in present],
            [e.mean for e in estimates],
            yerr=[0.0 if e.half != e.half else e.half for e in estimates],
            marker="o",
            capsize=4,
            label=optimizer_name(found[(present[0], optimizer)]),
        )
    ax.set(
        xlabel="training labels replaced by a wrong class (%)",
        ylabel=f"test accuracy after {study.epochs} epochs",
    )
    ax.legend()
    plots.stamp(fig, _band_note(study, "intervals"))
    return fig


# --- verdict ------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """What the study says about the claim, with the numbers that say it.

    ``finding``: "holds" (SGD significantly ahead at every level), "holds at some
    levels", "does not hold" (Adam significantly ahead somewhere, SGD nowhere),
    "indistinguishable" (no significant difference) or "untested" (no level has two
    seeds both learned).
    ``robustness``: "SGD loses less", "SGD loses more", "mixed", "indistinguishable" or
    "untested", from the drop comparisons.
    """

    finding: str
    robustness: str
    epochs: int
    levels: tuple[float, ...]
    accuracy: tuple[Comparison, ...]  # SGD − Adam by level, Holm-adjusted
    drops: tuple[
        Comparison, ...
    ]  # Adam's drop − SGD's drop by noisy level, Holm-adjusted
    left_out: int = 0  # runs that diverged or finished at chance accuracy
    protocol: str = ""

    def ahead(self, direction: int) -> list[float]:
        """Levels where SGD is significantly ahead (+1) or behind (-1)."""
        return [c.a[0] for c in self.accuracy if c.direction == direction]

    def losses(self, direction: int) -> list[float]:
        """Noisy levels where SGD loses significantly less (+1) or more (-1)."""
        return [c.a[0] for c in self.drops if c.direction == direction]

    def _level(self, level: float) -> str:
        by_level = {c.a[0]: c for c in self.accuracy}
        c = by_level.get(level)
        if c is None:
            return (
                f"{level:.0%} noise: not compared (fewer than two seeds both learned)"
            )
        said = (
            "no difference beyond the noise of the seeds"
            if c.direction == 0
            else "SGD ahead"
            if c.direction > 0
            else "Adam ahead"
        )
        return f"{level:.0%} noise: {said} ({c.diff.mean:+.4f}, {c.p_text})"

    def text(self) -> str:
        head = f"**Verdict after {self.epochs} epochs.** "
        if self.finding == "untested":
            return head + (
                "At no noise level did two seeds learn with both optimizers, so "
                "SGD and Adam cannot be compared here: no verdict."
            )
        claim = {
            "holds": "holds in this setting at every noise level",
            "does not hold": "does not hold in this setting",
            "indistinguishable": "is not supported in this setting: the two are "
            "indistinguishable within the noise of the seeds",
            "holds at some levels": "holds only at "
            f"{report.percent_list(self.ahead(1))} noise",
        }[self.finding]
        behind = self.ahead(-1)
        robust = {
            "SGD loses less": "SGD loses significantly less at "
            f"{report.percent_list(self.losses(1))} noise.",
            "SGD loses more": "SGD loses significantly more at "
            f"{report.percent_list(self.losses(-1))} noise.",
            "mixed": f"SGD loses significantly less at "
            f"{report.percent_list(self.losses(1))} noise and significantly more "
            f"at {report.percent_list(self.losses(-1))}.",
            "indistinguishable": "the difference between the two optimizers is within "
            "the noise of the seeds.",
            "untested": "no noisy level has two seeds learned at it and without noise "
            "by both optimizers, so it is not compared.",
        }[self.robustness]
        left_out = (
            f" {self.left_out} run(s) that diverged or finished at chance accuracy "
            "are left out; each comparison pairs the seeds both sides learned."
            if self.left_out
            else ""
        )
        return (
            head + "Test accuracy, SGD with the golden pair minus Adam, paired by "
            f"seed, Holm-corrected over the {len(self.accuracy)} noise levels "
            "compared: "
            + "; ".join(self._level(level) for level in self.levels)
            + f". The question's hypothesis, that SGD with the golden values "
            f"generalises better than Adam, {claim}"
            + (
                f" (Adam is significantly ahead at {report.percent_list(behind)})"
                if behind
                else ""
            )
            + ". As for robustness, measured by the accuracy lost from clean to noisy "
            "labels (Holm-corrected over the noisy levels): "
            + robust
            + left_out
            + f" Caveats: one network, one data set, {self.epochs} epochs and one Adam "
            "learning rate. "
            f"({self.protocol})"
        )


def verdict(study: report.Study) -> Verdict:
    """The verdict of the study's runs (see :class:`Verdict` for the findings)."""
    accuracy = accuracy_comparisons(study)
    drop = drop_comparisons(study)
    all_levels = tuple(levels(study))
    sgd_ahead = [level for level, c in accuracy.items() if c.direction > 0]
    adam_ahead = [level for level, c in accuracy.items() if c.direction < 0]
    if not accuracy:
        finding = "untested"
    elif len(sgd_ahead) == len(all_levels):
        finding = "holds"
    elif sgd_ahead:
        finding = "holds at some levels"
    elif adam_ahead:
        finding = "does not hold"
    else:
        finding = "indistinguishable"
    less = [level for level, c in drop.items() if c.direction > 0]
    more = [level for level, c in drop.items() if c.direction < 0]
    robustness = (
        "untested"
        if not drop
        else "mixed"
        if less and more
        else "SGD loses less"
        if less
        else "SGD loses more"
        if more
        else "indistinguishable"
    )
    left_out = sum(g.diverged + g.unlearned for g in groups(study).values())
    return Verdict(
        finding,
        robustness,
        study.epochs if study.runs else 0,
        all_levels,
        tuple(accuracy[level] for level in sorted(accuracy)),
        tuple(drop[level] for level in sorted(drop)),
        left_out,
        study.stamp(),
    )
