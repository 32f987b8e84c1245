"""Every step of the book's derivation, as SymPy expressions and identities.

The chapters display these and the tests check them. Each identity is registered in
:data:`IDENTITIES` with the assumptions it needs, so one test can prove all of them
symbolically and spot-check each numerically at random points of its domain.

Sources: Jaeger, Double-Bayesian Learning (2024), Eqs. 1-34, for the Bayes chain and the
golden values; textbook algebra for heavy-ball momentum and for the cross-entropy loss.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
import sympy as sp

from golden import theory

_RANGES: dict[sp.Symbol, tuple[float, float]] = {}
"""Where the numeric spot checks sample each symbol."""


def _symbols(names: str, low: float, high: float, **assumptions):
    """SymPy symbols that remember where the numeric checks may sample them."""
    created = sp.symbols(names, **assumptions)
    for symbol in created if isinstance(created, tuple) else (created,):
        _RANGES[symbol] = (low, high)
    return created


def log_base(value, base):
    """log_base(value): the sources write information with a free base lambda."""
    return sp.log(value) / sp.log(base)


# --------------------------------------------------------------------------- identities


def _entries(expr) -> list:
    return list(expr) if isinstance(expr, sp.MatrixBase) else [expr]


def _positive_argument_forms(expr):
    """Normal forms of expr that are valid when every log, root and |.| argument is positive."""
    expr = sp.powdenest(sp.trigsimp(expr), force=True).replace(sp.Abs, lambda argument: argument)
    yield sp.expand_log(expr, force=True)
    combined = sp.logcombine(expr, force=True)
    yield combined.replace(sp.log, lambda argument: sp.log(sp.radsimp(sp.expand(argument))))


def _substitute(expr, definitions: dict):
    """Replace symbols by their definitions, inside derivatives too (a definition holds everywhere).

    Plain ``subs`` would treat the symbols as constants under a derivative.
    """
    if not definitions:
        return expr
    expr = expr.replace(
        lambda part: isinstance(part, sp.Derivative),
        lambda derivative: sp.Derivative(_substitute(derivative.expr, definitions), *derivative.variable_count),
    )
    return expr.subs(definitions)


def _sample(rng: random.Random, symbol: sp.Symbol):
    low, high = _RANGES[symbol]
    return rng.randint(low, high) if symbol.is_integer else rng.uniform(low, high)


@dataclass(frozen=True)
class Identity:
    """lhs = rhs, claimed for every value allowed by ``assumptions``.

    ``positive_arguments`` states that the arguments of logarithms, roots and absolute values
    are positive on the domain; only then may SymPy combine them. The numeric check samples
    the domain and so catches a claim the assumption would make wrongly true.
    """

    name: str
    lhs: sp.Expr | sp.MatrixBase
    rhs: sp.Expr | sp.MatrixBase
    assumptions: str
    positive_arguments: bool = False
    given: dict = field(default_factory=dict)
    """Definitions substituted before checking; the identity is displayed without them."""

    def _sides(self) -> tuple[list, list]:
        """Both sides entry by entry, definitions substituted and derivatives carried out."""
        left, right = (
            [_substitute(sp.sympify(entry), self.given).doit() for entry in _entries(side)]
            for side in (self.lhs, self.rhs)
        )
        return left, right

    def residuals(self) -> list[sp.Expr]:
        """lhs - rhs entry by entry, in the simplest form found; all zero iff the identity is proved."""
        found = []
        for left, right in zip(*self._sides()):
            difference = left - right
            simplest = 0 if sp.expand(difference) == 0 else sp.simplify(difference)
            if simplest != 0 and self.positive_arguments:
                forms = (sp.simplify(form) for form in _positive_argument_forms(difference))
                simplest = next((form for form in forms if form == 0), simplest)
            found.append(simplest)
        return found

    def holds(self) -> bool:
        return all(residual == 0 for residual in self.residuals())

    def proved(self) -> "Identity":
        """This identity once SymPy has proved it (residual zero); AssertionError otherwise."""
        if not self.holds():
            raise AssertionError(f"{self.name}: residual {self.residuals()} is not zero")
        return self

    def largest_numeric_gap(self, samples: int = 12, seed: int = 0) -> float:
        """Largest relative |lhs - rhs| at random points of the sampling ranges."""
        rng = random.Random(seed)
        sides = self._sides()
        symbols = sorted(set().union(*(entry.free_symbols for side in sides for entry in side)), key=str)
        left, right = (sp.lambdify(symbols, side, "mpmath") for side in sides)
        gap = 0.0
        for _ in range(samples):
            point = [_sample(rng, symbol) for symbol in symbols]
            for left_value, right_value in zip(left(*point), right(*point)):
                gap = max(gap, abs(complex(left_value - right_value)) / max(1.0, abs(complex(left_value))))
        return gap

    def _repr_latex_(self) -> str:
        return rf"$\displaystyle {sp.latex(self.lhs)} = {sp.latex(self.rhs)}$"


IDENTITIES: dict[str, Identity] = {}
"""Every identity of the derivation, by the label of the equation it verifies."""


def register_in(registry: dict[str, Identity], identity: Identity) -> None:
    """Add ``identity`` under its name; a label may name only one identity."""
    if identity.name in registry:
        raise ValueError(f"identity {identity.name!r} registered twice")
    registry[identity.name] = identity


def _register(name: str, lhs, rhs, assumptions: str, positive_arguments: bool = False, given=None) -> None:
    register_in(IDENTITIES, Identity(name, lhs, rhs, assumptions, positive_arguments, given or {}))


def check(name: str) -> Identity:
    """Prove the identity ``name`` and return it, so a chapter cell shows what was proved."""
    return IDENTITIES[name].proved()


# --------------------------------------------------------------------------- momentum (Eq. 32)

# Real rather than positive, so that SymPy derives the sign conditions instead of assuming them.
eta, h = _symbols("eta h", 0.001, 1.0, real=True)
alpha = _symbols("alpha", 0.01, 0.99, real=True)
r = _symbols("r", -2.0, 2.0, real=True)
w0 = _symbols("w_0", -2.0, 2.0, real=True)
UNROLLED_STEPS = 6
gradients = _symbols(f"g_1:{UNROLLED_STEPS + 1}", -2.0, 2.0, real=True)
step_etas = _symbols(f"eta_1:{UNROLLED_STEPS + 1}", 0.001, 1.0, positive=True)

Gradient = Callable[[int, sp.Expr], sp.Expr]


def momentum_weights(etas: Sequence, momentum, gradient: Gradient, start) -> list:
    """Weights w(0), ..., w(T) under Eq. (32), dw(t) = -eta_t g(t) + alpha dw(t-1), from rest.

    ``gradient(t, w)`` is the gradient seen at step t (counted from 1) at weight w.
    """
    weights, step = [start], 0
    for step_number, eta_t in enumerate(etas, start=1):
        step = -eta_t * gradient(step_number, weights[-1]) + momentum * step
        weights.append(weights[-1] + step)
    return weights


def torch_sgd_weights(lrs: Sequence, momentum, gradient: Gradient, start) -> list:
    """Weights under torch.optim.SGD's rule (no dampening, no Nesterov): v <- mu v + g, w <- w - lr v."""
    weights, velocity = [start], 0
    for step_number, lr in enumerate(lrs, start=1):
        velocity = momentum * velocity + gradient(step_number, weights[-1])
        weights.append(weights[-1] - lr * velocity)
    return weights


