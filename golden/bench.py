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

Rates are images per second over a fixed number of steps after a warm-up.
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
from golden.train import TrainConfig, _train_epoch, seeded_model

BATCH = 64
FULL = {"warmup": 20, "steps": 300, "matmul_n": 2048}
QUICK = {"warmup": 3, "steps": 15, "matmul_n": 512}
_NO_BAR = SimpleNamespace(update=lambda: None)


def golden_config(seed: int = 0) -> TrainConfig:
    return TrainConfig(lr=theory.ETA, momentum=theory.ALPHA, seed=seed, batch_size=BATCH)


def plain_loop_rate(steps: int, warmup: int) -> float:
    """Images per second of the ``pytorch/examples`` MNIST loop (after ``warmup`` steps)."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    load_raw()  # stage the official files where torchvision looks for them
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    dataset = datasets.MNIST(root=str(settings.data_home()), train=True, download=True, transform=transform)
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=1)
    torch.manual_seed(0)
    model = PaperCNN()
    optimizer = torch.optim.SGD(model.parameters(), lr=theory.ETA, momentum=theory.ALPHA)
    model.train()
    start = None
    for step, (images, labels) in enumerate(loader):
        if step == warmup:
            start = time.perf_counter()
        if step == warmup + steps:
            break
        optimizer.zero_grad()
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
    return steps * BATCH / (time.perf_counter() - start)


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
    _train_epoch(model, optimizer, data, order[first * BATCH : (first + count) * BATCH], config, _NO_BAR)


def trainer_rate(steps: int, warmup: int, seed: int = 0) -> float:
    """Images per second of golden's trainer in this process, with its current threads."""
    setup = _trainer_setup(seed)
    _trainer_steps(setup, 0, warmup)
    start = time.perf_counter()
    _trainer_steps(setup, warmup, steps)
    return steps * BATCH / (time.perf_counter() - start)


def _sweep_worker(seed: int, steps: int, warmup: int, barrier) -> None:
    torch.set_num_threads(1)
    try:
        setup = _trainer_setup(seed)
        _trainer_steps(setup, 0, warmup)
    except BaseException:
        barrier.abort()  # so that the parent does not wait for this worker forever
        raise
    barrier.wait()  # everyone starts timing together, the parent included
    _trainer_steps(setup, warmup, steps)


def sweep_rate(steps: int, warmup: int, workers: int) -> float:
    """Total images per second of ``workers`` single-threaded trainer processes at once."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(workers + 1)
    processes = [context.Process(target=_sweep_worker, args=(seed, steps, warmup, barrier)) for seed in range(workers)]
    for process in processes:
        process.start()
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        pass  # a worker failed during its set-up: reported below
    start = time.perf_counter()
    for process in processes:
        process.join()
    elapsed = time.perf_counter() - start
    if barrier.broken or any(process.exitcode != 0 for process in processes):
        raise RuntimeError("a sweep worker failed; see its traceback above")
    return workers * steps * BATCH / elapsed


def matmul_gflops(n: int, repeats: int = 5) -> float:
    """Best fp32 ``torch.mm`` rate of two n x n matrices with all threads, in GFLOP/s."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = min(_timed(torch.mm, a, b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def training_flops_per_image() -> float:
    """FLOPs of one golden training step of batch 64 divided by 64 (convs and matmuls only)."""
    from torch.utils.flop_counter import FlopCounterMode

    config = golden_config()
    model = seeded_model(config)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    batch = Split(torch.zeros(BATCH, 1, 28, 28), torch.zeros(BATCH, dtype=torch.long))  # FLOPs ignore values
    with FlopCounterMode(display=False) as counter:
        _train_epoch(model, optimizer, batch, torch.arange(BATCH), config, _NO_BAR)
    return counter.get_total_flops() / BATCH


def run(quick: bool = False) -> list[str]:
    """Measure everything, print the table, and return its lines (the ratios come last)."""
    sizes = QUICK if quick else FULL
    steps, warmup = sizes["steps"], sizes["warmup"]
    threads = torch.get_num_threads()
    workers = os.cpu_count() or 1
    load = os.getloadavg()[0]  # other work on the machine slows every row, the 2-thread one most
    plain = plain_loop_rate(steps, warmup)
    single = trainer_rate(steps, warmup)
    sweep = sweep_rate(steps, warmup, workers)
    ceiling = matmul_gflops(sizes["matmul_n"])
    flops = training_flops_per_image()

    def row(name: str, rate: float) -> str:
        gflops = rate * flops / 1e9
        return f"{name:<36}{rate:>9,.0f}{gflops:>10.1f}{gflops / ceiling:>12.0%}{rate / plain:>10.2f}x"

    ceiling_name = f"ceiling: torch.mm n={sizes['matmul_n']}, {threads} threads"
    lines = [
        f"golden bench ({'quick' if quick else 'full'}): {steps} timed steps of batch {BATCH} after {warmup} "
        f"warm-up, fp32, torch {torch.__version__}, {workers} cores, load average {load:.1f} at the start",
        f"{'':<36}{'img/s':>9}{'GFLOP/s':>10}{'of ceiling':>12}{'vs plain':>11}",
        row("plain loop (DataLoader, NCHW)", plain),
        row(f"golden trainer ({threads} threads)", single),
        row(f"golden sweep ({workers} procs x 1 thread)", sweep),
        f"{ceiling_name:<36}{'':>9}{ceiling:>10.1f}{1:>12.0%}",
        f"training FLOPs per image: {flops / 1e6:.2f} M (FlopCounterMode: convolutions and matmuls only)",
        f"single run: {single / plain:.2f}x the plain loop, {single * flops / 1e9 / ceiling:.0%} of the ceiling",
        f"sweep: {sweep / plain:.2f}x the plain loop, {sweep * flops / 1e9 / ceiling:.0%} of the ceiling",
    ]
    print("\n".join(lines), flush=True)
    return lines
