"""Checks of golden.studies.mse: every branch of the verdict on small synthetic run sets
(diverged runs, runs at chance accuracy, missing seeds), pairing by seed, Holm's
correction, the two tables and the figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from factories import make_run
from golden import report, stats
from golden.experiments import COMMON_PAIR, GOLDEN_PAIR, protocol
from golden.studies import mse

JITTER = (0.0, 0.001, 0.002)
NOISY = (0.004, -0.004, 0.0005)


def run(loss, pair, seed, test, val):
    return make_run(*pair, seed, test, val, loss=loss)


def study_of(runs):
    return report.Study("loss", protocol("book"), tuple(runs))


def scenario(gaps, first=(0.97, 0.96), spreads=(JITTER, JITTER)):
    """Three seeds of 3 epochs per loss and pair. Cross-entropy minus squared error in
    final test accuracy is ``gaps`` (golden, common) plus a spread per seed; ``first``
    is the validation accuracy after epoch 1 of cross-entropy and of squared error."""
    runs = []
    for pair, gap, spread in zip((GOLDEN_PAIR, COMMON_PAIR), gaps, spreads):
        for seed in range(3):
            mse_test = 0.98 + 0.003 * seed
            for loss, test, v1 in (
                ("cross_entropy", mse_test + gap + spread[seed], first[0]),
                ("mse", mse_test, first[1]),
            ):
                runs.append(run(loss, pair, seed, [0.9, 0.95, test], [v1, 0.981, 0.99]))
    return study_of(runs)


def test_slower_and_cross_entropy_ahead_for_both_pairs():
    found = mse.verdict(scenario((0.01, 0.01)))
    assert found.finding == "slower" and found.ahead(1) == [GOLDEN_PAIR, COMMON_PAIR]
    assert found.first[0].mean == pytest.approx(0.97)
    assert found.first[1].mean == pytest.approx(0.96)
    assert found.final[0].mean == pytest.approx(0.994)
    text = found.text()
    assert "after one epoch the validation accuracies are 0.9700 and 0.9600" in text
    assert (
        "Cross-entropy is ahead in final accuracy for the golden and the common pair"
        in text
    )
    assert "(paired by seed, Holm-corrected over the 2 pairs)" in text
    assert "learns more slowly" in text and "Bonferroni" not in text


def test_slower_but_final_accuracy_indistinguishable():
    found = mse.verdict(scenario((0.0, 0.0), spreads=(NOISY, NOISY)))
    assert found.finding == "slower" and found.ahead(1) == found.ahead(-1) == []
    assert (
        "No difference in final accuracy is significant (paired by seed, "
        "Holm-corrected over the 2 pairs)" in found.text()
    )


def test_squared_error_ahead_is_not_reported_as_cross_entropy_ahead():
    found = mse.verdict(scenario((-0.01, 0.0), spreads=(JITTER, NOISY)))
    assert found.ahead(-1) == [GOLDEN_PAIR] and found.ahead(1) == []
    text = found.text()
    assert "Squared error is ahead in final accuracy for the golden pair" in text
    assert "Cross-entropy is ahead" not in text


def test_not_slower_when_squared_error_starts_as_fast():
    found = mse.verdict(scenario((0.01, 0.01), first=(0.96, 0.97)))
    assert found.finding == "not slower"
    text = found.text()
    assert (
        "at least as fast as cross-entropy in the first epoch here (0.9700 against "
        "0.9600), against the gradient argument" in text
    )
    assert "learns more slowly" not in text and "Cross-entropy is ahead" in text


def test_holm_adjusts_the_pairs_together():
    found = mse.verdict(scenario((0.01, 0.003), spreads=(JITTER, NOISY)))
    raw = {c.a: c.p_value for c in found.comparisons}
    assert {c.a: c.p_adjusted for c in found.comparisons} == pytest.approx(
        stats.holm(raw)
    )
    assert [c.a for c in found.comparisons] == [GOLDEN_PAIR, COMMON_PAIR]


def test_untested_when_squared_error_never_learned_at_the_golden_pair():
    runs = [run("cross_entropy", GOLDEN_PAIR, s, 0.99, 0.99) for s in range(3)]
    runs += [run("mse", GOLDEN_PAIR, s, 0.1, 0.1) for s in range(3)]
    study = study_of(runs)
    found = mse.verdict(study)
    assert found.finding == "untested" and found.comparisons == ()
    assert "no verdict" in found.text() and found.left_out == 3
    rows = mse.accuracy_table(study).splitlines()[2:]
    assert rows[1] == "| mse | 0.016 | 0.874 | n/a | n/a | not within 1 | 0 / 3 |"


def test_diverged_unlearned_and_missing_seeds_pair_by_seed_not_position():
    """Squared error diverged on seed 0, stayed at chance on seed 2 and has no seed 4;
    the golden pair's comparison uses seeds 1 and 3 only."""
    runs = [
        run("cross_entropy", GOLDEN_PAIR, s, t, 0.99)
        for s, t in ((0, 0.99), (1, 0.98), (2, 0.97), (3, 0.96), (4, 0.95))
    ]
    runs += [
        make_run(*GOLDEN_PAIR, 0, 0.99, loss="mse", diverged=True),
        run("mse", GOLDEN_PAIR, 1, 0.975, 0.99),
        run("mse", GOLDEN_PAIR, 2, 0.1, 0.1),
        run("mse", GOLDEN_PAIR, 3, 0.95, 0.99),
    ]
    study = study_of(runs)
    found = mse.verdict(study)
    (golden,) = found.comparisons
    assert golden.replicates == (1, 3) and golden.diff.mean == pytest.approx(0.0075)
    assert (
        found.left_out == 2
        and "2 run(s) that diverged or finished at chance" in found.text()
    )
    assert found.final[1].n == 2
    table = mse.comparison_table(study).splitlines()
    assert table[2].startswith("| η=0.016, α=0.874 (golden) | +0.0075 ± ")
    assert table[2].endswith("| 2 |")
    assert mse.accuracy_table(study).splitlines()[3].endswith("| 1 / 1 |")