def free_gradient(step_number: int, weight) -> sp.Symbol:
    """Any gradient sequence at all: the symbol g_t, whatever the weight."""
    return gradients[step_number - 1]


def quadratic_gradient(step_number: int, weight) -> sp.Expr:
    """Gradient of f(w) = h w^2 / 2."""
    return h * weight


def _steps(weights: list) -> list:
    return [after - before for before, after in zip(weights, weights[1:])]


_constant_eta = [eta] * UNROLLED_STEPS
_register(
    "momentum-equivalence",
    sp.Matrix(momentum_weights(_constant_eta, alpha, free_gradient, w0)),
    sp.Matrix(torch_sgd_weights(_constant_eta, alpha, free_gradient, w0)),
    f"constant learning rate eta = lr, alpha = mu, both start at rest; {UNROLLED_STEPS} steps",
)
_register(
    "momentum-smoothing",
    _steps(momentum_weights(_constant_eta, alpha, free_gradient, w0))[-1],
    -eta * sum(alpha**lag * gradients[UNROLLED_STEPS - 1 - lag] for lag in range(UNROLLED_STEPS)),
    "starts at rest, dw(0) = 0",
)

k = sp.Symbol("k", integer=True, nonnegative=True)
t = _symbols("t", 1, 40, integer=True, positive=True)
_register(
    "momentum-geometric",
    (1 - alpha) * sp.Sum(alpha**k, (k, 0, t - 1)),
    1 - alpha**t,
    "any alpha; divide by 1 - alpha when alpha != 1",
)


