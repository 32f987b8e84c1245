"""Bayes' rule, information and the golden ratio: Eqs. (1)-(31) of Jaeger (2024).

The chapter chapters/bayes.md displays these expressions and checks the identities
registered here, step by step, flagging the links of the source's chain that are not
identities; :func:`process_figure` draws its figure of the two unit-circle processes.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import sympy as sp

from golden import identities, plots, theory
from golden.identities import register, symbols

P_A, P_B = symbols("P(A) P(B)", 0.05, 0.95, positive=True)
P_A_given_B, P_B_given_A = symbols("P(A|B) P(B|A)", 0.05, 0.95, positive=True)
P_A_and_B = symbols(r"P(A\cap{B})", 0.01, 0.05, positive=True)
lam = symbols("lambda", 0.1, 0.9, positive=True)
phi = symbols("phi", 0.05, 1.5, positive=True)
x = symbols("x", 0.1, 0.9, positive=True)
any_base = symbols("b", 1.5, 9.0, positive=True)
p = theory.p
identities.RANGES[p] = (0.05, 0.95)


def log_base(value, base):
    """log_base(value): the sources write information with a free base lambda."""
    return sp.log(value) / sp.log(base)


# --------------------------------------------------------------------------- Eqs. 1-6

CONDITIONALS = {P_A_given_B: P_A_and_B / P_B, P_B_given_A: P_A_and_B / P_A}
"""The definitions behind Bayes' rule: a conditional is a joint over a marginal."""

FIRST_FACTOR = P_A / P_B
SECOND_FACTOR = P_B_given_A / P_A_given_B

ASSUMPTIONS = {
    "complementary conditionals": sp.Eq(P_B_given_A, 1 - P_A_given_B),
    "complementary marginals": sp.Eq(P_B, 1 - P_A),
    "likelihood equals marginal": sp.Eq(P_B, P_B_given_A),
}
"""The source's three assumptions that remove degrees of freedom from Bayes' rule."""


def collapse_under_assumptions() -> dict[sp.Symbol, sp.Expr]:
    """Solve Eq. (3) with the three assumptions: everything is fixed by P(A)."""
    system = [*ASSUMPTIONS.values(), sp.Eq(FIRST_FACTOR * SECOND_FACTOR, 1)]
    (solution,) = sp.solve(system, [P_B, P_A_given_B, P_B_given_A], dict=True)
    return solution


def inner_equation_with_bayes() -> list[dict]:
    """The two (positive) factors that solve Eq. (3) and the inner equation (5)."""
    first, second = sp.symbols("F_1 F_2", positive=True)
    equations = [sp.Eq(first * second, 1), sp.Eq(first, second)]
    return sp.solve(equations, [first, second], dict=True)


def second_factor_under_assumptions() -> sp.Expr:
    """Eq. (3)'s second factor P(B|A)/P(A|B) once the assumptions leave one
    probability p = P(A|B)."""
    return SECOND_FACTOR.subs(collapse_under_assumptions()).subs(P_A, p)


def first_factor_under_assumptions() -> sp.Expr:
    """Eq. (3)'s first factor P(A)/P(B) under the assumptions, p = P(A) = P(A|B)."""
    return FIRST_FACTOR.subs(collapse_under_assumptions()).subs(P_A, p)


def inner_equation_under_assumptions() -> sp.Set:
    """Every p in (0, 1) where the inner equation (5) holds under the assumptions."""
    inner = sp.Eq(first_factor_under_assumptions(), second_factor_under_assumptions())
    return sp.solveset(inner, p, sp.Interval.open(0, 1))


# --------------------------------------------------------------------------- Eqs. 10-23


def fixed_point_base(value):
    """The base lambda = value^(1/value), for which log_lambda(value) = value."""
    return value ** (1 / value)


LOG_BAYES = FIRST_FACTOR * log_base(SECOND_FACTOR, lam)
"""Right-hand side of Eq. (10): Eq. (3) with a logarithm on its second factor."""

DUAL_LOG_BAYES = log_base(FIRST_FACTOR, lam) * SECOND_FACTOR
"""Right-hand side of Eq. (17): the logarithm on the first factor instead."""


