"""Checks of golden.train: same numbers as a plain PyTorch loop, Eq. (32), validation,
divergence.

Everything runs on small synthetic tensors shaped like MNIST (images in [-1, 1]), so the
file needs neither the data files nor more than a few seconds of CPU.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import math
import os

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import golden.train
from factories import learnable
from golden import theory
from golden.data import MnistSplits
from golden.models import MLP, MODELS, FastPaperCNN, PaperCNN, parameter_count
from golden.train import ConfigError, TrainConfig, epoch_orders, train

GOLDEN = {"lr": theory.ETA, "momentum": theory.ALPHA}


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ----------------------------------------------------------- the same numbers as a
# plain loop


def test_trainer_matches_plain_pytorch_loop(monkeypatch, one_thread):
    """Same seed, same batch order: golden's channels_last trainer and a plain NCHW loop
    give the same loss at every one of 50 steps (the dropout masks come from the same
    global RNG)."""
    seed, steps, batch = 3, 50, 64
    data = learnable(steps * batch)
    config = TrainConfig(**GOLDEN, seed=seed, batch_size=batch)

    golden_losses = []
    batch_loss = golden.train.batch_loss

    def recording_loss(*args):
        value = batch_loss(*args)
        golden_losses.append(value.item())
        return value

    monkeypatch.setattr(golden.train, "batch_loss", recording_loss)
    history = train(config, data, progress=False)

    torch.manual_seed(seed)
    model = PaperCNN()
    optimizer = torch.optim.SGD(
        model.parameters(), lr=theory.ETA, momentum=theory.ALPHA
    )
    plain_losses = []
    (order,) = epoch_orders(len(data.train), 1, seed)
    model.train()
    for indices in order.split(batch):
        loss = F.cross_entropy(
            model(data.train.images[indices]), data.train.labels[indices]
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        plain_losses.append(loss.item())

    assert len(golden_losses) == len(plain_losses) == steps
    assert golden_losses == pytest.approx(plain_losses, abs=1e-5, rel=0)
    assert history.train_loss[0] == pytest.approx(sum(plain_losses) / steps, abs=1e-5)
    # it learned something, so the match is not trivial
    assert plain_losses[-1] < plain_losses[0]


def test_epoch_order_is_a_permutation_fixed_by_the_seed():
    first, second = epoch_orders(100, 2, seed=5)
    assert sorted(first.tolist()) == list(range(100))
    assert not torch.equal(first, second)
    assert all(
        torch.equal(a, b) for a, b in zip(epoch_orders(100, 2, seed=5), (first, second))
    )


def test_epoch_orders_are_drawn_as_the_epochs_come():
    """The most epochs a configuration takes cost no memory before they are trained:
    the orders of 10,000 epochs of 54,000 images would take 4.3 GB up front."""
    orders = epoch_orders(54_000, golden.train.MAX_EPOCHS, seed=0)
    first, second = next(orders), next(orders)
    assert [t.tolist() for t in (first, second)] == [
        t.tolist() for t in epoch_orders(54_000, 2, seed=0)
    ]
    TrainConfig(**GOLDEN, epochs=golden.train.MAX_EPOCHS)
    with pytest.raises(ConfigError, match="10,000"):
        TrainConfig(**GOLDEN, epochs=golden.train.MAX_EPOCHS + 1)


@pytest.mark.parametrize("lr", [3.5e38, 1e39, 1e300, 1e-39, 1e-50, 5e-324])
def test_a_learning_rate_float32_cannot_hold_is_refused(lr):
    with pytest.raises(ConfigError, match="float32"):
        TrainConfig(lr=lr, momentum=0.5)


def test_the_extreme_learning_rates_float32_holds_train_without_an_error():
    """The largest diverges (a recorded outcome), the smallest barely moves: neither
    raises, as 1e39 did where the optimizer met it in float32."""
    data = learnable(64, n_eval=8)
    finfo = torch.finfo(torch.float32)
    for lr in (finfo.max, finfo.tiny):
        config = TrainConfig(lr=lr, momentum=0.9, model="mlp", batch_size=32)
        train(config, data, progress=False)
    with pytest.raises(ConfigError, match="momentum"):
        TrainConfig(lr=0.1, momentum=1 - 1e-9)  # 1 in float32


# ------------------------------------------------------------------------- Eq. (32)


@pytest.mark.parametrize(
    "lr, momentum", [(theory.ETA, theory.ALPHA), (0.1, 0.5), (0.3, 0.0)]
)
def test_torch_sgd_is_eq_32(lr, momentum):
    """torch.optim.SGD makes dw(t) = -eta g(t) + alpha dw(t-1) on a quadratic, step
    after step."""
    generator = torch.Generator().manual_seed(0)
    root = torch.randn(4, 4, generator=generator, dtype=torch.float64)
    hessian = root @ root.T + torch.eye(4, dtype=torch.float64)
    target = torch.randn(4, generator=generator, dtype=torch.float64)
    w = torch.randn(4, generator=generator, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([w], lr=lr, momentum=momentum)
    previous_step = torch.zeros(4, dtype=torch.float64)
    for _ in range(8):
        optimizer.zero_grad()
        loss = 0.5 * (w - target) @ hessian @ (w - target)
        loss.backward()
        gradient = w.grad.clone()
        before = w.detach().clone()
        optimizer.step()
        step = w.detach() - before
        expected = -lr * gradient + momentum * previous_step
        torch.testing.assert_close(step, expected, rtol=1e-12, atol=1e-12)
        previous_step = step
    assert previous_step.abs().max() > 0


# --------------------------------------------------------------------- learning at all


@pytest.mark.parametrize("model", sorted(MODELS))
def test_one_training_step_lowers_the_loss(model):
    """Two epochs over one fixed batch: the loss of the second pass (after one SGD step)
    is lower."""
    data = learnable(32, n_eval=8)
    history = train(
        TrainConfig(lr=0.05, momentum=0.0, epochs=2, model=model, batch_size=32),
        data,
        progress=False,
    )
    first, second = history.train_loss
    assert second < first


# ------------------------------------------------------------------------- validation


def test_a_good_config_is_accepted():
    config = TrainConfig(**GOLDEN, epochs=2, model="mlp", loss="mse")
    assert (config.lr, config.momentum) == (theory.ETA, theory.ALPHA)


bad_lr = st.floats(max_value=0) | st.sampled_from([math.nan, math.inf, -math.inf])
bad_momentum = st.floats().filter(lambda m: not 0 <= m < 1) | st.just(1.0)
bad_epochs = st.integers(max_value=0)
bad_name = st.text(max_size=12)


@settings(max_examples=50, deadline=None)
@given(lr=bad_lr)
def test_bad_learning_rate_is_refused(lr):
    with pytest.raises(ConfigError, match="learning rate"):
        TrainConfig(lr=lr, momentum=0.5)


@settings(max_examples=50, deadline=None)
@given(momentum=bad_momentum)
def test_bad_momentum_is_refused(momentum):
    with pytest.raises(ConfigError, match="momentum"):
        TrainConfig(lr=0.01, momentum=momentum)


@settings(max_examples=30, deadline=None)
@given(epochs=bad_epochs)
def test_bad_epochs_are_refused(epochs):
    with pytest.raises(ConfigError, match="epochs"):
        TrainConfig(lr=0.01, momentum=0.5, epochs=epochs)


@settings(max_examples=30, deadline=None)
@given(name=bad_name)
def test_unknown_model_and_loss_are_refused(name):
    if name not in MODELS:
        with pytest.raises(ConfigError, match="unknown model"):
            TrainConfig(lr=0.01, momentum=0.5, model=name)
    if name not in golden.train.LOSSES:
        with pytest.raises(ConfigError, match="unknown loss"):
            TrainConfig(lr=0.01, momentum=0.5, loss=name)


# ------------------------------------------------------------------------- divergence


def test_non_finite_loss_marks_the_run_diverged():
    data = learnable(64, n_eval=8)
    data.train.images[5, 0, 3, 3] = math.nan
    history = train(TrainConfig(**GOLDEN, epochs=3), data, progress=False)
    assert history.diverged
    # stopped at the first bad epoch, before evaluating
    assert history.train_loss == [math.inf]
    assert history.val_acc == [] and history.test_acc == []


def test_finite_run_is_not_diverged():
    history = train(
        TrainConfig(**GOLDEN, model="mlp", epochs=2),
        learnable(128, n_eval=8),
        progress=False,
    )
    assert not history.diverged
    assert len(history.train_loss) == len(history.val_acc) == len(history.test_acc) == 2
    assert all(math.isfinite(value) for value in history.train_loss)


# ------------------------------------------------------------------------- determinism


def test_same_seed_same_history(one_thread):
    data = learnable(256, n_eval=64)
    runs = [
        train(TrainConfig(**GOLDEN, epochs=2, seed=seed), data, progress=False)
        for seed in (7, 7, 8)
    ]
    same, again, other = (
        {k: v for k, v in r.as_dict().items() if k != "wall_time_s"} for r in runs
    )
    assert same == again
    assert same["train_loss"] != other["train_loss"]


@pytest.mark.parametrize("schedule", ["constant", "mi_decay"])
def test_a_continued_run_is_the_run_from_the_start(tmp_path, one_thread, schedule):
    """Successive halving continues a promoted run from its shorter run's saved state: 1
    epoch, then on to 3, gives bit for bit the numbers of 3 epochs from the start
    (dropout masks, momentum buffers and the learning rate carry over)."""
    data = learnable(192, n_eval=64)
    config = TrainConfig(**GOLDEN, epochs=3, seed=5, schedule=schedule)
    whole = train(config, data, progress=False).as_dict()
    state = tmp_path / "state.pt"
    short = train(
        dataclasses.replace(config, epochs=1), data, progress=False, checkpoint=state
    )
    assert state.is_file() and len(short.train_loss) == 1
    continued = train(config, data, progress=False, checkpoint=state).as_dict()
    for key in (
        "train_loss",
        "val_acc",
        "test_acc",
        "val_confusion",
        "lr",
        "diverged",
        "config",
    ):
        assert continued[key] == whole[key], key


def test_a_checkpoint_of_another_configuration_is_ignored(tmp_path, one_thread):
    data = learnable(128, n_eval=32)
    state = tmp_path / "state.pt"
    train(
        TrainConfig(**GOLDEN, epochs=1, seed=1), data, progress=False, checkpoint=state
    )
    other = TrainConfig(**GOLDEN, epochs=2, seed=2)
    assert (
        train(other, data, progress=False, checkpoint=state).train_loss
        == train(other, data, progress=False).train_loss
    )
    state.write_bytes(b"not a checkpoint")
    assert len(train(other, data, progress=False, checkpoint=state).train_loss) == 2


def history_of(config: TrainConfig, data: MnistSplits, **options) -> dict:
    run = train(config, data, progress=False, **options).as_dict()
    return {key: value for key, value in run.items() if key != "wall_time_s"}


def checkpoint(state: dict) -> bytes:
    """A checkpoint's bytes as golden writes them: the SHA-256 of the rest, a newline,
    the state as torch saves it."""
    content = io.BytesIO()
    torch.save(state, content)
    return (
        hashlib.sha256(content.getvalue()).hexdigest().encode()
        + b"\n"
        + content.getvalue()
    )


def flip_a_byte(saved: bytes) -> bytes:
    middle = len(saved) // 2
    return saved[:middle] + bytes([saved[middle] ^ 0xFF]) + saved[middle + 1 :]


def another_optimizer_state(saved: bytes) -> bytes:
    """Checksum intact, model state intact, optimizer state of another model: loading
    it fails after the model's weights were restored."""
    state = torch.load(io.BytesIO(saved.partition(b"\n")[2]), weights_only=True)
    other = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1, momentum=0.5)
    return checkpoint({**state, "optimizer": other.state_dict()})