def effective_step_limit() -> sp.Expr:
    """lim_{t->oo} of the constant-gradient step -eta g (1 - alpha^t)/(1 - alpha), with alpha = e^-s, s > 0."""
    decay = sp.Symbol("s", positive=True)
    g = sp.Symbol("g", real=True)
    step = -eta * g * (1 - sp.exp(-decay * t)) / (1 - alpha)
    return sp.limit(step, t, sp.oo)


_torch_schedule_steps = _steps(torch_sgd_weights(step_etas, alpha, free_gradient, w0))
_register(
    "sgd-schedule",
    _torch_schedule_steps[-1],
    -step_etas[-1] * gradients[UNROLLED_STEPS - 1]
    + alpha * step_etas[-1] / step_etas[-2] * _torch_schedule_steps[-2],
    "learning rate eta_t changing from step to step",
)


def schedule_gap() -> sp.Expr:
    """w(2) under Eq. (32) minus w(2) under torch's rule when the learning rate changes after step 1."""
    two_steps = step_etas[:2]
    ours = momentum_weights(two_steps, alpha, free_gradient, w0)[-1]
    theirs = torch_sgd_weights(two_steps, alpha, free_gradient, w0)[-1]
    return sp.factor(ours - theirs)


_quadratic_weights = momentum_weights(_constant_eta, alpha, quadratic_gradient, w0)
_register(
    "heavy-ball-recurrence",
    sp.Matrix(_quadratic_weights[2:]),
    sp.Matrix(
        [
            (1 + alpha - eta * h) * current - alpha * previous
            for previous, current in zip(_quadratic_weights, _quadratic_weights[1:-1])
        ]
    ),
    "f(w) = h w^2 / 2, t >= 1",
)

CHARACTERISTIC_POLYNOMIAL = r**2 - (1 + alpha - eta * h) * r + alpha
"""Put w(t) = r^t into the heavy-ball recurrence and divide by r^(t-1)."""


def heavy_ball_roots() -> tuple[sp.Expr, sp.Expr]:
    """The two roots r of the characteristic polynomial; w(t) is a combination of their powers."""
    return tuple(sp.solve(CHARACTERISTIC_POLYNOMIAL, r))


_register(
    "heavy-ball-roots",
    sp.Mul(*[r - root for root in heavy_ball_roots()]),
    CHARACTERISTIC_POLYNOMIAL,
    "any eta, h, alpha",
)
_register(
    "heavy-ball-jury",
    sp.Matrix([sp.Subs(CHARACTERISTIC_POLYNOMIAL, r, value) for value in (1, -1, 0)]),
    sp.Matrix([eta * h, 2 * (1 + alpha) - eta * h, alpha]),
    "any eta, h, alpha",
)


def stability_conditions() -> sp.Boolean:
    """Both roots of a monic quadratic c(r) lie inside the unit circle iff c(1) > 0, c(-1) > 0, |c(0)| < 1."""
    def at(value):
        return sp.expand(CHARACTERISTIC_POLYNOMIAL.subs(r, value))

    return sp.And(at(1) > 0, at(-1) > 0, sp.Abs(at(0)) < 1)


def largest_stable_eta_h() -> sp.Expr:
    """The edge of the stable region in eta*h for a given alpha: where c(-1) = 0."""
    (edge,) = sp.solve(CHARACTERISTIC_POLYNOMIAL.subs(r, -1), eta)
    return sp.expand(edge * h)


@lru_cache(maxsize=None)
def _stability_test() -> Callable:
    return sp.lambdify((eta, h, alpha), stability_conditions(), "numpy")


def is_stable(eta_value, alpha_value, curvature=1.0):
    """The stability conditions, evaluated numerically (works on numpy arrays)."""
    return _stability_test()(eta_value, curvature, alpha_value)


