"""Checks of golden.studies.effective_lr on synthetic grids: diverged runs, runs at
chance accuracy (kept in the means), missing seeds, the spline fit, the local spread,
the peak and every branch of the verdict."""

from __future__ import annotations

import math

import numpy as np
import pytest

from factories import make_run, stamps
from golden import experiments, plots, report, theory
from golden.protocols import protocol
from golden.studies import effective_lr as elr

GOLDEN, COMMON = experiments.GOLDEN_PAIR, experiments.COMMON_PAIR
PAIRS = experiments.grid_pairs()


pytestmark = pytest.mark.usefixtures("book_style")


# --- the grid -------------------------------------------------------------------------


def accuracy(pair, seed=0, alpha_effect=0.0, top=0.95) -> float:
    """A smooth function of log10 of the effective step that peaks at ``top``, a
    deterministic wobble per pair and a small one per seed, and optionally a term in
    α."""
    u = math.log10(theory.effective_step(*pair))
    wobble = 0.01 * math.sin(37 * pair[0] * 100 + 11 * pair[1])
    return top - 0.05 * (u + 0.5) ** 2 + wobble + 0.002 * seed + alpha_effect * pair[1]


def grid(shift=None, diverged=(), unlearned=(), missing=(), alpha_effect=0.0, top=0.95):
    """Three seeds of every grid pair. ``shift`` moves pairs' accuracies, ``diverged``
    and ``unlearned`` are (pair, seed) whose runs diverged or ended at chance, and
    ``missing`` (pair, seed) that were never stored."""
    runs = []
    for pair in PAIRS:
        for seed in range(3):
            if (pair, seed) in missing:
                continue
            acc = accuracy(pair, seed, alpha_effect, top) + (shift or {}).get(pair, 0)
            if (pair, seed) in unlearned:
                acc = 0.1
            runs.append(
                make_run(
                    *pair,
                    replicate=seed,
                    test_acc=[0.5, acc],
                    epochs=2,
                    diverged=(pair, seed) in diverged,
                )
            )
    return runs


def study_of(runs) -> report.Study:
    return report.Study("grid", protocol("quick"), tuple(runs))


def test_points_count_diverged_unlearned_and_missing_runs():
    lr_big = (0.2, 0.925)
    runs = grid(
        diverged={(GOLDEN, 0)} | {(COMMON, s) for s in range(3)},
        unlearned={(lr_big, 1)},
        missing={((0.0001, 0.0), 2)},
    )
    points = {p.pair: p for p in elr.points(runs)}
    assert len(points) == len(PAIRS)
    golden = points[GOLDEN]
    assert (golden.runs, golden.diverged, golden.unlearned) == (3, 1, 0)
    assert golden.accuracy.n == 2 and not golden.all_diverged
    assert golden.accuracy.mean == pytest.approx(
        (accuracy(GOLDEN, 1) + accuracy(GOLDEN, 2)) / 2
    )
    assert points[COMMON].all_diverged and math.isnan(points[COMMON].accuracy.mean)
    big = points[lr_big]
    assert big.unlearned == 1 and big.accuracy.n == 3  # at chance, yet in the mean
    assert big.accuracy.mean == pytest.approx(
        (accuracy(lr_big, 0) + 0.1 + accuracy(lr_big, 2)) / 3
    )
    short = points[(0.0001, 0.0)]
    assert (short.runs, short.accuracy.n) == (2, 2)
    assert short.step == pytest.approx(0.0001) and short.alpha == 0.0