def log_bayes_under_assumptions() -> sp.Expr:
    """Eq. (10)'s right-hand side under the three assumptions: a function of P(A) and
    lambda only."""
    return LOG_BAYES.subs(collapse_under_assumptions())


def primal_forms() -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    """The three forms of P(A|B) in P(B) the source lists on the way to the circle."""
    return (
        (1 - P_B) * log_base(P_B**2, lam),
        P_B * log_base(1 - P_B**2, lam),
        2 * P_B * log_base(sp.sqrt(1 - P_B**2), lam),
    )


def first_form_base() -> list[sp.Expr]:
    """The bases lambda for which the first form holds once the assumptions set
    P(A|B) = 1 - P(B)."""
    first, _, _ = primal_forms()
    return sp.solve(sp.Eq(1 - P_B, first), lam)


def primal_process(angle=phi) -> sp.Expr:
    """Eq. (16): P(A|B) = 2 sin(phi) log_lambda(cos(phi))."""
    return 2 * sp.sin(angle) * log_base(sp.cos(angle), lam)


def dual_process(angle=phi) -> sp.Expr:
    """Eq. (23): P(B) = 2 log_lambda(sin(phi)) cos(phi)."""
    return 2 * log_base(sp.sin(angle), lam) * sp.cos(angle)


def swap_step_gap() -> sp.Expr:
    """First minus second form of primal_forms(), times log(lambda): zero only where
    the step holds."""
    first, second, _ = primal_forms()
    return sp.expand_log(sp.simplify((first - second) * sp.log(lam)), force=True)


def swap_step_point() -> sp.Float:
    """The only P(B) in (0, 1) where the first two forms agree (found numerically)."""
    return sp.nsolve(swap_step_gap(), P_B, sp.Rational(1, 2) + sp.Rational(1, 8))


def log_bayes_at_first_form_base() -> sp.Expr:
    """Eq. (10) under the assumptions, in P(B), with the base that Eq. (11) needs,
    lambda = P(B)^2.

    Eq. (10) and Eq. (11) hold together exactly where this equals one.
    """
    (base,) = first_form_base()
    in_p_b = log_bayes_under_assumptions().subs(P_A, 1 - P_B)
    return sp.simplify(in_p_b.subs(lam, base))


def first_form_point() -> sp.Float:
    """The only P(B) in (0, 1) where Eqs. (10) and (11) hold together (numerically)."""
    return sp.nsolve(log_bayes_at_first_form_base() - 1, P_B, sp.Rational(1, 4))


def sign_changes(expr: sp.Expr, symbol: sp.Symbol = P_B, points: int = 4001) -> int:
    """How often ``expr`` changes sign on a fine grid of (0, 1): each is a crossing."""
    values = sp.lambdify(symbol, expr, "numpy")(np.linspace(1e-4, 1 - 1e-4, points))
    return int(np.count_nonzero(np.diff(np.sign(values))))


def chain_agreement_points() -> dict[str, sp.Float]:
    """The P(B) where each flagged link of Eqs. (10) -> (11) -> (12) holds (two
    different values)."""
    return {
        "Eqs. (10) and (11) hold together at P(B)": first_form_point(),
        "Eqs. (11) and (12) hold together at P(B)": swap_step_point(),
    }


def log_bayes_at_swap_point() -> sp.Float:
    """Eq. (10)'s right-hand side, with lambda = P(B)^2, where Eqs. (11) and (12) agree.

    A value other than one means that no P(B) satisfies all of Eqs. (10) to (12).
    """
    return log_bayes_at_first_form_base().subs(P_B, swap_step_point()).evalf(15)


QUARTER_TURN = sp.pi / 4
CIRCLE_POINT = sp.sqrt(2) / 2
"""sin = cos = 1/sqrt(2) at phi = pi/4, where the source places the inner equation."""

CIRCLE_BASE = fixed_point_base(CIRCLE_POINT)
"""The base for which log_lambda(1/sqrt 2) = 1/sqrt 2: both processes then equal 1 at
phi = pi/4."""