def spectral_radius(eta_value, alpha_value, curvature=1.0):
    """max |r| over both roots: the factor by which the error shrinks per step (works on numpy arrays)."""
    trace = 1 + np.asarray(alpha_value, dtype=float) - np.asarray(eta_value, dtype=float) * curvature
    root_of_discriminant = np.sqrt(trace.astype(complex) ** 2 - 4 * np.asarray(alpha_value, dtype=float))
    return np.maximum(np.abs((trace + root_of_discriminant) / 2), np.abs((trace - root_of_discriminant) / 2))


DISCRIMINANT = sp.discriminant(CHARACTERISTIC_POLYNOMIAL, r)

_register(
    "heavy-ball-product",
    sp.Mul(*heavy_ball_roots()),
    alpha,
    "any eta, h, alpha (Vieta)",
)
_register(
    "heavy-ball-discriminant",
    DISCRIMINANT,
    ((1 - sp.sqrt(alpha)) ** 2 - eta * h) * ((1 + sp.sqrt(alpha)) ** 2 - eta * h),
    "alpha > 0",
)
_register(
    "golden-rate-band",
    sp.Matrix([(1 - sp.sqrt(alpha)) ** 2, (1 + sp.sqrt(alpha)) ** 2]) / (1 - alpha) ** 2,
    sp.Matrix([1 / (1 + sp.sqrt(alpha)) ** 2, 1 / (1 - sp.sqrt(alpha)) ** 2]),
    "eta = (1 - alpha)^2, 0 < alpha < 1",
)


def pair_summary(eta_value: float, alpha_value: float, curvature: float = 1.0) -> dict[str, float]:
    """What a (learning rate, momentum) pair does on f(w) = h w^2 / 2."""
    largest_eta_h = float(largest_stable_eta_h().subs(alpha, alpha_value))
    return {
        "learning rate": eta_value,
        "momentum": alpha_value,
        "effective step": theory.effective_step(eta_value, alpha_value),
        "largest stable h": largest_eta_h / eta_value,
        f"spectral radius at h = {curvature:g}": float(spectral_radius(eta_value, alpha_value, curvature)),
    }


# --------------------------------------------------------------------------- Bayes (Eqs. 1-23)

P_A, P_B = _symbols("P(A) P(B)", 0.05, 0.95, positive=True)
P_A_given_B, P_B_given_A = _symbols("P(A|B) P(B|A)", 0.05, 0.95, positive=True)
P_A_and_B = _symbols(r"P(A\cap{B})", 0.01, 0.05, positive=True)
lam = _symbols("lambda", 0.1, 0.9, positive=True)
phi = _symbols("phi", 0.05, 1.5, positive=True)
x = _symbols("x", 0.1, 0.9, positive=True)
any_base = _symbols("b", 1.5, 9.0, positive=True)

CONDITIONALS = {P_A_given_B: P_A_and_B / P_B, P_B_given_A: P_A_and_B / P_A}
"""The definitions behind Bayes' rule: a conditional is a joint over a marginal."""

FIRST_FACTOR = P_A / P_B
SECOND_FACTOR = P_B_given_A / P_A_given_B


_register(
    "bayes-rule",
    P_A_given_B,
    P_A * P_B_given_A / P_B,
    "conditionals defined from the joint; P(A), P(B) > 0",
    given=CONDITIONALS,
)
_register("bayes-ratio", P_A_given_B / P_B_given_A, FIRST_FACTOR, "as bayes-rule", given=CONDITIONALS)
_register("bayes-product", FIRST_FACTOR * SECOND_FACTOR, sp.Integer(1), "as bayes-rule", given=CONDITIONALS)
_register("bayes-reciprocal", 1 / (FIRST_FACTOR * SECOND_FACTOR), sp.Integer(1), "as bayes-rule", given=CONDITIONALS)

ASSUMPTIONS = {
    "complementary conditionals": sp.Eq(P_B_given_A, 1 - P_A_given_B),
    "complementary marginals": sp.Eq(P_B, 1 - P_A),
    "likelihood equals marginal": sp.Eq(P_B, P_B_given_A),
}
"""The source's three assumptions that remove degrees of freedom from Bayes' rule."""


