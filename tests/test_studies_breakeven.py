"""Checks of golden.studies.breakeven on small synthetic probed runs: every branch of
the verdict (on and off the line, alone, no golden; noise falling or not, spread or
not), Holm over the four trends, diverged runs, runs at chance accuracy and missing
seeds, the tables and the curves figure."""

from __future__ import annotations

import dataclasses
import math

import matplotlib.pyplot as plt
import pytest

from factories import make_run
from golden import experiments, report, stats, theory
from golden.protocols import protocol
from golden.results import Estimate, Run
from golden.studies import breakeven
from golden.studies.breakeven import Trend, verdict

GOLDEN = experiments.GOLDEN_PAIR
PAIRS = experiments.grid_pairs(experiments.BREAKEVEN_LRS, experiments.BREAKEVEN_MOMENTA)
STEPS = [0, 56, 112]


def probed(
    pair, seed, variance, conditioning, sharpness, acc=0.9, diverged=False
) -> Run:
    """A one-epoch run whose three probes end at the given values."""
    run = make_run(
        *pair, replicate=seed, test_acc=acc, diverged=diverged, epochs=1, probe_every=56
    )
    probes = {
        "step": STEPS,
        "grad_variance": [2 * variance, 1.5 * variance, variance],
        "grad_conditioning": [conditioning] * 3,
        "sharpness": [sharpness / 2, sharpness, sharpness],
        "probe_loss": [2.0, 1.0, 0.5],
    }
    return dataclasses.replace(run, probes=probes)


def smooth(pair, seed, rising_conditioning=False, quiet=False):
    """Measures that are smooth functions of the effective step: the variance falls,
    the conditioning rises (or depends on the seed only), the sharpness falls; ``quiet``
    makes the variance rise instead."""
    step = theory.effective_step(*pair)
    jitter = 1 + 0.01 * seed
    variance = (1 + step if quiet else 1 / (0.01 + step)) * jitter
    conditioning = 0.1 + 0.1 * step if rising_conditioning else 0.2 + 0.1 * seed
    return probed(pair, seed, variance, conditioning, 50 / (1 + step) * jitter)


def study_of(runs) -> report.Study:
    return report.Study("breakeven", protocol("quick"), tuple(runs))


def full(**options) -> list[Run]:
    return [smooth(pair, seed, **options) for pair in PAIRS for seed in range(3)]


def test_on_the_line_when_noise_falls_and_the_spread_does_not():
    found = verdict(study_of(full()))
    assert found.finding == "on the line" and found.position == 5
    assert [row.pair for row in found.neighbours] == [(0.01, 0.9), (0.016, 0.9)]
    assert found.trends["grad_variance"].direction == -1
    assert found.trends["sharpness"].direction == -1
    assert found.trends["grad_conditioning"].direction == 0  # seed only: ρ = 0
    assert found.noise_falls and not found.spread_improves
    text = found.text()
    assert "gradient variance falls (ρ = -" in text and "shows no clear trend" in text
    assert "Holm-corrected over the 4 measures" in text and "over 24 runs" in text
    assert "thus lead to less gradient noise" in text
    assert "does not fall (the noise along its largest direction shrinks" in text
    assert "number 5 of 8" in text and "does not single it out" in text
    assert report.pair_label((0.01, 0.9)) in text


def test_off_the_line_and_better_spread_noise():
    runs = full(rising_conditioning=True)
    runs = [
        dataclasses.replace(run, probes={**run.probes, "sharpness": [1, 1, 1e4]})
        if run.pair == GOLDEN
        else run
        for run in runs
    ]
    found = verdict(study_of(runs))
    assert found.finding == "off the line" and "sharpness" not in found.between
    assert found.trends["grad_conditioning"].direction == 1
    assert not found.spread_improves
    text = found.text()
    assert "places it off the line its effective step would predict for" in text
    assert f"for {4 - len(found.between)} of 4 measures" in text


def test_noise_that_rises_is_against_the_claim():
    found = verdict(study_of(full(quiet=True)))
    assert found.trends["grad_variance"].direction == 1 and not found.noise_falls
    assert "do not clearly lead to less gradient noise" in found.text()
    assert "does not fall. " in found.text()


def test_conditioning_that_falls_means_better_spread_noise():
    runs = [
        probed(
            pair,
            seed,
            1 / theory.effective_step(*pair),
            1 / (1 + theory.effective_step(*pair)) + 0.001 * seed,
            10.0 + seed,
        )
        for pair in PAIRS
        for seed in range(3)
    ]
    found = verdict(study_of(runs))
    assert found.spread_improves and "and to better-spread noise." in found.text()


def test_no_golden_when_its_runs_diverged_or_stayed_at_chance():
    runs = [run for run in full() if run.pair != GOLDEN]
    runs += [
        probed(GOLDEN, 0, 1, 0.2, 10, diverged=True),
        probed(GOLDEN, 1, 1, 0.2, 10, acc=0.1),
        probed(GOLDEN, 2, 1, 0.2, 10, acc=0.1),
    ]
    found = verdict(study_of(runs))
    assert found.finding == "no golden" and found.position is None
    assert found.trends["grad_variance"].n == 21  # the golden runs are not in a trend
    assert "has no run that learned" in found.text()
    golden_row = next(
        line
        for line in breakeven.table(study_of(runs)).splitlines()
        if "golden" in line
    )
    assert "| n/a | n/a | n/a | n/a | n/a | n/a | 0 of 3 |" in golden_row


