"""Sweeps on the fused engine (:mod:`golden.fused`): groups, a time limit, a plan and
an archive.

A sweep cuts its pending runs into groups, each trained as one network: all pending
pairs of one lane (a fold, or a seed), or of several lanes with the same pairs. On a
CPU a group is one lane, which keeps the cores busy; on a GPU as many lanes as fit in
80% of its memory, and under a time limit no more than a quarter of the limit's worth,
so that a stop wastes little. A group's records are written when it finishes. A time
limit stops the sweep before a group that would not finish in time (estimated from a
short calibration on the device, then from the groups trained so far), or abandons, at
the end of an epoch, a group that overruns it: every record written is a finished run,
and the same command resumes. One archive of the new records can be written for a
machine that is only borrowed.

Nothing on this path imports Dask, Jupyter or tqdm: the GPU machines it is meant for
have only PyTorch, torchvision, NumPy, SciPy, SymPy and matplotlib.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tarfile
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import torch

from golden import fused, theory
from golden.data import CLASSES, MnistSplits, splits
from golden.experiments import Experiment
from golden.models import build_model, parameter_count
from golden.protocols import EVAL_COST, ExperimentError, Protocol
from golden.store import Store
from golden.train import TrainConfig

DEVICES = ("cpu", "cuda")
MEMORY_SHARE = 0.8  # of a GPU's memory a group may plan to take
GROUPS_PER_LIMIT = 4  # under a time limit, a group takes at most this share of it
CALIBRATION = {"cpu": (1, 2), "cuda": (3, 10)}  # warm-up and timed steps
TRAIN_IMAGE_BYTES = 28 * 28 * 4  # one fp32 image on the device
# evaluation holds at most the first convolution's output and its pooled copy (fp32)
EVAL_BYTES_PER_MODEL_IMAGE = 4 * 16 * (28 * 28 + 14 * 14)
DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)\s*$")


def duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``8m`` or ``1.5h``."""
    found = DURATION.match(text)
    if found is None:
        raise ValueError(f"expected a duration such as 90s, 8m or 1.5h, got {text!r}")
    return float(found[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[found[2]]


@dataclass
class Deadline:
    """A time limit that starts now; ``clock`` is there for tests."""

    seconds: float
    clock: Callable[[], float] = time.monotonic
    start: float = field(init=False)

    def __post_init__(self):
        self.start = self.clock()

    def left(self) -> float:
        return self.seconds - (self.clock() - self.start)


def prepare_device(device: str) -> str:
    """Check ``device`` and set fp32 without TF32 there; the device as records name
    it (``cpu``, or ``cuda (NVIDIA ...)``)."""
    if device not in DEVICES:
        raise ExperimentError(
            f"unknown device {device!r}: choose one of {', '.join(DEVICES)}"
        )
    if device == "cpu":
        return device
    if not torch.cuda.is_available():
        raise ExperimentError(
            f"no CUDA device here (torch {torch.__version__}): use --device cpu"
        )
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN time its kernels
    return f"cuda ({torch.cuda.get_device_name()})"


def wait(device: str) -> None:
    """Let the device finish its queued work (a GPU runs asynchronously)."""
    if device == "cuda":
        torch.cuda.synchronize()


@dataclass(frozen=True)
class Sizes:
    """What a group's work and memory depend on besides its number of models."""

    train: int
    val: int
    test: int
    batch: int
    epochs: int

    def work(self, models: int) -> float:
        """Trained-image equivalents of ``models`` runs (an evaluated image costs
        EVAL_COST of a trained one)."""
        return models * self.epochs * (self.train + EVAL_COST * (self.val + self.test))


def sizes_of(proto: Protocol, config: TrainConfig) -> Sizes:
    data = splits(proto.dataset, proto.quick_data, config.fold, proto.data_fraction)
    return Sizes(
        len(data.train), len(data.val), len(data.test), config.batch_size, config.epochs
    )


def saved_bytes_per_model_image() -> float:
    """The bytes a training step keeps per model and image for its backward pass (the
    tensors autograd saves, measured on a small network on the CPU), plus the largest
    of them again for the gradient that replaces it."""
    saved: dict[int, int] = {}

    def keep(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    models, batch = 2, 4
    net, optimizer, images, labels, masks, alive = synthetic_group(models, 1, batch)
    parameters = {p.untyped_storage().data_ptr() for p in net.params}
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
        fused.train_step(net, optimizer, images, labels, masks, alive)
    sizes = [size for pointer, size in saved.items() if pointer not in parameters]
    return (sum(sizes) + max(sizes)) / (models * batch)


def memory_bytes(models: int, lanes: int, sizes: Sizes) -> dict[str, float]:
    """The memory a group takes on its device, by part (an estimate): weights with
    their gradients and momenta, a training step's activations, an evaluation pass,
    and the data with a lane's dropout masks."""
    k = models * lanes
    parameters = parameter_count(build_model("cnn"))
    chunk = fused.eval_chunk(sizes.batch)
    masks = 2 * lanes * sizes.train * fused.FLAT  # this epoch's and the next's
    return {
        "weights": 3 * 4 * parameters * k,  # with their gradients and momenta
        "activations": saved_bytes_per_model_image() * k * sizes.batch,
        "evaluation": EVAL_BYTES_PER_MODEL_IMAGE * k * chunk,
        "data": TRAIN_IMAGE_BYTES * (lanes * (sizes.train + sizes.val) + sizes.test)
        + masks,
    }


def synthetic_group(models: int, lanes: int, batch: int, device: str = "cpu"):
    """A fused network, its optimizer and one batch of random images, labels and
    masks: what a training step needs, for calibrations and benchmarks."""
    lr, momentum = theory.COMMON_PAIR  # any pair: the values do not change the time
    weights, _, dropout = fused.initial_state(TrainConfig(lr=lr, momentum=momentum))
    net = fused.FusedCNN([weights] * lanes, models, device)
    k = net.size
    lrs, momenta = (torch.full((k,), value, device=device) for value in (lr, momentum))
    optimizer = fused.StackedSGD(net.params, lrs, momenta)
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(batch, lanes, 28, 28, generator=generator) * 2 - 1
    labels = torch.randint(CLASSES, (lanes, batch), generator=generator)
    keep = 1 - dropout
    masks = (torch.rand(lanes, batch, fused.FLAT, generator=generator) < keep) / keep
    alive = torch.ones(k, dtype=torch.bool)
    return (net, optimizer, *(t.to(device) for t in (images, labels, masks, alive)))


@lru_cache(maxsize=8)
def calibrate(
    models: int, lanes: int, batch: int, device: str, steps: tuple[int, int] | None
) -> tuple[float, float | None]:
    """Trained images per second of a group of ``lanes`` x ``models`` on ``device``
    (after warm-up steps, as cuDNN times its kernels), and on a GPU the peak memory
    its steps took."""
    warmup, timed = steps or CALIBRATION[device]
    group = synthetic_group(models, lanes, batch, device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for _ in range(warmup):
        fused.train_step(*group)
    wait(device)
    start = time.perf_counter()
    for _ in range(timed):
        fused.train_step(*group)
    wait(device)
    rate = timed * models * lanes * batch / (time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else None
    return rate, peak


def device_memory(device: str) -> int | None:
    """The bytes of a GPU's memory; None for a CPU, whose cores one lane keeps busy."""
    if device == "cpu":
        return None
    return torch.cuda.get_device_properties(0).total_memory


def lanes_per_group(
    models: int,
    lanes: int,
    sizes: Sizes,
    device: str,
    deadline: Deadline | None = None,
) -> int:
    """How many lanes one network holds: one on a CPU; on a GPU as many as fit in
    MEMORY_SHARE of it, and, under a time limit, about a GROUPS_PER_LIMIT-th of it
    (timed by a calibration of the group that memory allows)."""
    total = device_memory(device)
    if total is None or lanes == 1:
        return 1
    one = sum(memory_bytes(models, 1, sizes).values())
    fit = max(1, min(lanes, int(MEMORY_SHARE * total // one)))
    if deadline is None or fit == 1:
        return fit
    rate, _ = calibrate(models, fit, sizes.batch, device, None)
    per_lane = sizes.work(models) / rate
    return max(1, min(fit, int(deadline.seconds / GROUPS_PER_LIMIT // per_lane)))


def groups_of(
    configs: Sequence[TrainConfig],
    lanes: int,
    size_of: Callable[[TrainConfig], int] = lambda config: 0,
) -> list[list[TrainConfig]]:
    """The pending runs as groups: lanes (seed and fold) with the same pairs and
    training-split size (``size_of``), at most ``lanes`` of them a group, each lane's
    runs in their order."""
    by_lane: dict[tuple, list[TrainConfig]] = {}
    for config in configs:
        key = (config.seed, config.fold, config.epochs, config.batch_size)
        by_lane.setdefault(key, []).append(config)
    alike: dict[tuple, list[list[TrainConfig]]] = {}
    for (_, _, *shape), members in by_lane.items():
        pairs = tuple((c.lr, c.momentum) for c in members)
        alike.setdefault((pairs, size_of(members[0]), *shape), []).append(members)
    return [
        [config for lane in similar[start : start + lanes] for config in lane]
        for similar in alike.values()
        for start in range(0, len(similar), lanes)
    ]


def shape(configs: Sequence[TrainConfig]) -> tuple[int, int]:
    """Models per lane and lanes (seeds and folds) of a set of runs."""
    lanes = len({(config.seed, config.fold) for config in configs})
    return math.ceil(len(configs) / lanes), lanes


def clock_text(seconds: float) -> str:
    """``2:03``, ``1:02:03``, or from two days on ``3.4 days``."""
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} days"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


@dataclass
class Outcome:
    """What one fused sweep did."""

    folder: Path
    written: list[Path] = field(default_factory=list)
    stopped: bool = False  # by the time limit, with runs left


class Meter:
    """Progress lines with an ETA: the sweep's speed so far (trained-image equivalents
    per second) times the work left; ``deadline``, if any, says its time left too."""

    def __init__(self, sizes: Sizes, runs: int, deadline: Deadline | None, say):
        self.sizes, self.deadline, self.say = sizes, deadline, say
        self.total, self.done, self.spent = sizes.work(runs), 0.0, 0.0

    def rate(self) -> float | None:
        return self.done / self.spent if self.spent else None

    def epoch(self, step: fused.Progress) -> None:
        work = self.done + self.sizes.work(step.models) * step.epoch / step.epochs
        left = (self.total - work) * (self.spent + step.seconds) / work
        trained = step.models * self.sizes.train * step.epoch / step.seconds
        limit = ""
        if self.deadline is not None:
            limit = f", time limit {clock_text(max(0.0, self.deadline.left()))} left"
        self.say(
            f"  epoch {step.epoch}/{step.epochs}: {trained:,.0f} trained images/s; "
            f"sweep {clock_text(left)} left{limit}",
            flush=True,
        )

    def group(self, runs: int, seconds: float) -> None:
        self.done += self.sizes.work(runs)
        self.spent += seconds


def describe(label: str, group: Sequence[TrainConfig], epochs: int, where: str) -> str:
    """``group 2/10: 60 runs of 30 epochs (fold 1) as one network on cpu``."""
    replicates = sorted({c.fold if c.fold >= 0 else c.seed for c in group})
    kind = "fold" if group[0].fold >= 0 else "seed"
    return (
        f"{label}: {len(group)} runs of {epochs} epoch{'s' * (epochs != 1)} "
        f"({kind}{'s' * (len(replicates) > 1)} {', '.join(map(str, replicates))}) as "
        f"one network on {where}"
    )


def sweep(
    experiment: Experiment,
    proto: Protocol,
    store: Store,
    device: str = "cpu",
    deadline: Deadline | None = None,
    progress: bool = True,
) -> Outcome:
    """Train every unfinished run of ``experiment`` into ``store``, a group at a time;
    each group's records are written when it finishes."""
    say = print if progress else (lambda *args, **kwargs: None)
    where = prepare_device(device)
    experiment_name = experiment.name
    configs = experiment.configs(proto, store)
    for config in configs:
        fused.check(config)
    folder = store.folder(experiment_name, proto)
    store.prepare(folder, configs)
    outcome = Outcome(folder)
    todo = store.pending(configs, folder)
    if not todo:
        return outcome
    sizes = sizes_of(proto, todo[0])
    models, lanes = shape(todo)
    together = lanes_per_group(models, lanes, sizes, device, deadline)
    loaded: dict[tuple, MnistSplits] = {}

    def data_of(config: TrainConfig) -> MnistSplits:
        """A lane's data, loaded once: with several lanes a group, every lane's is
        kept (their sizes decide the groups), else only the last one's."""
        key = (config.dataset, config.fold, config.data_fraction)
        if key not in loaded:
            if together == 1:
                loaded.clear()
            loaded[key] = splits(config.dataset, proto.quick_data, *key[1:])
        return loaded[key]

    def size_of(config: TrainConfig) -> int:
        return len(data_of(config).train) if together > 1 else 0

    groups = groups_of(todo, together, size_of)
    meter = Meter(sizes, len(todo), deadline, say)
    # under a time limit, how long a group takes: calibrated, then as trained so far
    rate = None
    if deadline is not None:
        rate, _ = calibrate(*shape(groups[0]), sizes.batch, device, None)
    for number, group in enumerate(groups, start=1):
        label = f"group {number}/{len(groups)}"
        rate = meter.rate() or rate
        needed = sizes.work(len(group)) / rate if rate else 0.0
        if deadline is not None and needed > deadline.left():
            say(
                f"time limit: stopping before {label} (about {clock_text(needed)} "
                f"needed, {clock_text(max(0.0, deadline.left()))} left); the same "
                "command resumes",
                flush=True,
            )
            outcome.stopped = True
            break
        say(describe(label, group, sizes.epochs, where), flush=True)
        start = time.perf_counter()
        try:
            histories = fused.train_group(
                group,
                data_of,
                device,
                meter.epoch,
                None if deadline is None else lambda: deadline.left() <= 0,
            )
        except fused.TimeUp:
            say(
                f"time limit: {label} abandoned unfinished, its runs not stored; the "
                "same command trains them again",
                flush=True,
            )
            outcome.stopped = True
            break
        meter.group(len(group), time.perf_counter() - start)
        threads = torch.get_num_threads()
        outcome.written += [
            store.write(folder, h.as_dict(), proto, experiment_name, where, threads)
            for h in histories
        ]
    return outcome


def prepare_archive(folder: Path) -> None:
    """Fail in one line, before any training, if no archive can be written in
    ``folder``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise ExperimentError(
            f"cannot write an archive to {folder} ({error.strerror or error}): name a "
            "folder you can write with --archive"
        ) from None


def write_archive(paths: Sequence[Path], root: Path, folder: Path) -> Path:
    """One ``.tar.gz`` in ``folder`` of the records at ``paths``, each named by its
    path under the store's ``root`` (so ``tar -xzf FILE -C results`` puts it where the
    store reads it); written to a private temporary file first, then renamed."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = folder / f"golden-records-{stamp}-{uuid.uuid4().hex[:6]}.tar.gz"
    temporary = folder / f".{target.name}.{os.getpid()}.tmp"
    try:
        with tarfile.open(temporary, "w:gz") as archive:
            for path in paths:
                archive.add(path, arcname=path.relative_to(root).as_posix())
        os.replace(temporary, target)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise ExperimentError(
            f"cannot write the archive {target} ({error.strerror or error})"
        ) from None
    return target


def unpack_archive(archive: Path, store: Store) -> tuple[int, int, list[str]]:
    """Put the records of an archive (:func:`write_archive`'s) into ``store``, each
    only if it counts there (its checksum holds and its configuration and protocol give
    its path, as :meth:`Store.read` checks) and none is stored at its path yet: (added,
    already stored, the names of those refused)."""
    added, kept, refused = 0, 0, []
    try:
        with tarfile.open(archive) as packed, tempfile.TemporaryDirectory() as scratch:
            for member in packed.getmembers():
                parts = Path(member.name).parts
                if not member.isfile() or len(parts) != 3 or ".." in parts:
                    refused.append(member.name)
                    continue
                staged = Path(scratch) / member.name
                staged.parent.mkdir(parents=True, exist_ok=True)
                staged.write_bytes(packed.extractfile(member).read())
                target = store.root / member.name
                if Store(scratch).read(staged) is None:
                    refused.append(member.name)
                elif target.exists():
                    kept += 1
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    temporary = target.parent / f".{target.name}.{os.getpid()}.tmp"
                    shutil.copyfile(staged, temporary)
                    os.replace(temporary, target)
                    added += 1
    except (OSError, tarfile.TarError) as error:
        raise ExperimentError(f"cannot unpack {archive} ({error})") from None
    return added, kept, refused


def run(
    jobs: Sequence[tuple[Experiment, Protocol]],
    store: Store,
    device: str = "cpu",
    time_limit: float | None = None,
    archive: Path | None = None,
    progress: bool = True,
) -> list[Path]:
    """Sweep each (experiment, protocol) into ``store`` in turn under one time limit,
    print what is stored, and write the new records to one archive in ``archive``
    (also after an interruption); the records written."""
    prepare_device(device)
    if archive is not None:
        prepare_archive(archive)
    for experiment, proto in jobs:  # refuse what the engine does not train, first
        try:
            configs = experiment.configs(proto, store)
        except ExperimentError:  # it builds on results not stored yet: checked later
            continue
        for config in configs:
            fused.check(config)
    deadline = None if time_limit is None else Deadline(time_limit)
    written: list[Path] = []
    try:
        for experiment, proto in jobs:
            outcome = sweep(experiment, proto, store, device, deadline, progress)
            written += outcome.written
            configs = experiment.configs(proto, store)
            stored = len(configs) - len(store.pending(configs, outcome.folder))
            print(
                f"{experiment.name}: {stored} of {len(configs)} runs stored in "
                f"{outcome.folder}",
                flush=True,
            )
            if outcome.stopped:
                break
    finally:
        if archive is not None:
            path = write_archive(written, store.root, archive)
            print(f"archive: {len(written)} new records in {path}", flush=True)
    return written


def plan(
    experiment: Experiment,
    proto: Protocol,
    store: Store,
    device: str = "cpu",
    steps: tuple[int, int] | None = None,
) -> str:
    """What a fused sweep would run, before it runs: runs, groups, memory, and the time
    a short calibration on ``device`` predicts."""
    where = prepare_device(device)
    configs = experiment.configs(proto, store)
    for config in configs:
        fused.check(config)
    todo = store.pending(configs, store.folder(experiment.name, proto))
    sizes = sizes_of(proto, configs[0])
    models, lanes = shape(configs)
    together = lanes_per_group(models, lanes, sizes, device, None)
    memory = memory_bytes(models, together, sizes)
    rate, peak = calibrate(models, together, sizes.batch, device, steps)
    seconds = sizes.work(len(todo)) / rate
    groups = len(groups_of(todo, together)) if todo else 0
    lengths = "/".join(str(n) for n in sorted({config.epochs for config in configs}))
    folds = experiment.cross_validated or proto.cross_validation
    epochs = sum(config.epochs for config in todo)
    parts = ", ".join(f"{name} {size / 2**30:.1f}" for name, size in memory.items())
    measured = f", {peak / 2**30:.1f} GiB measured" if peak is not None else ""
    return "\n".join(
        [
            (
                f"{experiment.name} under protocol '{proto.name}' "
                f"[{proto.digest()}], fused engine"
            ),
            f"  data: {proto.data_line()}",
            (
                f"  runs: {len(configs)} of {lengths} epochs, "
                f"{proto.replicates_line(folds)}"
            ),
            (
                f"  {len(configs) - len(todo)} stored, {len(todo)} to run "
                f"({epochs:,} epochs)"
            ),
            (
                f"  on {where}: {groups} group{'s' * (groups != 1)} of up to "
                f"{together * models} runs ({together} x {models}), one network each"
            ),
            (
                f"  memory of a group: {sum(memory.values()) / 2**30:.1f} GiB "
                f"estimated{measured}"
            ),
            f"    ({parts} GiB)",
            (
                f"  calibration: {rate:,.0f} trained images/s on {device} "
                f"({together * models} models at once)"
            ),
            f"  estimate: {clock_text(seconds)}, evaluation included",
        ]
    )
