"""The paper's grids on a borrowed GPU, in one command, from the repository root:

    python tools/gpu_run.py --out "$OUT"

with the four MNIST ``.gz`` files in ``.data/mnist/`` (git-ignored; or wherever
``GOLDEN_MNIST_SOURCE`` points). It checks the device and the data, calibrates the fused
engine (:mod:`golden.fused`) there and prints the plan, then sweeps the grid of the
``paper`` protocol and, if time is left, of ``paper_half``, under one time limit (8
minutes of training by default), printing progress with an ETA, and writes every new
record to one archive in ``--out``. Running it again resumes: finished runs are stored
(``results/``, or ``GOLDEN_RESULTS``) and skipped. ``--dataset fashion-mnist`` does the
same on Fashion-MNIST (its files in ``.data/fashion-mnist/``). On a machine without a
GPU, ``--device cpu --protocols quick`` runs the same path in quick mode (the test).

It needs only Python, PyTorch and torchvision, NumPy, SciPy and SymPy (no Dask, Jupyter
or tqdm); exit status 2 with one line for an expected fault, 130 after Ctrl-C (the
finished runs are stored and archived).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# where the data files travel to a borrowed machine, when no variable names a folder
SOURCES = {
    "GOLDEN_MNIST_SOURCE": REPO_ROOT / ".data" / "mnist",
    "GOLDEN_FASHION_MNIST_SOURCE": REPO_ROOT / ".data" / "fashion-mnist",
}
DATA_HOME = REPO_ROOT / ".data" / "home"  # golden's copies, kept between runs


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="gpu_run", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", default=os.environ.get("OUT"), help="default: $OUT")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument(
        "--minutes", type=float, default=8.0, help="time limit of the training"
    )
    parser.add_argument("--dataset", default="mnist", help="mnist or fashion-mnist")
    parser.add_argument(
        "--protocols",
        default="paper,paper_half",
        help="swept in this order (default: paper,paper_half)",
    )
    parser.add_argument("--experiment", default="grid")
    parser.add_argument("--lrs", default=None, help="a custom grid, as for sweep")
    parser.add_argument("--momenta", default=None, help="a custom grid, as for sweep")
    args = parser.parse_args(argv)
    if not args.out:
        parser.error("name the folder for the archive: --out DIR (or set OUT)")
    return args


def numbers(text: str | None) -> list[float] | None:
    return None if text is None else [float(item) for item in text.split(",")]


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    for variable, folder in SOURCES.items():
        if variable not in os.environ and folder.is_dir():
            os.environ[variable] = str(folder)
    os.environ.setdefault("GOLDEN_DATA_HOME", str(DATA_HOME))
    sys.path.insert(0, str(REPO_ROOT))
    import torch

    from golden import cli, fused_runner
    from golden.data import DataError, splits
    from golden.experiments import protocol
    from golden.protocols import ExperimentError
    from golden.settings import SettingsError
    from golden.store import Store
    from golden.train import ConfigError

    start = time.monotonic()
    try:
        where = fused_runner.prepare_device(args.device)
        print(f"device: {where}; torch {torch.__version__}; fp32, TF32 off", flush=True)
        if args.device == "cuda":
            memory = torch.cuda.get_device_properties(0).total_memory
            print(f"  memory {memory / 2**30:.0f} GiB", flush=True)
        chosen = cli.experiments_of(
            args.experiment, numbers(args.lrs), numbers(args.momenta)
        )
        jobs = [
            (experiment, protocol(proto, args.dataset, "fused"))
            for proto in args.protocols.split(",")
            for experiment in chosen
        ]
        store = Store.default()
        for experiment, proto in jobs:
            first = experiment.configs(proto, store)[0]
            data = splits(
                proto.dataset, proto.quick_data, first.fold, first.data_fraction
            )
            print(
                f"data: {proto.name}, {len(data.train):,} train / {len(data.val):,} "
                f"val / {len(data.test):,} test images, checksums verified",
                flush=True,
            )
            print(fused_runner.plan(experiment, proto, store, args.device), flush=True)
        print(f"training for at most {args.minutes:g} minutes", flush=True)
        written = fused_runner.run(
            jobs,
            store,
            args.device,
            time_limit=60 * args.minutes,
            archive=Path(args.out),
        )
    except (ConfigError, ExperimentError, DataError, SettingsError) as error:
        print(f"gpu_run: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gpu_run: interrupted; finished runs are stored", file=sys.stderr)
        return 130
    print(
        f"done in {fused_runner.clock_text(time.monotonic() - start)}: "
        f"{len(written)} new records; run the same command again to resume",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
