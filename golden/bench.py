"""How fast golden trains on this CPU, measured against the plain PyTorch loop.

``python -m golden bench [--quick]`` calls :func:`run`, which measures in one process,
on the same machine, with the same network, batch size (64), optimiser
(``torch.optim.SGD`` at the golden pair), fp32 numerics and [-1, 1] MNIST data:

1. the plain loop, as ``pytorch/examples`` trains MNIST: torchvision's dataset with
   ``ToTensor`` + ``Normalize``, a shuffled ``DataLoader`` with one worker, NCHW
   tensors, and the network written as the paper lists it
   (:class:`~golden.models.PaperCNN`);
2. golden's trainer: the very epoch function :func:`golden.train.train` runs (in-memory
   tensor indexing, ``channels_last``, :class:`~golden.models.FastPaperCNN`, which
   computes the same numbers bit for bit), with torch's default number of threads;
3. a sweep: one single-threaded worker per core of the runner's Dask cluster, each
   training golden's trainer for a window's steps as one task; the same tasks through a
   plain process pool (the runner before Dask) in alternate windows, so the table shows
   the engine's cost;
4. the fused engine (:mod:`golden.fused`): a fold's grid pairs as one network, in this
   process with torch's default number of threads; its rate counts every model's
   trained images;
5. the ceiling: the best fp32 ``torch.mm`` rate with all threads, against the CNN's
   training FLOPs per image as ``FlopCounterMode`` counts them (convolutions and matrix
   products only; ReLU, pooling, dropout, the loss and the optimiser step are not
   counted).

Each rate is images per second in the fastest of a few timed windows of a fixed number
of steps, after a warm-up: other work on a shared machine can only slow a window down,
never speed it up. Rows 1, 2, 4 and 5 take their windows in turn (plain, trainer,
fused, matmul, plain, ...), so a slow spell falls on all of them; the ceiling is the
best of all its measurements, and the table shows their range, because on a virtual
machine the matmul rate itself can vary by a factor of two.

``python -m golden bench --device cuda`` measures the fused engine alone on a GPU (the
same code runs with ``--device cpu``): trained images/s, the TFLOP/s they achieve and
the time the paper's full protocol would take.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from golden import settings, theory
from golden.data import Split, load_raw, splits
from golden.models import PaperCNN
from golden.protocols import THREADS_PER_RUN
from golden.train import TrainConfig, make_optimizer, seeded_model, train_epoch

BATCH = 64
# "models": the fused engine's group, a fold's 60 grid pairs (fewer for CI); it takes
# one step per window for each "models" steps of the others
FULL = {"warmup": 20, "steps": 100, "windows": 5, "matmul_n": 2048, "models": 60}
QUICK = {"warmup": 3, "steps": 10, "windows": 2, "matmul_n": 512, "models": 8}
_NO_BAR = SimpleNamespace(update=lambda: None)


def golden_config(seed: int = 0) -> TrainConfig:
    return TrainConfig(
        lr=theory.ETA, momentum=theory.ALPHA, seed=seed, batch_size=BATCH
    )


def _timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def plain_loop(warmup: int):
    """The ``pytorch/examples`` MNIST loop, warmed up: a function that trains ``count``
    steps."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    load_raw()  # stage the official files where torchvision looks for them
    transform = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))]
    )
    dataset = datasets.MNIST(
        root=str(settings.data_home()), train=True, download=True, transform=transform
    )
    batches = iter(DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=1))
    torch.manual_seed(0)
    model = PaperCNN()
    optimizer = torch.optim.SGD(
        model.parameters(), lr=theory.ETA, momentum=theory.ALPHA
    )
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


def _warm_trainer(seed: int, warmup: int):
    """Model, optimiser, data and config exactly as :func:`golden.train.train` builds
    them, after ``warmup`` untimed steps."""
    config = golden_config(seed)
    model = seeded_model(config)
    optimizer = make_optimizer(model, config)
    data = splits(quick=False).train
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    setup = model, optimizer, data, order, config
    _trainer_steps(setup, 0, warmup)
    return setup


