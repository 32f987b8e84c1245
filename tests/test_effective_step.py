"""Checks of golden.derivations.effective_step: the heavy ball, its continuous-time
limit and the finite-eta correction, each against an independent computation."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import EQUATION_LABEL
from golden import theory
from golden.derivations import effective_step
from golden.derivations.momentum import alpha, eta, quadratic_gradient
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
    path = effective_step.heavy_ball(
        quadratic_gradient([1.0, 10.0]), np.array([1.0, 2.0]), 0.1, 0.5, 3
    )
    np.testing.assert_allclose(
        np.array(path), [[1, 2], [0.9, 0.0], [0.76, -1.0], [0.614, -0.5]], atol=1e-14
    )


def test_without_momentum_the_heavy_ball_is_gradient_descent():
    path = effective_step.heavy_ball(
        quadratic_gradient([2.0]), np.array([1.0]), 0.1, 0.0, 5
    )
    np.testing.assert_allclose(np.array(path)[:, 0], 0.8 ** np.arange(6), rtol=1e-14)


# -------------------------------------------------------------- the exact rescaled flow


@FEW
@given(momenta, curvatures, st.floats(0.0, 2.0), st.floats(0.0, 2.0))
def test_rescaled_flow_solves_its_equation(alpha_value, h_value, t_value, s_value):
    x0 = np.array([1.5, -2.0])
    hs = np.array([h_value, 1.0])
    at = lambda times: effective_step.rescaled_flow(hs, x0, alpha_value, times)  # noqa: E731
    np.testing.assert_allclose(at([0.0])[0], x0)
    # semigroup: flowing for s from x(t) gives x(t + s)
    later = effective_step.rescaled_flow(hs, at([t_value])[0], alpha_value, [s_value])[
        0
    ]
    np.testing.assert_allclose(
        later, at([t_value + s_value])[0], rtol=1e-12, atol=1e-300
    )
    # central difference of the solution against the right-hand side -H x / (1 - alpha)
    step = 1e-6
    derivative = (at([t_value + step])[0] - at([t_value - step])[0]) / (2 * step)
    np.testing.assert_allclose(
        derivative, -hs * at([t_value])[0] / (1 - alpha_value), rtol=1e-5, atol=1e-12
    )


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
    corrected = float(
        effective_step.corrected_rates([h_value], eta_value, alpha_value)[0]
    )
    correction = corrected - leading
    assert correction > 0
    # the first-order term accounts for the departure from the leading rate, to
    # O(epsilon)
    assert abs((exact - leading) / correction - 1) < 3 * epsilon
    # the float routine of the module agrees with the 40-digit root
    assert float(
        effective_step.effective_rate(eta_value, alpha_value, h_value)
    ) == pytest.approx(exact, rel=1e-10)


@pytest.mark.parametrize("eta_value", [1e-9, 1e-7])
def test_effective_rate_keeps_its_digits_at_tiny_steps(eta_value):
    # log(r_+) of a root within 1e-8 of one: a plain log loses about half the digits
    exact = _rate_mp(eta_value, 0.9, 1.0)
    assert float(effective_step.effective_rate(eta_value, 0.9, 1.0)) == pytest.approx(
        exact, rel=1e-11
    )


def test_effective_rate_is_nan_where_the_roots_are_complex():
    # (1 - sqrt(0.9))^2 is about 0.0026 < eta h = 0.01: complex roots, no real slow mode
    assert math.isnan(float(effective_step.effective_rate(0.01, 0.9, 1.0)))


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
    c0, c1 = effective_step.rate_expansion(2)
    h = effective_step.h
    assert (c0.subs(alpha, 0) - h).equals(0)
    assert (c1.subs(alpha, 0) - h**2 / 2).equals(0)


def test_startup_delay_does_not_depend_on_curvature():
    assert effective_step.h not in effective_step.startup_delay().free_symbols
    assert (effective_step.startup_delay() - eta * alpha / (1 - alpha)).equals(0)


# ----------------------------------------------------------- identities and the chapter
# Every identity is proved and spot-checked, and found next to its equation, in
# tests/test_theory.py.


def test_importing_the_module_derives_nothing():
    code = (
        "import golden.derivations.effective_step as d, golden.identities as i; "
        "print(d.rate_expansion.cache_info().currsize, "
        "'golden.derivations.effective_step' in i.IDENTITIES.pending())"
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
        effective_step.rate_expansion(2)[1],
        effective_step.h**2 / (1 - alpha) ** 3,
        "none",
        ranges=effective_step.SAMPLING,
    )
    assert wrong.largest_numeric_gap() > 1e-3


def test_the_chapter_labels_only_its_own_identities():
    labels = set(EQUATION_LABEL.findall(CHAPTER.read_text()))
    assert all(label.startswith("elr-") for label in labels)
    assert labels == set(IDENTITIES.of_module("golden.derivations.effective_step"))


def test_no_golden_number_is_typed():
    typed = {
        f"{theory.ALPHA:.3f}",
        f"{theory.ETA:.3f}",
        f"{theory.ETA:.4f}",
        f"{1 - theory.ALPHA:.3f}",
        f"{float(theory.golden_ratio()):.3f}",
        f"{1 / float(theory.golden_ratio()):.3f}",
    }
    golden = REPO / "golden"
    modules = golden / "dynamics.py", golden / "derivations" / "effective_step.py"
    tests = Path(__file__), Path(__file__).with_name("test_dynamics.py")
    for path in (CHAPTER, *modules, *tests):
        text = path.read_text()
        found = [number for number in typed if number in text]
        assert not found, f"{path.name} types {found}"
