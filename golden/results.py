"""Typed results: records become runs, runs become groups, groups give estimates and
paired comparisons.

The rules of the book's statistics live here once: a run is *diverged* (its loss stopped
being finite), *unlearned* (it finished at chance accuracy) or *learned*; only learned
runs enter a mean; replicates are keyed by fold (cross-validated runs) or by seed, and
comparisons pair them by that key, never by position; one group against the rest
(:func:`against_the_rest`) is a family, corrected with :func:`golden.stats.holm`; equal
means share a rank (:func:`tied_ranks`); and a difference prints one way,
``+0.0100 ± 0.0020`` (:class:`Comparison`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Callable, Hashable, Iterable

from golden import stats
from golden.data import CLASSES
from golden.train import TrainConfig

LEARNED = 2 / CLASSES  # a finished run below twice chance accuracy did not learn
FAMILY_ALPHA = 0.05  # family-wise error rate of every family of comparisons in the book
TIE = 1e-9  # means closer than this are equal (accuracies are multiples of 1e-4)
_CONFIG_FIELDS = {f.name for f in fields(TrainConfig)}


@dataclass(frozen=True)
class Run:
    """One stored run: its configuration, its per-epoch metrics and how it ended."""

    config: TrainConfig
    metrics: dict[str, list[float]]  # train_loss, val_acc, test_acc, lr, val_mi, ...
    probes: dict[str, list[float]] = field(default_factory=dict)
    diverged: bool = False
    wall_time_s: float = 0.0

    @classmethod
    def from_record(cls, record: dict) -> Run:
        """A run from a stored record's ``run`` part (what ``Store.load`` returns).

        The one place that knows older records: a field a record lacks (``fold``, in
        records made before cross-validation) takes its :class:`TrainConfig` default.
        """
        config = TrainConfig(
            **{k: v for k, v in record["config"].items() if k in _CONFIG_FIELDS}
        )
        metrics = {
            k: v
            for k, v in record.items()
            if isinstance(v, list) and k != "val_confusion"
        }
        return cls(
            config,
            metrics,
            record.get("probes", {}),
            bool(record["diverged"]),
            float(record.get("wall_time_s", 0.0)),
        )

    @property
    def pair(self) -> tuple[float, float]:
        return self.config.lr, self.config.momentum

    @property
    def replicate(self) -> int:
        """The key comparisons pair on: the fold when cross-validated, else the seed."""
        return self.config.fold if self.config.fold >= 0 else self.config.seed

    def learned(self, epoch: int | None = None) -> bool:
        """Finite to the end, and at ``epoch`` above twice chance in validation
        accuracy."""
        return not self.diverged and self.final("val_acc", epoch) >= LEARNED

    @property
    def status(self) -> str:
        return (
            "diverged"
            if self.diverged
            else "learned"
            if self.learned()
            else "unlearned"
        )

    def final(self, metric: str, epoch: int | None = None) -> float:
        """``metric`` after ``epoch`` (1-based; default: the last), NaN if absent."""
        values = self.metrics.get(metric, [])
        index = len(values) if epoch is None else epoch
        value = values[index - 1] if 1 <= index <= len(values) else None
        return math.nan if value is None else float(value)


def runs_of(records: Iterable[dict | Run]) -> list[Run]:
    """Typed runs from stored records (runs are passed through)."""
    return [r if isinstance(r, Run) else Run.from_record(r) for r in records]


@dataclass(frozen=True)
class Estimate:
    """A mean with the half-width of its 95% Student-t interval over ``n`` values."""

    mean: float
    half: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Estimate:
        values = list(values)
        mean, half = stats.mean_ci(values)
        return cls(float(mean), float(half), len(values))

    def __format__(self, spec: str) -> str:
        spec = spec or ".4f"
        if math.isnan(self.mean):
            return "n/a"
        if math.isnan(self.half):
            return f"{self.mean:{spec}}"
        return f"{self.mean:{spec}} ± {self.half:{spec}}"


@dataclass(frozen=True)
class Group:
    """The runs of one setting (a pair, an optimizer at a noise level), by replicate."""

    key: Hashable
    runs: tuple[Run, ...]
    epoch: int | None = None  # read every metric after this epoch (default: the last)

    @property
    def learned(self) -> dict[int, Run]:
        return {run.replicate: run for run in self.runs if run.learned(self.epoch)}

    @property
    def diverged(self) -> int:
        return sum(run.diverged for run in self.runs)

    @property
    def unlearned(self) -> int:
        return len(self.runs) - self.diverged - len(self.learned)

    @property
    def replicates(self) -> list[int]:
        return sorted(run.replicate for run in self.runs)

    def values(self, metric: str) -> dict[int, float]:
        """Final ``metric`` of each learned run, keyed by replicate."""
        return {
            k: run.final(metric, self.epoch) for k, run in sorted(self.learned.items())
        }

    def estimate(self, metric: str) -> Estimate:
        return Estimate.of(self.values(metric).values())

    def curves(self, metric: str) -> list[list[float]]:
        """Per-epoch ``metric`` of every learned run, in replicate order (for plots)."""
        return [self.learned[k].metrics[metric] for k in sorted(self.learned)]


def group(
    runs: Iterable[dict | Run],
    key: Callable[[Run], Hashable] = lambda run: run.pair,
    epoch: int | None = None,
) -> dict[Hashable, Group]:
    """Runs grouped by ``key`` (default: the (lr, momentum) pair), sorted by key."""
    grouped: dict[Hashable, list[Run]] = {}
    for run in runs_of(runs):
        grouped.setdefault(key(run), []).append(run)
    return {
        k: Group(k, tuple(sorted(v, key=lambda r: r.replicate)), epoch)
        for k, v in sorted(grouped.items(), key=lambda item: _sortable(item[0]))
    }


def _sortable(key):
    return (
        tuple(map(str, key))
        if isinstance(key, tuple) and not all(isinstance(k, (int, float)) for k in key)
        else key
    )


@dataclass(frozen=True)
class Comparison:
    """``a`` minus ``b`` in a metric, paired over the replicates both learned."""

    a: Hashable
    b: Hashable
    replicates: tuple[int, ...]
    diff: Estimate
    p_value: float
    p_adjusted: float = math.nan  # after Holm over the family it was tested in

    @property
    def significant(self) -> bool:
        p = self.p_value if math.isnan(self.p_adjusted) else self.p_adjusted
        return p < FAMILY_ALPHA

    @property
    def direction(self) -> int:
        """+1: ``a`` significantly higher, -1: significantly lower, 0: neither."""
        return 0 if not self.significant else 1 if self.diff.mean > 0 else -1

    def __format__(self, spec: str) -> str:
        """The difference with its 95% interval, the book's one way to print it:
        ``+0.0100 ± 0.0020`` (``spec`` formats the mean; default ``+.4f``)."""
        return f"{self.diff.mean:{spec or '+.4f'}} ± {self.diff.half:.4f}"

    @property
    def flipped(self) -> Comparison:
        """The same test read the other way round: ``b`` minus ``a``."""
        diff = Estimate(-self.diff.mean, self.diff.half, self.diff.n)
        return Comparison(
            self.b, self.a, self.replicates, diff, self.p_value, self.p_adjusted
        )

    @property
    def p_text(self) -> str:
        """``p = 0.012, Holm-corrected 0.034`` (the raw p alone outside a family)."""
        raw = f"p = {self.p_value:.3f}"
        if math.isnan(self.p_adjusted):
            return raw
        return f"{raw}, Holm-corrected {self.p_adjusted:.3f}"

    @property
    def cells(self) -> tuple[str, str, str]:
        """The difference, its p and Holm's p, as the book's tables show them."""
        return f"{self}", f"{self.p_value:.3f}", f"{self.p_adjusted:.3f}"


def paired_values(
    a: dict[int, float], b: dict[int, float]
) -> tuple[tuple[int, ...], list[float], list[float]]:
    """The replicates both have, and their values in that order."""
    shared = tuple(sorted(set(a) & set(b)))
    return shared, [a[k] for k in shared], [b[k] for k in shared]


def compare(
    a: dict[int, float],
    b: dict[int, float],
    a_key: Hashable = "a",
    b_key: Hashable = "b",
) -> Comparison | None:
    """Paired t-test of ``a - b`` over shared replicates; None with fewer than two."""
    shared, xs, ys = paired_values(a, b)
    if len(shared) < 2:
        return None
    test = stats.paired_t(xs, ys)
    return Comparison(
        a_key,
        b_key,
        shared,
        Estimate(float(test["mean_diff"]), float(test["ci"]), len(shared)),
        test["p_value"],
    )


def family(comparisons: Iterable[Comparison | None]) -> list[Comparison]:
    """The comparisons of one family, Holm-adjusted together (missing ones dropped)."""
    tested = [c for c in comparisons if c is not None]
    adjusted = stats.holm({i: c.p_value for i, c in enumerate(tested)})
    return [
        Comparison(c.a, c.b, c.replicates, c.diff, c.p_value, adjusted[i])
        for i, c in enumerate(tested)
    ]


def against_the_rest(
    groups: dict[Hashable, Group], key: Hashable, metric: str = "test_acc"
) -> list[Comparison]:
    """The group ``key`` (the golden pair, say) against every other group in ``metric``
    (``key`` − other), paired by replicate and Holm-corrected as one family; empty
    when there is no group ``key``."""
    if key not in groups:
        return []
    mine = groups[key].values(metric)
    return family(
        compare(mine, other.values(metric), key, name)
        for name, other in groups.items()
        if name != key
    )


def standing(comparisons: Iterable[Comparison], rank: int) -> str:
    """Where a group stands against the rest (:func:`against_the_rest`): "beaten" (a
    group is significantly ahead after the correction), else "first" at rank 1, else
    "tied"."""
    if any(c.direction < 0 for c in comparisons):
        return "beaten"
    return "first" if rank == 1 else "tied"


def tied_ranks(values: dict[Hashable, float], tie: float = TIE) -> dict[Hashable, int]:
    """Competition ranks, highest value first: values within ``tie`` of the one ranked
    just above share its rank, and the next rank skips (1, 1, 3). A mean of three
    accuracies is a float, so two exactly tied means can differ in their last bit."""
    ordered = sorted(values.items(), key=lambda item: -item[1])
    ranks: dict[Hashable, int] = {}
    for i, (key, value) in enumerate(ordered):
        above = ordered[i - 1] if i else None
        tied = above is not None and above[1] - value <= tie
        ranks[key] = ranks[above[0]] if tied else i + 1
    return ranks