def _trainer_steps(setup, first: int, count: int) -> None:
    """Run ``count`` steps of golden's own epoch function, starting at batch
    ``first``."""
    model, optimizer, data, order, config = setup
    train_epoch(
        model,
        optimizer,
        data,
        order[first * BATCH : (first + count) * BATCH],
        config,
        _NO_BAR,
    )


def trainer_rate(steps: int = 10, warmup: int = 5, windows: int = 3) -> float:
    """Trained images per second of golden's trainer on one core, as the runner's
    workers train, in the best of a few windows: the clock of ``sweep --plan``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS_PER_RUN)
    try:
        setup = _warm_trainer(0, warmup)
        return max(
            steps
            * BATCH
            / _timed(_trainer_steps, setup, warmup + window * steps, steps)
            for window in range(windows)
        )
    finally:
        torch.set_num_threads(threads)


def fused_steps(models: int, lanes: int = 1, device: str = "cpu"):
    """A warm fused group of ``lanes`` x ``models`` on ``device``: a function that
    trains ``count`` steps of it, waiting for the device."""
    from golden import fused, fused_runner

    group = fused_runner.synthetic_group(models, lanes, BATCH, device)

    def train_steps(count: int) -> None:
        for _ in range(count):
            fused.train_step(*group)
        fused_runner.wait(device)

    train_steps(1)
    return train_steps


def side_by_side(
    steps: int, warmup: int, windows: int, matmul_n: int, models: int
) -> dict[str, list[float]]:
    """Plain loop, golden's trainer, the fused engine and the matmul ceiling, measured
    in turn within each window, so that a slow spell of a shared machine falls on all
    alike. Images/s (the fused engine's: trained images of all its models) and
    GFLOP/s."""
    plain = plain_loop(warmup)
    setup = _warm_trainer(0, warmup)
    group = fused_steps(models)
    group_steps = max(1, round(steps / models))
    rates: dict[str, list[float]] = {
        "plain": [],
        "single": [],
        "fused": [],
        "ceiling": [],
    }
    for window in range(windows):
        rates["plain"].append(steps * BATCH / _timed(plain, steps))
        rates["single"].append(
            steps
            * BATCH
            / _timed(_trainer_steps, setup, warmup + window * steps, steps)
        )
        rates["fused"].append(group_steps * models * BATCH / _timed(group, group_steps))
        rates["ceiling"].append(matmul_gflops(matmul_n))
    return rates


_TRAINER: list = []  # the one warm trainer of a sweep process, built by its first task


def _train_steps(seed: int, warmup: int, steps: int) -> None:
    """``steps`` one-thread steps of this process's trainer (built and warmed up on
    first use): the work of a runner's worker, as one task."""
    torch.set_num_threads(THREADS_PER_RUN)
    if not _TRAINER:
        _TRAINER.append([_warm_trainer(seed, warmup), warmup])
    setup, first = _TRAINER[0]
    batches = len(setup[2]) // BATCH - steps
    _trainer_steps(setup, first % batches, steps)
    _TRAINER[0][1] = first + steps


def engine_rates(
    steps: int, warmup: int, windows: int, workers: int
) -> dict[str, float]:
    """Images/s of ``workers`` one-thread trainers, one task of ``steps`` steps each per
    window, sent through the runner's Dask cluster and through a plain process pool (the
    runner before Dask), their windows taken in turn: what the engine costs a sweep.
    Best window of each."""
    from golden.cluster import cluster_client

    tasks = [(seed, warmup, steps) for seed in range(workers)]
    with (
        cluster_client(None, workers) as client,
        multiprocessing.get_context("spawn").Pool(workers) as pool,
    ):
        engines = {
            "dask": lambda: client.gather(
                [client.submit(_train_steps, *task, pure=False) for task in tasks]
            ),
            "pool": lambda: pool.starmap(_train_steps, tasks, chunksize=1),
        }
        # every Dask worker builds its trainer
        client.run(lambda: _train_steps(0, warmup, 1))
        for _ in range(2):  # and every pool process (a task lands on any idle process)
            engines["pool"]()
        rates: dict[str, list[float]] = {name: [] for name in engines}
        for _ in range(windows):
            for name, send in engines.items():
                rates[name].append(workers * steps * BATCH / _timed(send))
    return {name: max(values) for name, values in rates.items()}


