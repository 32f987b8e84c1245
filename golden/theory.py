"""The golden ratio, the golden momentum and the golden learning rate, derived with SymPy.

This module is the only place these numbers come from (Jaeger 2024, Eqs. 24-34).
"""
from __future__ import annotations

from functools import lru_cache

import sympy as sp

p = sp.symbols("p", real=True)


@lru_cache(maxsize=None)
def golden_ratio_roots() -> tuple[sp.Expr, sp.Expr]:
    """Roots of p = (1 - p)/p (Eq. 24), positive root first."""
    roots = sp.solve(sp.Eq(p, (1 - p) / p), p)
    return tuple(sorted(roots, key=lambda r: -float(r)))


def golden_ratio() -> sp.Expr:
    """p1 = (sqrt(5) - 1)/2, the positive root (Eq. 26)."""
    return golden_ratio_roots()[0]


def golden_alpha() -> sp.Expr:
    """Momentum weight alpha = sqrt(2) * p1 (Eq. 33), simplified exactly."""
    return sp.radsimp(sp.expand(sp.sqrt(2) * golden_ratio()))


def golden_eta() -> sp.Expr:
    """Learning rate eta = (1 - alpha)^2 (Eq. 34), simplified exactly."""
    return sp.expand((1 - golden_alpha()) ** 2)


ALPHA: float = float(golden_alpha())
ETA: float = float(golden_eta())
