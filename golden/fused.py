"""The fused engine: many of the paper's CNNs trained at once, as one network.

The per-run engine (:mod:`golden.train`) trains one model per process: right for CPU
cores, wrong for a GPU, which a CNN of 7 MFLOP per trained image leaves almost idle.
Within one fold every pair of the grid starts from the same weights and sees the same
batches and dropout masks (common random numbers: the seed fixes them), so a fold's
whole grid can run as one network of ``M`` models:

* the first convolution as one convolution with 16·M output channels over the shared
  batch, the second as a convolution of M groups (16 -> 32 channels each);
* the fully connected layers as batched matrix products (``baddbmm``) over the models;
* the loss as a mean per model, the update as SGD over the stacked parameters with a
  learning rate and a momentum per model (:class:`StackedSGD`).

Several folds ("lanes") train at once where memory allows: their batches enter as the
channels of one input, and the first convolution is grouped by lane.

**Chosen by measurement.** ``python tools/fusion_methods.py --models M --threads T``
times one training step of M models on the CPU, the candidates' windows taken in turn
(best of 5). On this project's 2-core machine, shared with other jobs: with 60 models
on one thread, these grouped convolutions and batched products in NCHW layout trained
2,596 images/s, the same network fed channels_last images 2,475, and
``torch.func.vmap`` over one model's functional forward 1,655; on two threads 4,229,
4,215 and 2,873; with 10 models on one thread 5,830, 5,882 and 3,517. The layouts tie,
and vmap reaches 0.55-0.70 of either: it turns a batched convolution into the same
grouped one, plus its own overhead, and would hide the lanes and the dropout masks
behind its randomness rules. So the layers are written out, in PyTorch's default
layout (nothing to convert; what cuDNN takes as it comes).

**The per-run engine's random numbers.** Each lane's initial weights are built as the
per-run engine builds them (``torch.manual_seed(seed)``, then the model), its batch
orders are :func:`golden.train.epoch_orders`, and its dropout masks are drawn in the
per-run engine's order, with the same call (``bernoulli_`` of the flattened
activations' shape, as ``F.dropout`` draws them on a CPU), from a generator in the
state the per-run engine's global one has after building the model, on the CPU also
when the network runs on a GPU. So with the same data, the losses of the first steps
agree with the per-run engine's to about 1e-6 (only the order of float additions
differs; tested to 1e-5). Over whole runs the engines agree only statistically, since
SGD trajectories are chaotic; the engine is therefore part of the protocol, and the
fused records live in folders of their own.

**Invariance.** No operation mixes models: grouped convolutions, batched products,
per-model reductions; and a model whose loss stops being finite is frozen (learning
rate 0 from that step, weights and momentum zeroed at the end of the epoch), so no NaN
reaches a sum another model reads. A model's history therefore does not depend on
which models of its lane it is fused with: on the CPU, bit for bit
(``tests/test_fused.py``; a lone model trains beside a copy of itself, since PyTorch's
ungrouped convolution sums in another order). Several lanes make the first
convolution a grouped one, which also sums in another order than the one-lane
convolution: there the histories agree to rounding (tested). On a GPU the runs are fp32
without TF32, as on the CPU (``fp32`` in every record), but cuDNN picks its
convolution algorithms by timing them, so two GPU runs agree to rounding, not bit for
bit.

The update is ``torch.optim.SGD``'s arithmetic with a learning rate and a momentum per
model (on the CPU bit for bit the same: tested). Only what the grid needs is fused: SGD
at a constant learning rate on cross-entropy, without probes or label noise; anything
else is refused in one line.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from golden.data import CLASSES, MnistSplits, Split
from golden.train import (
    EVAL_BATCH,
    ConfigError,
    History,
    TrainConfig,
    accuracy_of,
    epoch_orders,
    seeded_model,
)

FLAT = 32 * 7 * 7  # the flattened features the dropout masks and the first fc layer see
# evaluation images per forward pass, per training batch image: about the memory of a
# training step, whose activations and gradients take several times an evaluation's
EVAL_PER_TRAIN = 4


def eval_chunk(batch: int) -> int:
    """Images per evaluation pass for a group trained in batches of ``batch``."""
    return min(EVAL_BATCH, EVAL_PER_TRAIN * batch)


class TimeUp(Exception):
    """The time limit passed during a group: its runs are not finished."""


def check(config: TrainConfig) -> None:
    """Refuse, in one line, a configuration the fused engine does not train."""
    asked = [
        f"{name} {value!r}"
        for name, value, fused in (
            ("model", config.model, "cnn"),
            ("optimizer", config.optimizer, "sgd"),
            ("loss", config.loss, "cross_entropy"),
            ("schedule", config.schedule, "constant"),
            ("probe_every", config.probe_every, 0),
            ("label noise", config.label_noise, 0),
        )
        if value != fused
    ]
    if asked:
        raise ConfigError(
            "the fused engine trains the CNN by SGD at a constant learning rate on "
            f"cross-entropy, without probes or label noise, not {', '.join(asked)}: "
            "use --engine per-run"
        )


def initial_state(
    config: TrainConfig,
) -> tuple[list[torch.Tensor], torch.Generator, float]:
    """The per-run engine's initial weights for ``config`` (its seed decides them), a
    generator in the state the per-run engine's global generator has right after
    building them (its dropout masks come from there), and the dropout rate; the global
    generator is left as it was."""
    with torch.random.fork_rng(devices=[]):
        model = seeded_model(config)
        generator = torch.Generator()
        generator.set_state(torch.get_rng_state())
    dropout = next(m.p for m in model.modules() if isinstance(m, torch.nn.Dropout))
    return [p.detach() for p in model.parameters()], generator, dropout


class FusedCNN:
    """``lanes`` x ``models`` copies of :class:`golden.models.PaperCNN` as one network.

    Every parameter is stacked on a leading axis of lanes·models models, lane by lane
    (lane l holds models l·M .. l·M + M - 1). Input: a batch of shape (b, lanes, 28,
    28), lane l's images as channel l, and per lane a dropout mask (already scaled) or
    None in evaluation; output: logits of shape (lanes·models, b, 10).
    """

    def __init__(self, weights: Sequence[list[torch.Tensor]], models: int, device):
        self.lanes, self.models = len(weights), models
        self.params = [
            torch.cat([w[index].expand(models, *w[index].shape) for w in weights])
            .to(device)
            .requires_grad_()
            for index in range(len(weights[0]))
        ]

    @property
    def size(self) -> int:
        return self.lanes * self.models

    def __call__(self, images: torch.Tensor, masks: torch.Tensor | None):
        w1, b1, w2, b2, w3, b3, w4, b4 = self.params
        k, batch = self.size, len(images)
        # max-pooling before ReLU, as FastPaperCNN: the same numbers, less work
        h = F.conv2d(
            images, w1.flatten(0, 1), b1.flatten(), padding=1, groups=self.lanes
        )
        h = F.relu(F.max_pool2d(h, 2))
        h = F.conv2d(h, w2.flatten(0, 1), b2.flatten(), padding=1, groups=k)
        h = F.relu(F.max_pool2d(h, 2))
        # (b, K·32, 7, 7) -> (lanes, models, b, FLAT), each model's features flattened
        # as PaperCNN flattens them
        h = h.reshape(batch, self.lanes, self.models, FLAT).permute(1, 2, 0, 3)
        if masks is not None:
            h = h * masks[:, None]
        h = h.reshape(k, batch, FLAT)
        h = F.relu(torch.baddbmm(b3.unsqueeze(1), h, w3.transpose(1, 2)))
        return torch.baddbmm(b4.unsqueeze(1), h, w4.transpose(1, 2))

    @torch.no_grad()
    def zero(self, frozen: torch.Tensor) -> None:
        """Zero the weights of the ``frozen`` models (a bool per model)."""
        for p in self.params:
            p.masked_fill_(per_model(frozen, p), 0)


def per_model(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A value per model, shaped to broadcast over a stacked parameter ``like``."""
    return values.view(-1, *[1] * (like.dim() - 1))