def test_accuracy_table_has_a_row_per_loss_and_pair():
    study = scenario((0.01, 0.01))
    lines = mse.accuracy_table(study).splitlines()
    assert len(lines) == 6 and "first epoch ≥ 98% val." in lines[0]
    assert lines[2].startswith("| cross_entropy | 0.01 | 0.9 | 0.9940 ± ")
    assert lines[3].startswith("| cross_entropy | 0.016 | 0.874 | 0.9940 ± ")
    assert lines[4].startswith("| mse | 0.01 | 0.9 | 0.9830 ± ")
    assert all(line.endswith("| 0.9700 ± 0.0000 | 2 | 0 / 0 |") for line in lines[2:4])
    slow = [
        run(loss, GOLDEN_PAIR, s, 0.97, [0.9, 0.95, 0.97])
        for loss in mse.LOSSES
        for s in range(3)
    ]
    assert "| not within 3 | 0 / 0 |" in mse.accuracy_table(study_of(slow))


def test_comparison_table_has_a_row_per_pair_golden_first():
    lines = mse.comparison_table(scenario((0.01, 0.01))).splitlines()
    assert len(lines) == 4 and "| Holm p |" in lines[0]
    assert lines[2].startswith("| η=0.016, α=0.874 (golden) | +0.0110 ± 0.0025 | ")
    assert lines[3].startswith("| η=0.01, α=0.9 (common) | +0.0110 ± 0.0025 | ")


def test_design_names_the_pairs_and_losses():
    assert mse.design(scenario((0.0, 0.0))) == (
        "pairs: η=0.016, α=0.874 (golden); η=0.01, α=0.9 (common)\n"
        "losses: cross-entropy, squared error"
    )


def test_figure_draws_a_line_per_learned_loss_and_pair():
    study = scenario((0.01, 0.01))
    fig = mse.curves_figure(study)
    assert len(fig.axes) == 2 and [len(ax.lines) for ax in fig.axes] == [4, 4]
    dashed = [line.get_linestyle() for line in fig.axes[0].lines]
    assert dashed.count("--") == 2
    assert "loss, protocol book [" in fig.texts[0].get_text()
    kept = [r for r in study.runs if (r.config.loss, r.pair) != ("mse", COMMON_PAIR)]
    chance = [run("mse", COMMON_PAIR, s, 0.1, [0.1, 0.1, 0.1]) for s in range(3)]
    fig = mse.curves_figure(study_of(kept + chance))
    assert [len(ax.lines) for ax in fig.axes] == [3, 3]  # no line for runs at chance
    plt.close("all")
