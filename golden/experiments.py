"""Experiments: named grids of configurations x seeds, run under a named protocol, stored as JSON.

One record per finished run lives in ``results/<experiment>/<protocol>-<hash>/``, where the
hash covers every field of the protocol, so results of different protocols never mix. Records
are written atomically and carry a checksum: a sweep skips the runs it finds intact, reruns
those whose record is missing, truncated or corrupt, and records a diverging run as diverged.
"""
from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import platform
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from golden import settings, theory
from golden.data import FOLDS, mnist
from golden.train import TrainConfig, train

THREADS_PER_RUN = 1  # one thread per run, one run per core: fastest here, and bitwise repeatable
DEFAULTS = {name: f.default for name, f in TrainConfig.__dataclass_fields__.items()}


class ExperimentError(ValueError):
    """An unknown experiment or protocol, or a bad grid, named in one line."""


@dataclass(frozen=True)
class Protocol:
    """Everything that decides a run's numbers besides its learning rate, momentum and seed."""

    name: str
    epochs: int  # epochs of each grid run
    long_epochs: int  # epochs of the long run
    seeds: tuple[int, ...]
    quick_data: bool  # the small fixed subsets of golden.data instead of the full splits
    batch_size: int = 64
    model: str = "cnn"
    cross_validation: bool = False  # replicate k trains on fold k of data.FOLDS (seed k), not the fixed split
    data_fraction: float = 1.0  # a stratified fraction of the training images (the source's 50% subset)

    def digest(self) -> str:
        """Eight hex digits of the hash of every field: a changed field gives a new folder.
        Fields added later count only when they differ from their default, so the folders
        of earlier protocols keep their names."""
        fields = {name: value for name, value in asdict(self).items()
                  if name not in LATER_FIELDS or value != LATER_FIELDS[name]}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:8]

    def describe(self) -> str:
        data = "quick subsets (2,048 train / 512 val / 1,000 test)" if self.quick_data else (
            "full MNIST split (54,000 train / 6,000 val / 10,000 test)")
        return (f"protocol '{self.name}' [{self.digest()}]: {data}; {self.model.upper()}, plain SGD with momentum, "
                f"batch {self.batch_size}, {self.epochs} epochs per grid run ({self.long_epochs} in the long run), "
                f"seeds {', '.join(map(str, self.seeds))}")


LATER_FIELDS = {"cross_validation": False, "data_fraction": 1.0}

PROTOCOLS = {
    # Jaeger 2024 appendix: 30 epochs x 10-fold cross-validation, on all 60,000 training images
    # and on a 50% stratified subset; for a cluster (600 runs of 30 epochs per data size).
    "paper": Protocol("paper", epochs=30, long_epochs=30, seeds=tuple(range(FOLDS)), quick_data=False,
                      cross_validation=True),
    "paper_half": Protocol("paper_half", epochs=30, long_epochs=30, seeds=tuple(range(FOLDS)),
                           quick_data=False, cross_validation=True, data_fraction=0.5),
    # What fits in about 90 minutes on a 2-core CPU for 60 pairs x 3 seeds on the full split.
    "book": Protocol("book", epochs=2, long_epochs=10, seeds=(0, 1, 2), quick_data=False),
    # Tiny, for tests and quick builds.
    "quick": Protocol("quick", epochs=1, long_epochs=2, seeds=(0, 1), quick_data=True),
}

# The grid of Jaeger 2024's appendix. It lists the golden learning rate and momentum rounded
# to three decimals, so those two entries are computed from golden.theory here, not typed.
GOLDEN_GRID_LR = round(theory.ETA, 3)
GOLDEN_GRID_MOMENTUM = round(theory.ALPHA, 3)
GRID_LRS = (0.0001, 0.001, 0.01, GOLDEN_GRID_LR, 0.1, 0.2)
GRID_MOMENTA = (0.0, 0.2, 0.4, 0.6, 0.8, 0.825, 0.85, GOLDEN_GRID_MOMENTUM, 0.9, 0.925)
COMMON_PAIR = (0.01, 0.9)
GOLDEN_PAIR = (GOLDEN_GRID_LR, GOLDEN_GRID_MOMENTUM)


def protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise ExperimentError(f"unknown protocol {name!r}: choose one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def grid_pairs(lrs=GRID_LRS, momenta=GRID_MOMENTA) -> list[tuple[float, float]]:
    """All (learning rate, momentum) pairs, checked so that a bad grid fails before any training."""
    pairs = [(float(lr), float(m)) for lr in lrs for m in momenta]
    if not pairs:
        raise ExperimentError("the grid is empty: give at least one learning rate and one momentum")
    for lr, m in pairs:
        if not lr > 0 or not 0 <= m < 1:
            raise ExperimentError(f"bad grid point (lr={lr}, momentum={m}): need lr > 0 and 0 <= momentum < 1")
    return pairs


@dataclass(frozen=True)
class Experiment:
    """A name, the variants it trains (which may depend on stored results) and its epoch count.

    A variant is a dict of TrainConfig fields (at least ``lr`` and ``momentum``); each is run
    once per seed of the protocol.
    """

    name: str
    variants: Callable[[Protocol], list[dict]]
    epochs: Callable[[Protocol], int]
    cross_validated: bool = False  # replicate k is fold k (seed k) under every protocol
    continues: bool = False  # a run goes on from a saved shorter run of its configuration

    def configs(self, proto: Protocol) -> list[TrainConfig]:
        folds = self.cross_validated or proto.cross_validation
        return [
            TrainConfig(**{"model": proto.model, "batch_size": proto.batch_size,
                           "data_fraction": proto.data_fraction, **variant},
                        epochs=self.epochs(proto), seed=seed, fold=seed if folds else -1)
            for variant in self.variants(proto) for seed in proto.seeds
        ]


def as_variants(pairs: list[tuple[float, float]], **fields) -> list[dict]:
    return [{"lr": lr, "momentum": m, **fields} for lr, m in pairs]


def promoted_pairs(runs: list[dict], best: int) -> list[tuple[float, float]]:
    """The golden pair, the common pair and the ``best`` other pairs by mean final validation
    accuracy over their replicates; pairs with a diverged replicate do not compete."""
    stable = [row for row in summarise(runs) if row["diverged"] == 0 and not math.isnan(row["val_acc_mean"])]
    ranked = [row["pair"] for row in sorted(stable, key=lambda row: -row["val_acc_mean"])]
    chosen = [GOLDEN_PAIR, COMMON_PAIR]
    for pair in ranked:
        if len(chosen) == 2 + best:
            break
        if pair not in chosen:
            chosen.append(pair)
    return chosen


def finished_runs(experiment_name: str, proto: Protocol, needed_by: str) -> list[dict]:
    """The stored runs of an experiment that another one builds on; an error if incomplete."""
    runs = load_records(experiment_name, proto)
    if len(runs) < len(experiment(experiment_name).configs(proto)):
        raise ExperimentError(f"{needed_by} needs the finished {experiment_name} under protocol "
                              f"'{proto.name}': run that first")
    return runs


def long_run_pairs(proto: Protocol, best: int = 3) -> list[tuple[float, float]]:
    """The golden pair, the common pair and the ``best`` grid pairs by mean validation accuracy."""
    return promoted_pairs(finished_runs("grid", proto, "the long run"), best)


# The 30-epoch question on two cores by successive halving: the stored grid promotes pairs to a
# rung of long_epochs (10 under 'book'), that rung promotes to a final one three times as long
# (30), each on folds 0, 1, 2 of the 10-fold cross-validation. A promoted run goes on from its
# shorter run (same seed and fold) instead of starting again: the numbers are the same.
RUNG_PROMOTED = (8, 4)  # pairs promoted besides the golden and the common pair, per rung


def rung_epochs(proto: Protocol) -> tuple[int, int]:
    return proto.long_epochs, 3 * proto.long_epochs


def contender_pairs(proto: Protocol, rung: int) -> list[tuple[float, float]]:
    source = "grid" if rung == 0 else "contenders10"
    return promoted_pairs(finished_runs(source, proto, f"rung {rung + 1} of the contenders"),
                          RUNG_PROMOTED[rung])


def study_epochs(proto: Protocol) -> int:
    """Epochs of the studies beyond the paper: half the long run (5 under ``book``), at least 2 so
    that per-epoch effects (the MI-driven decay acts from the second epoch on) show."""
    return max(2, proto.long_epochs // 2)


# The break-even study (Jastrzebski et al. 2020): grid learning rates around the golden one,
# at the golden momentum and at 0.9, probed through the first epoch.
BREAKEVEN_LRS = (0.001, 0.01, GOLDEN_GRID_LR, 0.1)
BREAKEVEN_MOMENTA = (GOLDEN_GRID_MOMENTUM, 0.9)
BREAKEVEN_PROBES = 15  # probes spread evenly over the first epoch (3 on the quick subsets)


def breakeven_variants(proto: Protocol) -> list[dict]:
    steps = math.ceil(train_size(proto) / proto.batch_size)
    every = max(1, steps // (3 if proto.quick_data else BREAKEVEN_PROBES))
    return as_variants(grid_pairs(BREAKEVEN_LRS, BREAKEVEN_MOMENTA), probe_every=every)


def train_size(proto: Protocol) -> int:
    return len(mnist(proto.quick_data, -1, proto.data_fraction).train)


# Label noise (Bui et al. 2026 claim SGD with the golden pair is more robust to noise than Adam).
NOISE_LEVELS = (0.0, 0.2, 0.4)
ADAM = {"optimizer": "adam", "lr": 1e-3, "momentum": 0.0}  # PyTorch's default betas
# Mutual information (Vasudevan 2020): the golden pair and its grid neighbours, then the MI-driven decay.
MI_PAIRS = (GOLDEN_PAIR, (0.01, GOLDEN_GRID_MOMENTUM), (0.1, GOLDEN_GRID_MOMENTUM), (GOLDEN_GRID_LR, 0.85),
            (GOLDEN_GRID_LR, 0.9))

EXPERIMENTS = {
    "grid": Experiment("grid", lambda proto: as_variants(grid_pairs()), lambda proto: proto.epochs),
    "long": Experiment("long", lambda proto: as_variants(long_run_pairs(proto)), lambda proto: proto.long_epochs),
    "breakeven": Experiment("breakeven", breakeven_variants, lambda proto: 1),
    "loss": Experiment("loss", lambda proto: [
        variant for loss in ("cross_entropy", "mse") for variant in as_variants([GOLDEN_PAIR, COMMON_PAIR], loss=loss)
    ], study_epochs),
    "noise": Experiment("noise", lambda proto: [
        {**variant, "label_noise": level} for level in NOISE_LEVELS
        for variant in (*as_variants([GOLDEN_PAIR]), ADAM)
    ], study_epochs),
    "mutual_info": Experiment("mutual_info", lambda proto: [
        *as_variants(list(MI_PAIRS)), *as_variants([GOLDEN_PAIR], schedule="mi_decay")
    ], study_epochs),
    "contenders10": Experiment("contenders10", lambda proto: as_variants(contender_pairs(proto, 0)),
                               lambda proto: rung_epochs(proto)[0], cross_validated=True, continues=True),
    "contenders30": Experiment("contenders30", lambda proto: as_variants(contender_pairs(proto, 1)),
                               lambda proto: rung_epochs(proto)[1], cross_validated=True, continues=True),
}
GROUPS = {"contenders": ("contenders10", "contenders30")}  # names the command line expands


def experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise ExperimentError(f"unknown experiment {name!r}: choose one of {', '.join(EXPERIMENTS)} or 'all'")
    return EXPERIMENTS[name]


# --- the results store ---------------------------------------------------------------------------

def run_folder(experiment_name: str, proto: Protocol) -> Path:
    return settings.results_dir() / experiment_name / f"{proto.name}-{proto.digest()}"


def _short(number: float) -> str:
    """``{:g}`` where it round-trips (0.01 -> '0.01'), the full repr where it does not."""
    text = f"{number:g}"
    return text if float(text) == number else repr(number)


TAGS = {"loss": "{}", "optimizer": "{}", "schedule": "{}", "label_noise": "noise{}", "probe_every": "probe{}",
        "data_fraction": "frac{}", "fold": "f{}"}


def run_id(config: TrainConfig) -> str:
    """``lr0.01_m0.9_s0``, with a tag such as ``mse`` or ``noise0.2`` for every field of
    TAGS that differs from TrainConfig's default."""
    tags = [TAGS[name].format(_short(value) if isinstance(value, float) else value)
            for name, value in asdict(config).items() if name in TAGS and value != DEFAULTS[name]]
    return "_".join([f"lr{_short(config.lr)}", f"m{_short(config.momentum)}", *tags, f"s{config.seed}"])


def _checksum(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def provenance() -> dict:
    """Library versions and the git commit, stored with every record."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=settings.REPO_ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {"python": platform.python_version(), "torch": torch.__version__, "git_commit": commit,
            "machine": platform.machine(), "threads": THREADS_PER_RUN}


def write_record(folder: Path, history: dict, proto: Protocol, experiment_name: str) -> Path:
    """Write one run atomically (temporary file, then rename), with a checksum of its content."""
    payload = {"experiment": experiment_name, "protocol": asdict(proto), "run": history,
               "provenance": provenance()}
    record = {**payload, "checksum": _checksum(payload)}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_id(TrainConfig(**history['config']))}.json"
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(record, indent=1, sort_keys=True))
    os.replace(temporary, path)
    return path


def read_record(path: Path) -> dict | None:
    """The record at ``path``, or None if it is missing, truncated or fails its checksum."""
    try:
        record = json.loads(path.read_text())
        payload = {key: record[key] for key in ("experiment", "protocol", "run", "provenance")}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return record if record.get("checksum") == _checksum(payload) else None


def load_records(experiment_name: str, proto: Protocol) -> list[dict]:
    """Every intact run of an experiment under a protocol (the ``run`` part of each record)."""
    folder = run_folder(experiment_name, proto)
    records = (read_record(path) for path in sorted(folder.glob("*.json")))
    runs = [record["run"] for record in records if record is not None]
    for run in runs:  # records written before a TrainConfig field existed hold its default
        run["config"] = {**DEFAULTS, **run["config"]}
    return runs


def pending(configs: list[TrainConfig], folder: Path) -> list[TrainConfig]:
    return [c for c in configs if read_record(folder / f"{run_id(c)}.json") is None]


# --- running ---------------------------------------------------------------------------------------

def checkpoint_path(config: TrainConfig, quick_data: bool) -> Path:
    """Where a run that others continue keeps its end state (a cache, never a result)."""
    return settings.checkpoints_dir() / ("quick" if quick_data else "full") / f"{run_id(config)}.pt"


def run_one(config: TrainConfig, quick_data: bool, continues: bool = False) -> dict:
    """Train one configuration with the runner's thread setting; the history as a plain dict."""
    torch.set_num_threads(THREADS_PER_RUN)
    data = mnist(quick_data, config.fold, config.data_fraction)
    checkpoint = checkpoint_path(config, quick_data) if continues else None
    return train(config, data, progress=False, checkpoint=checkpoint).as_dict()


def _run_one_packed(job: tuple[TrainConfig, bool, bool]) -> dict:
    return run_one(*job)


def sweep(experiment_name: str, proto: Protocol, workers: int | None = None, progress: bool | None = None) -> Path:
    """Run every unfinished run of an experiment, ``workers`` at a time (default: one per core)."""
    exp = experiment(experiment_name)
    folder = run_folder(experiment_name, proto)
    todo = pending(exp.configs(proto), folder)
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    jobs = [(config, proto.quick_data, exp.continues) for config in todo]
    with tqdm(total=len(jobs), disable=None if progress is None else not progress, unit="run",
              desc=f"{experiment_name} / {proto.name}") as bar:
        if workers == 1:
            results = map(_run_one_packed, jobs)
            _store_all(results, folder, proto, experiment_name, bar)
        else:
            with multiprocessing.get_context("spawn").Pool(workers) as pool:
                _store_all(pool.imap_unordered(_run_one_packed, jobs), folder, proto, experiment_name, bar)
    return folder


def _store_all(results, folder: Path, proto: Protocol, experiment_name: str, bar) -> None:
    for history in results:
        write_record(folder, history, proto, experiment_name)
        bar.update()


# --- summaries --------------------------------------------------------------------------------------

def pair_of(config: dict) -> tuple[float, float]:
    return config["lr"], config["momentum"]


def summarise(runs: list[dict], key: Callable[[dict], tuple] = pair_of) -> list[dict]:
    """One row per ``key`` of the config (default: the (lr, momentum) pair): final accuracies and
    losses per seed, and their means.

    Diverged runs are left out of the means (no accuracy is invented for them); ``diverged``
    counts them, so a pair with diverged seeds is visible as such.
    """
    from golden.stats import mean_ci  # statistics stay in their own module

    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault(key(run["config"]), []).append(run)
    rows = []
    for group_key, group in sorted(groups.items()):
        group.sort(key=lambda run: run["config"]["seed"])
        finished = [run for run in group if not run["diverged"]]
        row = {"key": group_key, "pair": pair_of(group[0]["config"]),
               "seeds": [run["config"]["seed"] for run in group], "diverged": len(group) - len(finished)}
        for metric in ("test_acc", "val_acc", "train_loss"):
            values = [run[metric][-1] for run in finished]
            row[metric] = values
            row[f"{metric}_mean"], row[f"{metric}_ci"] = mean_ci(values)
        rows.append(row)
    return rows


def stored_or_quick(experiment_name: str, preferred: str = "book") -> tuple[Protocol, list[dict], bool]:
    """The complete stored runs under ``preferred``, else the ``quick`` protocol's (run now if missing).

    Returns the protocol used, its runs and whether it fell back to ``quick``. Chapters show a
    visible box when they fell back, so a reader never mistakes quick numbers for the book's.
    """
    for name in (preferred, "quick"):
        proto = protocol(name)
        try:
            expected = len(experiment(experiment_name).configs(proto))
        except ExperimentError:  # e.g. the long run before its grid exists
            expected = None
        runs = load_records(experiment_name, proto)
        if expected is not None and len(runs) == expected:
            return proto, runs, name != preferred
    if experiment_name == "long":
        sweep("grid", proto, progress=False)
    sweep(experiment_name, proto, progress=False)
    return proto, load_records(experiment_name, proto), True


def curves(runs: list[dict], metric: str, key: Callable[[dict], tuple] = pair_of) -> dict[tuple, list[list[float]]]:
    """Per-epoch ``metric`` of every seed, grouped by ``key`` of the config (default: the pair)."""
    grouped: dict[tuple, list[list[float]]] = {}
    for run in sorted(runs, key=lambda run: run["config"]["seed"]):
        if not run["diverged"]:
            grouped.setdefault(key(run["config"]), []).append(run[metric])
    return grouped