def test_run_summary_counts_pairs_and_steps():
    runs = grid(diverged={(GOLDEN, 0), (COMMON, 1)}, unlearned={((0.2, 0.9), 0)})
    study = study_of(runs)
    text = elr.run_summary(study)
    steps = 2 * -(-2048 // 64)  # two epochs of the quick training split, batch 64
    assert elr.steps_per_run(study) == steps
    assert text.splitlines() == [
        f"{len(runs)} runs of {steps} SGD steps each; 2 pairs with at least one "
        "diverged seed",
        "1 pairs with a run at chance accuracy (kept in their means)",
    ]
    assert all(len(line) <= 88 for line in text.splitlines())


def test_measures_leave_out_pairs_with_a_diverged_run_and_place_the_named_pairs():
    found = elr.measures(elr.points(grid(diverged={((0.2, 0.9), 0)})))
    assert (found.n, found.excluded) == (59, 1)
    assert found.fit.alone.parameters == 7 and found.fit.extended.parameters == 10
    assert found.fit.alone.r2 > 0.9 and not found.alpha_matters
    golden = found.named["golden pair"]
    assert golden.pair == GOLDEN and golden.step == pytest.approx(
        theory.effective_step(*GOLDEN)
    )
    assert golden.accuracy - golden.predicted == pytest.approx(golden.residual)
    assert golden.z == pytest.approx(golden.residual / golden.spread)
    spread, near = elr.local_spread(found.points, golden.step, exclude=GOLDEN)
    assert golden.spread == spread and len(near) == elr.NEIGHBOURS
    assert golden.near == (
        min(p.accuracy for p in near),
        max(p.accuracy for p in near),
    )
    assert all(0 < acc < 1 for acc in found.fit.curve_y)
    table = elr.measures_table(found).splitlines()
    assert table[2] == "| pairs used (no seed diverged) | 59 of 60 |"
    assert table[-2].startswith("| golden pair (η = 0.016, α = 0.874, η/(1−α) = 0.127)")
    assert table[-1].startswith("| common pair (η = 0.01, α = 0.9, η/(1−α) = 0.100)")


def test_measures_refuse_too_few_pairs():
    few = [run for run in grid() if run.config.lr >= 0.1]  # 20 pairs, 10 diverged below
    diverged = [
        make_run(*run.pair, replicate=run.replicate, diverged=True)
        if run.config.momentum < 0.85
        else run
        for run in few
    ]
    with pytest.raises(ValueError, match="too few"):
        elr.measures(elr.points(diverged))


def test_grid_figure_marks_diverged_hollow_and_named_pairs():
    runs = grid(diverged={((0.0001, 0.0), 0)} | {((0.2, 0.925), s) for s in range(3)})
    fig = elr.grid_step_figure(study_of(runs))
    ax, colorbar = fig.axes
    assert colorbar.get_ylabel() == "momentum α" and fig.get_size_inches()[0] <= 10
    crosses = [line for line in ax.get_lines() if line.get_marker() == "x"]
    assert len(crosses) == 1 and crosses[0].get_ydata()[0] == 0.02
    assert (
        len(ax.containers) == len(PAIRS) - 1
    )  # an error bar per pair not all diverged
    hollow = [c for c in ax.containers if c.lines[0].get_markerfacecolor() == "white"]
    assert len(hollow) == 1
    assert [line.get_marker() for line in ax.get_lines()[-2:]] == ["*", "s"]
    assert [t.get_text() for t in ax.texts] == [
        "golden pair η=0.016, α=0.874",
        "common pair η=0.01, α=0.9",
    ]
    assert ax.get_legend().get_texts()[0].get_text() == elr.SPLINE_LABEL
    assert "logit" in elr.SPLINE_LABEL
    assert (
        "grid, protocol quick" in stamps(fig)[0] and "95% t-intervals" in stamps(fig)[0]
    )


def verdict_of(runs) -> elr.Verdict:
    return elr.verdict(study_of(runs))


def test_verdict_not_special_with_the_common_pair_on_the_curve():
    found = verdict_of(grid())
    assert found.finding == "on" and not found.common.off
    assert found.golden.detectable
    text = found.text()
    assert (
        "**not special**" in text
        and ", and (0.01, 0.9) sits on the same curve." in text
    )
    assert "the momentum adds little" in text and "start-up delay" not in text
    assert "local residual spreads" in text
    assert text.endswith(f"(grid, protocol quick [{protocol('quick').digest()}])")


def test_verdict_not_special_with_the_common_pair_off_the_curve():
    found = verdict_of(grid(shift={COMMON: -0.04}))
    assert found.finding == "on" and found.common.off and found.common.z < -2
    assert "although the common pair itself lies below that curve." in found.text()
    residual = abs(found.common.residual)
    assert f"the common pair {residual:.4f} below the curve" in found.text()


def test_a_pair_near_the_top_is_judged_against_the_spread_near_it():
    """A lift of 0.03 at the top of the curve is several spreads of the pairs near it,
    though a fraction of the residual deviation of the whole grid, whose pairs far down
    the curve scatter more: the old rule could not have seen it."""
    accuracy_of = {p.pair: p.accuracy.mean for p in elr.points(grid())}
    far_down = {
        pair: 0.1 * math.sin(7 * i)
        for i, pair in enumerate(PAIRS)
        if accuracy_of[pair] < 0.6
    }
    found = verdict_of(grid(shift={GOLDEN: 0.03, **far_down}))
    assert found.finding == "above"
    assert (
        found.golden.residual < 2 * found.measures.fit.sigma
    )  # not off by the old rule
    assert found.golden.spread < found.measures.fit.sigma / 2


def test_verdict_not_special_with_the_common_pair_above_the_curve():
    found = verdict_of(grid(shift={COMMON: 0.04}))
    assert found.finding == "on" and found.common.off and found.common.z > 2
    assert "although the common pair itself lies above that curve." in found.text()


def test_verdict_without_the_common_pair():
    found = verdict_of(grid(diverged={(COMMON, 2)}))
    assert found.finding == "on" and found.common is None
    text = found.text()
    assert "common pair" not in text.split("**not special**")[0]  # not placed
    assert "the curve that the effective step draws. " in text
    assert "although the common pair" not in text and "sits on the same" not in text


def test_verdict_special_above_the_curve():
    found = verdict_of(grid(shift={GOLDEN: 0.04}))
    assert found.finding == "above" and found.golden.z > 2
    assert "The golden pair is therefore **special** here" in found.text()
    assert "above the curve (+" in found.text()


def test_verdict_worse_below_the_curve():
    found = verdict_of(grid(shift={GOLDEN: -0.04}))
    assert found.finding == "below"
    assert "does **worse** than its effective step predicts" in found.text()


def test_verdict_undetectable_where_the_curve_leaves_no_room_above_it():
    found = verdict_of(grid(top=0.99))
    golden = found.golden
    assert found.finding == "undetectable" and not golden.detectable
    assert golden.predicted + elr.OFF_CURVE * golden.spread >= 1
    text = found.text()
    assert f"The curve predicts {golden.predicted:.4f} for the golden pair" in text
    assert "the design cannot tell whether the golden pair is special" in text
    worse = verdict_of(grid(top=0.99, shift={GOLDEN: -0.04}))
    assert worse.finding == "below"  # below the curve is still seen


# --- the peak -------------------------------------------------------------------------


def flat_points(steps, acc=0.98, residual=0.001) -> list[elr.Fitted]:
    return [
        elr.Fitted((s, 0.0), s, acc, r)
        for s, r in zip(steps, [residual, -residual] * len(steps))
    ]


def test_local_spread_is_the_rms_of_the_nearest_pairs():
    points = flat_points([10.0**k for k in range(-5, 1)] * 2, residual=0.002)
    points[0] = elr.Fitted(points[0].pair, points[0].step, 0.98, 5.0)  # far away
    spread, near = elr.local_spread(points, 1.0)
    assert spread == pytest.approx(0.002) and len(near) == elr.NEIGHBOURS
    assert all(p.step >= 1e-4 for p in near)
    spread, near = elr.local_spread(points, 1.0, exclude=(1.0, 0.0))
    assert all(p.pair != (1.0, 0.0) for p in near)


def test_a_peak_that_falls_off_on_both_sides_survives():
    steps = np.logspace(-3, 0, 301)
    curve = 0.99 - 0.05 * (np.log10(steps) + 1.5) ** 2
    found = elr.peak(steps, curve, flat_points(np.logspace(-3, 0, 12), acc=0.989))
    assert found.interior and found.supported and found.survives
    assert found.step == pytest.approx(10**-1.5, rel=0.03)
    assert found.low < found.step < found.high and found.contains(found.step)
    sentence = elr._peak_sentence(found, found.step, 1.0)
    assert sentence.startswith(f"The curve peaks near η/(1−α) = {found.step:.2g}")
    assert f"the golden pair ({found.step:.3f}) inside" in sentence
    assert "the common pair (1.000) outside that band." in sentence
    assert elr.peak_text(found).startswith("a peak at η/(1−α) = ")


def test_no_peak_where_the_curve_rises_to_the_edge():
    steps = np.logspace(-3, 0, 301)
    curve = 0.5 + 0.49 * (np.log10(steps) + 3) / 3
    found = elr.peak(steps, curve, flat_points(np.logspace(-3, 0, 12), acc=0.99))
    assert not found.interior and not found.survives and found.high == steps[-1]
    sentence = elr._peak_sentence(found, 0.127, 0.1)
    assert sentence.startswith("No peak of the curve survives: it stays within 2 ")
    assert ", up to the edge of the grid;" in sentence
    assert "the band reaches the edge of the grid" in elr.peak_text(found)


def test_no_peak_where_the_curve_overshoots_every_pair():
    steps = np.logspace(-3, 0, 301)
    curve = 0.99 - 0.05 * (np.log10(steps) + 1.5) ** 2
    found = elr.peak(steps, curve, flat_points(np.logspace(-3, 0, 12), acc=0.95))
    assert found.interior and not found.supported and not found.survives
    sentence = elr._peak_sentence(found, 0.127, 0.1)
    assert "its maximum lies more than that above every pair's mean (best 0.9500)" in (
        sentence
    )
    assert "no pair comes near it (best 0.9500)" in elr.peak_text(found)


def test_verdict_without_the_golden_pair():
    found = verdict_of(grid(diverged={(GOLDEN, 1)}))
    assert found.finding == "missing" and found.golden is None
    assert (
        "The golden pair had a diverged seed and is not on the curve." in found.text()
    )
    assert found.measures.n == len(PAIRS) - 1


def test_verdict_when_the_momentum_matters():
    found = verdict_of(grid(alpha_effect=0.2, top=0.75))  # accuracies stay below 1
    assert found.measures.alpha_matters
    assert found.measures.fit.f_p < elr.F_LEVEL
    assert found.measures.gain > elr.ALPHA_GAIN
    text = found.text()
    assert "α carries real information beyond η/(1−α)" in text
    steps = 2 * -(-2048 // 64)
    assert (
        f"these runs have {steps} steps" in text and "(up to 12 on this grid)" in text
    )


def test_figures_are_registered():
    registered = {n for n, r in plots.FIGURES.items() if r.module == elr.__name__}
    assert registered == {"elr_grid_effective_step"}