DAMAGES = {
    "a flipped byte": flip_a_byte,
    "truncated": lambda saved: saved[: len(saved) // 2],
    "empty": lambda saved: b"",
    "without a checksum": lambda saved: saved.partition(b"\n")[2],
    "checksum of a non-state": lambda saved: checkpoint([1, 2, 3]),
    "another optimizer's state": another_optimizer_state,
}


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_a_damaged_checkpoint_is_a_cache_miss(tmp_path, one_thread, damage):
    """Whatever is wrong with a checkpoint, the run trains from the start, with the
    numbers of a run from the start (and saves a good checkpoint in its place)."""
    data = learnable(128, n_eval=32)
    config = TrainConfig(**GOLDEN, epochs=2, seed=1, model="mlp")
    state = tmp_path / "state.pt"
    train(dataclasses.replace(config, epochs=1), data, progress=False, checkpoint=state)
    state.write_bytes(damage(state.read_bytes()))
    assert history_of(config, data, checkpoint=state) == history_of(config, data)
    assert history_of(config, data, checkpoint=state) == history_of(config, data)


@pytest.mark.parametrize("make", [os.mkfifo, lambda path: path.symlink_to("/dev/zero")])
def test_a_checkpoint_that_is_no_file_is_a_miss_and_never_read(tmp_path, make):
    """A FIFO would block a reader for ever, /dev/zero fill its memory."""
    data = learnable(64, n_eval=16)
    config = TrainConfig(**GOLDEN, epochs=1, model="mlp")
    make(tmp_path / "state.pt")
    assert history_of(config, data, checkpoint=tmp_path / "state.pt") == history_of(
        config, data
    )


def test_a_checkpoint_that_cannot_be_written_is_not(tmp_path):
    """A cache: a run whose end state cannot be saved (its folder a regular file) still
    returns its history."""
    (tmp_path / "file").write_text("not a folder\n")
    data = learnable(64, n_eval=16)
    config = TrainConfig(**GOLDEN, epochs=1, model="mlp")
    saved = history_of(config, data, checkpoint=tmp_path / "file" / "state.pt")
    assert saved == history_of(config, data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


# ------------------------------------------------------------------------- the models


def test_paper_cnn_size_and_output():
    model = PaperCNN()
    assert parameter_count(model) == 206_922
    assert model(torch.zeros(5, 1, 28, 28)).shape == (5, 10)


def images_with_ties(n: int, seed: int) -> torch.Tensor:
    """Digit-like images: a blank background (so pooling windows hold equal values, and
    windows of negative values) around a random patch."""
    images = torch.full((n, 1, 28, 28), -1.0)
    images[:, :, 6:22, 6:22] = (
        torch.rand(n, 1, 16, 16, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    )
    return images


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("seed", [0, 1])
def test_fast_cnn_is_the_paper_cnn_bit_for_bit(layout, seed):
    """Same seed, same initial weights; same images and dropout masks, the same outputs
    and parameter gradients to the last bit, so results stored before the fast order
    stay reproducible."""
    images, labels = images_with_ties(32, seed), torch.arange(32) % 10
    results = []
    for cls in (PaperCNN, FastPaperCNN):
        torch.manual_seed(seed)
        model = cls().to(memory_format=layout)
        output = model(images.contiguous(memory_format=layout))
        F.cross_entropy(output, labels).backward()
        results.append(
            (output, [p.grad for p in model.parameters()], model.state_dict())
        )
    (paper_out, paper_grads, paper_state), (fast_out, fast_grads, fast_state) = results
    assert paper_state.keys() == fast_state.keys()
    assert torch.equal(paper_out, fast_out)
    assert all(torch.equal(a, b) for a, b in zip(paper_grads, fast_grads))
    assert any(bool(g.abs().sum() > 0) for g in fast_grads)


@pytest.mark.parametrize(
    "cls, channels_last", [(PaperCNN, False), (FastPaperCNN, True)]
)
def test_only_the_fast_cnn_hands_pooling_a_channels_last_gradient(cls, channels_last):
    """The point of its flatten: the gradient reaching the last pooling layer keeps the
    layout of that layer's output, so max-pooling's backward does not copy its input to
    match."""
    model = cls().to(memory_format=torch.channels_last)
    gradients = []

    def record_gradient(module, args, output):
        output.register_hook(gradients.append)

    model.features[5].register_forward_hook(record_gradient)
    model(
        images_with_ties(4, 0).contiguous(memory_format=torch.channels_last)
    ).sum().backward()
    assert len(gradients) == 1
    assert (
        gradients[0].is_contiguous(memory_format=torch.channels_last) == channels_last
    )


def test_mlp_size_and_output():
    model = MLP()
    assert parameter_count(model) == 28 * 28 * 128 + 128 + 128 * 10 + 10
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
