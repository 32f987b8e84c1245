"""The golden momentum and learning rate, Eqs. (33)-(34) of Jaeger (2024), and what the
golden pair does as heavy-ball momentum.

The numbers themselves come from :mod:`golden.theory`; the chapter
chapters/golden_values.md checks the identities registered here. The pair's behaviour on
a quadratic (:func:`golden.derivations.momentum.pair_summary`) is momentum's algebra.
"""

from __future__ import annotations

import sympy as sp

from golden import identities, theory
from golden.derivations.momentum import alpha
from golden.identities import register


@identities.builds
def _identities() -> None:
    p1, _ = theory.golden_ratio_roots()
    register("golden-alpha", sp.sqrt(2) * p1, (sp.sqrt(10) - sp.sqrt(2)) / 2, "none")
    register(
        "golden-eta",
        (1 - theory.golden_alpha()) ** 2,
        4 + sp.sqrt(2) - sp.sqrt(5) - sp.sqrt(10),
        "alpha from Eq. (33)",
    )
    with sp.evaluate(False):
        complement_squared_step = theory.effective_step((1 - alpha) ** 2, alpha)
    register(
        "effective-step-complement",
        complement_squared_step,
        1 - alpha,
        "eta = (1 - alpha)^2, alpha != 1",
    )
    register(
        "golden-effective-step",
        theory.golden_effective_step(),
        (2 + sp.sqrt(2) - sp.sqrt(10)) / 2,
        "the golden pair",
    )
    register(
        "golden-rate-band",
        sp.Matrix([(1 - sp.sqrt(alpha)) ** 2, (1 + sp.sqrt(alpha)) ** 2])
        / (1 - alpha) ** 2,
        sp.Matrix([1 / (1 + sp.sqrt(alpha)) ** 2, 1 / (1 - sp.sqrt(alpha)) ** 2]),
        "eta = (1 - alpha)^2, 0 < alpha < 1",
    )
