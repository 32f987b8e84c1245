"""Checks of golden.studies.effective_lr: the theory figures and tables (from
golden.dynamics, or from small synthetic studies), every branch of the findings, and the
grid part on synthetic runs: diverged runs, runs at chance accuracy (kept in the means),
missing seeds, the spline fit and every branch of the answer."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest

from factories import make_run
from golden import dynamics, experiments, plots, report, theory
from golden.protocols import protocol
from golden.studies import effective_lr as elr

GOLDEN, COMMON = experiments.GOLDEN_PAIR, experiments.COMMON_PAIR
PAIRS = experiments.grid_pairs()


@pytest.fixture(autouse=True)
def style():
    plots.use_style()
    yield
    plt.close("all")


def stamps(fig) -> list[str]:
    return [t.get_text() for t in fig.texts if t.get_text().startswith("mode: ")]


# --- the quadratic --------------------------------------------------------------------


def test_trajectories_figure_has_three_paths_and_the_flow_per_momentum():
    fig = elr.trajectories_figure()
    assert len(fig.axes) == 2 and fig.get_size_inches()[0] <= 10
    for ax, (name, momentum) in zip(fig.axes, elr.MOMENTA.items()):
        labels = [line.get_label() for line in ax.get_lines()]
        assert labels == [f"heavy ball, η = {value:g}" for value in elr.SHOWN_ETAS] + [
            "rescaled gradient flow"
        ]
        flow = ax.get_lines()[-1]
        assert flow.get_xdata()[0] == dynamics.START[0]
        assert flow.get_xdata()[-1] == pytest.approx(
            math.exp(-dynamics.HORIZON / (1 - momentum))
        )
    assert fig.axes[0].get_title() == f"golden α = {theory.ALPHA:.4g}"
    assert fig.axes[1].get_title() == "α = 0.9"
    assert stamps(fig) == ["mode: " + stamps(fig)[0][6:]]
    assert "start (1, 1)" in stamps(fig)[0]


def synthetic_convergence(name, alpha, slope_modified=2.0) -> elr.Convergence:
    etas = np.array([1e-3 / 2**j for j in range(6)])
    errors = {
        c: etas ** (slope_modified if c == "modified flow, t0 ≤ t ≤ T" else 1.0)
        for c in dynamics.COMPARISONS
    }
    fitted = np.array([False, False, True, True, True, True])
    orders = {
        c: dynamics.convergence_order(etas[fitted], e[fitted])
        for c, e in errors.items()
    }
    return elr.Convergence(name, alpha, etas, fitted, errors, orders)


def synthetic_studies(slope_modified=2.0) -> dict[str, elr.Convergence]:
    return {
        name: synthetic_convergence(name, alpha, slope_modified)
        for name, alpha in elr.MOMENTA.items()
    }


def test_orders_table_has_one_row_per_comparison_and_names_the_fitted_counts():
    text = elr.orders_table(synthetic_studies())
    lines = text.splitlines()
    assert lines[0] == (
        "| error of the heavy ball against | order, golden α | order, α = 0.9 |"
    )
    assert lines[2] == "| rescaled flow, 0 ≤ t ≤ T | 1.000 | 1.000 |"
    assert lines[5] == "| modified flow, t0 ≤ t ≤ T | 2.000 | 2.000 |"
    assert "the 4 smallest η for golden α, the 4 smallest η for α = 0.9" in lines[-1]


def test_convergence_figure_draws_three_comparisons_the_misfits_and_two_slopes():
    fig = elr.convergence_figure(synthetic_studies())
    assert len(fig.axes) == 2 and fig.get_size_inches()[0] <= 10
    for ax in fig.axes:
        lines = ax.get_lines()
        assert len(lines) == 3 * 2 + 2  # each comparison and its misfits; two slopes
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend == [
            "rescaled flow, 0 ≤ t ≤ T: order 1.00",
            "rescaled flow, t0 ≤ t ≤ T: order 1.00",
            "modified flow, t0 ≤ t ≤ T: order 2.00",
        ]
        assert len(lines[1].get_xdata()) == 2  # the two η outside the fit
        assert [t.get_text() for t in ax.texts] == ["slope 1", "slope 2"]
    assert "reference slopes" in stamps(fig)[0]


def test_orders_hold_when_every_comparison_has_its_expected_order():
    found = elr.orders(synthetic_studies())
    assert found.holds and not found.departures()
    text = found.text()
    assert "in proportion to $\\eta$ (orders 1.00, 1.00)" in text
    assert "$\\eta^2$ (orders 2.00, 2.00)" in text


def test_orders_name_each_departure():
    found = elr.orders(synthetic_studies(slope_modified=1.5))
    assert not found.holds
    assert [(name, c) for name, c, _ in found.departures()] == [
        ("golden α", "modified flow, t0 ≤ t ≤ T"),
        ("α = 0.9", "modified flow, t0 ≤ t ≤ T"),
    ]
    assert "do **not** all match" in found.text()
    assert "modified flow, t0 ≤ t ≤ T for α = 0.9: 1.50, expected 2" in found.text()


def test_convergence_studies_wrap_dynamics_once_per_momentum(monkeypatch):
    calls = []

    def study(alpha):
        calls.append(alpha)
        c = synthetic_convergence("", alpha)
        return {
            "alpha": alpha,
            "etas": c.etas,
            "fitted": c.fitted,
            "errors": c.errors,
            "orders": c.orders,
        }

    monkeypatch.setattr(dynamics, "convergence_study", study)
    elr._convergence.cache_clear()
    try:
        first, again = elr.convergence_studies(), elr.convergence_studies()
    finally:
        elr._convergence.cache_clear()
    assert calls == list(elr.MOMENTA.values())  # computed once
    assert again["golden α"] is first["golden α"]
    assert first["α = 0.9"].alpha == 0.9 and first["α = 0.9"].name == "α = 0.9"
    assert elr.orders(first).holds


# --- the slow rate --------------------------------------------------------------------


def test_rate_table_and_check_on_the_exact_rates():
    rows = elr.rate_rows()
    assert [(r.name, r.eta) for r in rows[:3]] == [
        ("golden α", e) for e in elr.RATE_ETAS
    ]
    assert rows[3].leading == pytest.approx(elr.STEEP / (1 - 0.9))
    table = elr.rate_table(rows).splitlines()
    assert len(table) == 2 + 6
    assert table[-1].startswith("| α = 0.9 | 1e-06 | 100.095181 | 100.000000 |")
    found = elr.rate_check(rows)
    assert found.factor == pytest.approx(10)
    assert found.tends_to_one and found.proportional
    assert found.text().startswith("The last column tends to 1") and "next term" in (
        found.text()
    )


def rows_with(ratios) -> list[elr.RateRow]:
    """Rate rows of one momentum whose last column is ``ratios`` (η = 1e-4, ...)."""
    return [
        elr.RateRow("m", 10.0 ** -(4 + i), 1 + ratio, 1.0, 2.0)
        for i, ratio in enumerate(ratios)
    ]


def test_rate_check_that_does_not_tend_to_one():
    found = elr.rate_check(rows_with([1.2, 1.1, 1.05]))
    assert not found.tends_to_one
    assert "does **not** tend to 1" in found.text()


def test_rate_check_that_tends_to_one_but_not_in_proportion():
    found = elr.rate_check(rows_with([1.1, 1.05, 1.005]))  # shrinks by 2, then 10
    assert found.tends_to_one and not found.proportional
    assert found.shrink == pytest.approx((2.0, 10.0))
    assert (
        "does not shrink in proportion" in found.text()
        and "(successive ratios 2, 10)" in (found.text())
    )


def test_pairs_table_puts_both_pairs_on_the_rule():
    lines = elr.pairs_table().splitlines()
    assert len(lines) == 4
    golden, common = (line.split(" | ") for line in lines[2:])
    assert golden[4] == common[4] == "1.0000"  # η/(1−α)² = 1 at both pairs
    assert common[1:3] == ["0.01", "0.9"] and common[5] == "9.00"


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
    assert found.parameters_step == 7 and found.parameters_both == 10
    assert found.r2_step > 0.9 and not found.alpha_matters
    golden = found.named["golden pair"]
    assert golden.pair == GOLDEN and golden.step == pytest.approx(
        theory.effective_step(*GOLDEN)
    )
    assert golden.accuracy - golden.predicted == pytest.approx(golden.residual)
    assert golden.z == pytest.approx(golden.residual / golden.spread)
    spread, near = elr.local_spread(list(found.points), golden.step, exclude=GOLDEN)
    assert golden.spread == spread and len(near) == elr.NEIGHBOURS
    assert golden.near == (min(p["acc"] for p in near), max(p["acc"] for p in near))
    assert all(0 < acc < 1 for acc in found.curve_acc)
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


def answer(runs) -> elr.Answer:
    return elr.answer(study_of(runs))


def test_answer_not_special_with_the_common_pair_on_the_curve():
    found = answer(grid())
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


def test_answer_not_special_with_the_common_pair_off_the_curve():
    found = answer(grid(shift={COMMON: -0.04}))
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
    found = answer(grid(shift={GOLDEN: 0.03, **far_down}))
    assert found.finding == "above"
    assert found.golden.residual < 2 * found.measures.sigma  # not off by the old rule
    assert found.golden.spread < found.measures.sigma / 2


def test_answer_not_special_with_the_common_pair_above_the_curve():
    found = answer(grid(shift={COMMON: 0.04}))
    assert found.finding == "on" and found.common.off and found.common.z > 2
    assert "although the common pair itself lies above that curve." in found.text()


def test_answer_without_the_common_pair():
    found = answer(grid(diverged={(COMMON, 2)}))
    assert found.finding == "on" and found.common is None
    text = found.text()
    assert "common pair" not in text.split("**not special**")[0]  # not placed
    assert "the curve that the effective step draws. " in text
    assert "although the common pair" not in text and "sits on the same" not in text


def test_answer_special_above_the_curve():
    found = answer(grid(shift={GOLDEN: 0.04}))
    assert found.finding == "above" and found.golden.z > 2
    assert "The golden pair is therefore **special** here" in found.text()
    assert "above the curve (+" in found.text()


def test_answer_worse_below_the_curve():
    found = answer(grid(shift={GOLDEN: -0.04}))
    assert found.finding == "below"
    assert "does **worse** than its effective step predicts" in found.text()


def test_answer_undetectable_where_the_curve_leaves_no_room_above_it():
    found = answer(grid(top=0.99))
    golden = found.golden
    assert found.finding == "undetectable" and not golden.detectable
    assert golden.predicted + elr.OFF_CURVE * golden.spread >= 1
    text = found.text()
    assert f"The curve predicts {golden.predicted:.4f} for the golden pair" in text
    assert "the design cannot tell whether the golden pair is special" in text
    worse = answer(grid(top=0.99, shift={GOLDEN: -0.04}))
    assert worse.finding == "below"  # below the curve is still seen


# --- the peak -------------------------------------------------------------------------


def flat_points(steps, acc=0.98, residual=0.001):
    return [
        {"pair": (s, 0.0), "step": s, "acc": acc, "fitted": acc, "loo_residual": r}
        for s, r in zip(steps, [residual, -residual] * len(steps))
    ]


def test_local_spread_is_the_rms_of_the_nearest_pairs():
    points = flat_points([10.0**k for k in range(-5, 1)] * 2, residual=0.002)
    points[0]["loo_residual"] = 5.0  # far from the step asked about
    spread, near = elr.local_spread(points, 1.0)
    assert spread == pytest.approx(0.002) and len(near) == elr.NEIGHBOURS
    assert all(p["step"] >= 1e-4 for p in near)
    spread, near = elr.local_spread(points, 1.0, exclude=(1.0, 0.0))
    assert all(p["pair"] != (1.0, 0.0) for p in near)


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


def test_answer_without_the_golden_pair():
    found = answer(grid(diverged={(GOLDEN, 1)}))
    assert found.finding == "missing" and found.golden is None
    assert (
        "The golden pair had a diverged seed and is not on the curve." in found.text()
    )
    assert found.measures.n == len(PAIRS) - 1


def test_answer_when_the_momentum_matters():
    found = answer(grid(alpha_effect=0.2, top=0.75))  # accuracies stay below 1
    assert found.measures.alpha_matters
    assert found.measures.f_p < elr.F_LEVEL and found.measures.gain > elr.ALPHA_GAIN
    text = found.text()
    assert "α carries real information beyond η/(1−α)" in text
    steps = 2 * -(-2048 // 64)
    assert (
        f"these runs have {steps} steps" in text and "(up to 12 on this grid)" in text
    )


def test_figures_are_registered():
    registered = {n for n, r in plots.FIGURES.items() if r.module == elr.__name__}
    assert registered == {
        "elr_trajectories",
        "elr_convergence",
        "elr_grid_effective_step",
    }