def process_curves(base) -> tuple[Callable, Callable]:
    """Numeric (numpy) versions of Eq. (16) and Eq. (23) for one base lambda."""
    primal = sp.lambdify(phi, primal_process().subs(lam, base), "numpy")
    dual = sp.lambdify(phi, dual_process().subs(lam, base), "numpy")
    return primal, dual


def primal_above_one(base=CIRCLE_BASE, points: int = 4001) -> tuple[float, sp.Expr]:
    """Where Eq. (16) with ``base`` leaves [0, 1], the range of a probability.

    Returns the smallest angle of a grid of ``points`` angles in (0, pi/2) at which the
    curve exceeds one, and its limit as phi -> pi/2 from below (its supremum, since it
    rises monotonically for a base below one).
    """
    primal, _ = process_curves(base)
    angles = np.linspace(1e-4, np.pi / 2 - 1e-4, points)
    above = angles[primal(angles) > 1]
    first = float(above.min()) if above.size else float("nan")
    top = sp.limit(primal_process().subs(lam, base), phi, sp.pi / 2, "-")
    return first, top


# --------------------------------------------------------------------------- Eqs. 24-31


def information_doubling_solutions() -> sp.Set:
    """All p in (0, 1) whose complement carries exactly twice the information of p."""
    doubling = sp.Eq(-sp.log(1 - p), 2 * (-sp.log(p)))
    return sp.solveset(doubling, p, sp.Interval.open(0, 1))


# --------------------------------------------------------------------------- identities


@identities.builds
def _identities() -> None:
    register(
        "bayes-rule",
        P_A_given_B,
        P_A * P_B_given_A / P_B,
        "conditionals defined from the joint; P(A), P(B) > 0",
        given=CONDITIONALS,
    )
    register(
        "bayes-ratio",
        P_A_given_B / P_B_given_A,
        FIRST_FACTOR,
        "as bayes-rule",
        given=CONDITIONALS,
    )
    register(
        "bayes-product",
        FIRST_FACTOR * SECOND_FACTOR,
        sp.Integer(1),
        "as bayes-rule",
        given=CONDITIONALS,
    )
    register(
        "bayes-reciprocal",
        1 / (FIRST_FACTOR * SECOND_FACTOR),
        sp.Integer(1),
        "as bayes-rule",
        given=CONDITIONALS,
    )
    register("log-base-lemma", log_base(x, fixed_point_base(x)), x, "x > 0, x != 1")
    register(
        "lemma-construction",
        any_base ** (1 / (x / log_base(x, any_base))),
        fixed_point_base(x),
        "x > 0, x != 1; any base b > 0, b != 1",
        positive_arguments=True,
    )
    register(
        "log-bayes-fixed-point",
        LOG_BAYES.subs(lam, fixed_point_base(SECOND_FACTOR)),
        FIRST_FACTOR * SECOND_FACTOR,
        "lambda chosen by the lemma for the second factor, which is not 1",
        positive_arguments=True,
    )
    register(
        "dual-log-bayes-fixed-point",
        DUAL_LOG_BAYES.subs(lam, fixed_point_base(FIRST_FACTOR)),
        FIRST_FACTOR * SECOND_FACTOR,
        "lambda chosen by the lemma for the first factor, which is not 1",
        positive_arguments=True,
    )
    _, second, third = primal_forms()
    register("primal-sqrt", second, third, "0 < P(B) < 1", positive_arguments=True)
    register(
        "primal-circle",
        third.subs(P_B, sp.sin(phi)),
        primal_process(),
        "P(B) = sin(phi) with 0 < phi < pi/2, so cos(phi) > 0",
        positive_arguments=True,
    )
    with sp.evaluate(False):
        mirrored_primal = primal_process(sp.pi / 2 - phi)
    register("dual-mirror", dual_process(), mirrored_primal, "any phi")
    with sp.evaluate(False):
        at_quarter_turn = sp.Matrix(
            [primal_process(QUARTER_TURN), dual_process(QUARTER_TURN)]
        )
    register(
        "processes-meet",
        at_quarter_turn,
        sp.Matrix([sp.sqrt(2) * log_base(CIRCLE_POINT, lam)] * 2),
        "any lambda",
    )
    register(
        "circle-base",
        primal_process(QUARTER_TURN).subs(lam, CIRCLE_BASE),
        sp.Integer(1),
        "lambda = (1/sqrt 2)^(sqrt 2)",
        positive_arguments=True,
    )
    _golden_ratio_identities()


