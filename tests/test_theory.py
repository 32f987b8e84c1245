"""Checks of golden.theory, golden.derivations and the one identity registry of
golden.identities against independent computations."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from conftest import labels_without_their_check
from golden import beyond, identities, theory
from golden.derivations import bayes, loss, momentum
from golden.identities import IDENTITIES, Identity

CHAPTERS = Path(__file__).resolve().parent.parent / "chapters"
GOLDEN_MODULES = Path(theory.__file__).resolve().parent
DERIVATION_CHAPTERS = ["momentum", "bayes", "golden_values", "loss"]
DERIVATION_MODULES = tuple(f"golden.derivations.{name}" for name in DERIVATION_CHAPTERS)
LABEL = re.compile(r"^\$\$\s*\(([\w-]+)\)\s*$", re.MULTILINE)
EQ_REFERENCE = re.compile(r"\{eq\}`([\w-]+)`")

# Plain floats, written independently of SymPy.
FLOAT_P1 = (5**0.5 - 1) / 2
FLOAT_ALPHA = FLOAT_P1 * 2**0.5
FLOAT_ETA = (1 - FLOAT_ALPHA) ** 2


def chapter_text(name: str) -> str:
    return (CHAPTERS / f"{name}.md").read_text()


def labels_in(text: str) -> list[str]:
    return LABEL.findall(text)


# ----------------------------------------------------------------- the golden values


def test_golden_ratio_matches_plain_float():
    assert float(theory.golden_ratio()) == pytest.approx(FLOAT_P1, rel=1e-15)


def test_alpha_and_eta_match_plain_floats():
    assert theory.ALPHA == pytest.approx(FLOAT_ALPHA, rel=1e-14)
    assert theory.ETA == pytest.approx(FLOAT_ETA, rel=1e-12)


def test_four_golden_ratios_are_the_roots_of_both_quadratics():
    values = sorted(float(root) for root in theory.all_golden_ratios())
    expected = sorted([FLOAT_P1, -1 / FLOAT_P1, -FLOAT_P1, 1 / FLOAT_P1])
    assert values == pytest.approx(expected, rel=1e-14)
    for root in theory.golden_ratio_roots():
        assert float(root) ** 2 + float(root) - 1 == pytest.approx(0, abs=1e-14)
    for root in theory.negated_golden_ratio_roots():
        assert float(root) ** 2 - float(root) - 1 == pytest.approx(0, abs=1e-14)


def test_golden_effective_step_is_the_complement_of_alpha():
    assert float(theory.golden_effective_step()) == pytest.approx(
        1 - FLOAT_ALPHA, rel=1e-13
    )
    assert theory.effective_step(theory.ETA, theory.ALPHA) == pytest.approx(
        1 - FLOAT_ALPHA, rel=1e-13
    )


# ------------------------------------------------------------- the identity registry


@pytest.mark.parametrize("name", sorted(IDENTITIES))
def test_identity_holds_symbolically_and_numerically(name):
    identity = IDENTITIES[name]
    assert identity.holds(), identity.residuals()
    assert identity.largest_numeric_gap() < 1e-9


def test_a_false_identity_is_caught():
    golden = theory.golden_ratio()
    wrong = Identity("wrong", golden, -golden, "none")
    assert not wrong.holds()
    assert wrong.largest_numeric_gap() > 1


def test_numeric_check_catches_what_positive_arguments_would_wrongly_prove():
    # sqrt(r^2) = r is "proved" once r is declared positive; r is sampled in (-2, 2).
    risky = Identity(
        "risky", sp.sqrt(momentum.r**2), momentum.r, "r > 0", positive_arguments=True
    )
    assert risky.holds()
    assert risky.largest_numeric_gap() > 0.1


def test_an_identity_samples_its_own_ranges():
    # |r| = r holds for r >= 0 only; r is sampled in (-2, 2) unless an identity says
    anywhere = Identity("anywhere", sp.Abs(momentum.r), momentum.r, "none")
    positive = Identity(
        "positive",
        sp.Abs(momentum.r),
        momentum.r,
        "r > 0",
        ranges={momentum.r: (0.5, 1.5)},
    )
    assert anywhere.largest_numeric_gap() > 0.1
    assert positive.largest_numeric_gap() == 0


@pytest.mark.parametrize(
    "check",
    [identities.check, beyond.check],
    ids=["identities", "beyond"],
)
def test_check_refuses_an_identity_that_does_not_hold(monkeypatch, check):
    wrong = Identity("wrong", momentum.alpha, momentum.eta, "none")
    monkeypatch.setitem(IDENTITIES, "wrong", wrong)
    with pytest.raises(AssertionError):
        check("wrong")


def test_a_label_names_one_identity():
    registered = IDENTITIES["golden-alpha"]
    with pytest.raises(ValueError, match="registered twice"):
        IDENTITIES.add(registered)


def test_every_source_registers_identities_and_every_identity_has_a_source():
    per_module = {module: IDENTITIES.of_module(module) for module in identities.SOURCES}
    assert all(per_module.values())
    assert sorted(name for found in per_module.values() for name in found) == sorted(
        IDENTITIES
    )


IDENTITY_CHAPTERS = {
    "derivations": (DERIVATION_MODULES, DERIVATION_CHAPTERS, "identities", False),
    "effective_step": (
        ("golden.derivations.effective_step",),
        ("effective_lr",),
        "identities",
        True,
    ),
    "beyond": (
        ("golden.beyond",),
        ("breakeven", "mse", "noise", "mutual_info"),
        "beyond",
        True,
    ),
}
"""Modules, the chapters that check their identities, the name those chapters call
``check`` on, and whether those chapters are strict: every labelled equation is an
identity, checked right after it. (The derivation chapters also label steps that are
not identities, and bayes.md checks the links of a chain of forms after the chain.)"""


@pytest.mark.parametrize("group", IDENTITY_CHAPTERS)
def test_every_identity_is_checked_next_to_its_labelled_equation(group):
    modules, chapters, caller, strict = IDENTITY_CHAPTERS[group]
    names = {name for module in modules for name in IDENTITIES.of_module(module)}
    texts = [chapter_text(chapter) for chapter in chapters]
    labels = {label for text in texts for label in labels_in(text)}
    call = re.compile(rf'(?<![\w.]){caller}\.check\("([\w-]+)"\)')
    checked = {name for text in texts for name in call.findall(text)}
    assert names <= labels
    assert names == checked
    if strict:
        assert labels == names
        for text in texts:
            assert labels_without_their_check(text, caller) == []


# ----------------------------------------------------------------- momentum


@pytest.mark.parametrize("steps", range(1, momentum.UNROLLED_STEPS + 1))
def test_eq32_and_torch_rule_give_the_same_weights_symbolically(steps):
    etas = [momentum.eta] * steps
    ours = momentum.momentum_weights(
        etas, momentum.alpha, momentum.free_gradient, momentum.w0
    )
    theirs = momentum.torch_sgd_weights(
        etas, momentum.alpha, momentum.free_gradient, momentum.w0
    )
    assert all(sp.expand(a - b) == 0 for a, b in zip(ours, theirs))


def run_torch_sgd(lrs, grads, momentum: float) -> list[float]:
    """Weights of torch.optim.SGD fed the given gradients, one learning rate a step."""
    torch = pytest.importorskip("torch")
    weight = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([weight], lr=float(lrs[0]), momentum=momentum)
    recorded = [0.0]
    for lr, grad in zip(lrs, grads):
        optimizer.param_groups[0]["lr"] = float(lr)
        weight.grad = torch.tensor([grad], dtype=torch.float64)
        optimizer.step()
        recorded.append(weight.item())
    return recorded


GRADS = np.random.default_rng(0).normal(size=10)


def given_gradient(step_number, weight):
    return GRADS[step_number - 1]


def test_eq32_reproduces_torch_sgd_for_a_constant_learning_rate():
    lrs = [0.05] * len(GRADS)
    expected = momentum.momentum_weights(lrs, 0.9, given_gradient, 0.0)
    assert run_torch_sgd(lrs, GRADS, 0.9) == pytest.approx(
        expected, rel=1e-12, abs=1e-15
    )


def test_torch_rule_reproduces_torch_sgd_under_a_schedule():
    lrs = np.random.default_rng(1).uniform(0.01, 0.2, size=len(GRADS))
    expected = momentum.torch_sgd_weights(lrs, 0.9, given_gradient, 0.0)
    assert run_torch_sgd(lrs, GRADS, 0.9) == pytest.approx(
        expected, rel=1e-12, abs=1e-15
    )
    assert run_torch_sgd(lrs, GRADS, 0.9) != pytest.approx(
        momentum.momentum_weights(lrs, 0.9, given_gradient, 0.0)
    )


def test_a_learning_rate_schedule_breaks_the_equivalence():
    gap = momentum.schedule_gap()
    assert gap != 0
    eta_1, eta_2 = momentum.step_etas[:2]
    assert sp.simplify(gap.subs(eta_2, eta_1)) == 0


def test_effective_step_limit():
    g = sp.Symbol("g", real=True)
    expected = -momentum.eta * g / (1 - momentum.alpha)
    assert sp.simplify(momentum.effective_step_limit() - expected) == 0


def companion_radius(eta_h: float, alpha: float) -> float:
    """Spectral radius of the heavy-ball iteration matrix, computed by numpy
    independently of the roots."""
    companion = np.array([[1 + alpha - eta_h, -alpha], [1.0, 0.0]])
    return float(max(abs(np.linalg.eigvals(companion))))


@settings(deadline=None, max_examples=300)
@given(eta_h=st.floats(-0.5, 5.0), alpha=st.floats(0.0, 1.2))
def test_stability_region_matches_numeric_spectral_radius(eta_h, alpha):
    radius = companion_radius(eta_h, alpha)
    assume(abs(radius - 1) > 1e-6)
    assert bool(momentum.is_stable(eta_h, alpha)) == (radius < 1)
    assert float(momentum.spectral_radius(eta_h, alpha)) == pytest.approx(
        radius, rel=1e-6, abs=1e-9
    )


@settings(deadline=None, max_examples=200)
@given(eta_h=st.floats(-0.5, 5.0), alpha=st.floats(0.0, 1.2))
def test_stability_conditions_are_the_stated_region(eta_h, alpha):
    stated = 0 <= alpha < 1 and 0 < eta_h < 2 * (1 + alpha)
    assert bool(momentum.is_stable(eta_h, alpha)) == stated


@settings(deadline=None, max_examples=200)
@given(alpha=st.floats(0.01, 0.99), position=st.floats(0.0, 1.0))
def test_rate_is_sqrt_alpha_inside_the_complex_band(alpha, position):
    low, high = (1 - math.sqrt(alpha)) ** 2, (1 + math.sqrt(alpha)) ** 2
    eta_h = low + position * (high - low)
    assert companion_radius(eta_h, alpha) == pytest.approx(math.sqrt(alpha), rel=1e-6)


def test_largest_stable_step_and_pair_summary():
    assert sp.simplify(momentum.largest_stable_eta_h() - 2 * (1 + momentum.alpha)) == 0
    summary = momentum.pair_summary(theory.ETA, theory.ALPHA)
    assert summary["effective step"] == pytest.approx(1 - FLOAT_ALPHA)
    assert summary["largest stable h"] == pytest.approx(
        2 * (1 + FLOAT_ALPHA) / FLOAT_ETA
    )
    assert summary["spectral radius at h = 1"] == pytest.approx(
        companion_radius(FLOAT_ETA, FLOAT_ALPHA)
    )


# --------------------------------------------------------- Bayes and the golden ratio


def test_assumptions_leave_one_free_probability():
    solution = bayes.collapse_under_assumptions()
    assert solution == {
        bayes.P_A_given_B: bayes.P_A,
        bayes.P_B: 1 - bayes.P_A,
        bayes.P_B_given_A: 1 - bayes.P_A,
    }


def test_inner_equation_with_exact_bayes_forces_unit_factors():
    (solution,) = bayes.inner_equation_with_bayes()
    assert set(solution.values()) == {1}


def test_swap_step_is_not_an_identity_and_holds_at_one_point_only():
    gap = sp.lambdify(bayes.P_B, bayes.swap_step_gap())
    assert abs(gap(0.5)) > 0.1
    point = float(bayes.swap_step_point())
    assert abs(gap(point)) < 1e-12
    grid = np.linspace(1e-3, 1 - 1e-3, 2001)
    assert np.count_nonzero(np.diff(np.sign(gap(grid)))) == 1
    assert abs(point - FLOAT_P1) > 0.01


def test_first_form_needs_base_equal_to_squared_probability():
    assert bayes.first_form_base() == [bayes.P_B**2]


def test_processes_cross_at_one_for_the_circle_base():
    primal, dual = bayes.process_curves(bayes.CIRCLE_BASE)
    assert primal(math.pi / 4) == pytest.approx(1.0)
    assert dual(math.pi / 4) == pytest.approx(1.0)
    assert primal(0.3) == pytest.approx(dual(math.pi / 2 - 0.3))


def test_the_primal_curve_is_no_probability_past_a_quarter_turn():
    """For the circle base, Eq. (16) exceeds one for every angle past pi/4 and is
    unbounded towards pi/2; for a base above one it is negative."""
    first, top = bayes.primal_above_one()
    assert first == pytest.approx(math.pi / 4, abs=1e-3) and first > math.pi / 4
    assert top == sp.oo
    primal, _ = bayes.process_curves(2)
    assert all(primal(a) < 0 for a in (0.1, math.pi / 4, 1.5))


def test_information_doubles_only_at_the_golden_ratio():
    assert bayes.information_doubling_solutions() == sp.FiniteSet(theory.golden_ratio())
    assert -math.log(1 - FLOAT_P1) == pytest.approx(-2 * math.log(FLOAT_P1))


# ----------------------------------------------------------------- the loss


def test_one_hot_cross_entropy_is_its_kl_divergence():
    terms = loss.one_hot_terms()
    assert terms["entropy"] == 0
    assert (
        terms["KL divergence"]
        == terms["cross-entropy"]
        == -sp.log(loss.outputs[loss.TARGET_CLASS])
    )
    assert loss.vanishing_entropy_term() == 0


def test_squared_error_gradient_vanishes_for_a_confident_mistake():
    limits = loss.saturation_limits()
    assert limits["squared-error gradient"] == sp.zeros(loss.SYMBOLIC_CLASSES, 1)
    assert (
        limits["cross-entropy gradient"]
        == limits["error"]
        != sp.zeros(loss.SYMBOLIC_CLASSES, 1)
    )


# ----------------------------------------------------------------- the chapters


def typed_forms(value: float) -> set[str]:
    """How a constant looks when typed: rounded or cut to three or four decimals."""
    value = abs(value)
    return {f"{value:.{digits}f}" for digits in (3, 4)} | {
        f"{math.floor(value * 10**d) / 10**d:.{d}f}" for d in (3, 4)
    }


def test_no_golden_constant_is_typed_outside_theory():
    derived = [float(root) for root in theory.all_golden_ratios()] + [
        theory.ALPHA,
        theory.ETA,
        1 - theory.ALPHA,
    ]
    typed = re.compile(
        "|".join(
            rf"(?<![\d.]){re.escape(text)}(?!\d)"
            for value in derived
            for text in typed_forms(value)
        )
    )
    # As in the project's hook, a comment may quote a figure the source reported.
    quoted = re.compile(r"#.*(paper|source|reported)")
    modules = [
        *GOLDEN_MODULES.glob("*.py"),
        *(GOLDEN_MODULES / "derivations").glob("*.py"),
    ]
    files = [
        *CHAPTERS.glob("*.md"),
        *(path for path in modules if path.name != "theory.py"),
    ]
    found = [
        f"{path.name}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if typed.search(line) and not quoted.search(line)
    ]
    assert not found


def test_labels_are_unique_across_the_book():
    labels = [
        label for path in CHAPTERS.glob("*.md") for label in labels_in(path.read_text())
    ]
    assert len(labels) == len(set(labels))


def test_equation_index_lists_every_labelled_equation_of_the_book():
    labels = {
        label for path in CHAPTERS.glob("*.md") for label in labels_in(path.read_text())
    }
    derivation = {
        label for name in DERIVATION_CHAPTERS for label in labels_in(chapter_text(name))
    }
    indexed = EQ_REFERENCE.findall(chapter_text("equations"))
    assert len(indexed) == len(set(indexed))
    assert set(indexed) == labels
    assert len(derivation) >= 25


def test_chapters_reference_only_existing_labels():
    labels = {
        label for path in CHAPTERS.glob("*.md") for label in labels_in(path.read_text())
    }
    referenced = {
        ref
        for path in CHAPTERS.glob("*.md")
        for ref in EQ_REFERENCE.findall(path.read_text())
    }
    assert referenced <= labels


# ----------------------------------------------------------------- the flagged steps


def test_the_two_flagged_links_hold_at_different_points():
    first, swap = bayes.chain_agreement_points().values()
    assert float(first) == pytest.approx(0.2736, abs=1e-4)
    assert float(swap) == pytest.approx(0.6359, abs=1e-4)
    # each link holds at one P(B) only: one sign change on (0, 1)
    assert bayes.sign_changes(bayes.log_bayes_at_first_form_base() - 1) == 1
    assert bayes.sign_changes(bayes.swap_step_gap()) == 1
    at_first = bayes.log_bayes_at_first_form_base().subs(bayes.P_B, first)
    assert float(at_first) == pytest.approx(1, abs=1e-12)
    # where (11) and (12) agree, (10) with the base (11) needs is far from one
    assert abs(float(bayes.log_bayes_at_swap_point()) - 1) > 1


def test_log_bayes_at_first_form_base_is_eq10_with_lambda_squared():
    q = 0.3
    expected = (1 - q) / q * math.log(q / (1 - q)) / math.log(q**2)
    value = bayes.log_bayes_at_first_form_base().subs(bayes.P_B, q)
    assert float(value) == pytest.approx(expected, rel=1e-12)


def test_inner_equation_under_the_assumptions_forces_one_half():
    assert bayes.inner_equation_under_assumptions() == sp.FiniteSet(sp.Rational(1, 2))
    first, second = (
        float(f.subs(theory.p, theory.golden_ratio()))
        for f in (
            bayes.first_factor_under_assumptions(),
            bayes.second_factor_under_assumptions(),
        )
    )
    assert first == pytest.approx(1 / FLOAT_P1, rel=1e-14)
    assert second == pytest.approx(FLOAT_P1, rel=1e-14)
    assert first * second == pytest.approx(1, rel=1e-14)