class StackedSGD:
    """``torch.optim.SGD`` without dampening, Nesterov or weight decay, over stacked
    parameters, with a learning rate and a momentum per model: v <- mu v + g (v = g at
    the first step), w <- w - lr v. A frozen model keeps its weights (its learning
    rate is 0)."""

    def __init__(self, params: list[torch.Tensor], lrs: torch.Tensor, momenta):
        self.params, self.lrs, self.momenta = params, lrs, momenta
        self.buffers: list[torch.Tensor] | None = None

    @torch.no_grad()
    def step(self, grads: Sequence[torch.Tensor], alive: torch.Tensor) -> None:
        steps = torch.where(alive, -self.lrs, 0)
        if self.buffers is None:
            self.buffers = [g.clone() for g in grads]
        else:
            for buffer, g in zip(self.buffers, grads):
                buffer.mul_(per_model(self.momenta, buffer)).add_(g)
        for p, buffer in zip(self.params, self.buffers):
            p.addcmul_(buffer, per_model(steps, p))

    @torch.no_grad()
    def zero(self, frozen: torch.Tensor) -> None:
        for buffer in self.buffers or []:
            buffer.masked_fill_(per_model(frozen, buffer), 0)


def model_losses(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The mean cross-entropy of each model over its batch: logits (K, b, 10), labels
    (lanes, b) -> (K,)."""
    k, batch, _ = logits.shape
    lanes = len(labels)
    targets = labels[:, None].expand(lanes, k // lanes, batch).reshape(-1)
    per_image = F.cross_entropy(logits.reshape(-1, CLASSES), targets, reduction="none")
    return per_image.view(k, batch).mean(1)


def train_step(net, optimizer, images, labels, masks, alive) -> torch.Tensor:
    """One SGD step of every model; ``alive`` turns False (on the device, without
    waiting for it) for a model whose loss is not finite. The losses, detached."""
    losses = model_losses(net(images, masks), labels)
    grads = torch.autograd.grad(losses.sum(), net.params)
    alive &= torch.isfinite(losses)
    optimizer.step(grads, alive)
    return losses.detach()


class MaskStream:
    """Each lane's dropout masks, an epoch at a time, as the per-run engine draws them:
    one ``bernoulli_(1 - p)`` of shape (batch, FLAT) per step from the lane's
    generator, on the CPU. The next epoch's are drawn in a background thread while
    this one trains."""

    def __init__(self, generators, n: int, batch: int, dropout: float, epochs, device):
        self.generators, self.n, self.batch = generators, n, batch
        self.keep, self.device, self.left = 1 - dropout, device, epochs
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.ahead = self.pool.submit(self._draw)

    def _draw(self) -> torch.Tensor:
        masks = torch.empty(len(self.generators), self.n, FLAT, dtype=torch.bool)
        for lane, generator in enumerate(self.generators):
            for begin in range(0, self.n, self.batch):
                size = min(self.batch, self.n - begin)
                noise = torch.empty(size, FLAT).bernoulli_(
                    self.keep, generator=generator
                )
                masks[lane, begin : begin + size] = noise.bool()
        return masks.to(self.device)

    def next_epoch(self) -> torch.Tensor:
        masks = self.ahead.result()
        self.left -= 1
        if self.left:
            self.ahead = self.pool.submit(self._draw)
        return masks

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


@torch.inference_mode()
def confusions(net: FusedCNN, images, labels, shared: bool, chunk: int):
    """Counts of (true label, predicted label) of every model: (K, 10, 10). Lane l
    reads ``images[l]`` and ``labels[l]``, or, ``shared``, all read the same images."""
    k, lanes = net.size, net.lanes
    counts = torch.zeros(k * CLASSES * CLASSES, dtype=torch.long, device=labels.device)
    offsets = torch.arange(k, device=labels.device)[:, None] * CLASSES * CLASSES
    total = labels.shape[-1]
    for begin in range(0, total, chunk):
        if shared:
            x = images[begin : begin + chunk, None].expand(-1, lanes, -1, -1)
            truth = labels[None, begin : begin + chunk].expand(lanes, -1)
        else:
            x = images[:, begin : begin + chunk].transpose(0, 1)
            truth = labels[:, begin : begin + chunk]
        predictions = net(x.contiguous(), None).argmax(-1).view(lanes, -1, x.shape[0])
        cells = (truth[:, None] * CLASSES + predictions).reshape(k, -1) + offsets
        counts += torch.bincount(cells.flatten(), minlength=len(counts))
    return counts.view(k, CLASSES, CLASSES).cpu()


@dataclass(frozen=True)
class Progress:
    """What a group reports after each epoch: for a progress line with an ETA."""

    epoch: int
    epochs: int
    models: int
    seconds: float  # since the group started


def lane_tensors(parts: Sequence[Split], device) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (lanes, N, 28, 28) and labels (lanes, N) of one split per lane."""
    return (
        torch.stack([part.images[:, 0] for part in parts]).to(device),
        torch.stack([part.labels for part in parts]).to(device),
    )


def lanes_of(configs: Sequence[TrainConfig]) -> dict[tuple[int, int], list[int]]:
    """The indices of ``configs`` by lane (seed and fold), in order; an error unless
    the configurations can share a network (same data, epochs and batch size, the same
    number of models in every lane)."""
    for config in configs:
        check(config)
    shared = {
        (c.dataset, c.data_fraction, c.epochs, c.batch_size, c.model) for c in configs
    }
    lanes: dict[tuple[int, int], list[int]] = {}
    for index, config in enumerate(configs):
        lanes.setdefault((config.seed, config.fold), []).append(index)
    if len(shared) != 1 or len({len(models) for models in lanes.values()}) != 1:
        raise ValueError(
            "a fused group needs one data set, epoch count and batch "
            "size, and as many models in every lane"
        )
    return lanes


def train_group(
    configs: Sequence[TrainConfig],
    data_of: Callable[[TrainConfig], MnistSplits],
    device: str = "cpu",
    report: Callable[[Progress], None] | None = None,
    time_up: Callable[[], bool] | None = None,
) -> list[History]:
    """Train ``configs`` as one network on ``device``; their histories, in order, as
    :func:`golden.train.train` records them (a diverged run stops at the epoch its loss
    stopped being finite). ``data_of`` gives a configuration's data; ``report`` hears
    of every epoch; ``time_up``, asked after every epoch, abandons the group by raising
    :class:`TimeUp`."""
    start = time.perf_counter()
    lanes = lanes_of(configs)
    # a lone model trains beside a copy of itself: PyTorch's ungrouped convolution
    # (one model) sums in another order than its grouped one on several threads
    copies = 2 if len(next(iter(lanes.values()))) == 1 else 1
    order = [index for members in lanes.values() for index in members * copies]
    runs = [configs[index] for index in order]
    data = [data_of(configs[members[0]]) for members in lanes.values()]
    n, batch, epochs = len(data[0].train), runs[0].batch_size, runs[0].epochs
    if any(len(d.train) != n or len(d.val) != len(data[0].val) for d in data):
        raise ValueError("the lanes of a fused group need splits of equal sizes")
    states = [initial_state(configs[members[0]]) for members in lanes.values()]
    net = FusedCNN(
        [weights for weights, _, _ in states], len(order) // len(lanes), device
    )
    k = net.size
    optimizer = StackedSGD(
        net.params,
        torch.tensor([c.lr for c in runs], device=device),
        torch.tensor([c.momentum for c in runs], device=device),
    )
    # the mask values the per-run engine multiplies by: 0 or 1 / (1 - p), in fp32
    scale = torch.ones(1).div_(1 - states[0][2]).to(device)
    masks = MaskStream(
        [g for _, g, _ in states], n, batch, states[0][2], epochs, device
    )
    images, labels = lane_tensors([d.train for d in data], device)
    val_images, val_labels = lane_tensors([d.val for d in data], device)
    test_images, test_labels = lane_tensors([data[0].test], device)
    rows = torch.arange(len(lanes), device=device)[:, None]
    orders = [epoch_orders(n, epochs, seed) for seed, _ in lanes]
    histories = [History(c) for c in runs]
    alive = torch.ones(k, dtype=torch.bool, device=device)
    running = list(range(k))
    chunk = eval_chunk(batch)
    try:
        for epoch in range(epochs):
            for index in running:
                histories[index].lr.append(runs[index].lr)
            epoch_order = torch.stack([next(o) for o in orders]).to(device)
            epoch_masks = masks.next_epoch()
            loss_sum = torch.zeros(k, dtype=torch.float64, device=device)
            for begin in range(0, n, batch):
                chosen = epoch_order[:, begin : begin + batch]
                step_masks = torch.where(
                    epoch_masks[:, begin : begin + batch], scale, 0
                )
                losses = train_step(
                    net,
                    optimizer,
                    images[rows, chosen].transpose(0, 1).contiguous(),
                    labels[rows, chosen],
                    step_masks,
                    alive,
                )
                # as the per-run engine sums them: in double, weighted by batch size
                loss_sum += losses.double() * chosen.shape[1]
            finite, sums = alive.tolist(), loss_sum.tolist()
            for index in list(running):
                history = histories[index]
                history.train_loss.append(
                    sums[index] / n if finite[index] else math.inf
                )
                if not finite[index]:
                    history.diverged = True
                    running.remove(index)
            net.zero(~alive)
            optimizer.zero(~alive)
            if running:
                val = confusions(net, val_images, val_labels, False, chunk)
                tests = confusions(net, test_images[0], test_labels[0], True, chunk)
                for index in running:
                    histories[index].val_confusion.append(val[index].tolist())
                    histories[index].val_acc.append(accuracy_of(val[index]))
                    histories[index].test_acc.append(accuracy_of(tests[index]))
            if report is not None:
                report(Progress(epoch + 1, epochs, k, time.perf_counter() - start))
            if not running:
                break
            if time_up is not None and epoch + 1 < epochs and time_up():
                raise TimeUp
    finally:
        masks.close()
    # each run's share of the group's time
    share = (time.perf_counter() - start) / len(configs)
    by_config = dict(zip(order, histories))
    for history in histories:
        history.wall_time_s = share
    return [by_config[index] for index in range(len(configs))]
