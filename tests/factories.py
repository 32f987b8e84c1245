"""Small synthetic runs for the tests of the analysis layer: no training, no store."""

from __future__ import annotations

from golden.results import Run
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
    the
    given final values (or per-epoch lists). A diverged run keeps only its finite
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