def collapse_under_assumptions() -> dict[sp.Symbol, sp.Expr]:
    """Solve Eq. (3) together with the three assumptions: everything is fixed by P(A)."""
    system = [*ASSUMPTIONS.values(), sp.Eq(FIRST_FACTOR * SECOND_FACTOR, 1)]
    (solution,) = sp.solve(system, [P_B, P_A_given_B, P_B_given_A], dict=True)
    return solution


def inner_equation_with_bayes() -> list[dict]:
    """Solve Eq. (3) and the inner equation (5) together for the two (positive) factors."""
    first, second = sp.symbols("F_1 F_2", positive=True)
    return sp.solve([sp.Eq(first * second, 1), sp.Eq(first, second)], [first, second], dict=True)


def fixed_point_base(value):
    """The base lambda = value^(1/value), for which log_lambda(value) = value (the lemma)."""
    return value ** (1 / value)


_register(
    "log-base-lemma",
    log_base(x, fixed_point_base(x)),
    x,
    "x > 0, x != 1",
)
_register(
    "lemma-construction",
    any_base ** (1 / (x / log_base(x, any_base))),
    fixed_point_base(x),
    "x > 0, x != 1; any base b > 0, b != 1",
    positive_arguments=True,
)

LOG_BAYES = FIRST_FACTOR * log_base(SECOND_FACTOR, lam)
"""Right-hand side of Eq. (10): Eq. (3) with a logarithm on its second factor."""

DUAL_LOG_BAYES = log_base(FIRST_FACTOR, lam) * SECOND_FACTOR
"""Right-hand side of Eq. (17): the logarithm on the first factor instead."""

_register(
    "log-bayes-fixed-point",
    LOG_BAYES.subs(lam, fixed_point_base(SECOND_FACTOR)),
    FIRST_FACTOR * SECOND_FACTOR,
    "lambda chosen by the lemma for the second factor, which is not 1",
    positive_arguments=True,
)
_register(
    "dual-log-bayes-fixed-point",
    DUAL_LOG_BAYES.subs(lam, fixed_point_base(FIRST_FACTOR)),
    FIRST_FACTOR * SECOND_FACTOR,
    "lambda chosen by the lemma for the first factor, which is not 1",
    positive_arguments=True,
)


def log_bayes_under_assumptions() -> sp.Expr:
    """Eq. (10)'s right-hand side with the three assumptions: a function of P(A) and lambda only."""
    return LOG_BAYES.subs(collapse_under_assumptions())


def primal_forms() -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    """The three forms of P(A|B) in P(B) that the source lists on the way to the unit circle."""
    return (
        (1 - P_B) * log_base(P_B**2, lam),
        P_B * log_base(1 - P_B**2, lam),
        2 * P_B * log_base(sp.sqrt(1 - P_B**2), lam),
    )


def first_form_base() -> list[sp.Expr]:
    """The bases lambda for which the first form holds once the assumptions set P(A|B) = 1 - P(B)."""
    first, _, _ = primal_forms()
    return sp.solve(sp.Eq(1 - P_B, first), lam)


def primal_process(angle=phi) -> sp.Expr:
    """Eq. (16): P(A|B) = 2 sin(phi) log_lambda(cos(phi))."""
    return 2 * sp.sin(angle) * log_base(sp.cos(angle), lam)


def dual_process(angle=phi) -> sp.Expr:
    """Eq. (23): P(B) = 2 log_lambda(sin(phi)) cos(phi)."""
    return 2 * log_base(sp.sin(angle), lam) * sp.cos(angle)


def swap_step_gap() -> sp.Expr:
    """First form minus second form of primal_forms(), times log(lambda): zero only where the step holds."""
    first, second, _ = primal_forms()
    return sp.expand_log(sp.simplify((first - second) * sp.log(lam)), force=True)


def swap_step_point() -> sp.Float:
    """The only P(B) in (0, 1) where the first two forms agree (found numerically)."""
    return sp.nsolve(swap_step_gap(), P_B, sp.Rational(1, 2) + sp.Rational(1, 8))


def log_bayes_at_first_form_base() -> sp.Expr:
    """Eq. (10) under the assumptions, in P(B), with the base that Eq. (11) needs, lambda = P(B)^2.

    Eq. (10) and Eq. (11) hold together exactly where this equals one.
    """
    (base,) = first_form_base()
    in_p_b = log_bayes_under_assumptions().subs(P_A, 1 - P_B)
    return sp.simplify(in_p_b.subs(lam, base))


