"""Training: SGD with momentum (Eq. 32 of the sources), fast on a CPU.

The update is PyTorch's own ``torch.optim.SGD``: v <- mu v + g, w <- w - lr v, which equals
Eq. (32) with eta = lr and alpha = mu for a constant learning rate. Speed comes from what
surrounds it, each measured by ``python -m golden bench``: the data stay in memory as one
tensor (no per-image Python), and the network runs in ``channels_last`` layout, whose
pooling and convolution kernels are the fast ones on a CPU. A run depends only on its
configuration: the seed fixes the initial weights, the batch order and the dropout masks.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from tqdm import tqdm

from golden.data import MnistSplits, Split
from golden.models import MODELS, build_model

EVAL_BATCH = 2000
LOSSES = ("cross_entropy", "mse")


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

    def __post_init__(self):
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"learning rate must be a positive number, got {self.lr!r}")
        if not (isinstance(self.momentum, (int, float)) and 0 <= self.momentum < 1):
            raise ConfigError(f"momentum must lie in [0, 1), got {self.momentum!r}")
        if not (isinstance(self.epochs, int) and self.epochs >= 1):
            raise ConfigError(f"epochs must be an integer >= 1, got {self.epochs!r}")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise ConfigError(f"batch size must be an integer >= 1, got {self.batch_size!r}")
        if self.model not in MODELS:
            raise ConfigError(f"unknown model {self.model!r}: choose one of {', '.join(MODELS)}")
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r}: choose one of {', '.join(LOSSES)}")


@dataclass
class History:
    """Per-epoch metrics of one run; ``diverged`` once its training loss stops being finite."""

    config: TrainConfig
    train_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    diverged: bool = False
    wall_time_s: float = 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "config": asdict(self.config)}


def batch_loss(logits: torch.Tensor, labels: torch.Tensor, loss: str) -> torch.Tensor:
    """Mean loss over the batch. ``mse`` is the squared error between the softmax output and
    the one-hot target, summed over the 10 classes and averaged over the batch."""
    if loss == "cross_entropy":
        return F.cross_entropy(logits, labels)
    target = F.one_hot(labels, logits.shape[-1]).to(logits.dtype)
    return (logits.softmax(-1) - target).pow(2).sum(-1).mean()


def to_layout(images: torch.Tensor) -> torch.Tensor:
    return images.contiguous(memory_format=torch.channels_last)


def seeded_model(config: TrainConfig) -> torch.nn.Module:
    """The model as ``torch.manual_seed(seed); build_model(name)`` makes it, in channels_last."""
    torch.manual_seed(config.seed)
    return build_model(config.model).to(memory_format=torch.channels_last)


@torch.inference_mode()
def accuracy(model: torch.nn.Module, split: Split) -> float:
    """Fraction of correctly classified images."""
    model.eval()
    correct = 0
    for start in range(0, len(split), EVAL_BATCH):
        logits = model(to_layout(split.images[start : start + EVAL_BATCH]))
        correct += int((logits.argmax(-1) == split.labels[start : start + EVAL_BATCH]).sum())
    return correct / len(split)


def epoch_orders(n: int, epochs: int, seed: int) -> list[torch.Tensor]:
    """One random permutation of the training set per epoch, fixed by the seed alone."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.randperm(n, generator=generator) for _ in range(epochs)]


def train_epoch(model, optimizer, split: Split, order: torch.Tensor, config: TrainConfig, bar) -> float:
    """One pass over ``split`` in ``order``; the mean training loss, or inf at the first
    non-finite batch loss (there is no point in computing NaNs for the rest of the epoch)."""
    model.train()
    loss_sum = 0.0
    for batch in order.split(config.batch_size):
        loss = batch_loss(model(to_layout(split.images[batch])), split.labels[batch], config.loss)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = loss.item()
        if not math.isfinite(value):
            return math.inf
        loss_sum += value * len(batch)
        bar.update()
    return loss_sum / len(split)


def train(config: TrainConfig, data: MnistSplits, progress: bool | None = None) -> History:
    """Train one configuration; evaluate on the validation and test splits after each epoch.

    A run whose training loss stops being finite is marked diverged and stopped there.
    """
    model = seeded_model(config)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    history = History(config)
    train_split = data.train
    steps = config.epochs * math.ceil(len(train_split) / config.batch_size)
    label = f"lr={config.lr:g} momentum={config.momentum:g} seed={config.seed}"
    start = time.perf_counter()
    with tqdm(total=steps, disable=None if progress is None else not progress, desc=label, unit="step",
              leave=False) as bar:
        for order in epoch_orders(len(train_split), config.epochs, config.seed):
            epoch_loss = train_epoch(model, optimizer, train_split, order, config, bar)
            history.train_loss.append(epoch_loss)
            if not math.isfinite(epoch_loss):
                history.diverged = True
                break
            history.val_acc.append(accuracy(model, data.val))
            history.test_acc.append(accuracy(model, data.test))
    history.wall_time_s = time.perf_counter() - start
    return history
