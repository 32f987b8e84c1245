"""The one identity engine and the one registry of every identity the book proves.

An :class:`Identity` is a claim lhs = rhs with the assumptions it needs. SymPy proves
it (:meth:`Identity.holds`) and a numeric spot check samples it at random points of its
domain (:meth:`Identity.largest_numeric_gap`), so a wrongly granted assumption is
caught.

Every module that proves identities is listed in :data:`SOURCES` and declares one
builder with :func:`builds`; the builder calls :func:`register` for each identity.
Builders run on first use, not at import: importing a module of the book stays fast, and
:data:`IDENTITIES` builds what a look-up needs (the builders of the modules already
imported, then the sources in order until the name is found; a walk over all names
builds every source).
:func:`check` proves one identity by name, which is what each chapter cell does next to
its labelled equation.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Callable

import sympy as sp

SOURCES = (
    "golden.derivations.momentum",
    "golden.derivations.bayes",
    "golden.derivations.golden_values",
    "golden.derivations.loss",
    "golden.derivations.effective_step",
    "golden.beyond",
)
"""The modules that register identities, each with one builder."""

RANGES: dict[sp.Symbol, tuple[float, float]] = {}
"""Where the numeric spot checks sample each symbol (unless an identity says
otherwise)."""


def symbols(names: str, low: float, high: float, **assumptions):
    """SymPy symbols that remember where the numeric checks may sample them."""
    created = sp.symbols(names, **assumptions)
    for symbol in created if isinstance(created, tuple) else (created,):
        RANGES[symbol] = (low, high)
    return created


def substitute(expr, definitions: dict):
    """Replace symbols by their definitions, inside derivatives too.

    A definition holds everywhere; plain ``subs`` would treat the symbols as constants
    under a derivative.
    """
    if not definitions:
        return expr
    expr = expr.replace(
        lambda part: isinstance(part, sp.Derivative),
        lambda derivative: sp.Derivative(
            substitute(derivative.expr, definitions), *derivative.variable_count
        ),
    )
    return expr.subs(definitions)


def _entries(expr) -> list:
    return list(expr) if isinstance(expr, sp.MatrixBase) else [expr]


def _positive_argument_forms(expr):
    """Normal forms of expr, valid when every log, root and |.| argument is positive."""
    expr = sp.powdenest(sp.trigsimp(expr), force=True)
    expr = expr.replace(sp.Abs, lambda argument: argument)
    yield sp.expand_log(expr, force=True)
    combined = sp.logcombine(expr, force=True)
    yield combined.replace(
        sp.log, lambda argument: sp.log(sp.radsimp(sp.expand(argument)))
    )


@dataclass(frozen=True)
class Identity:
    """lhs = rhs, claimed for every value allowed by ``assumptions``.

    ``positive_arguments`` states that the arguments of logarithms, roots and absolute
    values are positive on the domain; only then may SymPy combine them. The numeric
    check samples the domain and so catches a claim the assumption would make wrongly
    true.
    """

    name: str
    lhs: sp.Expr | sp.MatrixBase
    rhs: sp.Expr | sp.MatrixBase
    assumptions: str
    positive_arguments: bool = False
    given: dict = field(default_factory=dict)
    """Definitions substituted before checking; the identity is shown without them."""
    ranges: dict = field(default_factory=dict, repr=False)
    """Sampling ranges of this identity's numeric check, over :data:`RANGES`."""

    def _sides(self) -> tuple[list, list]:
        """Both sides entry by entry, definitions substituted, derivatives done."""

        def written_out(side) -> list:
            return [
                substitute(sp.sympify(entry), self.given).doit()
                for entry in _entries(side)
            ]

        return written_out(self.lhs), written_out(self.rhs)

    def residuals(self) -> list[sp.Expr]:
        """lhs - rhs entry by entry, in the simplest form found; all zero iff proved."""
        found = []
        for left, right in zip(*self._sides()):
            difference = left - right
            simplest = 0 if sp.expand(difference) == 0 else sp.simplify(difference)
            if simplest != 0 and self.positive_arguments:
                forms = (
                    sp.simplify(form) for form in _positive_argument_forms(difference)
                )
                simplest = next((form for form in forms if form == 0), simplest)
            found.append(simplest)
        return found

    def holds(self) -> bool:
        return all(residual == 0 for residual in self.residuals())

    def proved(self) -> "Identity":
        """This identity once SymPy has proved it (residual zero); AssertionError if
        not."""
        if not self.holds():
            raise AssertionError(
                f"{self.name}: residual {self.residuals()} is not zero"
            )
        return self

    def _sample(self, rng: random.Random, symbol: sp.Symbol):
        low, high = self.ranges.get(symbol) or RANGES[symbol]
        return rng.randint(low, high) if symbol.is_integer else rng.uniform(low, high)

    def largest_numeric_gap(self, samples: int = 12, seed: int = 0) -> float:
        """Largest relative |lhs - rhs| at random points of the sampling ranges."""
        rng = random.Random(seed)
        sides = self._sides()
        free = set().union(*(entry.free_symbols for side in sides for entry in side))
        symbols_in_order = sorted(free, key=str)
        left, right = (sp.lambdify(symbols_in_order, side, "mpmath") for side in sides)
        gap = 0.0
        for _ in range(samples):
            point = [self._sample(rng, symbol) for symbol in symbols_in_order]
            for left_value, right_value in zip(left(*point), right(*point)):
                difference = abs(complex(left_value - right_value))
                gap = max(gap, difference / max(1.0, abs(complex(left_value))))
        return gap

    def _repr_latex_(self) -> str:
        return rf"$\displaystyle {sp.latex(self.lhs)} = {sp.latex(self.rhs)}$"