def first_form_point() -> sp.Float:
    """The only P(B) in (0, 1) where Eqs. (10) and (11) hold together (found numerically)."""
    return sp.nsolve(log_bayes_at_first_form_base() - 1, P_B, sp.Rational(1, 4))


def sign_changes(expr: sp.Expr, symbol: sp.Symbol = P_B, points: int = 4001) -> int:
    """How often ``expr`` changes sign on a fine grid of (0, 1): one change, one crossing."""
    values = sp.lambdify(symbol, expr, "numpy")(np.linspace(1e-4, 1 - 1e-4, points))
    return int(np.count_nonzero(np.diff(np.sign(values))))


def chain_agreement_points() -> dict[str, sp.Float]:
    """Where each flagged link of Eqs. (10) -> (11) -> (12) holds: two different P(B)."""
    return {
        "Eqs. (10) and (11) hold together at P(B)": first_form_point(),
        "Eqs. (11) and (12) hold together at P(B)": swap_step_point(),
    }


def log_bayes_at_swap_point() -> sp.Float:
    """Eq. (10)'s right-hand side, with lambda = P(B)^2, where Eqs. (11) and (12) agree.

    A value other than one means that no P(B) satisfies Eqs. (10), (11) and (12) together.
    """
    return log_bayes_at_first_form_base().subs(P_B, swap_step_point()).evalf(15)


_, _second, _third = primal_forms()
_register("primal-sqrt", _second, _third, "0 < P(B) < 1", positive_arguments=True)
_register(
    "primal-circle",
    _third.subs(P_B, sp.sin(phi)),
    primal_process(),
    "P(B) = sin(phi) with 0 < phi < pi/2, so cos(phi) > 0",
    positive_arguments=True,
)
with sp.evaluate(False):
    _mirrored_primal = primal_process(sp.pi / 2 - phi)
_register("dual-mirror", dual_process(), _mirrored_primal, "any phi")

QUARTER_TURN = sp.pi / 4
CIRCLE_POINT = sp.sqrt(2) / 2
"""sin = cos = 1/sqrt(2) at phi = pi/4, where the source places the inner equation."""

CIRCLE_BASE = fixed_point_base(CIRCLE_POINT)
"""The base for which log_lambda(1/sqrt 2) = 1/sqrt 2: both processes then equal 1 at phi = pi/4."""

with sp.evaluate(False):
    _processes_at_quarter_turn = sp.Matrix([primal_process(QUARTER_TURN), dual_process(QUARTER_TURN)])
_register(
    "processes-meet",
    _processes_at_quarter_turn,
    sp.Matrix([sp.sqrt(2) * log_base(CIRCLE_POINT, lam)] * 2),
    "any lambda",
)
_register(
    "circle-base",
    primal_process(QUARTER_TURN).subs(lam, CIRCLE_BASE),
    sp.Integer(1),
    "lambda = (1/sqrt 2)^(sqrt 2)",
    positive_arguments=True,
)


def process_curves(base) -> tuple[Callable, Callable]:
    """Numeric (numpy) versions of Eq. (16) and Eq. (23) for one base lambda."""
    primal = sp.lambdify(phi, primal_process().subs(lam, base), "numpy")
    dual = sp.lambdify(phi, dual_process().subs(lam, base), "numpy")
    return primal, dual


# --------------------------------------------------------------------------- golden ratio (Eqs. 24-34)

p = theory.p
_RANGES[p] = (0.05, 0.95)
p1, p2 = theory.golden_ratio_roots()


def second_factor_under_assumptions() -> sp.Expr:
    """Eq. (3)'s second factor P(B|A)/P(A|B) once the assumptions leave one probability p = P(A|B)."""
    return SECOND_FACTOR.subs(collapse_under_assumptions()).subs(P_A, p)


def first_factor_under_assumptions() -> sp.Expr:
    """Eq. (3)'s first factor P(A)/P(B) under the assumptions, with p = P(A) = P(A|B)."""
    return FIRST_FACTOR.subs(collapse_under_assumptions()).subs(P_A, p)


