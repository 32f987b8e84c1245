"""What every results chapter shows around its numbers, written once.

A :class:`Study` is an experiment's stored runs under one protocol (or the quick
fallback); its :meth:`Study.header` says what *this* experiment ran, read from its runs'
configurations rather than from the protocol's defaults, in lines of at most 88
characters. :func:`load` decides between the stored runs and the quick fallback, and
whether that fallback may be trained now: a chapter in quick mode may, ``python -m
golden figures`` never does (:func:`stored_only`). :func:`table` turns rows into a
Markdown table, :func:`pair_label` names a (learning rate, momentum) pair the same way
on every page.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields
from typing import Callable, Iterable, Iterator, TypeVar

from golden import experiments, settings
from golden.experiments import ExperimentError, finished_runs, protocol
from golden.protocols import Protocol, number_list, replicates_text
from golden.results import Run, runs_of
from golden.store import Store

OPTIMIZER_NAMES = {"sgd": "SGD with momentum", "adam": "Adam"}
LOSS_NAMES = {"cross_entropy": "cross-entropy", "mse": "squared error"}


S = TypeVar("S", bound="Study")


@dataclass(frozen=True)
class Study:
    """One experiment's runs under one protocol; ``fell_back``: the quick fallback."""

    experiment: str
    proto: Protocol
    runs: tuple[Run, ...]
    fell_back: bool = False
    store: Store | None = None  # where the runs were read: the studies they build on

    @property
    def epochs(self) -> int:
        return max(run.config.epochs for run in self.runs)

    @property
    def replicates(self) -> list[int]:
        return sorted({run.replicate for run in self.runs})

    @property
    def cross_validated(self) -> bool:
        return any(run.config.fold >= 0 for run in self.runs)

    def header(self) -> str:
        return header(self.experiment, self.proto, self.runs)

    def note(self) -> str:
        return results_note(self.proto, self.fell_back)

    def extended(self, kind: type[S], **parts) -> S:
        """This study as a subclass ``kind`` of study, with the ``parts`` it adds."""
        own = {f.name: getattr(self, f.name) for f in fields(Study)}
        return kind(**own, **parts)

    def stamp(self, extra: str = "") -> str:
        """The protocol note written under this study's figures, with the data set
        when it is not MNIST."""
        data = f" on {self.proto.title}" if self.proto.dataset != "mnist" else ""
        note = (
            f"{self.experiment}{data}, protocol {self.proto.name} "
            f"[{self.proto.digest()}]"
        )
        return note + (f", {extra}" if extra else "")


class RecordsMissing(ExperimentError):
    """An experiment's records are not stored and may not be trained here: the error
    names the command that computes them."""


# The experiments whose configurations are promoted from another's stored results.
NEEDS = {
    "long": ("grid",),
    "contenders10": ("grid",),
    "contenders30": ("grid", "contenders10"),
}


@dataclass(frozen=True)
class Source:
    """Where :func:`load` reads records by default, and whether it may train a missing
    quick fallback: a chapter may (quick mode asks for it), ``python -m golden
    figures`` never does."""

    store: Store | None = None  # None: Store.default()
    compute: bool = True


SOURCE: ContextVar[Source] = ContextVar("source", default=Source())


@contextmanager
def stored_only(store: Store) -> Iterator[None]:
    """Within this block, :func:`load` reads ``store`` and trains nothing: records that
    are missing are a :class:`RecordsMissing` error naming the command that computes
    them. For callers of figures and tables that take no arguments."""
    token = SOURCE.set(Source(store, compute=False))
    try:
        yield
    finally:
        SOURCE.reset(token)


def store_in_force(store: Store | None = None) -> Store:
    """``store``, else the :class:`Source`'s, else :meth:`Store.default`."""
    return store or SOURCE.get().store or Store.default()


def complete_runs(
    experiment_name: str, proto: Protocol, store: Store
) -> list[dict] | None:
    """The stored runs of every configuration of an experiment, or None while one is
    missing (or one of the runs it is promoted from)."""
    try:
        return finished_runs(experiment_name, proto, store, "")
    except ExperimentError:
        return None


def stored_or_quick(
    experiment_name: str,
    preferred: str = "book",
    dataset: str = "mnist",
    store: Store | None = None,
    compute: bool | None = None,
) -> tuple[Protocol, list[dict], bool]:
    """The complete stored runs under ``preferred``, else the ``quick`` protocol's;
    those are trained now, into ``store``, if they are missing and ``compute``, else
    :class:`RecordsMissing`. Both default to the :class:`Source` in force; when the
    records may only be read, quick records stand in for missing ones in quick mode
    alone.

    Returns the protocol used, its runs and whether it fell back to ``quick``. Chapters
    show a visible box when they fell back, so a reader never mistakes quick numbers
    for the book's.
    """
    store = store_in_force(store)
    compute = SOURCE.get().compute if compute is None else compute
    # what is only read falls back to quick records in quick mode alone: a full-mode
    # figure is never drawn from them
    fallback = compute or settings.quick_mode()
    for name in (preferred, "quick") if fallback else (preferred,):
        proto = protocol(name, dataset)
        runs = complete_runs(experiment_name, proto, store)
        if runs is not None:
            return proto, runs, name != preferred
    needed = (*NEEDS.get(experiment_name, ()), experiment_name)
    if not compute:
        data = f" --dataset {dataset}" if dataset != "mnist" else ""
        commands = " then ".join(
            f"python -m golden sweep {name} --protocol {preferred}{data}"
            for name in needed
        )
        raise RecordsMissing(
            f"the records of {experiment_name} are not stored in {store.root}: "
            f"compute them with {commands}"
        )
    from golden import runner  # Dask, only when a chapter has to train

    for name in needed:
        runner.sweep(experiments.experiment(name), proto, store, progress=False)
    return proto, finished_runs(experiment_name, proto, store, "this chapter"), True


