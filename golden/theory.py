"""The golden ratio, the golden momentum and the golden learning rate, derived with
SymPy.

This module is the only place these numbers come from (Jaeger 2024, Eqs. 24-34).
Everything else in the book, prose included, asks these functions instead of typing a
decimal.
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp

p = sp.symbols("p", real=True)

GOLDEN_QUADRATIC = p**2 + p - 1
"""Eq. (25): p = (1 - p)/p multiplied through by p."""

NEGATED_GOLDEN_QUADRATIC = p**2 - p - 1
"""Eq. (29): Eq. (25) after substituting -p for p."""

COMMON_PAIR: tuple[float, float] = (0.01, 0.9)
"""The (learning rate, momentum) pair most used in practice: "the common pair"."""

COMMON_PAIRS: tuple[tuple[float, float], ...] = (
    COMMON_PAIR,
    (0.1, 0.9),
    (0.001, 0.9),
    (0.01, 0.0),
    (0.1, 0.0),
)
"""(learning rate, momentum) pairs common in practice, the ones the golden pair is
compared with."""


def _descending(roots) -> tuple[sp.Expr, ...]:
    return tuple(sorted(roots, key=lambda root: -float(root)))


@lru_cache(maxsize=None)
def golden_ratio_roots() -> tuple[sp.Expr, sp.Expr]:
    """Roots of p = (1 - p)/p (Eq. 24), positive root first: p1 (Eq. 26) and p2 (Eq.
    27)."""
    roots = sp.solve(sp.Eq(p, (1 - p) / p), p)
    return _descending(roots)


@lru_cache(maxsize=None)
def negated_golden_ratio_roots() -> tuple[sp.Expr, sp.Expr]:
    """Roots of p^2 - p - 1 = 0 (Eq. 29), largest first: -p2 and -p1 (Eq. 30)."""
    return _descending(sp.solve(NEGATED_GOLDEN_QUADRATIC, p))


def all_golden_ratios() -> tuple[sp.Expr, ...]:
    """The four numbers the source calls "the golden ratio": p1, p2, -p1, -p2."""
    p1, p2 = golden_ratio_roots()
    return (p1, p2, -p1, -p2)


def golden_ratio() -> sp.Expr:
    """p1 = (sqrt(5) - 1)/2, the positive root (Eq. 26)."""
    return golden_ratio_roots()[0]


def golden_alpha() -> sp.Expr:
    """Momentum weight alpha = sqrt(2) * p1 (Eq. 33), simplified exactly."""
    return sp.radsimp(sp.expand(sp.sqrt(2) * golden_ratio()))


def golden_eta() -> sp.Expr:
    """Learning rate eta = (1 - alpha)^2 (Eq. 34), simplified exactly."""
    return sp.expand((1 - golden_alpha()) ** 2)


def effective_step(eta, alpha):
    """eta / (1 - alpha): the step heavy-ball momentum settles to under a constant
    gradient."""
    return eta / (1 - alpha)


def golden_effective_step() -> sp.Expr:
    """The golden pair's effective step, simplified exactly (it equals 1 - alpha)."""
    return sp.radsimp(effective_step(golden_eta(), golden_alpha()))


ALPHA: float = float(golden_alpha())
ETA: float = float(golden_eta())
