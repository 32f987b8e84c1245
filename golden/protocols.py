"""Protocols: everything that decides a run's numbers besides its own configuration.

A protocol names the data (full splits or the quick subsets, the fixed validation split
or cross-validation folds, all images or a stratified fraction), the epochs, the
replicates (seeds, or folds under cross-validation), the batch size and the model. Its
digest names the folder its records live in, so results of different protocols never
mix. The engine that trains the runs is part of the protocol too: the per-run engine
(:mod:`golden.train`, one process per run) or the fused one (:mod:`golden.fused`, many
models as one network), whose numbers agree with the per-run engine's only
statistically over whole runs; so their records never share a folder.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from typing import Iterable

from golden.data import DATASETS, FOLDS

# one thread per run, one run per core: fastest here, and bitwise repeatable
THREADS_PER_RUN = 1
# the per-run engine made every record of the book; "fused" trains a fold's grid at once
ENGINES = ("per-run", "fused")
# an evaluated image costs about a third of a trained one (forward pass only): for plans
EVAL_COST = 1 / 3


class ExperimentError(ValueError):
    """An unknown experiment or protocol, a bad grid or an unusable store, in one
    line."""


@dataclass(frozen=True)
class Protocol:
    """Everything that decides a run's numbers besides its learning rate, momentum and
    seed."""

    name: str
    epochs: int  # epochs of each grid run
    long_epochs: int  # epochs of the long run
    seeds: tuple[int, ...]
    quick_data: (
        bool  # the small fixed subsets of golden.data instead of the full splits
    )
    batch_size: int = 64
    model: str = "cnn"
    # replicate k trains on fold k (seed k), not the fixed split
    cross_validation: bool = False
    data_fraction: float = 1.0  # a stratified fraction of the training images
    dataset: str = "mnist"  # a name of golden.data.DATASETS
    engine: str = "per-run"  # one of ENGINES

    def digest(self) -> str:
        """Eight hex digits of the hash of every field: a changed field gives a new
        folder. Fields added later count only when they differ from their default, so
        the folders of earlier protocols keep their names."""
        fields = {
            name: value
            for name, value in asdict(self).items()
            if name not in LATER_FIELDS or value != LATER_FIELDS[name]
        }
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[
            :8
        ]

    @property
    def title(self) -> str:
        """The data set's name as the book prints it: MNIST, Fashion-MNIST."""
        return DATASETS[self.dataset].title

    def folder_name(self) -> str:
        """``book-b17398cc``: the name and digest, with the data set when it is not
        MNIST (``book-fashion-mnist-...``) and the engine when it is not the per-run
        one (``paper-fused-...``), so that a reader of the folder sees them."""
        dataset = [self.dataset] if self.dataset != "mnist" else []
        engine = [self.engine] if self.engine != LATER_FIELDS["engine"] else []
        return "-".join([self.name, *dataset, *engine, self.digest()])

    def describe(self) -> str:
        """The protocol's defaults in lines of at most 88 characters; what one
        experiment ran is :func:`golden.report.header`'s to say."""
        return (
            f"protocol '{self.name}' [{self.digest()}]\n  data: {self.data_line()}\n"
            f"  {self.model.upper()}, batch {self.batch_size}; grid runs {self.epochs} "
            f"epoch{'s' * (self.epochs != 1)}, long runs {self.long_epochs}\n"
            f"  {self.replicates_line(self.cross_validation)}"
            + (f"\n  engine: {self.engine}" * (self.engine != LATER_FIELDS["engine"]))
        )

    def data_line(self) -> str:
        if self.quick_data:
            return (
                f"{self.title + ' ' if self.dataset != 'mnist' else ''}quick subsets "
                "(2,048 train / 512 val / 1,000 test)"
            )
        kept = round(TRAIN_IMAGES * self.data_fraction)
        subset = (
            f" of a stratified {self.data_fraction:.0%} subset"
            if self.data_fraction < 1
            else ""
        )
        return (
            f"{self.title}{subset}, {kept - kept // FOLDS:,} train / "
            f"{kept // FOLDS:,} val / 10,000 test"
        )

    def replicates_line(self, folds: bool) -> str:
        return replicates_text(self.seeds, folds)


def number_list(values: Iterable[int]) -> str:
    """Sorted distinct integers; three or more consecutive ones as ``first-last``."""
    values = sorted(set(values))
    if len(values) > 2 and values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}-{values[-1]}"
    return ", ".join(map(str, values))


def replicates_text(replicates: Iterable[int], folds: bool) -> str:
    """Seeds, or folds of the stratified split, as the book names them."""
    numbers = number_list(replicates)
    if folds:
        return f"folds {numbers} of a stratified {FOLDS}-fold split"
    return f"seeds {numbers}"


TRAIN_IMAGES = 60_000
LATER_FIELDS = {
    "cross_validation": False,
    "data_fraction": 1.0,
    "dataset": "mnist",
    "engine": "per-run",
}

# Jaeger 2024 appendix: 30 epochs x 10-fold cross-validation, on all 60,000 training
# images and on a 50% stratified subset; for a cluster (600 runs of 30 epochs per
# data size).
PAPER = Protocol(
    "paper",
    epochs=30,
    long_epochs=30,
    seeds=tuple(range(FOLDS)),
    quick_data=False,
    cross_validation=True,
)

PROTOCOLS: dict[str, Protocol] = {
    "paper": PAPER,
    # the 2024 text's second grid: the same on a 50% stratified training subset
    "paper_half": replace(PAPER, name="paper_half", data_fraction=0.5),
    # What fits in about 90 minutes on a 2-core CPU for 60 pairs x 3 seeds on the full
    # split.
    "book": Protocol(
        "book", epochs=2, long_epochs=10, seeds=(0, 1, 2), quick_data=False
    ),
    # Tiny, for tests and quick builds.
    "quick": Protocol("quick", epochs=1, long_epochs=2, seeds=(0, 1), quick_data=True),
}


def protocol(name: str, dataset: str = "mnist", engine: str = "per-run") -> Protocol:
    """The protocol ``name`` on data set ``dataset`` (MNIST unless told otherwise),
    trained by ``engine`` (the per-run one unless told otherwise)."""
    if name not in PROTOCOLS:
        raise ExperimentError(
            f"unknown protocol {name!r}: choose one of {', '.join(PROTOCOLS)}"
        )
    if dataset not in DATASETS:
        raise ExperimentError(
            f"unknown dataset {dataset!r}: choose one of {', '.join(DATASETS)}"
        )
    if engine not in ENGINES:
        raise ExperimentError(
            f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}"
        )
    return replace(PROTOCOLS[name], dataset=dataset, engine=engine)
