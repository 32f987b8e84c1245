"""Checks of golden.dynamics: the heavy ball, its continuous-time limit, the finite-eta
correction and the effective-step measures, each against an independent computation."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import mpmath
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from conftest import EQUATION_LABEL
from golden import dynamics, theory
from golden.derivations.momentum import alpha, eta
from golden.identities import IDENTITIES, Identity

REPO = Path(__file__).resolve().parent.parent
CHAPTER = REPO / "chapters" / "effective_lr.md"
FEW = settings(max_examples=25, deadline=None)

momenta = st.floats(0.05, 0.95)
curvatures = st.floats(0.1, 10.0)


# ----------------------------------------------------------------- the heavy ball


def test_heavy_ball_against_steps_computed_by_hand():
    # f = (x1^2 + 10 x2^2)/2 from (1, 2), eta = 0.1, alpha = 0.5, started at rest:
    # x1 = x0 - 0.1 (1, 20)                          = (0.9, 0.0)
    # x2 = (0.9, 0) - 0.1 (0.9, 0) + 0.5 (-0.1, -2)   = (0.76, -1.0)
    # x3 = (0.76, -1) - 0.1 (0.76, -10) + 0.5 (-0.14, -1) = (0.614, -0.5)
    path = dynamics.heavy_ball(
        dynamics.quadratic_gradient([1.0, 10.0]), np.array([1.0, 2.0]), 0.1, 0.5, 3
    )
    np.testing.assert_allclose(
        np.array(path), [[1, 2], [0.9, 0.0], [0.76, -1.0], [0.614, -0.5]], atol=1e-14
    )


def test_without_momentum_the_heavy_ball_is_gradient_descent():
    path = dynamics.heavy_ball(
        dynamics.quadratic_gradient([2.0]), np.array([1.0]), 0.1, 0.0, 5
    )
    np.testing.assert_allclose(np.array(path)[:, 0], 0.8 ** np.arange(6), rtol=1e-14)


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
        dynamics.heavy_ball(
            dynamics.quadratic_gradient([h1, h2]), x0, eta_value, alpha_value, steps
        )
    )
    fast = dynamics.heavy_ball_quadratic([h1, h2], x0, eta_value, alpha_value, steps)
    np.testing.assert_allclose(fast, loop, rtol=1e-9, atol=1e-12)


# -------------------------------------------------------------- the exact rescaled flow


@FEW
@given(momenta, curvatures, st.floats(0.0, 2.0), st.floats(0.0, 2.0))
def test_rescaled_flow_solves_its_equation(alpha_value, h_value, t_value, s_value):
    x0 = np.array([1.5, -2.0])
    hs = np.array([h_value, 1.0])
    at = lambda times: dynamics.rescaled_flow(hs, x0, alpha_value, times)  # noqa: E731
    np.testing.assert_allclose(at([0.0])[0], x0)
    # semigroup: flowing for s from x(t) gives x(t + s)
    later = dynamics.rescaled_flow(hs, at([t_value])[0], alpha_value, [s_value])[0]
    np.testing.assert_allclose(
        later, at([t_value + s_value])[0], rtol=1e-12, atol=1e-300
    )
    # central difference of the solution against the right-hand side -H x / (1 - alpha)
    step = 1e-6
    derivative = (at([t_value + step])[0] - at([t_value - step])[0]) / (2 * step)
    np.testing.assert_allclose(
        derivative, -hs * at([t_value])[0] / (1 - alpha_value), rtol=1e-5, atol=1e-12
    )


# ----------------------------------------------------------------- measured orders


def test_convergence_order_recovers_a_known_power():
    etas = np.array([1e-3, 5e-4, 2.5e-4])
    assert dynamics.convergence_order(etas, 3 * etas**2) == pytest.approx(2.0)
    assert dynamics.convergence_order(etas, 7 * etas) == pytest.approx(1.0)


@pytest.mark.parametrize("alpha_value", [theory.ALPHA, 0.9])
def test_heavy_ball_converges_to_the_rescaled_flow_at_first_order(alpha_value):
    etas = [1e-4 / 2**j for j in range(6)]
    study = dynamics.convergence_study(alpha_value, etas)
    orders = study["orders"]
    assert 0.85 <= orders["rescaled flow, 0 ≤ t ≤ T"] <= 1.1
    assert 0.95 <= orders["rescaled flow, t0 ≤ t ≤ T"] <= 1.05
    # the initial layer is first order
    assert 0.9 <= orders["modified flow, 0 ≤ t ≤ T"] <= 1.1
    assert 1.85 <= orders["modified flow, t0 ≤ t ≤ T"] <= 2.1
    # and the correction helps: far smaller errors after the layer
    assert np.all(
        study["errors"]["modified flow, t0 ≤ t ≤ T"]
        < 0.1 * study["errors"]["rescaled flow, t0 ≤ t ≤ T"]
    )


def test_convergence_study_refuses_too_few_small_steps():
    with pytest.raises(ValueError, match="small-step regime"):
        dynamics.convergence_study(0.9, [1e-2, 5e-3, 1e-4])


# -------------------------------------------- the SymPy expansion against numeric roots


def _slow_root_mp(eta_value, alpha_value, h_value):
    """The root of r^2 - (1 + alpha - eta h) r + alpha nearest 1 (mpmath, 40 digits)."""
    with mpmath.workdps(40):
        roots = mpmath.polyroots(
            [
                1,
                -(1 + mpmath.mpf(alpha_value) - mpmath.mpf(eta_value) * h_value),
                mpmath.mpf(alpha_value),
            ],
            maxsteps=200,
            extraprec=80,
        )
        return max(roots, key=lambda root: mpmath.re(root))


def _rate_mp(eta_value, alpha_value, h_value):
    with mpmath.workdps(40):
        return float(
            -mpmath.log(mpmath.re(_slow_root_mp(eta_value, alpha_value, h_value)))
            / eta_value
        )


@FEW
@given(momenta, curvatures, st.sampled_from([1e-2, 1e-3]))
def test_rate_expansion_against_the_exact_slow_root(alpha_value, h_value, epsilon):
    # expansion parameter eta h / (1 - alpha)^2 = epsilon
    eta_value = epsilon * (1 - alpha_value) ** 2 / h_value
    exact = _rate_mp(eta_value, alpha_value, h_value)
    leading = h_value / (1 - alpha_value)
    corrected = float(dynamics.corrected_rates([h_value], eta_value, alpha_value)[0])
    correction = corrected - leading
    assert correction > 0
    # the first-order term accounts for the departure from the leading rate, to
    # O(epsilon)
    assert abs((exact - leading) / correction - 1) < 3 * epsilon
    # the float routine of the module agrees with the 40-digit root
    assert float(
        dynamics.effective_rate(eta_value, alpha_value, h_value)
    ) == pytest.approx(exact, rel=1e-10)


@pytest.mark.parametrize("eta_value", [1e-9, 1e-7])
def test_effective_rate_keeps_its_digits_at_tiny_steps(eta_value):
    # log(r_+) of a root within 1e-8 of one: a plain log loses about half the digits
    exact = _rate_mp(eta_value, 0.9, 1.0)
    assert float(dynamics.effective_rate(eta_value, 0.9, 1.0)) == pytest.approx(
        exact, rel=1e-11
    )


def test_effective_rate_is_nan_where_the_roots_are_complex():
    # (1 - sqrt(0.9))^2 is about 0.0026 < eta h = 0.01: complex roots, no real slow mode
    assert math.isnan(float(dynamics.effective_rate(0.01, 0.9, 1.0)))


@FEW
@given(momenta, curvatures)
def test_startup_delay_against_the_exact_slow_amplitude(alpha_value, h_value):
    eta_value = 1e-3 * (1 - alpha_value) ** 2 / h_value
    slow = _slow_root_mp(eta_value, alpha_value, h_value)
    with mpmath.workdps(40):
        fast = alpha_value / slow  # Vieta: r_+ r_- = alpha
        amplitude = float(mpmath.re(((1 - eta_value * h_value) - fast) / (slow - fast)))
    delay = eta_value * alpha_value / (1 - alpha_value)
    predicted = math.exp(h_value / (1 - alpha_value) * delay)
    assert amplitude - 1 == pytest.approx(predicted - 1, rel=1e-2)


def test_rate_expansion_without_momentum_is_that_of_gradient_descent():
    c0, c1 = dynamics.rate_expansion(2)
    h = dynamics.h
    assert (c0.subs(alpha, 0) - h).equals(0)
    assert (c1.subs(alpha, 0) - h**2 / 2).equals(0)


def test_startup_delay_does_not_depend_on_curvature():
    assert dynamics.h not in dynamics.startup_delay().free_symbols
    assert (dynamics.startup_delay() - eta * alpha / (1 - alpha)).equals(0)


# ----------------------------------------------------------- identities and the chapter
# Every identity is proved and spot-checked, and found next to its equation, in
# tests/test_theory.py.


def test_importing_the_module_derives_nothing():
    code = (
        "import golden.dynamics as d, golden.identities as i; "
        "print(d.rate_expansion.cache_info().currsize, "
        "'golden.dynamics' in i.IDENTITIES.pending())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    assert out.stdout.split() == ["0", "True"]


def test_the_sampling_of_small_steps_catches_a_wrong_coefficient():
    wrong = Identity(
        "wrong",
        dynamics.rate_expansion(2)[1],
        dynamics.h**2 / (1 - alpha) ** 3,
        "none",
        ranges=dynamics.SAMPLING,
    )
    assert wrong.largest_numeric_gap() > 1e-3


def test_the_chapter_labels_only_its_own_identities():
    labels = set(EQUATION_LABEL.findall(CHAPTER.read_text()))
    assert all(label.startswith("elr-") for label in labels)
    assert labels == set(IDENTITIES.of_module("golden.dynamics"))


def test_no_golden_number_is_typed():
    typed = {
        f"{theory.ALPHA:.3f}",
        f"{theory.ETA:.3f}",
        f"{theory.ETA:.4f}",
        f"{1 - theory.ALPHA:.3f}",
        f"{float(theory.golden_ratio()):.3f}",
        f"{1 / float(theory.golden_ratio()):.3f}",
    }
    for path in (CHAPTER, REPO / "golden" / "dynamics.py", Path(__file__)):
        text = path.read_text()
        found = [number for number in typed if number in text]
        assert not found, f"{path.name} types {found}"


# ---------------------------------------------------- the effective step as a predictor

GOLDEN = (round(theory.ETA, 3), round(theory.ALPHA, 3))
LRS = (1e-4, 1e-3, 1e-2, GOLDEN[0], 0.1, 0.2)
MOMENTA = (0.0, 0.2, 0.4, 0.6, 0.8, 0.85, GOLDEN[1], 0.9, 0.925)


def _rows(accuracy, diverged=()):
    """Rows as predictive_measures reads them: two seeds at accuracy(pair) -+ 0.001."""
    rows = []
    for lr in LRS:
        for m in MOMENTA:
            pair = (lr, m)
            if pair in diverged:
                rows.append(
                    {
                        "pair": pair,
                        "test_acc": [],
                        "test_acc_mean": math.nan,
                        "test_acc_ci": math.nan,
                        "diverged": 2,
                    }
                )
                continue
            centre = accuracy(pair)
            rows.append(
                {
                    "pair": pair,
                    "test_acc": [centre - 0.001, centre + 0.001],
                    "test_acc_mean": centre,
                    "test_acc_ci": 0.0127,
                    "diverged": 0,
                }
            )
    return rows


def _curve(pair):
    return 0.1 + 0.8 / (
        1 + math.exp(-2 * (math.log10(theory.effective_step(*pair)) + 1.5))
    )


def test_accuracy_that_depends_on_the_effective_step_only():
    m = dynamics.predictive_measures(_rows(_curve), {"golden": GOLDEN})
    assert m["n"] == len(LRS) * len(MOMENTA)
    assert m["spearman"] > 0.99
    assert m["r2_step_loo"] > 0.98
    assert m["f_p"] > 0.01 or m["r2_both_loo"] - m["r2_step_loo"] < 0.01
    assert abs(m["named"]["golden"]["z"]) < 2


def test_accuracy_that_depends_on_momentum_as_well():
    m = dynamics.predictive_measures(_rows(lambda pair: _curve(pair) + 0.3 * pair[1]))
    assert m["f_p"] < 1e-3
    assert m["r2_both_loo"] > m["r2_step_loo"] + 0.05


def test_a_pair_above_the_curve_is_found():
    bumped = lambda pair: _curve(pair) + (0.3 if pair == GOLDEN else 0.0)  # noqa: E731
    m = dynamics.predictive_measures(
        _rows(bumped), {"golden": GOLDEN, "common": (0.01, 0.9)}
    )
    assert m["named"]["golden"]["z"] > 2
    assert m["named"]["golden"]["residual"] == pytest.approx(0.3, abs=0.1)
    assert abs(m["named"]["common"]["z"]) < 2


def test_diverged_pairs_are_left_out_and_counted():
    diverged = {(0.2, 0.925), (0.2, 0.9)}
    rows = _rows(_curve, diverged)
    partly = next(row for row in rows if row["pair"] == (0.1, 0.925))
    # one seed diverged, one left
    partly.update(test_acc=[0.05], test_acc_mean=0.05, diverged=1)
    m = dynamics.predictive_measures(
        rows, {"gone": (0.2, 0.925), "partly": (0.1, 0.925)}
    )
    assert m["n"] == len(LRS) * len(MOMENTA) - 3 and m["excluded"] == 3
    assert "gone" not in m["named"] and "partly" not in m["named"]


def test_models_reproduce_accuracies_they_can_represent_exactly():
    centre = np.mean(
        [math.log10(theory.effective_step(lr, m)) for lr in LRS for m in MOMENTA]
    )

    def spline_part(pair):
        u = math.log10(theory.effective_step(*pair)) - centre
        return 0.5 + 0.1 * u - 0.02 * u**2 + 0.003 * u**3

    m = dynamics.predictive_measures(_rows(spline_part))
    assert m["r2_step"] == pytest.approx(1, abs=1e-9) and m[
        "r2_step_loo"
    ] == pytest.approx(1, abs=1e-9)

    def with_alpha(pair):
        u = math.log10(theory.effective_step(*pair)) - centre
        return (
            spline_part(pair) + 0.2 * pair[1] - 0.1 * pair[1] ** 2 + 0.05 * pair[1] * u
        )

    m = dynamics.predictive_measures(_rows(with_alpha))
    assert m["r2_both"] == pytest.approx(1, abs=1e-9)
    assert m["r2_step"] < 0.999


def test_leave_one_out_residuals_equal_refits_without_each_point():
    rng = np.random.default_rng(0)
    design = np.column_stack([np.ones(15), rng.normal(size=15), rng.normal(size=15)])
    y = design @ [1.0, 2.0, -1.0] + rng.normal(scale=0.3, size=15)
    fit = dynamics._least_squares(design, y)
    for i in range(15):
        keep = np.arange(15) != i
        coefficients, *_ = np.linalg.lstsq(design[keep], y[keep], rcond=None)
        assert fit["loo_residuals"][i] == pytest.approx(
            y[i] - design[i] @ coefficients, rel=1e-9
        )


def test_a_logit_fit_stays_inside_zero_and_one():
    """A curve whose identity spline overshoots 1 near a steep top: the logit fit's
    curve and fitted values stay inside (0, 1), its residuals are in accuracy."""

    def steep(pair):
        u = math.log10(theory.effective_step(*pair))
        return 0.1 + 0.8895 / (1 + math.exp(-12 * (u + 2))) - (0.3 if u > 0.15 else 0)

    plain = dynamics.predictive_measures(_rows(steep))
    logit = dynamics.predictive_measures(_rows(steep), {"golden": GOLDEN}, link="logit")
    assert plain["link"] == "identity" and logit["link"] == "logit"
    assert max(plain["curve_acc"]) > 1
    assert 0 < min(logit["curve_acc"]) and max(logit["curve_acc"]) < 1
    points = logit["points"]
    assert len(points) == logit["n"] and all(0 < p["fitted"] < 1 for p in points)
    golden = next(p for p in points if p["pair"] == GOLDEN)
    assert logit["named"]["golden"]["residual"] == golden["loo_residual"]
    assert golden["acc"] == pytest.approx(steep(GOLDEN))


def test_an_unknown_link_is_refused():
    with pytest.raises(ValueError, match="unknown link 'probit'"):
        dynamics.predictive_measures(_rows(_curve), link="probit")