def _golden_ratio_identities() -> None:
    p1, p2 = theory.golden_ratio_roots()
    factors = sp.Matrix(
        [first_factor_under_assumptions(), second_factor_under_assumptions()]
    )
    register(
        "golden-factors",
        factors.subs(p, p1),
        sp.Matrix([-p2, p1]),
        "the three assumptions, p = p1",
    )
    register(
        "golden-quadratic", p * (p - (1 - p) / p), theory.GOLDEN_QUADRATIC, "p != 0"
    )
    register(
        "golden-roots",
        sp.Matrix(theory.golden_ratio_roots()),
        sp.Matrix([(sp.sqrt(5) - 1) / 2, -(sp.sqrt(5) + 1) / 2]),
        "none",
    )
    register(
        "golden-square",
        sp.Matrix([1 - root for root in (p1, p2)]),
        sp.Matrix([root**2 for root in (p1, p2)]),
        "p a root of p^2 + p - 1",
    )
    with sp.evaluate(False):
        negated_quadratic = theory.GOLDEN_QUADRATIC.subs(p, -p)
    register(
        "golden-negated", negated_quadratic, theory.NEGATED_GOLDEN_QUADRATIC, "any p"
    )
    register(
        "golden-negated-roots",
        sp.Matrix(theory.negated_golden_ratio_roots()),
        sp.Matrix([-p2, -p1]),
        "none",
    )
    register(
        "golden-reciprocal",
        sp.Matrix([1 - root for root in (-p1, -p2)]),
        sp.Matrix([-1 / root for root in (-p1, -p2)]),
        "p a root of p^2 - p - 1",
    )
    register(
        "golden-information",
        -sp.log(1 - p1),
        2 * (-sp.log(p1)),
        "p = p1, so 1 - p = p^2 > 0",
        positive_arguments=True,
    )


# --------------------------------------------------------------------------- the figure


@plots.figure("process_curves")
def process_figure():
    """Both unit-circle processes over the quarter circle for the base lambda_*.

    The primal curve grows without bound as cos(phi) -> 0, the dual one as
    sin(phi) -> 0; they cross at phi = pi/4 at height one.
    """
    import matplotlib.pyplot as plt

    primal, dual = process_curves(CIRCLE_BASE)
    angles = np.linspace(0.01, np.pi / 2 - 0.01, 500)

    fig, ax = plt.subplots()
    primal_label = r"primal $2\sin\varphi\,\log_{\lambda_*}(\cos\varphi)$"
    dual_label = r"dual $2\log_{\lambda_*}(\sin\varphi)\cos\varphi$"
    # (16) and (23): numbers inferred from the source's ranges (11)-(16), (18)-(23)
    ax.plot(angles, primal(angles), label=primal_label + ", Jaeger 2024 (16), inferred")
    ax.plot(angles, dual(angles), label=dual_label + ", Jaeger 2024 (23), inferred")
    ax.axvline(np.pi / 4, color="0.5", ls=":", lw=1)
    ax.axhline(1, color="0.5", ls=":", lw=1)
    ax.plot(np.pi / 4, 1, "ko", markersize=5)
    ax.set(
        xlim=(0, np.pi / 2),
        ylim=(0, 3),
        xlabel=r"angle $\varphi$",
        ylabel="value of the process",
    )
    ax.set_xticks(
        [0, np.pi / 8, np.pi / 4, 3 * np.pi / 8, np.pi / 2],
        ["0", r"$\pi/8$", r"$\pi/4$", r"$3\pi/8$", r"$\pi/2$"],
    )
    base = float(CIRCLE_BASE)
    ax.set_title(rf"The two processes on the unit circle, $\lambda_* = {base:.4f}$")
    ax.legend(loc="upper center", fontsize=8)
    plots.stamp(fig, "lambda = (1/sqrt 2)^sqrt 2")
    return fig


"""The chapter's figure, for :mod:`golden.figures`."""
