"""Experiments: named lists of configurations x replicates (seeds or folds).

What an experiment trains is defined here; :mod:`golden.runner` runs it under a protocol
(:mod:`golden.protocols`) and :mod:`golden.store` keeps one record per finished run.
Nothing here runs anything: an experiment is a value the runner is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from golden import theory
from golden.data import splits
from golden.protocols import (
    PROTOCOLS,
    THREADS_PER_RUN,
    ExperimentError,
    Protocol,
    protocol,
)
from golden.store import Store, run_id
from golden.train import TrainConfig

__all__ = [
    "PROTOCOLS",
    "THREADS_PER_RUN",
    "ExperimentError",
    "Protocol",
    "protocol",
    "TrainConfig",
]


# The grid of Jaeger 2024's appendix. It lists the golden learning rate and momentum
# rounded to three decimals, so those two entries are computed from golden.theory
# here, not typed.
GOLDEN_GRID_LR = round(theory.ETA, 3)
GOLDEN_GRID_MOMENTUM = round(theory.ALPHA, 3)
GRID_LRS = (0.0001, 0.001, 0.01, GOLDEN_GRID_LR, 0.1, 0.2)
GRID_MOMENTA = (0.0, 0.2, 0.4, 0.6, 0.8, 0.825, 0.85, GOLDEN_GRID_MOMENTUM, 0.9, 0.925)
COMMON_PAIR = theory.COMMON_PAIR
GOLDEN_PAIR = (GOLDEN_GRID_LR, GOLDEN_GRID_MOMENTUM)


def grid_pairs(lrs=GRID_LRS, momenta=GRID_MOMENTA) -> list[tuple[float, float]]:
    """All distinct (learning rate, momentum) pairs in the order given, checked so that
    a bad grid fails before any training. A value given twice (0.1 and 0.10), or as -0
    and 0, is one grid point: it is trained once and stored under one name."""
    pairs = list(
        dict.fromkeys((float(lr) + 0.0, float(m) + 0.0) for lr in lrs for m in momenta)
    )
    if not pairs:
        raise ExperimentError(
            "the grid is empty: give at least one learning rate and one momentum"
        )
    for lr, m in pairs:
        if not lr > 0 or not 0 <= m < 1:
            raise ExperimentError(
                f"bad grid point (lr={lr}, momentum={m}): "
                "need lr > 0 and 0 <= momentum < 1"
            )
    return pairs


@dataclass(frozen=True)
class Experiment:
    """A name, the variants it trains and its epoch count under a protocol.

    A variant is a dict of TrainConfig fields (at least ``lr`` and ``momentum``), run
    once per seed of the protocol, or once per seed of ``seeds`` where the experiment
    fixes them. An experiment that builds on another's results reads them from the
    store it is given, the one its sweep writes to.
    """

    name: str
    variants: Callable[[Protocol, Store | None], list[dict]]
    epochs: Callable[[Protocol], int]
    cross_validated: bool = False  # replicate k is fold k (seed k) under every protocol
    continues: bool = False  # a run goes on from a saved shorter run of its config
    seeds: tuple[int, ...] | None = None  # None: the protocol's seeds

    def configs(self, proto: Protocol, store: Store | None = None) -> list[TrainConfig]:
        """The runs under ``proto``; ``store`` holds the results that an experiment
        building on another one is promoted from (an error without it)."""
        folds = self.cross_validated or proto.cross_validation
        return [
            TrainConfig(
                **{
                    "model": proto.model,
                    "batch_size": proto.batch_size,
                    "data_fraction": proto.data_fraction,
                    "dataset": proto.dataset,
                    **variant,
                },
                epochs=self.epochs(proto),
                seed=seed,
                fold=seed if folds else -1,
            )
            for variant in self.variants(proto, store)
            for seed in self.seeds or proto.seeds
        ]


def as_variants(pairs: list[tuple[float, float]], **fields) -> list[dict]:
    return [{"lr": lr, "momentum": m, **fields} for lr, m in pairs]


def promoted_pairs(runs: list[dict], best: int) -> list[tuple[float, float]]:
    """The golden pair, the common pair and the ``best`` other pairs by mean final
    validation accuracy over their replicates; a pair with a run that diverged or did
    not learn does not compete."""
    from golden.results import group  # results reads configs through train, as we do

    stable = [g for g in group(runs).values() if len(g.learned) == len(g.runs)]
    ranked = [g.key for g in sorted(stable, key=lambda g: -g.estimate("val_acc").mean)]
    chosen = [GOLDEN_PAIR, COMMON_PAIR]
    for pair in ranked:
        if len(chosen) == 2 + best:
            break
        if pair not in chosen:
            chosen.append(pair)
    return chosen


def finished_runs(
    experiment_name: str, proto: Protocol, store: Store | None, needed_by: str
) -> list[dict]:
    """The stored runs of the configurations of an experiment that another one builds
    on (any other record in its folder is left out); an error if one is missing, or if
    there is no store to read them from."""
    if store is None:
        raise ExperimentError(
            f"{needed_by} is promoted from the stored {experiment_name}: "
            "give it the store to read them from"
        )
    wanted = {run_id(c) for c in experiment(experiment_name).configs(proto, store)}
    runs = [
        run
        for run in store.load(experiment_name, proto)
        if run_id(TrainConfig(**run["config"])) in wanted
    ]
    if len(runs) < len(wanted):
        raise ExperimentError(
            f"{needed_by} needs the finished {experiment_name} under protocol "
            f"'{proto.name}': run that first"
        )
    return runs


def long_run_pairs(
    proto: Protocol, store: Store | None, best: int = 3
) -> list[tuple[float, float]]:
    """The golden pair, the common pair and the ``best`` grid pairs by mean
    validation accuracy."""
    return promoted_pairs(finished_runs("grid", proto, store, "the long run"), best)


# The 30-epoch question on two cores by successive halving: the stored grid promotes
# pairs to a rung of long_epochs (10 under 'book'), and that rung promotes to a final
# one three times as long (30), each on folds 0, 1, 2 of the 10-fold cross-validation.
# A promoted run goes on from its shorter run (same seed and fold) instead of starting
# again: the numbers are the same.
RUNG_PROMOTED = (6, 4)  # pairs promoted per rung besides the golden and the common


def rung_epochs(proto: Protocol) -> tuple[int, int]:
    return proto.long_epochs, 3 * proto.long_epochs


def contender_pairs(
    proto: Protocol, store: Store | None, rung: int
) -> list[tuple[float, float]]:
    source = "grid" if rung == 0 else "contenders10"
    return promoted_pairs(
        finished_runs(source, proto, store, f"rung {rung + 1} of the contenders"),
        RUNG_PROMOTED[rung],
    )


def study_epochs(proto: Protocol) -> int:
    """Epochs of the studies beyond the paper: half the long run (5 under ``book``), at
    least 2 so that per-epoch effects (the MI-driven decay acts from the second epoch
    on) show."""
    return max(2, proto.long_epochs // 2)


# The training chapter's two runs from one seed: the golden pair exactly as derived,
# and the common pair, a few epochs on the full split (one on the quick subset).
TRAINING_PAIRS = ((theory.ETA, theory.ALPHA), COMMON_PAIR)
TRAINING_SEED = 0
TRAINING_EPOCHS = {"quick": 1, "full": 5}


def training_epochs(proto: Protocol) -> int:
    return TRAINING_EPOCHS["quick" if proto.quick_data else "full"]


# The break-even study (Jastrzebski et al. 2020): grid learning rates around the golden
# one, at the golden momentum and at 0.9, probed through the first epoch.
BREAKEVEN_LRS = (0.001, 0.01, GOLDEN_GRID_LR, 0.1)
BREAKEVEN_MOMENTA = (GOLDEN_GRID_MOMENTUM, 0.9)
BREAKEVEN_PROBES = 15  # probes spread evenly over the first epoch (3 on quick subsets)


def breakeven_variants(proto: Protocol, store: Store | None = None) -> list[dict]:
    steps = math.ceil(train_size(proto) / proto.batch_size)
    every = max(1, steps // (3 if proto.quick_data else BREAKEVEN_PROBES))
    return as_variants(grid_pairs(BREAKEVEN_LRS, BREAKEVEN_MOMENTA), probe_every=every)


def train_size(proto: Protocol) -> int:
    return len(splits(proto.dataset, proto.quick_data, -1, proto.data_fraction).train)


# Label noise: SGD at the golden pair against Adam, the book's own question (the
# abstract of Bui et al. 2026 says nothing about Adam or label noise).
NOISE_LEVELS = (0.0, 0.2, 0.4)
ADAM = {"optimizer": "adam", "lr": 1e-3, "momentum": 0.0}  # PyTorch's default betas
# Mutual information (Vasudevan 2020): the golden pair and its grid neighbours, then the
# MI-driven decay.
MI_PAIRS = (
    GOLDEN_PAIR,
    (0.01, GOLDEN_GRID_MOMENTUM),
    (0.1, GOLDEN_GRID_MOMENTUM),
    (GOLDEN_GRID_LR, 0.85),
    (GOLDEN_GRID_LR, 0.9),
)

EXPERIMENTS = {
    "training": Experiment(
        "training",
        lambda proto, store: as_variants(list(TRAINING_PAIRS)),
        training_epochs,
        seeds=(TRAINING_SEED,),
    ),
    "grid": Experiment(
        "grid",
        lambda proto, store: as_variants(grid_pairs()),
        lambda proto: proto.epochs,
    ),
    "long": Experiment(
        "long",
        lambda proto, store: as_variants(long_run_pairs(proto, store)),
        lambda proto: proto.long_epochs,
    ),
    "breakeven": Experiment("breakeven", breakeven_variants, lambda proto: 1),
    "loss": Experiment(
        "loss",
        lambda proto, store: [
            variant
            for loss in ("cross_entropy", "mse")
            for variant in as_variants([GOLDEN_PAIR, COMMON_PAIR], loss=loss)
        ],
        study_epochs,
    ),
    "noise": Experiment(
        "noise",
        lambda proto, store: [
            {**variant, "label_noise": level}
            for level in NOISE_LEVELS
            for variant in (*as_variants([GOLDEN_PAIR]), ADAM)
        ],
        study_epochs,
    ),
    "mutual_info": Experiment(
        "mutual_info",
        lambda proto, store: [
            *as_variants(list(MI_PAIRS)),
            *as_variants([GOLDEN_PAIR], schedule="mi_decay"),
        ],
        study_epochs,
    ),
    "contenders10": Experiment(
        "contenders10",
        lambda proto, store: as_variants(contender_pairs(proto, store, 0)),
        lambda proto: rung_epochs(proto)[0],
        cross_validated=True,
        continues=True,
    ),
    "contenders30": Experiment(
        "contenders30",
        lambda proto, store: as_variants(contender_pairs(proto, store, 1)),
        lambda proto: rung_epochs(proto)[1],
        cross_validated=True,
        continues=True,
    ),
}
GROUPS = {"contenders": ("contenders10", "contenders30")}  # the command line's groups


def experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise ExperimentError(
            f"unknown experiment {name!r}: "
            f"choose one of {', '.join(EXPERIMENTS)} or 'all'"
        )
    return EXPERIMENTS[name]
