"""How fast golden trains on this CPU, measured against the plain PyTorch loop (issue 6).

``python -m golden bench [--quick]`` calls :func:`run`, which measures in one process, on the
same machine, with the same model (:class:`~golden.models.PaperCNN`), batch size (64),
optimiser (``torch.optim.SGD`` at the golden pair), fp32 numerics and [-1, 1] MNIST data:

1. the plain loop, as ``pytorch/examples`` trains MNIST: torchvision's dataset with
   ``ToTensor`` + ``Normalize``, a shuffled ``DataLoader`` with one worker, NCHW tensors;
2. golden's trainer: the very epoch function :func:`golden.train.train` runs (in-memory
   tensor indexing, ``channels_last``), with torch's default number of threads;
3. a sweep: one spawned process per core, one thread each, all running golden's trainer at once;
4. the ceiling: the best fp32 ``torch.mm`` rate with all threads, against the CNN's training
   FLOPs per image as ``FlopCounterMode`` counts them (convolutions and matrix products only;
   ReLU, pooling, dropout, the loss and the optimiser step are not counted).

Each rate is images per second in the fastest of a few timed windows of a fixed number of steps,
after a warm-up: other work on a shared machine can only slow a window down, never speed it up.
Rows 1, 2 and 4 take their windows in turn (plain, trainer, matmul, plain, ...), so a slow spell
falls on all of them; the ceiling is the best of all its measurements, and the table shows their
range, because on a virtual machine the matmul rate itself can vary by a factor of two.
"""
from __future__ import annotations

import multiprocessing
import os
import threading
import time
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from golden import settings, theory
from golden.data import Split, load_raw, mnist
from golden.models import PaperCNN
from golden.train import TrainConfig, train_epoch, seeded_model

BATCH = 64
FULL = {"warmup": 20, "steps": 100, "windows": 3, "matmul_n": 2048}
QUICK = {"warmup": 3, "steps": 10, "windows": 2, "matmul_n": 512}
_NO_BAR = SimpleNamespace(update=lambda: None)


def golden_config(seed: int = 0) -> TrainConfig:
    return TrainConfig(lr=theory.ETA, momentum=theory.ALPHA, seed=seed, batch_size=BATCH)


def _timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def plain_loop(warmup: int):
    """The ``pytorch/examples`` MNIST loop, warmed up: a function that trains ``count`` steps."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    load_raw()  # stage the official files where torchvision looks for them
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    dataset = datasets.MNIST(root=str(settings.data_home()), train=True, download=True, transform=transform)
    batches = iter(DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=1))
    torch.manual_seed(0)
    model = PaperCNN()
    optimizer = torch.optim.SGD(model.parameters(), lr=theory.ETA, momentum=theory.ALPHA)
    model.train()

    def train_steps(count: int) -> None:
        for _ in range(count):
            images, labels = next(batches)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()

    train_steps(warmup)
    return train_steps


def _trainer_setup(seed: int):
    """Model, optimiser, data and config exactly as :func:`golden.train.train` builds them."""
    config = golden_config(seed)
    model = seeded_model(config)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    data = mnist(quick=False).train
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    return model, optimizer, data, order, config


def _trainer_steps(setup, first: int, count: int) -> None:
    """Run ``count`` steps of golden's own epoch function, starting at batch ``first``."""
    model, optimizer, data, order, config = setup
    train_epoch(model, optimizer, data, order[first * BATCH : (first + count) * BATCH], config, _NO_BAR)


def side_by_side(steps: int, warmup: int, windows: int, matmul_n: int) -> dict[str, list[float]]:
    """Plain loop, golden's trainer and the matmul ceiling, measured in turn within each window,
    so that a slow spell of a shared machine falls on all three alike. Images/s and GFLOP/s."""
    plain = plain_loop(warmup)
    setup = _trainer_setup(0)
    _trainer_steps(setup, 0, warmup)
    rates: dict[str, list[float]] = {"plain": [], "single": [], "ceiling": []}
    for window in range(windows):
        rates["plain"].append(steps * BATCH / _timed(plain, steps))
        rates["single"].append(steps * BATCH / _timed(_trainer_steps, setup, warmup + window * steps, steps))
        rates["ceiling"].append(matmul_gflops(matmul_n))
    return rates