def test_alone_when_no_other_pair_learned():
    runs = [smooth(GOLDEN, seed) for seed in range(3)]
    runs += [probed((0.1, 0.9), seed, 1, 0.2, 10, acc=0.1) for seed in range(3)]
    found = verdict(study_of(runs))
    assert found.finding == "alone" and found.position == 1 and not found.neighbours
    assert "no other pair learned to compare it with" in found.text()
    assert all(t.direction == 0 for t in found.trends.values())  # one step: no trend


def test_too_few_runs_give_no_trend():
    found = breakeven.trends(study_of([smooth(GOLDEN, 0), smooth((0.1, 0.9), 0)]))
    assert all(math.isnan(t.rho) and t.direction == 0 for t in found.values())


def test_trend_direction_follows_the_holm_adjusted_p():
    assert Trend("sharpness", -0.5, 0.01, 0.04, 24).direction == -1
    assert Trend("sharpness", -0.5, 0.01, 0.06, 24).direction == 0
    assert Trend("sharpness", 0.5, 0.01, 0.01, 24).phrase() == "rises (ρ = +0.50)"
    assert (
        Trend("sharpness", 0.1, 0.6, 1.0, 24).phrase()
        == "shows no clear trend (ρ = +0.10)"
    )


def test_trends_are_holm_corrected_together():
    found = breakeven.trends(study_of(full()))
    adjusted = stats.holm({k: t.p_value for k, t in found.items()})
    assert {k: t.p_adjusted for k, t in found.items()} == pytest.approx(adjusted)
    lines = breakeven.trend_table(study_of(full())).splitlines()
    assert len(lines) == 2 + 4
    assert lines[2].startswith("| gradient variance tr(C)/B | -")


def test_table_rows_count_diverged_unlearned_and_missing_seeds():
    runs = [
        run for run in full() if not (run.pair == (0.1, 0.9) and run.replicate == 2)
    ]  # missing seed
    runs = [
        probed(run.pair, run.replicate, 1, 0.2, 10, acc=0.1)  # at chance
        if run.pair == (0.001, 0.874) and run.replicate == 0
        else run
        for run in runs
    ]
    lines = breakeven.table(study_of(runs)).splitlines()
    assert len(lines) == 2 + 8
    assert lines[2].startswith("| 0.001 | 0.874 | 0.007937 | ")
    assert lines[2].endswith("| 2 of 3 |") and lines[-1].endswith("| 2 of 2 |")
    golden = next(line for line in lines if "**(golden)**" in line)
    step = theory.effective_step(*GOLDEN)
    variance = Estimate.of(1 / (0.01 + step) * (1 + 0.01 * s) for s in range(3))
    assert golden.startswith(
        f"| 0.016 **(golden)** | 0.874 | {step:.4g} | "
        f"{variance.mean:.4g} ± {variance.half:.2g} |"
    )
    share = breakeven.rows(study_of(runs))[4].sharpness_share
    assert f"| {share:.3f} | 0.9000 ± 0.0000 | 3 of 3 |" in golden


def test_grad_top_is_variance_times_conditioning():
    run = probed(GOLDEN, 0, 2.0, 0.25, 10)
    assert breakeven.probe(run, "grad_top") == [1.0, 0.75, 0.5]


def test_printed_lines_fit_the_page():
    study = study_of(full())
    for text in (breakeven.design(study), breakeven.threshold_lines()):
        assert all(len(line) <= 88 for line in text.splitlines())
    assert "the last at step 112" in breakeven.design(study)
    assert "(common): h_max = 380.0" in breakeven.threshold_lines()


def test_curves_figure_has_four_panels_with_a_line_per_pair():
    fig = breakeven.curves_figure(study_of(full()))
    assert len(fig.axes) == 4 and fig.get_size_inches()[0] <= 10
    for ax in fig.axes[:3]:
        assert len(ax.lines) == 8
    sharpness = fig.axes[3]
    assert sharpness.get_yscale() == "log" and fig.axes[2].get_yscale() == "linear"
    dotted = [line for line in sharpness.lines if line.get_linestyle() == ":"]
    assert len(sharpness.lines) == 8 + len(dotted) and dotted  # h_max lines in view
    assert list(fig.axes[0].lines[0].get_xdata()) == STEPS
    assert fig.legends and len(fig.legends[0].get_texts()) == 8
    assert any("breakeven, protocol quick" in t.get_text() for t in fig.texts)
    plt.close(fig)


# --- at matched training loss ---------------------------------------------------------


