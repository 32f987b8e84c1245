"""Cross-entropy, entropy and Kullback-Leibler divergence, and the gradients of
cross-entropy and squared error through a softmax, on a small symbolic softmax.

The chapter chapters/loss.md displays these expressions and checks the identities
registered here.
"""

from __future__ import annotations

from typing import Sequence

import sympy as sp

from golden import identities
from golden.identities import register, substitute, symbols

SYMBOLIC_CLASSES = 3
"""How many classes the symbolic softmax has: enough to show every term, small enough
for SymPy (MNIST's ten classes are ``golden.data.CLASSES``)."""

logits = symbols(f"z_1:{SYMBOLIC_CLASSES + 1}", -3.0, 3.0, real=True)
target_probability, output_probability = symbols("p q", 0.05, 0.95, positive=True)
targets = symbols(f"p_1:{SYMBOLIC_CLASSES + 1}", 0.05, 0.95, positive=True)
outputs = symbols(f"q_1:{SYMBOLIC_CLASSES + 1}", 0.05, 0.95, positive=True)
TARGET_CLASS = 0
ONE_HOT = sp.Matrix([int(i == TARGET_CLASS) for i in range(SYMBOLIC_CLASSES)])


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
"""q_i written out in the logits: the loss identities are stated in q, checked in z."""

Q = sp.Matrix(outputs)
CROSS_ENTROPY = cross_entropy(ONE_HOT, Q)
"""With a one-hot target only one term is left: minus the log-probability of the true
class."""

SQUARED_ERROR = sum((Q - ONE_HOT).applyfunc(lambda error: error**2))
"""Squared error between softmax output and one-hot target, summed over the classes."""

SOFTMAX_JACOBIAN = sp.diag(*Q) - Q * Q.T


def gradient(loss: sp.Expr) -> sp.Matrix:
    """d loss / d logits as a column of derivatives, still unevaluated."""
    return sp.Matrix([sp.Derivative(loss, score) for score in logits])


def in_logits(expr):
    """Write the outputs q as the softmax of the logits, carry out the derivatives."""
    return substitute(expr, OUTPUTS_AS_SOFTMAX).doit()


def labelled(values: dict[str, sp.Basic]) -> dict[sp.Symbol, sp.Basic]:
    """The same mapping keyed by text symbols, so that a notebook shows it as LaTeX."""
    return {sp.Symbol(rf"\text{{{name}}}"): value for name, value in values.items()}


def vanishing_entropy_term() -> sp.Expr:
    """lim_{p->0+} p log p: the convention 0 log 0 = 0 that makes a one-hot target's
    entropy zero."""
    return sp.limit(
        target_probability * sp.log(target_probability), target_probability, 0, "+"
    )


def one_hot_terms() -> dict[str, sp.Expr]:
    """Entropy, KL divergence and cross-entropy for the one-hot target e_1, zero
    entries taken as limits."""
    one_hot = {p_i: int(i == TARGET_CLASS) for i, p_i in enumerate(targets)}

    def at_one_hot(expr):
        for p_i, value in one_hot.items():
            if value == 0:
                expr = sp.limit(expr, p_i, value, "+")
            else:
                expr = expr.subs(p_i, value)
        return sp.simplify(expr)

    return {
        "entropy": at_one_hot(entropy(targets)),
        "KL divergence": at_one_hot(kl_divergence(targets, outputs)),
        "cross-entropy": at_one_hot(cross_entropy(targets, outputs)),
    }


def saturation_limits() -> dict[str, sp.Matrix]:
    """Both gradients when a wrong class's logit s grows without bound (a confident
    mistake)."""
    s = sp.Symbol("s", positive=True)
    wrong_logits = {
        score: (s if i == TARGET_CLASS + 1 else 0) for i, score in enumerate(logits)
    }

    def limit(column: sp.Matrix) -> sp.Matrix:
        at_wrong = column.subs(wrong_logits)
        return at_wrong.applyfunc(lambda entry: sp.limit(entry, s, sp.oo))

    return {
        "cross-entropy gradient": limit(in_logits(gradient(CROSS_ENTROPY))),
        "squared-error gradient": limit(in_logits(gradient(SQUARED_ERROR))),
        "error": limit(in_logits(Q - ONE_HOT)),
    }


@identities.builds
def _identities() -> None:
    register(
        "ce-term",
        -target_probability * sp.log(output_probability),
        -target_probability * sp.log(target_probability)
        + target_probability * sp.log(target_probability / output_probability),
        "p, q > 0",
        positive_arguments=True,
    )
    register(
        "ce-decomposition",
        cross_entropy(targets, outputs),
        entropy(targets) + kl_divergence(targets, outputs),
        f"{SYMBOLIC_CLASSES} classes, all probabilities > 0",
        positive_arguments=True,
    )
    register(
        "softmax-jacobian",
        sp.Matrix(
            SYMBOLIC_CLASSES,
            SYMBOLIC_CLASSES,
            lambda i, j: sp.Derivative(outputs[i], logits[j]),
        ),
        SOFTMAX_JACOBIAN,
        "q = softmax(z), real logits",
        given=OUTPUTS_AS_SOFTMAX,
    )
    register(
        "ce-gradient",
        gradient(CROSS_ENTROPY),
        Q - ONE_HOT,
        "q = softmax(z), one-hot target",
        given=OUTPUTS_AS_SOFTMAX,
    )
    register(
        "mse-gradient",
        gradient(SQUARED_ERROR),
        2 * SOFTMAX_JACOBIAN * (Q - ONE_HOT),
        "q = softmax(z), one-hot target",
        given=OUTPUTS_AS_SOFTMAX,
    )