class Registry(MutableMapping):
    """Identities by the label of the equation each verifies, built on first use.

    A label names one identity. Looking a name up runs the builders of the modules
    already imported, and while the name is still missing imports and builds the
    modules of ``sources`` in order; iterating or counting builds them all.
    """

    def __init__(self, sources: tuple[str, ...]):
        self.sources = sources
        self._identities: dict[str, Identity] = {}
        self._origin: dict[str, str] = {}
        self._builders: dict[str, Callable[[], None]] = {}
        self._built: set[str] = set()
        self._building: list[str] = []

    # --- building

    def add_builder(self, module: str, builder: Callable[[], None]) -> None:
        """``builder`` registers the identities of ``module`` when first needed."""
        if module not in self._built:
            self._builders[module] = builder

    def add(self, identity: Identity) -> None:
        """Register ``identity`` under its name; a label may name only one identity."""
        if identity.name in self._identities:
            raise ValueError(f"identity {identity.name!r} registered twice")
        self._identities[identity.name] = identity
        self._origin[identity.name] = self._building[-1] if self._building else ""

    def build(self, module: str) -> None:
        """Run the builder of ``module`` (imported first) unless it has run."""
        importlib.import_module(module)
        builder = self._builders.pop(module, None)
        if builder is None:
            return
        self._built.add(module)
        self._building.append(module)
        try:
            builder()
        finally:
            self._building.pop()

    def build_imported(self) -> None:
        """Run every pending builder, that is, those of the modules imported so far."""
        while self._builders:
            self.build(next(iter(self._builders)))

    def build_all(self) -> None:
        """Import every source module and run every builder."""
        for module in self.sources:
            importlib.import_module(module)
        self.build_imported()

    def pending(self) -> tuple[str, ...]:
        """The modules imported whose builders have not run yet."""
        return tuple(self._builders)

    def of_module(self, module: str) -> dict[str, Identity]:
        """The identities that ``module``'s builder registered."""
        self.build(module)
        return {
            name: identity
            for name, identity in self._identities.items()
            if self._origin[name] == module
        }

    # --- the mapping

    def __getitem__(self, name: str) -> Identity:
        if name not in self._identities:
            self.build_imported()
        for module in self.sources:
            if name in self._identities:
                break
            self.build(module)
        return self._identities[name]

    def __setitem__(self, name: str, identity: Identity) -> None:
        self._identities[name] = identity
        self._origin[name] = ""

    def __delitem__(self, name: str) -> None:
        del self._identities[name]
        del self._origin[name]

    def __iter__(self) -> Iterator[str]:
        self.build_all()
        return iter(dict(self._identities))

    def __len__(self) -> int:
        self.build_all()
        return len(self._identities)


IDENTITIES = Registry(SOURCES)
"""Every identity of the book, by the label of the equation it verifies."""


def builds(builder: Callable[[], None]) -> Callable[[], None]:
    """Declare ``builder`` as the function that registers its module's identities.

    Used as a decorator at module level; the builder runs on first use of the registry.
    """
    IDENTITIES.add_builder(builder.__module__, builder)
    return builder


def register(
    name: str,
    lhs,
    rhs,
    assumptions: str,
    *,
    positive_arguments: bool = False,
    given: dict | None = None,
    ranges: dict | None = None,
) -> Identity:
    """Add the identity lhs = rhs under the label ``name``, from inside a builder."""
    identity = Identity(
        name, lhs, rhs, assumptions, positive_arguments, given or {}, ranges or {}
    )
    IDENTITIES.add(identity)
    return identity


def check(name: str) -> Identity:
    """Prove the identity ``name`` and return it, so that a chapter cell shows what was
    proved."""
    return IDENTITIES[name].proved()