def staged(pair, seed, end, at_loss, conditioning=(0.2, 0.2)) -> Run:
    """A run whose probe-batch loss reaches 0.5 at its middle probe and stays there,
    so it is matched at that probe: variance and sharpness are ``at_loss`` there and
    ``end`` at the last probe; ``conditioning`` is (matched, end), with a little
    jitter by seed."""
    run = make_run(*pair, replicate=seed, test_acc=0.9, epochs=1, probe_every=56)
    jitter = 1 + 0.01 * seed
    probes = {
        "step": STEPS,
        "grad_variance": [1.0, at_loss * jitter, end * jitter],
        "grad_conditioning": [
            0.2,
            conditioning[0] + 0.001 * seed,
            conditioning[1] + 0.001 * seed,
        ],
        "sharpness": [1.0, at_loss * jitter, end * jitter],
        "probe_loss": [2.0, 0.5, 0.5],
    }
    return dataclasses.replace(run, probes=probes)


def staged_study(end, at_loss, conditioning=lambda step: (0.2, 0.2)) -> report.Study:
    """Every pair and seed, ``end`` and ``at_loss`` functions of the effective step."""
    return study_of(
        [
            staged(pair, seed, end(step), at_loss(step), conditioning(step))
            for pair in PAIRS
            for seed in range(3)
            for step in [theory.effective_step(*pair)]
        ]
    )


FALLS, RISES = (lambda step: 1 / (0.01 + step)), (lambda step: 1 + step)


def test_match_level_is_the_highest_loss_every_run_reaches():
    runs = [
        dataclasses.replace(
            smooth(GOLDEN, 0), probes={**smooth(GOLDEN, 0).probes, "probe_loss": losses}
        )
        for losses in ([2.0, 1.0, 0.5], [2.0, 0.3, 0.4], [2.0, 0.8, 0.7])
    ]
    assert breakeven.match_level(runs) == 0.7
    assert [breakeven.matched_probe(run, 0.7) for run in runs] == [2, 1, 2]


def test_matched_trends_use_each_runs_matched_probe():
    study = staged_study(FALLS, RISES)
    found = breakeven.matched(study)
    assert found.level == 0.5 and found.steps == (56, 56)
    assert found.losses == (0.5, 0.5)
    assert found.trends["grad_variance"].direction == 1 and not found.noise_falls
    lines = breakeven.matched_lines(study).splitlines()
    assert lines == [
        "matched at probe-batch loss <= 0.500, the highest every run reaches;",
        "  matched probes at steps 56 to 56, losses 0.500 to 0.500",
    ]
    table = breakeven.matched_table(study).splitlines()
    assert len(table) == 2 + 4
    assert table[2].startswith("| gradient variance tr(C)/B | +")


def test_a_fall_in_noise_that_does_not_survive_matching():
    found = verdict(staged_study(FALLS, RISES))
    assert found.noise_falls and not found.matched.noise_falls
    text = found.text()
    assert "These runs end the epoch at very different stages" in text
    assert "Compared instead at matched training loss" in text
    assert "the fall in gradient noise does not survive the matching" in text


def test_a_fall_in_noise_that_only_matching_shows():
    found = verdict(staged_study(RISES, FALLS))
    assert not found.noise_falls and found.matched.noise_falls
    assert "which the end of the epoch hid" in found.text()


def test_noise_that_falls_neither_way():
    found = verdict(staged_study(RISES, RISES))
    assert "at matched loss too the gradient noise does not clearly fall" in (
        found.text()
    )


def test_a_fall_that_survives_and_spread_in_both_or_only_at_matched_loss():
    both = verdict(staged_study(FALLS, FALLS, lambda step: (1 / (1 + step),) * 2))
    assert both.spread_improves and both.matched.spread_improves
    text = both.text()
    assert "the fall in gradient noise with the step survives the matching" in text
    assert "and so does the better spread." in text
    only = verdict(staged_study(FALLS, FALLS, lambda step: (1 / (1 + step), 0.2)))
    assert not only.spread_improves and only.matched.spread_improves
    assert "and the noise is better spread at matched loss." in only.text()
    neither = verdict(staged_study(FALLS, FALLS))
    assert "and the noise is not better spread." in neither.text()


def test_without_probed_losses_the_runs_are_not_matched():
    runs = [
        dataclasses.replace(
            run, probes={k: v for k, v in run.probes.items() if k != "probe_loss"}
        )
        for run in full()
    ]
    without = study_of(runs)
    found = verdict(without)
    assert found.matched is None
    assert "Their records hold no loss at each probe" in found.text()
    assert breakeven.matched_lines(without).startswith("no probe-batch loss")
    assert breakeven.matched_table(without).startswith("The records hold no")
    assert breakeven.matched(study_of(full()[:2])) is None  # too few runs


def test_the_stages_and_the_golden_neighbours_accuracies_are_stated():
    runs = [
        dataclasses.replace(run, metrics={**run.metrics, "test_acc": [acc]})
        for run in full()
        for acc in [
            0.8
            + 0.1 * (theory.effective_step(*run.pair) > 0.05)
            + (0.05 if run.pair == GOLDEN else 0)
        ]
    ]
    found = verdict(study_of(runs))
    assert found.stages == pytest.approx((0.8, 0.95))
    text = found.text()
    assert "(mean test accuracy from 0.8000 to 0.9500)" in text
    assert "mean test accuracy after the epoch is within 0.0500 of its own" in text
