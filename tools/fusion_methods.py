"""Three ways to train many CNNs as one network, timed on this CPU: the measurement
behind the choice :mod:`golden.fused` made.

    python tools/fusion_methods.py [--models 60] [--steps 4] [--windows 5] [--threads 1]

Each method trains ``--models`` copies of the paper's CNN on one shared batch of 64
(one SGD step: forward, per-model losses, gradients, the stacked update):

* ``grouped NCHW``: golden.fused's network, grouped convolutions and batched matrix
  products, in PyTorch's default layout;
* ``grouped channels_last``: the same network fed channels_last images;
* ``vmap``: ``torch.func.vmap`` over one model's functional forward.

The methods take their windows in turn, so a slow spell of a shared machine falls on
all of them; each prints its best window in trained images per second (all models).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.func import vmap

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from golden import fused, fused_runner  # noqa: E402

BATCH = 64


def one_model(params, images, mask):
    """One PaperCNN as a function of its parameters (pooling before ReLU, as
    FastPaperCNN)."""
    w1, b1, w2, b2, w3, b3, w4, b4 = params
    h = F.relu(F.max_pool2d(F.conv2d(images, w1, b1, padding=1), 2))
    h = F.relu(F.max_pool2d(F.conv2d(h, w2, b2, padding=1), 2))
    h = F.relu(F.linear(h.flatten(1) * mask, w3, b3))
    return F.linear(h, w4, b4)


def methods(models: int):
    """Each method as a function that trains one step."""
    net, optimizer, images, labels, masks, alive = fused_runner.synthetic_group(
        models, 1, BATCH
    )
    batched = vmap(one_model, in_dims=(0, None, None))
    forwards = {
        "grouped NCHW": lambda: net(images, masks),
        "grouped channels_last": lambda: net(
            images.contiguous(memory_format=torch.channels_last), masks
        ),
        "vmap": lambda: batched(tuple(net.params), images, masks[0]),
    }

    def step(forward) -> None:
        losses = fused.model_losses(forward(), labels)
        optimizer.step(torch.autograd.grad(losses.sum(), net.params), alive)

    return {
        name: (lambda forward=forward: step(forward))
        for name, forward in forwards.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=60)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    steps = methods(args.models)
    best = dict.fromkeys(steps, 0.0)
    for step in steps.values():  # warm-up
        step()
    for _ in range(args.windows):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            rate = args.steps * args.models * BATCH / (time.perf_counter() - start)
            best[name] = max(best[name], rate)
    print(
        f"{args.models} models, batch {BATCH}, {args.threads} thread(s), torch "
        f"{torch.__version__}: best of {args.windows} windows of {args.steps} steps"
    )
    for name, rate in best.items():
        print(f"  {name:<24}{rate:>10,.0f} trained images/s")


if __name__ == "__main__":
    main()
