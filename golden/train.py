"""Training: SGD with momentum (Eq. 32 of the sources), fast on a CPU.

The update is PyTorch's own ``torch.optim.SGD``: v <- mu v + g, w <- w - lr v, which
equals Eq. (32) with eta = lr and alpha = mu for a constant learning rate. Speed comes
from what surrounds it, each measured by ``python -m golden bench``: the data stay in
memory as one tensor (no per-image Python), and the network runs in ``channels_last``
layout, whose pooling and convolution kernels are the fast ones on a CPU. A run depends
only on its configuration: the seed fixes the initial weights, the batch order and the
dropout masks.

Options beyond the paper's protocol, for the studies of the book's last part: Adam
instead of SGD, symmetric label noise on the training split, a learning rate set each
epoch from the mutual information of the validation predictions, and diagnostics probes
during training.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from golden import diagnostics
from golden.data import (
    DATASETS,
    FOLDS,
    NOISE_SEED_BASE,
    MnistSplits,
    Split,
    with_label_noise,
)
from golden.files import read_bounded
from golden.models import MODELS, build_model

EVAL_BATCH = 2000
LOSSES = ("cross_entropy", "mse")
OPTIMIZERS = ("sgd", "adam")  # Adam with PyTorch's default betas (0.9, 0.999)
SCHEDULES = ("constant", "mi_decay")
# torch seeds a generator with the low 32 bits of a seed, and a run's label noise draws
# from seed NOISE_SEED_BASE + seed: below 2**31, distinct seeds give distinct batch
# orders, dropout masks and noise, and no noise stream is another seed's batch order.
SEEDS = range(NOISE_SEED_BASE)
# An epoch count beyond any experiment's (the 2024 protocol trains 30): a typo such as
# --epochs 1000000 is refused at once, not trained for years.
MAX_EPOCHS = 10_000
FLOAT32 = torch.finfo(torch.float32)  # the optimizers compute in float32


class ConfigError(ValueError):
    """A bad hyperparameter, named in one line."""


@dataclass(frozen=True)
class TrainConfig:
    """One training run: what the command line and the experiment runner pass around."""

    lr: float
    momentum: float
    epochs: int = 1
    seed: int = 0
    model: str = "cnn"
    batch_size: int = 64
    loss: str = "cross_entropy"
    optimizer: str = "sgd"
    # fraction of training labels replaced by a wrong class (data.with_label_noise)
    label_noise: float = 0.0
    # or "mi_decay": lr of each epoch = lr * (1 - normalised MI after the last)
    schedule: str = "constant"
    # measure gradient noise and sharpness every this many steps (0: never)
    probe_every: int = 0
    # -1: the book's fixed 10% validation split; k: fold k of data.FOLDS
    # (cross-validation)
    fold: int = -1
    # train on a stratified fraction of the 60,000 images (the source's 50%)
    data_fraction: float = 1.0
    dataset: str = "mnist"  # or "fashion-mnist": golden.data.DATASETS

    def __post_init__(self):
        if not (
            isinstance(self.lr, (int, float)) and FLOAT32.tiny <= self.lr <= FLOAT32.max
        ):
            raise ConfigError(
                "learning rate must be a positive number float32 holds, from "
                f"{FLOAT32.tiny:.3g} to {FLOAT32.max:.3g}, got {self.lr!r}"
            )
        if not (
            isinstance(self.momentum, (int, float))
            and 0 <= self.momentum < 1
            and float(torch.tensor(self.momentum, dtype=torch.float32)) < 1
        ):
            raise ConfigError(
                f"momentum must lie in [0, 1) in float32, got {self.momentum!r}"
            )
        if not (isinstance(self.epochs, int) and 1 <= self.epochs <= MAX_EPOCHS):
            raise ConfigError(
                f"epochs must be an integer from 1 to {MAX_EPOCHS:,}, got "
                f"{self.epochs!r}"
            )
        if not (isinstance(self.seed, int) and self.seed in SEEDS):
            raise ConfigError(
                "seed must be an integer in [0, 2**31) (torch keeps 32 bits of a seed, "
                f"and label noise uses seed + 2**31), got {self.seed!r}"
            )
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise ConfigError(
                f"batch size must be an integer >= 1, got {self.batch_size!r}"
            )
        if self.model not in MODELS:
            raise ConfigError(
                f"unknown model {self.model!r}: choose one of {', '.join(MODELS)}"
            )
        if self.loss not in LOSSES:
            raise ConfigError(
                f"unknown loss {self.loss!r}: choose one of {', '.join(LOSSES)}"
            )
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"unknown optimizer {self.optimizer!r}: choose one of "
                f"{', '.join(OPTIMIZERS)}"
            )
        if self.optimizer == "adam" and self.momentum != 0:
            raise ConfigError(
                "Adam takes no momentum here (its betas are PyTorch's defaults): set "
                "momentum to 0"
            )
        if not (
            isinstance(self.label_noise, (int, float)) and 0 <= self.label_noise < 1
        ):
            raise ConfigError(
                f"label noise must be a fraction in [0, 1), got {self.label_noise!r}"
            )
        if self.schedule not in SCHEDULES:
            raise ConfigError(
                f"unknown schedule {self.schedule!r}: choose one of "
                f"{', '.join(SCHEDULES)}"
            )
        if not (isinstance(self.probe_every, int) and self.probe_every >= 0):
            raise ConfigError(
                f"probe_every must be an integer >= 0, got {self.probe_every!r}"
            )
        if not (isinstance(self.fold, int) and -1 <= self.fold < FOLDS):
            raise ConfigError(
                f"fold must be -1 (fixed split) or 0 .. {FOLDS - 1}, got {self.fold!r}"
            )
        if not (
            isinstance(self.data_fraction, (int, float)) and 0 < self.data_fraction <= 1
        ):
            raise ConfigError(
                f"data fraction must lie in (0, 1], got {self.data_fraction!r}"
            )
        if self.dataset not in DATASETS:
            raise ConfigError(
                f"unknown dataset {self.dataset!r}: choose one of {', '.join(DATASETS)}"
            )


@dataclass
class History:
    """Per-epoch metrics of one run; ``diverged`` once its training loss stops being
    finite."""

    config: TrainConfig
    train_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    # rows: true label, columns: predicted
    val_confusion: list[list[list[int]]] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)  # the learning rate of each epoch
    # diagnostics.Prober's record, if probed
    probes: dict[str, list[float]] = field(default_factory=dict)
    diverged: bool = False
    wall_time_s: float = 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "config": asdict(self.config)}


def batch_loss(logits: torch.Tensor, labels: torch.Tensor, loss: str) -> torch.Tensor:
    """Mean loss over the batch. ``mse`` is the squared error between the softmax output
    and the one-hot target, summed over the 10 classes and averaged over the batch."""
    if loss == "cross_entropy":
        return F.cross_entropy(logits, labels)
    target = F.one_hot(labels, logits.shape[-1]).to(logits.dtype)
    return (logits.softmax(-1) - target).pow(2).sum(-1).mean()


def to_layout(images: torch.Tensor) -> torch.Tensor:
    return images.contiguous(memory_format=torch.channels_last)


def seeded_model(config: TrainConfig) -> torch.nn.Module:
    """The model as ``torch.manual_seed(seed); build_model(name)`` makes it, in
    channels_last."""
    torch.manual_seed(config.seed)
    return build_model(config.model).to(memory_format=torch.channels_last)


def make_optimizer(
    model: torch.nn.Module, config: TrainConfig
) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr)
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


@torch.inference_mode()
def confusion(model: torch.nn.Module, split: Split) -> torch.Tensor:
    """Counts of (true label, predicted label) over ``split``."""
    model.eval()
    predictions = torch.cat(
        [
            model(to_layout(split.images[start : start + EVAL_BATCH])).argmax(-1)
            for start in range(0, len(split), EVAL_BATCH)
        ]
    )
    return diagnostics.confusion_matrix(predictions, split.labels)


def accuracy_of(counts: torch.Tensor) -> float:
    """Fraction of correctly classified images: the diagonal of a confusion matrix over
    its total."""
    return int(counts.trace()) / int(counts.sum())


def accuracy(model: torch.nn.Module, split: Split) -> float:
    return accuracy_of(confusion(model, split))


def epoch_orders(n: int, epochs: int, seed: int) -> Iterator[torch.Tensor]:
    """One random permutation of the training set per epoch, fixed by the seed alone,
    each drawn when its epoch starts (memory does not grow with the epochs)."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.randperm(n, generator=generator) for _ in range(epochs))


