"""Checks of golden.stats.spline_fit: a curve in log10 x alone, and with a second
variable, scored in and out of sample, on accuracies built from the effective step."""

from __future__ import annotations

import math

import numpy as np
import pytest

from golden import stats, theory

GOLDEN = (round(theory.ETA, 3), round(theory.ALPHA, 3))
COMMON = theory.COMMON_PAIR
LRS = (1e-4, 1e-3, 1e-2, GOLDEN[0], 0.1, 0.2)
MOMENTA = (0.0, 0.2, 0.4, 0.6, 0.8, 0.85, GOLDEN[1], 0.9, 0.925)
PAIRS = [(lr, m) for lr in LRS for m in MOMENTA]


def fit(accuracy, link: str = "identity", pairs=PAIRS) -> stats.SplineFit:
    """The spline fit of accuracy(pair) against the effective step, with α as z."""
    return stats.spline_fit(
        [theory.effective_step(*pair) for pair in pairs],
        [accuracy(pair) for pair in pairs],
        [pair[1] for pair in pairs],
        link=link,
    )


def z(found: stats.SplineFit, pair) -> float:
    """A pair's leave-one-out residual in residual standard deviations."""
    return found.loo_residuals[PAIRS.index(pair)] / found.sigma


def _curve(pair):
    return 0.1 + 0.8 / (
        1 + math.exp(-2 * (math.log10(theory.effective_step(*pair)) + 1.5))
    )


def test_accuracy_that_depends_on_the_effective_step_only():
    found = fit(_curve)
    assert found.n == len(PAIRS)
    assert found.spearman > 0.99
    assert found.alone.r2_loo > 0.98
    assert found.f_p > 0.01 or found.extended.r2_loo - found.alone.r2_loo < 0.01
    assert abs(z(found, GOLDEN)) < 2


def test_accuracy_that_depends_on_momentum_as_well():
    found = fit(lambda pair: _curve(pair) + 0.3 * pair[1])
    assert found.f_p < 1e-3
    assert found.extended.r2_loo > found.alone.r2_loo + 0.05


def test_a_pair_above_the_curve_is_found():
    found = fit(lambda pair: _curve(pair) + (0.3 if pair == GOLDEN else 0.0))
    assert z(found, GOLDEN) > 2
    assert found.loo_residuals[PAIRS.index(GOLDEN)] == pytest.approx(0.3, abs=0.1)
    assert abs(z(found, COMMON)) < 2


def test_models_reproduce_values_they_can_represent_exactly():
    centre = np.mean([math.log10(theory.effective_step(*pair)) for pair in PAIRS])

    def spline_part(pair):
        u = math.log10(theory.effective_step(*pair)) - centre
        return 0.5 + 0.1 * u - 0.02 * u**2 + 0.003 * u**3

    found = fit(spline_part)
    assert found.alone.r2 == pytest.approx(1, abs=1e-9)
    assert found.alone.r2_loo == pytest.approx(1, abs=1e-9)

    def with_alpha(pair):
        u = math.log10(theory.effective_step(*pair)) - centre
        return (
            spline_part(pair) + 0.2 * pair[1] - 0.1 * pair[1] ** 2 + 0.05 * pair[1] * u
        )

    found = fit(with_alpha)
    assert found.extended.r2 == pytest.approx(1, abs=1e-9)
    assert found.alone.r2 < 0.999


def test_leave_one_out_residuals_equal_refits_without_each_point():
    rng = np.random.default_rng(0)
    design = np.column_stack([np.ones(15), rng.normal(size=15), rng.normal(size=15)])
    y = design @ [1.0, 2.0, -1.0] + rng.normal(scale=0.3, size=15)
    solution = stats._least_squares(design, y)
    for i in range(15):
        keep = np.arange(15) != i
        coefficients, *_ = np.linalg.lstsq(design[keep], y[keep], rcond=None)
        assert solution.loo_residuals[i] == pytest.approx(
            y[i] - design[i] @ coefficients, rel=1e-9
        )


def test_a_logit_fit_stays_inside_zero_and_one():
    """A curve whose identity spline overshoots 1 near a steep top: the logit fit's
    curve and fitted values stay inside (0, 1), its residuals are in accuracy."""

    def steep(pair):
        u = math.log10(theory.effective_step(*pair))
        return 0.1 + 0.8895 / (1 + math.exp(-12 * (u + 2))) - (0.3 if u > 0.15 else 0)

    plain = fit(steep)
    logit = fit(steep, link="logit")
    assert plain.link == "identity" and logit.link == "logit"
    assert max(plain.curve_y) > 1
    assert 0 < min(logit.curve_y) and max(logit.curve_y) < 1
    assert all(0 < value < 1 for value in logit.alone.fitted)
    i = PAIRS.index(GOLDEN)
    assert logit.y[i] == pytest.approx(steep(GOLDEN))
    assert logit.loo_residuals[i] == logit.y[i] - logit.alone.loo_predicted[i]


def test_too_few_points_and_an_unknown_link_are_refused():
    with pytest.raises(ValueError, match="only 19 points: too few"):
        fit(_curve, pairs=PAIRS[:19])
    with pytest.raises(ValueError, match="unknown link 'probit'"):
        fit(_curve, link="probit")
