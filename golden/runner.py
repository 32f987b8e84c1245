"""Running experiments on Dask distributed: a local cluster, or any by its address.

The runner is given values, an :class:`~golden.experiments.Experiment`, a protocol and
a :class:`~golden.store.Store`, and looks nothing up by name. Without an address,
:func:`sweep` starts a ``LocalCluster`` with one single-threaded worker process per
core and no dashboard. With ``--scheduler tcp://HOST:8786`` (or ``GOLDEN_SCHEDULER``)
it sends the same runs to an existing cluster. Workers only train and return
histories; the driver alone writes records, each as its run finishes, so a killed sweep
loses at most the runs in flight and the next sweep resumes from the records. A run on
a worker that dies is rescheduled by Dask on another worker; nothing of it reaches the
store until it finishes. The cluster, and its checks before any run is sent, are
golden.cluster's; a sweep that the cluster stops on the way (its scheduler lost, or a
run that kills every worker it is given) raises ClusterFailure.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import CancelledError
from pathlib import Path

import torch

from golden import settings
from golden.cluster import ClusterFailure, cluster_client, scheduler_address
from golden.data import splits
from golden.experiments import Experiment
from golden.files import prove_writable
from golden.protocols import (
    EVAL_COST,
    THREADS_PER_RUN,
    ExperimentError,
    Protocol,
    replicates_text,
)
from golden.store import Store, run_id
from golden.train import TrainConfig, train


def checkpoint_folder(quick_data: bool) -> Path:
    return settings.checkpoints_dir() / ("quick" if quick_data else "full")


def checkpoint_path(config: TrainConfig, quick_data: bool) -> Path:
    """Where a run that longer runs continue keeps its end state: a cache, never a
    result."""
    return checkpoint_folder(quick_data) / f"{run_id(config)}.pt"


def prepare_checkpoints(quick_data: bool) -> None:
    """Fail in one line, before any training, if the runs that longer runs continue
    could not keep their end states (rung 2 would silently train from the start)."""
    folder = checkpoint_folder(quick_data)
    try:
        prove_writable(folder)
    except OSError as error:
        raise ExperimentError(
            f"cannot keep checkpoints in {folder} ({error.strerror or error}): make it "
            "a folder golden may write to, or set GOLDEN_DATA_HOME to one"
        ) from None


def run_one(config: TrainConfig, quick_data: bool, continues: bool = False) -> dict:
    """Train one configuration with the runner's thread setting; its history as a
    plain dict."""
    torch.set_num_threads(THREADS_PER_RUN)
    data = splits(config.dataset, quick_data, config.fold, config.data_fraction)
    checkpoint = checkpoint_path(config, quick_data) if continues else None
    return train(config, data, progress=False, checkpoint=checkpoint).as_dict()


def sweep(
    experiment: Experiment,
    proto: Protocol,
    store: Store,
    *,
    workers: int | None = None,
    progress: bool | None = None,
    scheduler: str | None = None,
    processes: bool = True,
) -> Path:
    """Run every unfinished run of ``experiment`` into ``store``, which also holds the
    results it is promoted from; each record is written as its run finishes."""
    from dask.distributed import KilledWorker, as_completed
    from tqdm import tqdm

    scheduler = scheduler_address(scheduler)
    name = experiment.name
    configs = experiment.configs(proto, store)
    folder = store.folder(name, proto)
    store.prepare(folder, configs)
    todo = store.pending(configs, folder)
    if not todo:
        return folder
    if experiment.continues:
        prepare_checkpoints(proto.quick_data)
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo)))
    with (
        cluster_client(scheduler, workers, processes) as client,
        tqdm(
            total=len(todo),
            disable=None if progress is None else not progress,
            unit="run",
            desc=f"{name} / {proto.name}",
        ) as bar,
    ):
        futures = [
            client.submit(
                run_one,
                config,
                proto.quick_data,
                experiment.continues,
                pure=False,
                key=f"{name}-{proto.name}-{run_id(config)}-{time.time_ns()}",
            )
            for config in todo
        ]
        try:
            for future in as_completed(futures):
                store.write(folder, future.result(), proto, name)
                bar.update()
        except CancelledError:  # Dask cancels every run when the scheduler is lost
            where = f"at {scheduler}" if scheduler else "of the local cluster"
            raise ClusterFailure(
                f"lost the connection to the Dask scheduler {where}"
            ) from None
        except KilledWorker as error:  # a run each worker died of, as often as allowed
            deaths = error.allowed_failures + 1
            raise ClusterFailure(
                f"every worker that ran one of the runs died ({deaths} in a row), so "
                "Dask gave up on it (out of memory? see the workers' logs)"
            ) from None
    return folder


def plan(
    experiment: Experiment, proto: Protocol, store: Store, rate: float, cores: int
) -> str:
    """What a sweep would run, before it runs: runs, epochs, what is stored, and
    core-hours at ``rate`` trained images per second on one core."""
    configs = experiment.configs(proto, store)
    todo = store.pending(configs, store.folder(experiment.name, proto))
    data = splits(proto.dataset, proto.quick_data, -1, proto.data_fraction)
    epoch_s = (len(data.train) + EVAL_COST * (len(data.val) + len(data.test))) / rate
    epochs = sum(config.epochs for config in todo)
    hours = epochs * epoch_s / 3600
    lengths = "/".join(str(n) for n in sorted({config.epochs for config in configs}))
    folds = experiment.cross_validated or proto.cross_validation
    replicates = replicates_text(sorted({c.seed for c in configs}), folds)
    return "\n".join(
        [
            (
                f"{experiment.name} under protocol '{proto.name}' "
                f"[{proto.digest()}]: {proto.data_line()}"
            ),
            (
                f"  runs: {len(configs)} of {lengths} epochs, "
                f"{replicates}; {len(configs) - len(todo)} stored, "
                f"{len(todo)} to run ({epochs:,} epochs)"
            ),
            (
                f"  rate measured here: {rate:,.0f} trained images/s on one core, "
                f"{epoch_s:.0f} s an epoch"
            ),
            (
                f"  estimate: {hours:.1f} core-hours, {hours / cores:.1f} h on "
                f"{cores} cores (a run per core)"
            ),
        ]
    )