def train_epoch(
    model,
    optimizer,
    split: Split,
    order: torch.Tensor,
    config: TrainConfig,
    bar,
    before_step: Callable[[torch.nn.Module], None] | None = None,
) -> float:
    """One pass over ``split`` in ``order``; the mean training loss, or inf at the first
    non-finite batch loss (there is no point in computing NaNs for the rest of the
    epoch). ``before_step`` (a diagnostics.Prober) sees the model before every optimizer
    step."""
    model.train()
    loss_sum = 0.0
    for batch in order.split(config.batch_size):
        if before_step is not None:
            before_step(model)
        loss = batch_loss(
            model(to_layout(split.images[batch])), split.labels[batch], config.loss
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = loss.item()
        if not math.isfinite(value):
            return math.inf
        loss_sum += value * len(batch)
        bar.update()
    return loss_sum / len(split)


# A checkpoint bigger than this is not one of ours (the CNN's is about 2.5 MB).
MAX_CHECKPOINT_BYTES = 256 * 2**20


def save_state(path: Path, model, optimizer, history: History) -> None:
    """Everything a longer run of the same configuration needs to go on from here bit
    for bit: weights, optimizer buffers, the random state of the dropout masks, and the
    history so far; after a line with the SHA-256 of the rest, so that a damaged
    checkpoint is known as one. A cache: where it cannot be written, it is not."""
    state = {
        "config": asdict(replace(history.config, epochs=1)),
        "history": history.as_dict(),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "rng": torch.get_rng_state(),
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    content = buffer.getvalue()
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(content).hexdigest().encode()
        temporary.write_bytes(digest + b"\n" + content)
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def load_state(path: Path, config: TrainConfig, model, optimizer) -> History | None:
    """The history of a saved shorter run of ``config`` after restoring its state, or
    None: nothing saved, another configuration, not shorter, damaged or unreadable in
    any way (a cache miss: the caller trains from the start)."""
    try:
        digest, _, content = read_bounded(path, MAX_CHECKPOINT_BYTES).partition(b"\n")
        if digest != hashlib.sha256(content).hexdigest().encode():
            return None
        state = torch.load(io.BytesIO(content), weights_only=True)
        saved = History(
            **{**state["history"], "config": TrainConfig(**state["history"]["config"])}
        )
        if (
            state["config"] != asdict(replace(config, epochs=1))
            or len(saved.train_loss) > config.epochs
        ):
            return None
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
    except Exception:  # whatever a bad cache raises, it is a miss and never an error
        return None
    return replace(saved, config=config)


def train(
    config: TrainConfig,
    data: MnistSplits,
    progress: bool | None = None,
    checkpoint: Path | None = None,
) -> History:
    """Train one configuration; evaluate on the validation and test splits after each
    epoch.

    A run whose training loss stops being finite is marked diverged and stopped there.
    With a ``checkpoint`` path, a run goes on from a saved shorter run of the same
    configuration (successive halving promotes runs this way) and saves its own end
    state there; the numbers are those of a run from the start (tested).
    """
    from tqdm import tqdm  # here: the fused path (golden.fused) runs without tqdm

    model = seeded_model(config)
    optimizer = make_optimizer(model, config)
    history = None
    if checkpoint is not None and not config.probe_every:
        history = load_state(checkpoint, config, model, optimizer)
        if history is None:  # a miss may have restored part of the state: start anew
            model = seeded_model(config)
            optimizer = make_optimizer(model, config)
    history = history or History(config)
    done = len(history.train_loss)
    train_split = with_label_noise(data.train, config.label_noise, config.seed)
    prober = None
    if config.probe_every:
        # clean labels, the same images for every run
        probe = data.train.head(diagnostics.PROBE_SIZE)
        prober = diagnostics.Prober(
            to_layout(probe.images),
            probe.labels,
            partial(batch_loss, loss=config.loss),
            config.batch_size,
            config.probe_every,
            config.seed,
        )
    steps = (config.epochs - done) * math.ceil(len(train_split) / config.batch_size)
    label = f"lr={config.lr:g} momentum={config.momentum:g} seed={config.seed}"
    start = time.perf_counter()
    with tqdm(
        total=steps,
        disable=None if progress is None else not progress,
        desc=label,
        unit="step",
        leave=False,
    ) as bar:
        orders = epoch_orders(len(train_split), config.epochs, config.seed)
        for order in islice(orders, done, None):
            history.lr.append(optimizer.param_groups[0]["lr"])
            epoch_loss = train_epoch(
                model, optimizer, train_split, order, config, bar, prober
            )
            history.train_loss.append(epoch_loss)
            if not math.isfinite(epoch_loss):
                history.diverged = True
                break
            val_confusion = confusion(model, data.val)
            history.val_confusion.append(val_confusion.tolist())
            history.val_acc.append(accuracy_of(val_confusion))
            history.test_acc.append(accuracy(model, data.test))
            if config.schedule == "mi_decay":
                set_lr(
                    optimizer,
                    config.lr
                    * (1 - diagnostics.normalised_mutual_information(val_confusion)),
                )
    history.wall_time_s += time.perf_counter() - start
    if prober is not None:
        history.probes = prober.record
    if checkpoint is not None and not config.probe_every and not history.diverged:
        save_state(checkpoint, model, optimizer, history)
    return history
