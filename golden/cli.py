"""python -m golden: train one run, sweep an experiment, unpack records, draw the
figures or measure the training speed.

An experiment's name is resolved here, once, into a value the runner is given, and so
is the results folder (``--results``, else the one default of :meth:`Store.default`).
Every expected failure (a bad hyperparameter, name, grid, data or results folder) ends
in one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import re
import sys
from functools import partial
from pathlib import Path

from golden import experiments, interrupt, settings, theory
from golden.cluster import ClusterFailure, scheduler_address
from golden.data import DATASETS, DataError
from golden.experiments import (
    EXPERIMENTS,
    GROUPS,
    PROTOCOLS,
    Experiment,
    ExperimentError,
    grid_pairs,
)
from golden.settings import SettingsError
from golden.store import RecordNotWritten, Store
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


def results_folder(text: str) -> Path:
    """A folder named on the command line; an empty name (``--results "$DIR"`` with
    ``DIR`` unset) is refused, as an empty ``GOLDEN_RESULTS`` is."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the results folder is empty: name a folder")
    return Path(text).expanduser()


def add_results(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--results",
        type=results_folder,
        default=None,
        metavar="DIR",
        help=f"the results folder {what} (default: $GOLDEN_RESULTS, else results/)",
    )


def store_of(folder: Path | None) -> Store:
    """The store of ``--results``, else the default one."""
    return Store.default() if folder is None else Store(folder)


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="golden", description=" ".join(__doc__.split("\n\n")[0].split())
    )
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
    add_results(many, "its records are written to and read from")
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
    add_results(unpacked, "to put them into")

    drawn = commands.add_parser(
        "figures",
        help="draw every figure of the book from the stored results, without "
        "executing a chapter; trains nothing",
    )
    add_results(drawn, "to read")
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


def experiments_of(
    experiment: str, lrs: list[float] | None, momenta: list[float] | None
) -> list[Experiment]:
    """The experiments a sweep of ``experiment`` runs (``all``, a group, or one); with
    ``lrs`` or ``momenta``, the grid of those, an experiment of its own named
    ``custom``."""
    if lrs is None and momenta is None:
        if experiment == "all":
            return list(EXPERIMENTS.values())
        names = GROUPS.get(experiment, (experiment,))
        return [experiments.experiment(name) for name in names]
    if experiment != "grid":
        raise ExperimentError(
            "--lrs and --momenta define a custom grid: use them with 'grid', not "
            f"{experiment!r}"
        )
    pairs = grid_pairs(
        experiments.GRID_LRS if lrs is None else lrs,
        experiments.GRID_MOMENTA if momenta is None else momenta,
    )
    variants = experiments.as_variants(pairs)
    return [Experiment("custom", lambda proto, store: variants, lambda p: p.epochs)]


def run_sweep(args) -> None:
    if args.engine != "fused":
        scheduler_address(args.scheduler)  # a malformed address, before anything else
    proto = experiments.protocol(args.protocol, args.dataset, args.engine)
    check_engine_options(args)
    chosen = experiments_of(args.experiment, args.lrs, args.momenta)
    store = store_of(args.results)
    if args.plan:
        print_plan(chosen, proto, store, args.device)
        return
    print(proto.describe())
    if args.engine == "fused":
        from golden import fused_runner

        fused_runner.run(
            [(experiment, proto) for experiment in chosen],
            store,
            args.device,
            time_limit=args.time_limit,
            archive=args.archive,
        )
        return
    from golden import runner

    for experiment in chosen:
        try:
            runner.sweep(
                experiment,
                proto,
                store,
                workers=args.workers,
                scheduler=args.scheduler,
            )
        except (RecordNotWritten, ClusterFailure) as error:
            raise ExperimentError(
                f"{error}; {stored_text(experiment, proto, store)}, and a rerun "
                "resumes from them"
            ) from None
        print(f"{experiment.name}: {stored_text(experiment, proto, store)}")


def stored_text(experiment: Experiment, proto, store: Store) -> str:
    """How many of an experiment's runs have an intact record, counted on disk: ``N of
    M runs stored in FOLDER``."""
    folder = store.folder(experiment.name, proto)
    paths = {store.path(folder, c) for c in experiment.configs(proto, store)}
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


def print_plan(
    chosen: list[Experiment], proto, store: Store, device: str = "cpu"
) -> None:
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
    for experiment in chosen:
        try:
            print(plan(experiment, proto, store))
        except ExperimentError as error:  # it builds on results not stored yet
            print(f"{experiment.name}: no plan yet, {error}")


def run_unpack(archives: list[Path], store: Store) -> None:
    from golden.fused_runner import unpack_archive

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
            run_unpack(args.archives, store_of(args.results))
        elif args.command == "figures":
            from golden import figures

            paths = figures.write(store_of(args.results), args.out, args.names or None)
            for path in paths:
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
