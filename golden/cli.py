"""The command line: ``python -m golden train | sweep | unpack | figures | bench``.

Every expected failure (a bad hyperparameter, name, grid or data folder) ends in one
line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import re
import sys
from functools import partial
from pathlib import Path

from golden import interrupt, settings, theory
from golden.cluster import ClusterFailure, scheduler_address
from golden.data import DATASETS, DataError
from golden.experiments import (
    EXPERIMENTS,
    PROTOCOLS,
    Experiment,
    ExperimentError,
    grid_pairs,
)
from golden.settings import SettingsError
from golden.store import RecordNotWritten
from golden.train import ConfigError, TrainConfig

# argparse takes "-inf", "-1e-3" or "-1,2" for options (it knows only "-1" and "-.5" as
# numbers); golden has no option that starts like a number, so these are values.
NEGATIVE_NUMBER = re.compile(r"^-(\d|\.\d|inf|nan)", re.IGNORECASE)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, and any negative number is a value."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = NEGATIVE_NUMBER

    def error(self, message):
        command = " ".join(["golden", *self.prog.split()[1:]])
        self.exit(2, f"golden: error: {message} (see python -m {command} --help)\n")


def float_list(text: str) -> list[float]:
    try:
        return [float(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}"
        ) from None


def time_limit(text: str) -> float:
    from golden.fused_runner import duration

    try:
        return duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="golden", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(
        dest="command", required=True, parser_class=OneLineParser
    )

    one = commands.add_parser(
        "train", help="train one configuration and print its metrics per epoch"
    )
    one.add_argument(
        "--lr",
        type=float,
        default=theory.ETA,
        help="learning rate (default: the golden eta)",
    )
    one.add_argument(
        "--momentum",
        type=float,
        default=theory.ALPHA,
        help="momentum (default: the golden alpha)",
    )
    one.add_argument("--epochs", type=int, default=1)
    one.add_argument("--seed", type=int, default=0)
    one.add_argument("--model", default="cnn", help="cnn or mlp")
    one.add_argument("--loss", default="cross_entropy", help="cross_entropy or mse")
    one.add_argument(
        "--optimizer", default="sgd", help="sgd or adam (Adam: set --momentum 0)"
    )
    one.add_argument(
        "--label-noise",
        type=float,
        default=0.0,
        help="fraction of training labels made wrong",
    )
    one.add_argument("--schedule", default="constant", help="constant or mi_decay")
    one.add_argument("--dataset", default="mnist", help=", ".join(DATASETS))

    many = commands.add_parser(
        "sweep", help="run an experiment under a protocol; finished runs are skipped"
    )
    many.add_argument(
        "experiment", help=f"{', '.join(EXPERIMENTS)}, contenders (both rungs) or all"
    )
    many.add_argument("--protocol", default="book", help=", ".join(PROTOCOLS))
    many.add_argument(
        "--dataset",
        default="mnist",
        help=f"{', '.join(DATASETS)}: the protocol's data (default: mnist)",
    )
    many.add_argument(
        "--workers",
        type=int,
        default=None,
        help="parallel runs (default: one per core)",
    )
    many.add_argument(
        "--lrs", type=float_list, help="custom grid: learning rates, comma-separated"
    )
    many.add_argument(
        "--momenta", type=float_list, help="custom grid: momenta, comma-separated"
    )
    many.add_argument(
        "--scheduler",
        default=None,
        help="a Dask scheduler, e.g. tcp://HOST:8786 (default: $GOLDEN_SCHEDULER, "
        "else a local cluster, one worker per core)",
    )
    many.add_argument(
        "--plan",
        action="store_true",
        help="print the runs, epochs and estimated core-hours, and run nothing",
    )
    many.add_argument(
        "--engine",
        default="per-run",
        help="per-run (default: one process per run) or fused (many models as one "
        "network, on one device; its records live in folders of their own)",
    )
    many.add_argument(
        "--device", default="cpu", help="fused engine: cpu (default) or cuda"
    )
    many.add_argument(
        "--time-limit",
        type=time_limit,
        default=None,
        help="fused engine: stop before a group of runs that would not finish in this "
        "time (90s, 8m, 1.5h); the same command resumes",
    )
    many.add_argument(
        "--archive",
        type=Path,
        default=None,
        help="fused engine: write the new records to one .tar.gz in this folder",
    )

    unpacked = commands.add_parser(
        "unpack",
        help="put the records of archives (sweep --archive) into the results folder, "
        "each only if it is intact and not stored yet",
    )
    unpacked.add_argument("archives", nargs="+", type=Path)

    drawn = commands.add_parser(
        "figures",
        help="draw every figure of the book from the stored "
        "results, without executing a chapter",
    )
    drawn.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for the PNG files (default: the book's figures/)",
    )
    drawn.add_argument("names", nargs="*", help="only these figures (default: all)")

    bench = commands.add_parser(
        "bench", help="measure training speed against the plain PyTorch loop"
    )
    bench.add_argument("--quick", action="store_true", help="few steps, for CI")
    bench.add_argument(
        "--profile",
        action="store_true",
        help="instead, show where a one-thread step spends its time",
    )
    bench.add_argument(
        "--device",
        default=None,
        help="instead, the fused engine alone on this device (cpu or cuda): trained "
        "images/s, TFLOP/s and the paper protocol's projected time",
    )
    return parser


def run_train(args) -> None:
    import torch

    from golden.data import splits
    from golden.experiments import THREADS_PER_RUN
    from golden.train import train

    config = TrainConfig(
        lr=args.lr,
        momentum=args.momentum,
        epochs=args.epochs,
        seed=args.seed,
        model=args.model,
        loss=args.loss,
        optimizer=args.optimizer,
        label_noise=args.label_noise,
        schedule=args.schedule,
        dataset=args.dataset,
    )
    torch.set_num_threads(THREADS_PER_RUN)  # the runner's: the numbers of its records
    history = train(config, splits(config.dataset))
    for epoch, loss in enumerate(history.train_loss, start=1):
        accuracies = ""
        if epoch <= len(history.val_acc):
            accuracies = (
                f"  val acc {history.val_acc[epoch - 1]:.4f}"
                f"  test acc {history.test_acc[epoch - 1]:.4f}"
            )
        print(f"epoch {epoch}: train loss {loss:.4f}{accuracies}")
    print(
        "diverged"
        if history.diverged
        else f"final test accuracy {history.test_acc[-1]:.4f}",
        f"({history.wall_time_s:.1f} s)",
    )


def experiment_names(
    experiment: str, lrs: list[float] | None, momenta: list[float] | None
) -> list[str]:
    """The experiments a sweep of ``experiment`` runs (``all``, a group, or one); with
    ``lrs`` or ``momenta``, the grid of those, registered as experiment ``custom``."""
    from golden import experiments

    if lrs is None and momenta is None:
        if experiment == "all":
            return list(EXPERIMENTS)
        if experiment in experiments.GROUPS:
            return list(experiments.GROUPS[experiment])
        return [experiments.experiment(experiment).name]
    if experiment != "grid":
        raise ExperimentError(
            "--lrs and --momenta define a custom grid: use them with 'grid', not "
            f"{experiment!r}"
        )
    pairs = grid_pairs(
        experiments.GRID_LRS if lrs is None else lrs,
        experiments.GRID_MOMENTA if momenta is None else momenta,
    )
    experiments.EXPERIMENTS["custom"] = Experiment(
        "custom", lambda _: experiments.as_variants(pairs), lambda p: p.epochs
    )
    return ["custom"]


def run_sweep(args) -> None:
    from golden import experiments, runner
    from golden.store import Store

    if args.engine != "fused":
        scheduler_address(args.scheduler)  # a malformed address, before anything else
    proto = experiments.protocol(args.protocol, args.dataset, args.engine)
    check_engine_options(args)
    names = experiment_names(args.experiment, args.lrs, args.momenta)
    if args.plan:
        print_plan(names, proto, args.device)
        return
    print(proto.describe())
    if args.engine == "fused":
        from golden import fused_runner

        fused_runner.run(
            [(name, proto) for name in names],
            args.device,
            time_limit=args.time_limit,
            archive=args.archive,
        )
        return
    store = Store.default()
    for name in names:
        try:
            runner.sweep(
                name, proto, workers=args.workers, scheduler=args.scheduler, store=store
            )
        except (RecordNotWritten, ClusterFailure) as error:
            raise ExperimentError(
                f"{error}; {stored_text(name, proto, store)}, and a rerun resumes from "
                "them"
            ) from None
        print(f"{name}: {stored_text(name, proto, store)}")


def stored_text(name: str, proto, store) -> str:
    """How many of an experiment's runs have an intact record, counted on disk: ``N of
    M runs stored in FOLDER``."""
    from golden import experiments

    folder = store.folder(name, proto)
    paths = {store.path(folder, c) for c in experiments.experiment(name).configs(proto)}
    stored = sum(store.read(path) is not None for path in paths)
    return f"{stored} of {len(paths)} runs stored in {folder}"


def check_engine_options(args) -> None:
    """Refuse, in one line, options that the chosen engine does not take."""
    if args.engine == "fused" and (
        args.scheduler is not None or args.workers is not None
    ):
        raise ExperimentError(
            "the fused engine trains in this process: --scheduler and --workers are "
            "options of the per-run engine"
        )
    if args.engine != "fused" and (
        args.device != "cpu" or args.time_limit is not None or args.archive is not None
    ):
        raise ExperimentError(
            "--device, --time-limit and --archive are options of the fused engine: "
            "add --engine fused"
        )


def print_plan(names: list[str], proto, device: str = "cpu") -> None:
    """The plan of each experiment: timed by this machine's measured one-core training
    rate, or, for the fused engine, by a calibration on its device."""
    if proto.engine == "fused":  # without golden.runner, which needs Dask
        from golden import fused_runner

        plan = partial(fused_runner.plan, device=device)
    else:
        import os

        from golden import runner
        from golden.bench import trainer_rate

        rate, cores = trainer_rate(), os.cpu_count() or 1
        plan = partial(runner.plan, rate=rate, cores=cores)
    for name in names:
        try:
            print(plan(name, proto))
        except ExperimentError as error:  # it builds on results not stored yet
            print(f"{name}: no plan yet, {error}")


def run_unpack(archives: list[Path]) -> None:
    from golden.fused_runner import unpack_archive
    from golden.store import Store

    store = Store.default()
    for archive in archives:
        added, kept, refused = unpack_archive(archive, store)
        print(
            f"{archive}: {added} records added to {store.root}, {kept} already there"
            + (f", {len(refused)} refused: {', '.join(refused)}" if refused else "")
        )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings.quick_mode()  # a bad GOLDEN_QUICK stops every command before its work
        if args.command == "train":
            run_train(args)
        elif args.command == "sweep":
            run_sweep(args)
        elif args.command == "unpack":
            run_unpack(args.archives)
        elif args.command == "figures":
            from golden import figures

            for path in figures.write(args.out, args.names or None):
                print(path)
        else:
            from golden import bench

            if args.device is not None:
                bench.device_report(args.device, quick=args.quick)
            elif args.profile:
                bench.profile_trainer()
            else:
                bench.run(quick=args.quick)
    except (ConfigError, ExperimentError, DataError, SettingsError) as error:
        print(f"golden: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return interrupt.tell()
    return 0