def inner_equation_under_assumptions() -> sp.Set:
    """Every p in (0, 1) where the inner equation (5) holds under the three assumptions."""
    inner = sp.Eq(first_factor_under_assumptions(), second_factor_under_assumptions())
    return sp.solveset(inner, p, sp.Interval.open(0, 1))


_register(
    "golden-factors",
    sp.Matrix([first_factor_under_assumptions(), second_factor_under_assumptions()]).subs(p, p1),
    sp.Matrix([-p2, p1]),
    "the three assumptions, p = p1",
)
_register("golden-quadratic", p * (p - (1 - p) / p), theory.GOLDEN_QUADRATIC, "p != 0")
_register(
    "golden-roots",
    sp.Matrix(theory.golden_ratio_roots()),
    sp.Matrix([(sp.sqrt(5) - 1) / 2, -(sp.sqrt(5) + 1) / 2]),
    "none",
)
_register(
    "golden-square",
    sp.Matrix([1 - root for root in (p1, p2)]),
    sp.Matrix([root**2 for root in (p1, p2)]),
    "p a root of p^2 + p - 1",
)
with sp.evaluate(False):
    _negated_quadratic = theory.GOLDEN_QUADRATIC.subs(p, -p)
_register("golden-negated", _negated_quadratic, theory.NEGATED_GOLDEN_QUADRATIC, "any p")
_register(
    "golden-negated-roots",
    sp.Matrix(theory.negated_golden_ratio_roots()),
    sp.Matrix([-p2, -p1]),
    "none",
)
_register(
    "golden-reciprocal",
    sp.Matrix([1 - root for root in (-p1, -p2)]),
    sp.Matrix([-1 / root for root in (-p1, -p2)]),
    "p a root of p^2 - p - 1",
)
_register(
    "golden-information",
    -sp.log(1 - p1),
    2 * (-sp.log(p1)),
    "p = p1, so 1 - p = p^2 > 0",
    positive_arguments=True,
)


def information_doubling_solutions() -> sp.Set:
    """All p in (0, 1) whose complement carries exactly twice the information of p."""
    return sp.solveset(sp.Eq(-sp.log(1 - p), 2 * (-sp.log(p))), p, sp.Interval.open(0, 1))


_register("golden-alpha", sp.sqrt(2) * p1, (sp.sqrt(10) - sp.sqrt(2)) / 2, "none")
_register(
    "golden-eta",
    (1 - theory.golden_alpha()) ** 2,
    4 + sp.sqrt(2) - sp.sqrt(5) - sp.sqrt(10),
    "alpha from Eq. (33)",
)
with sp.evaluate(False):
    _complement_squared_step = theory.effective_step((1 - alpha) ** 2, alpha)
_register(
    "effective-step-complement",
    _complement_squared_step,
    1 - alpha,
    "eta = (1 - alpha)^2, alpha != 1",
)
_register(
    "golden-effective-step",
    theory.golden_effective_step(),
    (2 + sp.sqrt(2) - sp.sqrt(10)) / 2,
    "the golden pair",
)

# --------------------------------------------------------------------------- the loss

CLASSES = 3
logits = _symbols(f"z_1:{CLASSES + 1}", -3.0, 3.0, real=True)
target_probability, output_probability = _symbols("p q", 0.05, 0.95, positive=True)
targets = _symbols(f"p_1:{CLASSES + 1}", 0.05, 0.95, positive=True)
outputs = _symbols(f"q_1:{CLASSES + 1}", 0.05, 0.95, positive=True)
TARGET_CLASS = 0
ONE_HOT = sp.Matrix([int(i == TARGET_CLASS) for i in range(CLASSES)])


def softmax(scores: Sequence) -> sp.Matrix:
    """Class probabilities from logits."""
    exponentials = [sp.exp(score) for score in scores]
    return sp.Matrix([e / sum(exponentials) for e in exponentials])


def cross_entropy(target: Sequence, output: Sequence) -> sp.Expr:
    return -sum(p_i * sp.log(q_i) for p_i, q_i in zip(target, output))


def entropy(target: Sequence) -> sp.Expr:
    return -sum(p_i * sp.log(p_i) for p_i in target)


def kl_divergence(target: Sequence, output: Sequence) -> sp.Expr:
    return sum(p_i * sp.log(p_i / q_i) for p_i, q_i in zip(target, output))