def load(
    experiment_name: str,
    preferred: str = "book",
    enrich: Callable[[dict], dict] | None = None,
    dataset: str = "mnist",
    store: Store | None = None,
    compute: bool | None = None,
) -> Study:
    """The complete stored runs of an experiment on ``dataset`` in ``store``, else the
    quick protocol's (see :func:`stored_or_quick`, which says what ``store`` and
    ``compute`` default to); ``enrich`` adds measures a study derives from each record
    before it is typed."""
    store = store_in_force(store)
    proto, records, fell_back = stored_or_quick(
        experiment_name, preferred, dataset, store, compute
    )
    if enrich is not None:
        records = [enrich(record) for record in records]
    return Study(experiment_name, proto, tuple(runs_of(records)), fell_back, store)


def header(experiment_name: str, proto: Protocol, runs: Iterable[Run]) -> str:
    """What the runs of an experiment ran: data, epochs, optimisers, losses, replicates,
    how they ended and their compute, each line at most 88 characters."""
    runs = list(runs)
    folds = [run.config.fold for run in runs if run.config.fold >= 0]
    seeds = [run.config.seed for run in runs]
    replicates = replicates_text(folds or seeds, bool(folds))
    epochs = number_list(run.config.epochs for run in runs)
    epochs += " epoch" if epochs == "1" else " epochs"
    optimizers = ", ".join(
        OPTIMIZER_NAMES.get(o, o)
        for o in sorted({run.config.optimizer for run in runs}, reverse=True)
    )
    losses = ", ".join(
        LOSS_NAMES.get(o, o) for o in sorted({run.config.loss for run in runs})
    )
    ended = {
        status: sum(run.status == status for run in runs)
        for status in ("diverged", "unlearned")
    }
    hours = sum(run.wall_time_s for run in runs) / 3600
    batch = runs[0].config.batch_size if runs else proto.batch_size
    engine = f", {proto.engine} engine" if proto.engine != "per-run" else ""
    lines = [
        f"{experiment_name}, protocol '{proto.name}' [{proto.digest()}]{engine}",
        f"  data: {proto.data_line()}",
        f"  {len(runs)} run{'' if len(runs) == 1 else 's'} of {epochs}, {replicates}",
        f"  {proto.model.upper()}, batch {batch}, {optimizers}; loss {losses}",
        f"  {ended['diverged']} diverged, {ended['unlearned']} at chance accuracy; "
        f"{hours:.2f} {'device' if engine else 'core'}-hours",
    ]
    return "\n".join(lines)


def results_note(proto: Protocol, fell_back: bool) -> str:
    """The box a chapter shows above its results: stored, or the quick fallback."""
    if fell_back:
        return (
            ":::{warning}\nThe stored `book`-protocol results were not found, so "
            "this page shows the tiny `quick` protocol, run just now. Its numbers say "
            "nothing about the claims; run `make reproduce` and rebuild.\n:::"
        )
    if proto.engine == "fused":
        return (
            f":::{{note}}\nStored results of protocol `{proto.name}` "
            f"[{proto.digest()}], made by `golden`'s fused engine (`python -m golden "
            "sweep --engine fused`), which trains many models as one network; over "
            "whole runs its numbers agree with the per-run engine's only "
            "statistically. This page only reads them.\n:::"
        )
    return (
        f":::{{note}}\nStored results of protocol `{proto.name}` [{proto.digest()}], "
        "made by `golden`'s runner (`python -m golden sweep`); this page only reads "
        "them.\n:::"
    )


def table(headers: Iterable[str], rows: Iterable[Iterable[object]]) -> str:
    """A Markdown table; cells are written with ``str`` (format numbers before)."""
    headers = list(headers)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        cells = [str(cell).replace("|", "\\|") for cell in row]
        if len(cells) != len(headers):
            raise ValueError(f"a row has {len(cells)} cells for {len(headers)} columns")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pair_label(pair: tuple[float, float]) -> str:
    """η and α of a pair, with the book's names for the golden and the common pair."""
    name = {experiments.GOLDEN_PAIR: " (golden)", experiments.COMMON_PAIR: " (common)"}
    return f"η={pair[0]:g}, α={pair[1]:g}{name.get(pair, '')}"


def percent_list(levels: Iterable[float]) -> str:
    return ", ".join(f"{level:.0%}" for level in levels)