def matmul_gflops(n: int, repeats: int = 5) -> float:
    """Best fp32 ``torch.mm`` rate of two n x n matrices with all threads, in
    GFLOP/s."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    return 2 * n**3 / min(_timed(torch.mm, a, b) for _ in range(repeats)) / 1e9


def training_flops_per_image() -> float:
    """FLOPs of one golden training step of batch 64 divided by 64 (convs and matmuls
    only)."""
    from torch.utils.flop_counter import FlopCounterMode

    config = golden_config()
    model = seeded_model(config)
    optimizer = make_optimizer(model, config)
    # FLOPs ignore values
    batch = Split(torch.zeros(BATCH, 1, 28, 28), torch.zeros(BATCH, dtype=torch.long))
    with FlopCounterMode(display=False) as counter:
        train_epoch(model, optimizer, batch, torch.arange(BATCH), config, _NO_BAR)
    return counter.get_total_flops() / BATCH


CONVOLUTIONS_AND_MATMULS = (
    "aten::mkldnn_convolution",
    "aten::convolution_backward",
    "aten::mm",
    "aten::addmm",
)


def profile_trainer(steps: int = 50, rows: int = 12) -> list[str]:
    """Where one-thread steps of golden's trainer spend their time, by operator
    (torch.profiler's self CPU time, which inflates the many small operators a little):
    what bounds the share of the ceiling, since only convolutions and matrix products
    can run near the matmul rate."""
    from torch.profiler import profile

    torch.set_num_threads(1)
    setup = _warm_trainer(0, warmup=5)
    with profile() as profiler:
        _trainer_steps(setup, 5, steps)
    events = sorted(
        profiler.key_averages(),
        key=lambda event: event.self_cpu_time_total,
        reverse=True,
    )
    total = sum(event.self_cpu_time_total for event in events)
    in_products = sum(
        event.self_cpu_time_total
        for event in events
        if event.key in CONVOLUTIONS_AND_MATMULS
    )
    rate = training_flops_per_image() * BATCH * steps / (in_products * 1e-6) / 1e9
    lines = [
        f"golden trainer, {steps} steps of batch {BATCH}, 1 thread: share of CPU time "
        "by operator"
    ]
    lines += [
        f"  {event.key:<46}{event.self_cpu_time_total / total:>7.1%}"
        for event in events[:rows]
    ]
    lines.append(
        f"convolutions and matrix products: {in_products / total:.0%} of the time, at "
        f"{rate:.1f} GFLOP/s"
    )
    print("\n".join(lines), flush=True)
    return lines


def run(quick: bool = False) -> list[str]:
    """Measure everything, print the table, and return its lines (the ratios come
    last)."""
    sizes = QUICK if quick else FULL
    timing = sizes["steps"], sizes["warmup"], sizes["windows"]
    threads = torch.get_num_threads()
    workers = os.cpu_count() or 1
    # other work on the machine slows every row, the multi-threaded ones most
    load = os.getloadavg()[0]
    rates = side_by_side(*timing, sizes["matmul_n"], sizes["models"])
    engines = engine_rates(*timing, workers)
    sweep = engines["dask"]
    # once more, right after the sweep
    ceilings = rates["ceiling"] + [matmul_gflops(sizes["matmul_n"])]
    plain, single, ceiling = max(rates["plain"]), max(rates["single"]), max(ceilings)
    together = max(rates["fused"])
    flops = training_flops_per_image()

    def share(rate: float) -> float:
        return rate * flops / 1e9 / ceiling

    def row(name: str, rate: float) -> str:
        gflops = rate * flops / 1e9
        return (
            f"{name:<36}{rate:>9,.0f}{gflops:>10.1f}{share(rate):>12.0%}"
            f"{rate / plain:>10.2f}x"
        )

    ceiling_name = f"ceiling: torch.mm n={sizes['matmul_n']}, {threads} threads"
    lines = [
        f"golden bench ({'quick' if quick else 'full'}): best of {sizes['windows']} "
        f"windows of {sizes['steps']} "
        f"steps of batch {BATCH}, fp32, torch {torch.__version__}, {workers} cores, "
        f"load average {load:.1f}",
        f"{'':<36}{'img/s':>9}{'GFLOP/s':>10}{'of ceiling':>12}{'vs plain':>11}",
        row("plain loop (DataLoader, NCHW)", plain),
        row(f"golden trainer ({threads} threads)", single),
        row(f"golden sweep (Dask, {workers} x 1 thread)", sweep),
        row(f"same via a process pool ({workers} procs)", engines["pool"]),
        row(f"fused engine ({sizes['models']} models, {threads} thr.)", together),
        f"{ceiling_name:<36}{'':>9}{ceiling:>10.1f}{1:>12.0%}   (measured "
        f"{min(ceilings):.0f}-{max(ceilings):.0f})",
        f"training FLOPs per image: {flops / 1e6:.2f} M (FlopCounterMode: convolutions "
        "and matmuls only)",
        f"single run: {single / plain:.2f}x the plain loop, {share(single):.0%} of the "
        "ceiling",
        f"sweep: {sweep / plain:.2f}x the plain loop, {share(sweep):.0%} of the "
        "ceiling",
        f"fused engine: {together / plain:.2f}x the plain loop, "
        f"{together / sweep:.2f}x the sweep",
        f"Dask runner / process pool: {sweep / engines['pool']:.2f}x (the engine's "
        "cost; target >= 0.95x)",
    ]
    print("\n".join(lines), flush=True)
    return lines


def device_report(device: str, quick: bool = False) -> list[str]:
    """The fused engine on ``device`` (``cuda``: a GPU; the same code on ``cpu``): the
    trained images/s of the group a paper-protocol sweep would train there, the TFLOP/s
    they achieve, and the time the full protocol would take (evaluation included).
    ``quick``: a group of two models, one timed step."""
    from golden import fused_runner
    from golden.experiments import EXPERIMENTS, protocol

    where = fused_runner.prepare_device(device)
    papers = [protocol(name, engine="fused") for name in ("paper", "paper_half")]
    configs = EXPERIMENTS["grid"].configs(papers[0])
    models, lanes = fused_runner.shape(configs)
    sizes = [fused_runner.sizes_of(proto, configs[0]) for proto in papers]
    if quick:
        models, lanes, steps = 2, 1, (1, 1)
    else:
        lanes, steps = (
            fused_runner.lanes_per_group(models, lanes, sizes[0], device),
            None,
        )
    rate, peak = fused_runner.calibrate(models, lanes, BATCH, device, steps)
    teraflops = rate * training_flops_per_image() / 1e12
    memory = "" if peak is None else f", peak memory {peak / 2**30:.1f} GiB"
    lines = [
        f"golden bench on {where}: the fused engine, fp32 (no TF32), torch "
        f"{torch.__version__}",
        f"{lanes * models} models at once ({lanes} x {models}): {rate:,.0f} trained "
        f"images/s, {teraflops:.2f} TFLOP/s{memory}",
    ]
    for proto, size in zip(papers, sizes):
        seconds = size.work(len(configs)) / rate
        lines.append(
            f"projected {proto.name} grid ({len(configs)} runs of {size.epochs} "
            f"epochs, evaluation included): {fused_runner.clock_text(seconds)}"
        )
    print("\n".join(lines), flush=True)
    return lines
