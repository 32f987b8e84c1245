"""What every results chapter shows around its numbers, written once.

A :class:`Study` is an experiment's stored runs under one protocol (or the quick
fallback); its :meth:`Study.header` says what *this* experiment ran, read from its runs'
configurations rather than from the protocol's defaults, in lines of at most 88
characters. :func:`table` turns rows into a Markdown table, :func:`pair_label` names a
(learning rate, momentum) pair the same way on every page.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable, Iterable, TypeVar

from golden import experiments
from golden.protocols import Protocol, number_list, replicates_text
from golden.results import Run, runs_of

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


def load(
    experiment_name: str,
    preferred: str = "book",
    enrich: Callable[[dict], dict] | None = None,
    dataset: str = "mnist",
) -> Study:
    """The complete stored runs of an experiment on ``dataset``, else the quick
    protocol's (see :func:`golden.experiments.stored_or_quick`); ``enrich`` adds
    measures a study derives from each record before it is typed."""
    proto, records, fell_back = experiments.stored_or_quick(
        experiment_name, preferred, dataset
    )
    if enrich is not None:
        records = [enrich(record) for record in records]
    return Study(experiment_name, proto, tuple(runs_of(records)), fell_back)


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
