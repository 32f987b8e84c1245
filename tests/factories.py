"""What the tests make up instead of training or downloading: synthetic runs for the
analysis layer, MNIST-shaped tensors for the trainers, and stores of made-up records."""

from __future__ import annotations

import dataclasses

import torch

from golden.data import MnistSplits, Split
from golden.protocols import Protocol
from golden.results import Run
from golden.store import Store
from golden.train import TrainConfig


def make_run(
    lr: float = 0.016,
    momentum: float = 0.874,
    replicate: int = 0,
    test_acc: float | list[float] = 0.98,
    val_acc: float | list[float] | None = None,
    diverged: bool = False,
    folds: bool = False,
    epochs: int | None = None,
    train_loss: float | list[float] = 0.1,
    extra: dict | None = None,
    **config,
) -> Run:
    """A run of ``replicate`` (its seed, and its fold when ``folds``) whose metrics are
    the given final values (or per-epoch lists). A diverged run keeps only its finite
    epochs."""

    def series(value):
        return list(value) if isinstance(value, (list, tuple)) else [value]

    tests = series(test_acc)
    vals = series(test_acc if val_acc is None else val_acc)
    losses = series(train_loss)
    n = max(len(tests), len(vals), len(losses))
    pad = lambda xs: xs if len(xs) == n else [xs[0]] * (n - len(xs)) + xs  # noqa: E731
    metrics = {
        "test_acc": pad(tests),
        "val_acc": pad(vals),
        "train_loss": pad(losses),
        "lr": [lr] * n,
        **(extra or {}),
    }
    if diverged:
        metrics = {k: v[:-1] for k, v in metrics.items()}
    cfg = TrainConfig(
        lr=lr,
        momentum=momentum,
        epochs=epochs or n,
        seed=replicate,
        fold=replicate if folds else -1,
        **config,
    )
    return Run(cfg, metrics, diverged=diverged, wall_time_s=60.0)


def learnable_split(n: int, seed: int) -> Split:
    """n noisy images in [-1, 1] of shape (n, 1, 28, 28); label k lights up rows 2k and
    2k + 1, so a network can learn them."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(10, (n,), generator=generator)
    images = torch.rand(n, 1, 28, 28, generator=generator) - 1
    lit = torch.arange(28) // 2 == labels[:, None]  # (n, 28): the label's rows
    return Split(torch.where(lit[:, None, :, None], 1.0, images), labels)


def learnable(n_train: int, n_eval: int = 64) -> MnistSplits:
    """Training, validation and test splits of :func:`learnable_split`."""
    return MnistSplits(
        learnable_split(n_train, 1),
        learnable_split(n_eval, 2),
        learnable_split(n_eval, 3),
    )


def noise_split(n: int, seed: int) -> Split:
    """n images of uniform noise in [-1, 1] with random labels: nothing to learn."""
    generator = torch.Generator().manual_seed(seed)
    return Split(
        torch.rand(n, 1, 28, 28, generator=generator) * 2 - 1,
        torch.randint(10, (n,), generator=generator),
    )


TINY_DATA = MnistSplits(noise_split(128, 1), noise_split(32, 2), noise_split(32, 3))


def store_made_up_records(store: Store, name: str, configs, proto: Protocol) -> Store:
    """``store`` with a made-up one-epoch record of every configuration of ``name``
    (nothing trained)."""
    folder = store.folder(name, proto)
    store.prepare(folder, [])
    for config in configs:
        history = {
            "config": dataclasses.asdict(config),
            "train_loss": [0.5],
            "val_acc": [0.9],
            "test_acc": [0.9],
            "diverged": False,
            "wall_time_s": 1.0,
        }
        store.write(folder, history, proto, name)
    return store


def stamps(fig) -> list[str]:
    """The protocol stamps written on a figure."""
    return [t.get_text() for t in fig.texts if t.get_text().startswith("mode: ")]