SOFTMAX = softmax(logits)
OUTPUTS_AS_SOFTMAX = dict(zip(outputs, SOFTMAX))
"""q_i written out in the logits: the loss identities are stated in q and checked in z."""

Q = sp.Matrix(outputs)
CROSS_ENTROPY = cross_entropy(ONE_HOT, Q)
"""With a one-hot target only one term is left: minus the log-probability of the true class."""

SQUARED_ERROR = sum((Q - ONE_HOT).applyfunc(lambda error: error**2))
"""Squared error between the softmax output and the one-hot target, summed over the classes."""

SOFTMAX_JACOBIAN = sp.diag(*Q) - Q * Q.T


def gradient(loss: sp.Expr) -> sp.Matrix:
    """d loss / d logits as a column of derivatives, still unevaluated."""
    return sp.Matrix([sp.Derivative(loss, score) for score in logits])


def in_logits(expr):
    """Write the outputs q as the softmax of the logits and carry out the derivatives."""
    return _substitute(expr, OUTPUTS_AS_SOFTMAX).doit()


def labelled(values: dict[str, sp.Basic]) -> dict[sp.Symbol, sp.Basic]:
    """The same mapping keyed by text symbols, so that a notebook shows it as LaTeX."""
    return {sp.Symbol(rf"\text{{{name}}}"): value for name, value in values.items()}


_register(
    "ce-term",
    -target_probability * sp.log(output_probability),
    -target_probability * sp.log(target_probability)
    + target_probability * sp.log(target_probability / output_probability),
    "p, q > 0",
    positive_arguments=True,
)
_register(
    "ce-decomposition",
    cross_entropy(targets, outputs),
    entropy(targets) + kl_divergence(targets, outputs),
    f"{CLASSES} classes, all probabilities > 0",
    positive_arguments=True,
)
_register(
    "softmax-jacobian",
    sp.Matrix(CLASSES, CLASSES, lambda i, j: sp.Derivative(outputs[i], logits[j])),
    SOFTMAX_JACOBIAN,
    "q = softmax(z), real logits",
    given=OUTPUTS_AS_SOFTMAX,
)
_register(
    "ce-gradient",
    gradient(CROSS_ENTROPY),
    Q - ONE_HOT,
    "q = softmax(z), one-hot target",
    given=OUTPUTS_AS_SOFTMAX,
)
_register(
    "mse-gradient",
    gradient(SQUARED_ERROR),
    2 * SOFTMAX_JACOBIAN * (Q - ONE_HOT),
    "q = softmax(z), one-hot target",
    given=OUTPUTS_AS_SOFTMAX,
)


def vanishing_entropy_term() -> sp.Expr:
    """lim_{p->0+} p log p: the convention 0 log 0 = 0 that makes a one-hot target's entropy zero."""
    return sp.limit(target_probability * sp.log(target_probability), target_probability, 0, "+")


def one_hot_terms() -> dict[str, sp.Expr]:
    """Entropy, KL divergence and cross-entropy for the one-hot target e_1, zero entries taken as limits."""
    one_hot = {p_i: int(i == TARGET_CLASS) for i, p_i in enumerate(targets)}

    def at_one_hot(expr):
        for p_i, value in one_hot.items():
            expr = sp.limit(expr, p_i, value, "+") if value == 0 else expr.subs(p_i, value)
        return sp.simplify(expr)

    return {
        "entropy": at_one_hot(entropy(targets)),
        "KL divergence": at_one_hot(kl_divergence(targets, outputs)),
        "cross-entropy": at_one_hot(cross_entropy(targets, outputs)),
    }


def saturation_limits() -> dict[str, sp.Matrix]:
    """Both gradients when a wrong class's logit s grows without bound (a confident mistake)."""
    s = sp.Symbol("s", positive=True)
    wrong_logits = {score: (s if i == TARGET_CLASS + 1 else 0) for i, score in enumerate(logits)}

    def limit(column: sp.Matrix) -> sp.Matrix:
        return column.subs(wrong_logits).applyfunc(lambda entry: sp.limit(entry, s, sp.oo))

    return {
        "cross-entropy gradient": limit(in_logits(gradient(CROSS_ENTROPY))),
        "squared-error gradient": limit(in_logits(gradient(SQUARED_ERROR))),
        "error": limit(in_logits(Q - ONE_HOT)),
    }
