"""Checks of golden.studies.noise: every branch of the verdict and of its robustness
part on small synthetic run sets (diverged runs, runs at chance accuracy, missing
seeds), pairing by seed, Holm's correction, the two tables and the two figures."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from factories import make_run
from golden import report, stats
from golden.experiments import ADAM, GOLDEN_PAIR, NOISE_LEVELS, protocol
from golden.studies import noise

JITTER = (0.0, 0.001, 0.002)  # a steady difference with a little spread between seeds
NOISY = (0.004, -0.004, 0.0005)  # a difference within the noise of three seeds


def run(level, optimizer, seed, test, **kw):
    lr, momentum = GOLDEN_PAIR if optimizer == "sgd" else (ADAM["lr"], ADAM["momentum"])
    return make_run(
        lr, momentum, seed, test, label_noise=level, optimizer=optimizer, **kw
    )


def level_runs(level, sgd, adam):
    return [run(level, "sgd", s, t) for s, t in enumerate(sgd)] + [
        run(level, "adam", s, t) for s, t in enumerate(adam)
    ]


def study_of(runs):
    return report.Study("noise", protocol("book"), tuple(runs))


def scenario(gaps, adam_drops=(0.0, 0.0), sgd_drops=(0.0, 0.0), spreads=None):
    """Three seeds per level; SGD − Adam at each level is ``gaps[i]`` plus that level's
    spread (default :data:`JITTER`); each optimizer loses its drop from clean labels."""
    runs = []
    for i, level in enumerate(NOISE_LEVELS):
        spread = (spreads or [JITTER] * 3)[i]
        adam_loss = ([0.0] + list(adam_drops))[i]
        sgd_loss = ([0.0] + list(sgd_drops))[i]
        adam = [0.97 - adam_loss + 0.003 * s for s in range(3)]
        sgd = [0.97 - sgd_loss + 0.003 * s + gaps[i] + spread[s] for s in range(3)]
        runs += level_runs(level, sgd, adam)
    return study_of(runs)


def test_claim_holds_at_every_level():
    found = noise.verdict(scenario([0.01, 0.01, 0.01]))
    assert found.finding == "holds" and found.ahead(1) == list(NOISE_LEVELS)
    assert [c.replicates for c in found.accuracy] == [(0, 1, 2)] * 3
    assert found.accuracy[0].diff.mean == pytest.approx(0.011)
    assert "holds in this setting at every noise level" in found.text()
    assert "Holm-corrected over the 3 noise levels" in found.text()


def test_claim_holds_only_at_some_levels():
    found = noise.verdict(scenario([0.0, 0.0, 0.01], spreads=[NOISY, NOISY, JITTER]))
    assert found.finding == "holds at some levels" and found.ahead(1) == [0.4]
    assert "holds only at 40% noise" in found.text()
    assert "Adam is significantly ahead" not in found.text()


def test_claim_does_not_hold_when_adam_is_ahead():
    found = noise.verdict(
        scenario([0.0, -0.01, -0.01], spreads=[NOISY, JITTER, JITTER])
    )
    assert found.finding == "does not hold" and found.ahead(-1) == [0.2, 0.4]
    assert "does not hold in this setting" in found.text()
    assert "Adam is significantly ahead at 20%, 40%" in found.text()
    assert "20% noise: Adam ahead" in found.text()


def test_sgd_ahead_at_one_level_and_adam_at_another():
    found = noise.verdict(scenario([0.01, 0.0, -0.01], spreads=[JITTER, NOISY, JITTER]))
    assert found.finding == "holds at some levels"
    assert "holds only at 0% noise (Adam is significantly ahead at 40%)" in found.text()


def test_indistinguishable_within_the_noise_of_the_seeds():
    found = noise.verdict(scenario([0.0, 0.0, 0.0], spreads=[NOISY] * 3))
    assert (
        found.finding == "indistinguishable" and found.robustness == "indistinguishable"
    )
    assert all(c.direction == 0 for c in found.accuracy)
    text = found.text()
    assert "indistinguishable within the noise of the seeds" in text
    assert "the difference between the two optimizers is within the noise" in text
    assert "Bonferroni" not in text and "(noise, protocol book [" in text


def test_holm_adjusts_each_family_together():
    found = noise.verdict(scenario([0.01, 0.0, 0.003], spreads=[JITTER, NOISY, NOISY]))
    raw = [c.p_value for c in found.accuracy]
    assert [c.p_adjusted for c in found.accuracy] == pytest.approx(
        [stats.holm(dict(enumerate(raw)))[i] for i in range(3)]
    )
    assert found.accuracy[0].p_adjusted == pytest.approx(3 * raw[0])  # the smallest p
    drops = [c.p_value for c in found.drops]
    assert [c.p_adjusted for c in found.drops] == pytest.approx(
        [stats.holm(dict(enumerate(drops)))[i] for i in range(2)]
    )


@pytest.mark.parametrize(
    "sgd_drops, adam_drops, robustness, words",
    [
        (
            (0.005, 0.01),
            (0.02, 0.04),
            "SGD loses less",
            "SGD loses significantly less at 20%, 40%",
        ),
        (
            (0.02, 0.04),
            (0.005, 0.01),
            "SGD loses more",
            "SGD loses significantly more at 20%, 40%",
        ),
        (
            (0.005, 0.04),
            (0.02, 0.01),
            "mixed",
            "less at 20% noise and significantly more at 40%",
        ),
    ],
)
def test_robustness_branches(sgd_drops, adam_drops, robustness, words):
    gaps = [0.0, 0.0, 0.0]
    found = noise.verdict(scenario(gaps, adam_drops, sgd_drops))
    assert found.robustness == robustness and words in found.text()
    by_level = {c.a[0]: c for c in found.drops}
    assert by_level[0.4].diff.mean == pytest.approx(adam_drops[1] - sgd_drops[1])


def test_diverged_unlearned_and_missing_seeds_pair_by_seed_not_position():
    """SGD diverged on seed 0; Adam stayed at chance on seed 2 and has no seed 4. Each
    level compares seeds 1 and 3 only, the ones both optimizers learned."""
    runs = []
    for level in NOISE_LEVELS:
        runs += [run(level, "sgd", 0, 0.99, diverged=True)]
        runs += [
            run(level, "sgd", s, t)
            for s, t in ((1, 0.98), (2, 0.97), (3, 0.96), (4, 0.95))
        ]
        runs += [
            run(level, "adam", s, t) for s, t in ((0, 0.99), (1, 0.97), (3, 0.955))
        ]
        runs += [run(level, "adam", 2, 0.10)]
    study = study_of(runs)
    found = noise.verdict(study)
    assert all(c.replicates == (1, 3) for c in found.accuracy)
    assert found.accuracy[0].diff.mean == pytest.approx(0.0075)
    assert (
        found.left_out == 6
        and "6 run(s) that diverged or finished at chance" in found.text()
    )
    rows = noise.accuracy_table(study).splitlines()[2:]
    assert rows[0].endswith("| 2 | 1 / 0 | 0 / 1 |")
    groups = noise.groups(study)
    assert groups[(0.0, "sgd")].estimate("test_acc").n == 4
    assert groups[(0.0, "adam")].estimate("test_acc").n == 3


def test_untested_when_adam_never_learned():
    runs = []
    for level in NOISE_LEVELS:
        runs += [run(level, "sgd", s, 0.98) for s in range(3)]
        runs += [run(level, "adam", s, 0.1) for s in range(3)]
    study = study_of(runs)
    found = noise.verdict(study)
    assert found.finding == "untested" and found.robustness == "untested"
    assert found.accuracy == () and "no verdict" in found.text()
    assert (
        "| 0% | 0.9800 ± 0.0000 | n/a | — | — | — | 0 | 0 / 0 | 0 / 3 |"
        in noise.accuracy_table(study)
    )


def test_tables_have_a_row_per_level():
    study = scenario([0.01, 0.01, 0.01], adam_drops=(0.01, 0.02), sgd_drops=(0.0, 0.01))
    accuracy = noise.accuracy_table(study).splitlines()
    assert len(accuracy) == 2 + len(NOISE_LEVELS)
    assert (
        accuracy[2].startswith("| 0% | 0.9840 ± ")
        and "| +0.0110 ± 0.0025 |" in accuracy[2]
    )
    assert "| Holm p |" in accuracy[0]
    drops = noise.drop_table(study).splitlines()
    assert len(drops) == 4
    assert drops[2].startswith("| 20% | 0.0000 | 0.0100 | +0.0100 ± 0.0000 | 0.000 |")
    assert drops[3].startswith("| 40% | 0.0100 | 0.0200 | +0.0100 ± ")


def test_design_names_what_this_study_compared():
    line = noise.design(scenario([0.0, 0.0, 0.0]))
    assert line == (
        "SGD with momentum, golden pair against Adam, lr 0.001; "
        "label noise 0%, 20%, 40%"
    )


def test_figures_draw_a_line_per_learned_optimizer_and_level():
    runs = []
    for level in NOISE_LEVELS:
        runs += [run(level, "sgd", s, [0.9, 0.95, 0.97]) for s in range(3)]
        runs += [
            run(level, "adam", s, [0.9, 0.94, 0.96 if level else 0.1]) for s in range(3)
        ]  # Adam never learned without noise
    study = study_of(runs)
    fig = noise.curves_figure(study)
    assert len(fig.axes) == 3
    assert [len(ax.lines) for ax in fig.axes] == [1, 2, 2]
    assert fig.axes[0].lines[0].get_ydata()[-1] == pytest.approx(0.97)
    assert "noise, protocol book [" in fig.texts[0].get_text()
    final = noise.final_figure(study)
    (ax,) = final.axes
    assert len(ax.containers) == 2 and ax.get_ylabel() == "test accuracy after 3 epochs"
    plt.close("all")
