"""The SymPy side of the studies beyond the paper (the book's last part).

Textbook facts the chapters lean on, each registered as an identity next to its
labelled equation: the squared-error gradient at a uniform softmax, the sharpness above
which the heavy ball diverges, why the Gram matrix gives the spectrum of a gradient
covariance, and two facts about the mutual information between predicted and true
labels. The identities live in the book's one registry,
:data:`golden.identities.IDENTITIES`, built on first use; :func:`check` proves one by
name.
"""

from __future__ import annotations

import sympy as sp

from golden import identities
from golden.derivations.loss import ONE_HOT, SOFTMAX_JACOBIAN, SYMBOLIC_CLASSES, Q
from golden.derivations.momentum import alpha, eta, largest_stable_eta_h
from golden.identities import Identity, register, symbols


def check(name: str) -> Identity:
    """Prove the identity ``name`` (SymPy residual zero) and return it for the chapter
    to show; the same as :func:`golden.identities.check`."""
    return identities.check(name)


# --- cross-entropy against squared error ----------------------------------------------

UNIFORM = {q: sp.Rational(1, SYMBOLIC_CLASSES) for q in Q}
"""The softmax of equal logits, as at a typical initialisation."""

# --- sharpness and stability ----------------------------------------------------------

SHARPNESS_LIMIT = 2 * (1 + alpha) / eta
"""The largest curvature on which the heavy ball with (eta, alpha) does not diverge."""


def sharpness_limit(eta_value: float, alpha_value: float) -> float:
    return float(SHARPNESS_LIMIT.subs({eta: eta_value, alpha: alpha_value}))


# --- the spectrum of a gradient covariance from its Gram matrix -----------------------

EXAMPLES, PARAMETERS = 2, 3
DEVIATIONS = sp.Matrix(
    EXAMPLES,
    PARAMETERS,
    lambda i, j: symbols(f"d_{i + 1}{j + 1}", -2.0, 2.0, real=True),
)
spectral = symbols("mu", -2.0, 2.0, real=True)


def characteristic_polynomial(matrix: sp.Matrix) -> sp.Expr:
    return (spectral * sp.eye(matrix.rows) - matrix).det()


# --- mutual information ---------------------------------------------------------------


def _bits(x):
    return sp.log(x, 2)


def mutual_information(joint: sp.Matrix) -> sp.Expr:
    """I(Y; Ŷ) in bits of a joint distribution (rows: true label, columns:
    prediction)."""
    rows = [sum(joint.row(i)) for i in range(joint.rows)]
    columns = [sum(joint.col(j)) for j in range(joint.cols)]
    return sum(
        joint[i, j] * _bits(joint[i, j] / (rows[i] * columns[j]))
        for i in range(joint.rows)
        for j in range(joint.cols)
    )


def entropy_bits(probabilities) -> sp.Expr:
    return -sum(p * _bits(p) for p in probabilities)


_joint = sp.Matrix(2, 2, symbols("pi_11 pi_12 pi_21 pi_22", 0.05, 0.45, positive=True))
_columns = [sum(_joint.col(j)) for j in range(2)]

_label_entropy = entropy_bits([sum(_joint.row(i)) for i in range(2)])
_conditional_entropy = sum(
    _columns[j] * entropy_bits([_joint[i, j] / _columns[j] for i in range(2)])
    for j in range(2)
)

error_rate = symbols("e", 0.01, 0.6, positive=True)
classes = sp.Symbol("K", positive=True, integer=True)


def fano_bound(error, classes_count, label_entropy) -> sp.Expr:
    """The least I(Y; Ŷ) that Fano's inequality allows at error rate ``error``."""
    binary = -error * _bits(error) - (1 - error) * _bits(1 - error)
    return label_entropy - binary - error * _bits(classes_count - 1)


_entropy_symbol = sp.Symbol("H")
least_information = sp.lambdify(
    (error_rate, classes, _entropy_symbol),
    fano_bound(error_rate, classes, _entropy_symbol),
    "numpy",
)
"""Fano's bound in numbers: (error rate, classes, H(Y) in bits) -> the least I(Y; Ŷ) in
bits."""

FANO_CLASSES = 3

# --- the MI-driven learning rate (our reading of Vasudevan 2020) ----------------------

base_rate = symbols("eta_0", 0.001, 0.1, positive=True)

normalised_information = symbols("Ihat", 0.0, 1.0, nonnegative=True)
MI_DECAY_RULE = base_rate * (1 - normalised_information)
"""The next epoch's learning rate from I(Y; Ŷ) / H(Y) after the last one
(``schedule="mi_decay"``)."""


# --- the identities -------------------------------------------------------------------


@identities.builds
def _identities() -> None:
    register(
        "mse-gradient-uniform",
        (2 * SOFTMAX_JACOBIAN * (Q - ONE_HOT)).subs(UNIFORM),
        sp.Rational(2, SYMBOLIC_CLASSES) * (Q - ONE_HOT).subs(UNIFORM),
        f"uniform softmax output, {SYMBOLIC_CLASSES} classes, one-hot target",
    )
    register(
        "sharpness-threshold",
        largest_stable_eta_h() / eta,
        SHARPNESS_LIMIT,
        "the edge c(-1) = 0 of the stable region, eta > 0",
    )
    register(
        "gram-spectrum",
        characteristic_polynomial(DEVIATIONS.T * DEVIATIONS),
        spectral ** (PARAMETERS - EXAMPLES)
        * characteristic_polynomial(DEVIATIONS * DEVIATIONS.T),
        f"any real {EXAMPLES} x {PARAMETERS} matrix of deviations",
    )
    register(
        "mi-entropy-split",
        mutual_information(_joint),
        _label_entropy - _conditional_entropy,
        "any joint distribution of two binary labels with positive entries",
        positive_arguments=True,
    )
    symmetric = sp.Matrix(
        FANO_CLASSES,
        FANO_CLASSES,
        lambda i, j: (
            (1 - error_rate) / FANO_CLASSES
            if i == j
            else error_rate / (FANO_CLASSES * (FANO_CLASSES - 1))
        ),
    )
    register(
        "fano-equality",
        mutual_information(symmetric),
        fano_bound(error_rate, FANO_CLASSES, _bits(FANO_CLASSES)),
        f"{FANO_CLASSES} equally frequent classes, errors spread evenly over the wrong "
        "classes",
        positive_arguments=True,
    )
    register(
        "mi-decay",
        base_rate * (1 - mutual_information(_joint) / _label_entropy),
        base_rate * _conditional_entropy / _label_entropy,
        "any joint distribution of two binary labels with positive entries",
        positive_arguments=True,
    )