def _sweep_worker(seed: int, steps: int, warmup: int, windows: int, barrier) -> None:
    torch.set_num_threads(1)
    try:
        setup = _trainer_setup(seed)
        _trainer_steps(setup, 0, warmup)
        for window in range(windows):
            barrier.wait()  # all workers start a window together and the parent times it
            _trainer_steps(setup, warmup + window * steps, steps)
            barrier.wait()
    except BaseException:
        barrier.abort()  # so that nobody waits for this worker forever
        raise


def sweep_rate(steps: int, warmup: int, windows: int, workers: int) -> float:
    """Total images per second of ``workers`` single-threaded trainer processes at once."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(workers + 1)
    args = (steps, warmup, windows, barrier)
    processes = [context.Process(target=_sweep_worker, args=(seed, *args)) for seed in range(workers)]
    for process in processes:
        process.start()
    best = 0.0
    try:
        for _ in range(windows):
            barrier.wait()
            best = max(best, workers * steps * BATCH / _timed(barrier.wait))
    except threading.BrokenBarrierError:
        pass  # a worker failed: reported below, after its traceback
    for process in processes:
        process.join()
    if barrier.broken or any(process.exitcode != 0 for process in processes):
        raise RuntimeError("a sweep worker failed; see its traceback above")
    return best


def matmul_gflops(n: int, repeats: int = 5) -> float:
    """Best fp32 ``torch.mm`` rate of two n x n matrices with all threads, in GFLOP/s."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    return 2 * n**3 / min(_timed(torch.mm, a, b) for _ in range(repeats)) / 1e9


def training_flops_per_image() -> float:
    """FLOPs of one golden training step of batch 64 divided by 64 (convs and matmuls only)."""
    from torch.utils.flop_counter import FlopCounterMode

    config = golden_config()
    model = seeded_model(config)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    batch = Split(torch.zeros(BATCH, 1, 28, 28), torch.zeros(BATCH, dtype=torch.long))  # FLOPs ignore values
    with FlopCounterMode(display=False) as counter:
        train_epoch(model, optimizer, batch, torch.arange(BATCH), config, _NO_BAR)
    return counter.get_total_flops() / BATCH


def run(quick: bool = False) -> list[str]:
    """Measure everything, print the table, and return its lines (the ratios come last)."""
    sizes = QUICK if quick else FULL
    timing = sizes["steps"], sizes["warmup"], sizes["windows"]
    threads = torch.get_num_threads()
    workers = os.cpu_count() or 1
    load = os.getloadavg()[0]  # other work on the machine slows every row, the multi-threaded ones most
    rates = side_by_side(*timing, sizes["matmul_n"])
    sweep = sweep_rate(*timing, workers)
    ceilings = rates["ceiling"] + [matmul_gflops(sizes["matmul_n"])]  # once more, right after the sweep
    plain, single, ceiling = max(rates["plain"]), max(rates["single"]), max(ceilings)
    flops = training_flops_per_image()

    def share(rate: float) -> float:
        return rate * flops / 1e9 / ceiling

    def row(name: str, rate: float) -> str:
        return f"{name:<36}{rate:>9,.0f}{rate * flops / 1e9:>10.1f}{share(rate):>12.0%}{rate / plain:>10.2f}x"

    ceiling_name = f"ceiling: torch.mm n={sizes['matmul_n']}, {threads} threads"
    lines = [
        f"golden bench ({'quick' if quick else 'full'}): best of {sizes['windows']} windows of {sizes['steps']} "
        f"steps of batch {BATCH}, fp32, torch {torch.__version__}, {workers} cores, load average {load:.1f}",
        f"{'':<36}{'img/s':>9}{'GFLOP/s':>10}{'of ceiling':>12}{'vs plain':>11}",
        row("plain loop (DataLoader, NCHW)", plain),
        row(f"golden trainer ({threads} threads)", single),
        row(f"golden sweep ({workers} procs x 1 thread)", sweep),
        f"{ceiling_name:<36}{'':>9}{ceiling:>10.1f}{1:>12.0%}   (measured {min(ceilings):.0f}-{max(ceilings):.0f})",
        f"training FLOPs per image: {flops / 1e6:.2f} M (FlopCounterMode: convolutions and matmuls only)",
        f"single run: {single / plain:.2f}x the plain loop, {share(single):.0%} of the ceiling",
        f"sweep: {sweep / plain:.2f}x the plain loop, {share(sweep):.0%} of the ceiling",
    ]
    print("\n".join(lines), flush=True)
    return lines
