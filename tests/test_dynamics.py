"""Checks of golden.dynamics: the fast heavy ball, the measured orders of convergence,
and the theory figures and tables of the effective-step chapter (from the measured
study, or from small synthetic ones), with every branch of their findings."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from factories import stamps
from golden import dynamics, plots, theory
from golden.derivations.effective_step import heavy_ball
from golden.derivations.momentum import quadratic_gradient

FEW = settings(max_examples=25, deadline=None)
curvatures = st.floats(0.1, 10.0)


pytestmark = pytest.mark.usefixtures("book_style")


# ----------------------------------------------------------------- the heavy ball


@FEW
@given(
    st.floats(1e-4, 0.5),
    st.floats(0.0, 0.99),
    curvatures,
    curvatures,
    st.integers(1, 60),
)
def test_fast_quadratic_path_equals_the_plain_loop(
    eta_value, alpha_value, h1, h2, steps
):
    # stable, so the values stay comparable
    assume(eta_value * max(h1, h2) < 2 * (1 + alpha_value))
    x0 = np.array([1.0, -0.5])
    loop = np.array(
        heavy_ball(quadratic_gradient([h1, h2]), x0, eta_value, alpha_value, steps)
    )
    fast = dynamics.heavy_ball_quadratic([h1, h2], x0, eta_value, alpha_value, steps)
    np.testing.assert_allclose(fast, loop, rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------- measured orders


def test_convergence_order_recovers_a_known_power():
    etas = np.array([1e-3, 5e-4, 2.5e-4])
    assert dynamics.convergence_order(etas, 3 * etas**2) == pytest.approx(2.0)
    assert dynamics.convergence_order(etas, 7 * etas) == pytest.approx(1.0)


@pytest.mark.parametrize("alpha_value", [theory.ALPHA, 0.9])
def test_heavy_ball_converges_to_the_rescaled_flow_at_first_order(alpha_value):
    etas = [1e-4 / 2**j for j in range(6)]
    study = dynamics.convergence_study(alpha_value, etas)
    orders = study.orders
    assert 0.85 <= orders["rescaled flow, 0 ≤ t ≤ T"] <= 1.1
    assert 0.95 <= orders["rescaled flow, t0 ≤ t ≤ T"] <= 1.05
    # the initial layer is first order
    assert 0.9 <= orders["modified flow, 0 ≤ t ≤ T"] <= 1.1
    assert 1.85 <= orders["modified flow, t0 ≤ t ≤ T"] <= 2.1
    # and the correction helps: far smaller errors after the layer
    assert np.all(
        study.errors["modified flow, t0 ≤ t ≤ T"]
        < 0.1 * study.errors["rescaled flow, t0 ≤ t ≤ T"]
    )


def test_convergence_study_refuses_too_few_small_steps():
    with pytest.raises(ValueError, match="small-step regime"):
        dynamics.convergence_study(0.9, [1e-2, 5e-3, 1e-4])


# -------------------------------------------------------- the chapter's figures


def test_trajectories_figure_has_three_paths_and_the_flow_per_momentum():
    fig = dynamics.trajectories_figure()
    assert len(fig.axes) == 2 and fig.get_size_inches()[0] <= 10
    for ax, (name, momentum) in zip(fig.axes, dynamics.MOMENTA.items()):
        labels = [line.get_label() for line in ax.get_lines()]
        assert labels == [
            f"heavy ball, η = {value:g}" for value in dynamics.SHOWN_ETAS
        ] + ["rescaled gradient flow"]
        flow = ax.get_lines()[-1]
        assert flow.get_xdata()[0] == dynamics.START[0]
        assert flow.get_xdata()[-1] == pytest.approx(
            math.exp(-dynamics.HORIZON / (1 - momentum))
        )
    assert fig.axes[0].get_title() == f"golden α = {theory.ALPHA:.4g}"
    assert fig.axes[1].get_title() == "α = 0.9"
    assert stamps(fig) == ["mode: " + stamps(fig)[0][6:]]
    assert "start (1, 1)" in stamps(fig)[0]


def synthetic_convergence(alpha, slope_modified=2.0) -> dynamics.Convergence:
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
    return dynamics.Convergence(alpha, etas, fitted, errors, orders)


def synthetic_studies(slope_modified=2.0) -> dict[str, dynamics.Convergence]:
    return {
        name: synthetic_convergence(alpha, slope_modified)
        for name, alpha in dynamics.MOMENTA.items()
    }


def test_orders_table_has_one_row_per_comparison_and_names_the_fitted_counts():
    text = dynamics.orders_table(synthetic_studies())
    lines = text.splitlines()
    assert lines[0] == (
        "| error of the heavy ball against | order, golden α | order, α = 0.9 |"
    )
    assert lines[2] == "| rescaled flow, 0 ≤ t ≤ T | 1.000 | 1.000 |"
    assert lines[5] == "| modified flow, t0 ≤ t ≤ T | 2.000 | 2.000 |"
    assert "the 4 smallest η for golden α, the 4 smallest η for α = 0.9" in lines[-1]


def test_convergence_figure_draws_three_comparisons_the_misfits_and_two_slopes():
    fig = dynamics.convergence_figure(synthetic_studies())
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
    found = dynamics.orders(synthetic_studies())
    assert found.holds and not found.departures()
    text = found.text()
    assert "in proportion to $\\eta$ (orders 1.00, 1.00)" in text
    assert "$\\eta^2$ (orders 2.00, 2.00)" in text


def test_orders_name_each_departure():
    found = dynamics.orders(synthetic_studies(slope_modified=1.5))
    assert not found.holds
    assert [(name, c) for name, c, _ in found.departures()] == [
        ("golden α", "modified flow, t0 ≤ t ≤ T"),
        ("α = 0.9", "modified flow, t0 ≤ t ≤ T"),
    ]
    assert "do **not** all match" in found.text()
    assert "modified flow, t0 ≤ t ≤ T for α = 0.9: 1.50, expected 2" in found.text()


def test_convergence_studies_run_once_per_momentum(monkeypatch):
    calls = []

    def study(alpha):
        calls.append(alpha)
        return synthetic_convergence(alpha)

    monkeypatch.setattr(dynamics, "convergence_study", study)
    dynamics._convergence.cache_clear()
    try:
        first, again = dynamics.convergence_studies(), dynamics.convergence_studies()
    finally:
        dynamics._convergence.cache_clear()
    assert calls == list(dynamics.MOMENTA.values())  # computed once
    assert again["golden α"] is first["golden α"]
    assert first["α = 0.9"].alpha == 0.9
    assert dynamics.orders(first).holds


# ---------------------------------------------------------------- the slow rate


def test_rate_table_and_check_on_the_exact_rates():
    rows = dynamics.rate_rows()
    assert [(r.name, r.eta) for r in rows[:3]] == [
        ("golden α", e) for e in dynamics.RATE_ETAS
    ]
    assert rows[3].leading == pytest.approx(dynamics.STEEP / (1 - 0.9))
    table = dynamics.rate_table(rows).splitlines()
    assert len(table) == 2 + 6
    assert table[-1].startswith("| α = 0.9 | 1e-06 | 100.095181 | 100.000000 |")
    found = dynamics.rate_check(rows)
    assert found.factor == pytest.approx(10)
    assert found.tends_to_one and found.proportional
    assert found.text().startswith("The last column tends to 1") and "next term" in (
        found.text()
    )


def rows_with(ratios) -> list[dynamics.RateRow]:
    """Rate rows of one momentum whose last column is ``ratios`` (η = 1e-4, ...)."""
    return [
        dynamics.RateRow("m", 10.0 ** -(4 + i), 1 + ratio, 1.0, 2.0)
        for i, ratio in enumerate(ratios)
    ]


def test_rate_check_that_does_not_tend_to_one():
    found = dynamics.rate_check(rows_with([1.2, 1.1, 1.05]))
    assert not found.tends_to_one
    assert "does **not** tend to 1" in found.text()


def test_rate_check_that_tends_to_one_but_not_in_proportion():
    found = dynamics.rate_check(rows_with([1.1, 1.05, 1.005]))  # shrinks by 2, then 10
    assert found.tends_to_one and not found.proportional
    assert found.shrink == pytest.approx((2.0, 10.0))
    assert (
        "does not shrink in proportion" in found.text()
        and "(successive ratios 2, 10)" in (found.text())
    )


def test_pairs_table_puts_both_pairs_on_the_rule():
    lines = dynamics.pairs_table().splitlines()
    assert len(lines) == 4
    golden, common = (line.split(" | ") for line in lines[2:])
    assert golden[4] == common[4] == "1.0000"  # η/(1−α)² = 1 at both pairs
    assert common[1:3] == ["0.01", "0.9"] and common[5] == "9.00"


def test_figures_are_registered():
    registered = {n for n, r in plots.FIGURES.items() if r.module == dynamics.__name__}
    assert registered == {"elr_trajectories", "elr_convergence"}
