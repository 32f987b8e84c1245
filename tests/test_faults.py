"""Fault injection: every bad input ends in one line on stderr, exit status
2, no traceback, and nothing written where it should not be.

The table runs ``golden.cli.main`` in this process (an escaping exception fails the
test) on hyperparameters, names, grids, environment variables and data folders; the
permission probe runs ``python -m golden`` with every capability dropped, so that it
holds as root, where ``chmod`` alone binds nothing. Data: test_data's tiny set, or none.
"""

from __future__ import annotations

import dataclasses
import errno
import gzip
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch

import golden.data
import golden.experiments
import golden.store
import golden.train
from factories import TINY_DATA
from golden import cli, figures, plots, runner, settings
from golden.data import NOISE_SEED_BASE, load_raw, with_label_noise
from golden.experiments import PROTOCOLS, THREADS_PER_RUN
from golden.store import Store, run_id
from golden.train import SEEDS, ConfigError, TrainConfig
from test_cli import exit_status
from test_data import FILES, N_TEST, N_TRAIN, dataset_class, write_idx_set

REPO_ROOT = Path(__file__).resolve().parent.parent
REAL_SPLITS = golden.data.splits
REAL_LOAD_RAW = golden.data.load_raw
REAL_TRAIN = golden.train.train


def refuse_data(*args, **kwargs):
    raise AssertionError("a refused command must fail before it loads any data")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Folders for the faults, the environment pointing into them, an empty working
    directory, and MNIST never loaded unless a test says so."""
    (tmp_path / "cwd").mkdir()
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("a regular file\n")
    (tmp_path / "garbage").mkdir()
    for name in FILES:
        (tmp_path / "garbage" / name).write_bytes(b"not MNIST")
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setenv("GOLDEN_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("GOLDEN_DATA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GOLDEN_MNIST_SOURCE", str(tmp_path / "empty"))
    monkeypatch.setattr(golden.data, "splits", refuse_data)
    monkeypatch.setattr(runner, "splits", refuse_data)  # bound there at import
    REAL_SPLITS.cache_clear()
    threads = torch.get_num_threads()
    yield
    REAL_SPLITS.cache_clear()
    torch.set_num_threads(threads)


def files_under(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in folder.rglob("*")
        if path.is_file()
    }


def assert_fault(status: int, err: str, *words: str) -> None:
    assert status == 2, (status, err)
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line: {err!r}"
    assert err.startswith("golden: error: ") and "Traceback" not in err, err
    for word in words:
        assert word in err, f"{word!r} not in {err!r}"


# id, command line, environment ("{tmp}" is the test's tmp_path), words of the one line
FAULTS = [
    # hyperparameters, negative numbers spelled both ways ("--lr -inf")
    ("lr -inf", "train --lr -inf", {}, ["learning rate", "-inf"]),
    ("lr=-inf", "train --lr=-inf", {}, ["learning rate", "-inf"]),
    ("lr -1e-3", "train --lr -1e-3", {}, ["learning rate", "-0.001"]),
    ("lr 1/2", "train --lr 1/2", {}, ["--lr", "invalid float value"]),
    ("lr missing", "train --lr", {}, ["--lr", "expected one argument"]),
    ("momentum -1e-3", "train --momentum -1e-3", {}, ["momentum", "[0, 1)"]),
    ("momentum 1.5", "train --momentum=1.5", {}, ["momentum", "1.5"]),
    ("noise -inf", "train --label-noise -inf", {}, ["label noise", "-inf"]),
    ("noise 1", "train --label-noise 1", {}, ["label noise", "[0, 1)"]),
    ("epochs -1e3", "train --epochs -1e3", {}, ["--epochs", "invalid int value"]),
    ("epochs -3", "train --epochs=-3", {}, ["epochs", "from 1 to 10,000", "-3"]),
    ("seed 2**64", f"train --seed {2**64}", {}, ["seed", str(2**64)]),
    ("seed -inf", "train --seed -inf", {}, ["--seed", "invalid int value"]),
    # what float32 and torch's generators can hold
    ("lr 1e39", "train --lr 1e39", {}, ["learning rate", "float32", "1e+39"]),
    ("lr 1e300", "train --lr 1e300", {}, ["learning rate", "3.4e+38", "1e+300"]),
    ("lr 1e-50", "train --lr 1e-50", {}, ["learning rate", "1.18e-38", "1e-50"]),
    ("momentum 1-1e-9", "train --momentum 0.999999999", {}, ["momentum", "float32"]),
    ("epochs 10**12", f"train --epochs {10**12}", {}, ["epochs", "10,000"]),
    ("epochs 10001", "train --epochs 10001", {}, ["epochs", "10,000", "10001"]),
    ("seed -1", "train --seed -1", {}, ["seed", "[0, 2**31)", "-1"]),
    ("seed 2**31", f"train --seed {2**31}", {}, ["seed", "32 bits", str(2**31)]),
    ("seed 2**63", f"train --seed {2**63}", {}, ["seed", str(2**63)]),
    ("adam momentum", "train --optimizer adam --momentum 0.5", {}, ["Adam"]),
    # names
    ("model", "train --model vgg", {}, ["unknown model 'vgg'", "mlp"]),
    ("loss", "train --loss=l1", {}, ["unknown loss 'l1'", "mse"]),
    ("optimizer", "train --optimizer rmsprop", {}, ["unknown optimizer"]),
    ("schedule", "train --schedule step", {}, ["unknown schedule 'step'"]),
    ("experiment", "sweep gird", {}, ["unknown experiment 'gird'"]),
    ("protocol", "sweep grid --protocol fast", {}, ["unknown protocol"]),
    ("bench option", "bench --fast", {}, ["unrecognized arguments", "--fast"]),
    # grids
    ("grid lr -1", "sweep grid --lrs -1,0.1", {}, ["bad grid point", "-1"]),
    ("grid lr 0", "sweep grid --lrs 0.1,0", {}, ["bad grid point", "lr=0"]),
    ("grid momentum -inf", "sweep grid --momenta -inf", {}, ["bad grid point"]),
    ("grid empty", "sweep grid --momenta ,", {}, ["the grid is empty"]),
    ("grid not grid", "sweep long --lrs 0.1", {}, ["custom grid", "'long'"]),
    ("workers -inf", "sweep grid --workers -inf", {}, ["invalid int value"]),
    # environment variables set but empty
    (
        "results empty",
        "sweep grid --protocol quick",
        {"GOLDEN_RESULTS": ""},
        ["GOLDEN_RESULTS is set but empty"],
    ),
    ("home empty", "train", {"GOLDEN_DATA_HOME": ""}, ["GOLDEN_DATA_HOME is set"]),
    ("home blank", "train", {"GOLDEN_DATA_HOME": " "}, ["GOLDEN_DATA_HOME is set"]),
    ("source empty", "train", {"GOLDEN_MNIST_SOURCE": ""}, ["GOLDEN_MNIST_SOURCE is"]),
    # a mode that is neither: refused by every command, before any work
    ("quick 2", "train", {"GOLDEN_QUICK": "2"}, ["GOLDEN_QUICK='2'", "full mode"]),
    ("quick y", "sweep grid --protocol quick", {"GOLDEN_QUICK": "y"}, ["'y'"]),
    ("quick quick", "figures --out {tmp}/figures", {"GOLDEN_QUICK": "quick"}, ["on"]),
    ("quick bench", "bench --quick", {"GOLDEN_QUICK": "yes!"}, ["'yes!'"]),
    # a results folder that cannot be used, found before any data are loaded
    (
        "results under a file",
        "sweep grid --protocol quick --lrs 0.1 --momenta 0.5",
        {"GOLDEN_RESULTS": "{tmp}/file/results"},
        ["cannot write results to", "GOLDEN_RESULTS"],
    ),
    # data folders that cannot be used
    (
        "home under a file",
        "train",
        {"GOLDEN_DATA_HOME": "{tmp}/file/home"},
        ["cannot write to", "Not a directory", "GOLDEN_DATA_HOME"],
    ),
    (
        "home is a file",
        "train",
        {"GOLDEN_DATA_HOME": "{tmp}/file"},
        ["cannot write to", "Not a directory"],
    ),
    # a figures folder that cannot be used, found before anything is drawn
    (
        "figures over a file",
        "figures --out {tmp}/file",
        {},
        ["cannot write figures to", "file (Not a directory)", "--out"],
    ),
    (
        "figures under a file",
        "figures --out {tmp}/file/figures",
        {},
        ["cannot write figures to", "Not a directory"],
    ),
    ("missing data", "train", {}, ["is missing from", "GOLDEN_MNIST_SOURCE"]),
    (
        "no source folder",
        "train",
        {"GOLDEN_MNIST_SOURCE": "{tmp}/nowhere"},
        ["is missing from", "nowhere"],
    ),
    (
        "corrupt data",
        "train",
        {"GOLDEN_MNIST_SOURCE": "{tmp}/garbage"},
        ["has md5", "replace it"],
    ),
]


@pytest.mark.parametrize(
    "command, env, words",
    [fault[1:] for fault in FAULTS],
    ids=[fault[0] for fault in FAULTS],
)
def test_fault_is_one_line_and_writes_nothing(
    capsys, monkeypatch, tmp_path, command, env, words
):
    """The real data loader is in place: a fault it should catch is caught there."""
    monkeypatch.setattr(golden.data, "splits", REAL_SPLITS)
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(tmp=tmp_path))
    before = files_under(tmp_path)
    status = exit_status(command.format(tmp=tmp_path).split())
    assert_fault(status, capsys.readouterr().err, *words)
    assert files_under(tmp_path) == before


def unprivileged(folder: Path) -> list[str]:
    """A command prefix under which ``folder``'s mode binds: none for a normal user; as
    root, setpriv with every capability dropped (CAP_DAC_OVERRIDE ignores modes)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: a folder's mode cannot bind")
    prefix = [setpriv, "--inh-caps=-all", "--bounding-set=-all"]
    runs = subprocess.run([*prefix, "true"], capture_output=True).returncode == 0
    touch = subprocess.run([*prefix, "touch", folder / "probe"], capture_output=True)
    binds = touch.returncode != 0
    if not (runs and binds):
        pytest.skip("setpriv could not drop root's capabilities here")
    return prefix


def golden_unprivileged(
    folder: Path, tmp_path: Path, env: dict, *args: str
) -> subprocess.CompletedProcess:
    """``python -m golden ARGS`` in tmp_path/cwd, where ``folder``'s mode binds."""
    return subprocess.run(
        [*unprivileged(folder), sys.executable, "-m", "golden", *args],
        cwd=tmp_path / "cwd",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_unwritable_data_home_is_one_line_even_as_root(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o555)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "GOLDEN_DATA_HOME": str(home),
        "GOLDEN_MNIST_SOURCE": str(tmp_path / "empty"),
    }
    done = golden_unprivileged(home, tmp_path, env, "train")
    assert_fault(
        done.returncode,
        done.stderr,
        "cannot write to",
        "Permission denied",
        "GOLDEN_DATA_HOME",
    )
    assert done.stdout == "" and list(home.iterdir()) == []


def stream(seed: int) -> list[int]:
    """The first numbers a torch generator seeded with ``seed`` draws."""
    return torch.randperm(20, generator=torch.Generator().manual_seed(seed)).tolist()


def test_seeds_are_those_that_give_distinct_runs():
    """torch keeps the low 32 bits of a seed, and a run's label noise draws from seed +
    2**31: seeds in [0, 2**31) give batch orders and noise that no other seed shares;
    the stored records' seeds and folds 0-9 are among them."""
    assert stream(2**32) == stream(0) and stream(-1) == stream(2**32 - 1)  # the why
    assert SEEDS == range(0, 2**31)  # seeds and folds 0-9 of the stored records in it
    noise = range(NOISE_SEED_BASE + SEEDS[0], NOISE_SEED_BASE + SEEDS[-1] + 1)
    assert SEEDS[-1] < noise[0] and noise[-1] < 2**32  # disjoint, and under 32 bits
    ends = (
        SEEDS[0],
        SEEDS[-1],
        NOISE_SEED_BASE + SEEDS[0],
        NOISE_SEED_BASE + SEEDS[-1],
    )
    assert len({tuple(stream(seed)) for seed in ends}) == 4
    for seed in SEEDS[0], SEEDS[-1]:
        TrainConfig(lr=0.1, momentum=0.5, seed=seed)
        assert len(with_label_noise(TINY_DATA.train, 0.5, seed)) == len(TINY_DATA.train)
    for seed in (-1, 2**31, 2**32, 2**63):
        with pytest.raises(
            ConfigError, match=r"seed must be an integer in \[0, 2\*\*31\)"
        ):
            TrainConfig(lr=0.1, momentum=0.5, seed=seed)


@pytest.mark.parametrize(
    "value, quick",
    [("1", True), ("TRUE", True), (" yes ", True), ("On", True)]
    + [("", False), ("0", False), ("False", False), ("no", False), ("OFF", False)],
)
def test_golden_quick_takes_its_documented_values_in_any_case(
    monkeypatch, value, quick
):
    monkeypatch.setenv("GOLDEN_QUICK", value)
    assert settings.quick_mode() is quick
    monkeypatch.delenv("GOLDEN_QUICK")
    assert settings.quick_mode() is False


# ---------------------------------------------- data: only md5-verified bytes are read


def test_stale_processed_tensors_are_never_read(tmp_path):
    """torchvision's MNIST prefers ``processed/{training,test}.pt`` to the raw files."""
    tiny = dataset_class(write_idx_set(tmp_path / "source"))
    processed = tmp_path / "home" / "TinyMNIST" / "processed"
    processed.mkdir(parents=True)
    for file, n in (("training.pt", N_TRAIN), ("test.pt", N_TEST)):
        zeros = torch.zeros(n, 28, 28, dtype=torch.uint8), torch.zeros(n).long()
        torch.save(zeros, processed / file)
    train, test = load_raw(tmp_path / "source", tmp_path / "home", tiny)
    assert torch.equal(train.labels, torch.arange(N_TRAIN) % 10)
    assert torch.equal(test.labels, (torch.arange(N_TEST) * 7) % 10)
    assert int(train.images.sum()) > 0


def test_unpacked_files_altered_after_unpacking_are_never_read(tmp_path):
    """A label byte set to 255 in an unpacked file changes nothing: the labels come from
    the verified ``.gz``."""
    tiny = dataset_class(write_idx_set(tmp_path / "source"))
    home = tmp_path / "home"
    load_raw(tmp_path / "source", home, tiny)
    staged = home / "TinyMNIST" / "raw" / FILES[1]
    altered = bytearray(gzip.decompress(staged.read_bytes()))
    altered[-1] = 255
    staged.with_suffix("").write_bytes(bytes(altered))  # where torchvision unpacks it
    train, _ = load_raw(tmp_path / "source", home, tiny)
    assert torch.equal(train.labels, torch.arange(N_TRAIN) % 10)


def repack(path: Path, change) -> None:
    """Rewrite a gzip'ed file with its unpacked bytes passed through ``change``."""
    path.write_bytes(gzip.compress(change(gzip.decompress(path.read_bytes())), mtime=0))


def label_255(data: bytes) -> bytes:
    return data[:-1] + b"\xff"


def one_label_fewer(data: bytes) -> bytes:
    return data[:4] + struct.pack(">I", N_TEST - 1) + data[8:-1]


def truncated(data: bytes) -> bytes:
    return data[:-1]


def as_plain_bytes(path: Path) -> None:
    path.write_bytes(gzip.decompress(path.read_bytes()))


def load_tiny(monkeypatch, source: Path, home: Path, tiny) -> None:
    """The real golden.data.splits on test_data's tiny set, as the CLI's train loads
    it."""
    monkeypatch.setattr(golden.data, "splits", REAL_SPLITS)
    monkeypatch.setattr(
        golden.data, "load_raw", lambda data: REAL_LOAD_RAW(source, home, tiny)
    )


# file, how it is altered, words; each passes its md5 (the class lists the altered md5)
BAD_CONTENT = {
    "label 255": (FILES[1], lambda p: repack(p, label_255), ["the largest 255"]),
    "counts differ": (
        FILES[3],
        lambda p: repack(p, one_label_fewer),
        [f"{N_TEST} images, {N_TEST - 1} labels"],
    ),
    "truncated": (
        FILES[0],
        lambda p: repack(p, truncated),
        ["could not be read", "is invalid"],
    ),
    "not gzip": (FILES[2], as_plain_bytes, ["could not be read", "Not a gzipped file"]),
}


@pytest.mark.parametrize(
    "name, alter, words", BAD_CONTENT.values(), ids=BAD_CONTENT.keys()
)
def test_bad_content_is_one_line(capsys, monkeypatch, tmp_path, name, alter, words):
    """Content that fits its checksum but not MNIST's format: one line from the CLI."""
    source = tmp_path / "source"
    write_idx_set(source)
    alter(source / name)
    tiny = dataset_class({file: golden.data.md5(source / file) for file in FILES})
    load_tiny(monkeypatch, source, tmp_path / "home", tiny)
    status = exit_status(["train", "--model", "mlp"])
    out, err = capsys.readouterr()
    assert_fault(status, err, *words)
    assert out == "" and not (tmp_path / "results").exists()


def test_a_folder_in_place_of_a_staged_file_is_one_line(capsys, monkeypatch, tmp_path):
    tiny = dataset_class(write_idx_set(tmp_path / "source"))
    (tmp_path / "home" / "TinyMNIST" / "raw" / FILES[0]).mkdir(parents=True)
    load_tiny(monkeypatch, tmp_path / "source", tmp_path / "home", tiny)
    assert_fault(
        exit_status(["train"]),
        capsys.readouterr().err,
        "cannot write to",
        "Is a directory",
        "GOLDEN_DATA_HOME",
    )
    assert files_under(tmp_path / "home") == {}


def test_stored_numbers_are_what_train_prints(capsys, monkeypatch):
    """``python -m golden train`` trains with the runner's thread setting, so it prints
    the numbers of the runner's record of the same configuration."""
    monkeypatch.setattr(golden.data, "splits", lambda *args, **kwargs: TINY_DATA)
    monkeypatch.setattr(runner, "splits", lambda *args: TINY_DATA)
    threads = []

    def counting_train(*args, **kwargs):
        threads.append(torch.get_num_threads())
        return REAL_TRAIN(*args, **kwargs)

    monkeypatch.setattr(golden.train, "train", counting_train)
    torch.set_num_threads(THREADS_PER_RUN + 1)
    argv = "train --lr 0.05 --momentum 0.5 --epochs 2 --model mlp --seed 3".split()
    assert cli.main(argv) == 0
    printed = re.findall(r"\d+\.\d{4}", capsys.readouterr().out)
    assert threads == [THREADS_PER_RUN]
    config = TrainConfig(lr=0.05, momentum=0.5, epochs=2, model="mlp", seed=3)
    record = runner.run_one(config, quick_data=True)
    epochs = zip(record["train_loss"], record["val_acc"], record["test_acc"])
    expected = [number for epoch in epochs for number in epoch]
    expected.append(record["test_acc"][-1])
    assert printed == [f"{number:.4f}" for number in expected]


def test_a_folder_in_place_of_a_record_is_one_line_before_training(capsys, tmp_path):
    from golden.experiments import PROTOCOLS
    from golden.store import Store

    folder = Store(tmp_path / "results").folder("custom", PROTOCOLS["quick"])
    (folder / "lr0.1_m0.5_s1.json").mkdir(parents=True)
    status = exit_status("sweep grid --protocol quick --lrs 0.1 --momenta 0.5".split())
    assert_fault(
        status, capsys.readouterr().err, "lr0.1_m0.5_s1.json", "in the way of a record"
    )
    assert [p.name for p in folder.iterdir()] == [
        "lr0.1_m0.5_s1.json"
    ]  # nothing trained


def test_a_custom_grid_counts_its_own_runs(capsys, monkeypatch, tmp_path):
    """A record of another custom grid in the same folder is not counted as this
    grid's."""
    from golden.experiments import PROTOCOLS
    from golden.store import Store

    quick = PROTOCOLS["quick"]
    store = Store(tmp_path / "results")
    folder = store.folder("custom", quick)
    store.prepare(folder, [])
    other = TrainConfig(lr=0.3, momentum=0.5, epochs=1, seed=0)
    store.write(
        folder, REAL_TRAIN(other, TINY_DATA, progress=False).as_dict(), quick, "custom"
    )
    monkeypatch.setattr(
        runner, "sweep", lambda *args, **kwargs: folder
    )  # trains nothing
    assert (
        exit_status("sweep grid --protocol quick --lrs 0.1 --momenta 0.5".split()) == 0
    )
    assert "custom: 0 of 2 runs stored" in capsys.readouterr().out


# ----------------------------------------------- sweeps: what is stored is what is said


def made_up_history(config: TrainConfig) -> dict:
    """A finished run's history, as training returns it, without the training."""
    epochs = [0.5] * config.epochs
    return {
        "config": dataclasses.asdict(config),
        "train_loss": epochs,
        "val_acc": epochs,
        "test_acc": epochs,
        "diverged": False,
        "wall_time_s": 0.0,
    }


def storing_sweep(trained: list[TrainConfig]):
    """Stands in for runner.sweep: the driver's part of a sweep (check the store, write
    a record per pending run), each run's training replaced by made_up_history."""

    def sweep(experiment, proto, store, **options):
        folder = store.folder(experiment.name, proto)
        configs = experiment.configs(proto, store)
        store.prepare(folder, configs)
        for config in store.pending(configs, folder):
            trained.append(config)
            store.write(folder, made_up_history(config), proto, experiment.name)
        return folder

    return sweep


def test_a_grid_point_given_twice_is_trained_and_counted_once(
    capsys, monkeypatch, tmp_path
):
    """0.1, 0.1 and 0.10 are one learning rate, 0 and -0 one momentum: one pair, its two
    seeds trained once each, and the count printed is the count of files."""
    trained = []
    monkeypatch.setattr(runner, "sweep", storing_sweep(trained))
    argv = "sweep grid --protocol quick --lrs 0.1,0.1,0.10 --momenta 0,-0".split()
    assert exit_status(argv) == 0
    assert [run_id(config) for config in trained] == ["lr0.1_m0_s0", "lr0.1_m0_s1"]
    folder = Store(tmp_path / "results").folder("custom", PROTOCOLS["quick"])
    assert sorted(path.name for path in folder.iterdir()) == [
        "lr0.1_m0_s0.json",
        "lr0.1_m0_s1.json",
    ]
    assert f"custom: 2 of 2 runs stored in {folder}" in capsys.readouterr().out


def test_results_names_the_store_a_sweep_writes_and_counts(
    capsys, monkeypatch, tmp_path
):
    """--results DIR is the one store of the sweep: its records go there, its count is
    read there, and the default folder ($GOLDEN_RESULTS) is left alone."""
    monkeypatch.setattr(runner, "sweep", storing_sweep([]))
    chosen = tmp_path / "chosen"
    argv = "sweep grid --protocol quick --lrs 0.1 --momenta 0.5 --results".split()
    assert exit_status([*argv, str(chosen)]) == 0
    folder = Store(chosen).folder("custom", PROTOCOLS["quick"])
    assert f"custom: 2 of 2 runs stored in {folder}" in capsys.readouterr().out
    assert len(Store(chosen).load("custom", PROTOCOLS["quick"])) == 2
    assert not (tmp_path / "results").exists()


def read_only(*args, **kwargs):
    raise OSError(errno.EROFS, os.strerror(errno.EROFS))


def test_a_results_folder_turning_read_only_mid_sweep_is_one_line(
    capsys, monkeypatch, tmp_path
):
    """The file system turns read-only after the first record, where even removing the
    temporary file fails: one line naming the record and what was kept, the first record
    intact, nothing else in the folder."""
    sweep, file_system = storing_sweep([]), pytest.MonkeyPatch()

    def sweep_turning_read_only(experiment, proto, store, **options):
        write = store.write

        def write_then_turn_read_only(*args):
            path = write(*args)
            file_system.setattr(golden.store, "open", read_only, raising=False)
            file_system.setattr(Path, "unlink", read_only)
            return path

        store.write = write_then_turn_read_only
        return sweep(experiment, proto, store, **options)

    monkeypatch.setattr(runner, "sweep", sweep_turning_read_only)
    try:
        argv = "sweep grid --protocol quick --lrs 0.1 --momenta 0.5".split()
        status = exit_status(argv)
    finally:
        file_system.undo()  # writable again
    assert_fault(
        status,
        capsys.readouterr().err,
        "cannot write the record",
        "lr0.1_m0.5_s1.json (Read-only file system)",
        "1 of 2 runs stored in",
        "a rerun resumes",
    )
    store = Store(tmp_path / "results")
    folder = store.folder("custom", PROTOCOLS["quick"])
    assert [path.name for path in folder.iterdir()] == ["lr0.1_m0.5_s0.json"]
    assert store.read(folder / "lr0.1_m0.5_s0.json") is not None


def refuse_cluster(*args, **kwargs):
    raise AssertionError("a refused sweep must fail before it starts a cluster")


def test_a_checkpoints_folder_that_is_a_file_is_one_line_before_training(
    capsys, monkeypatch, tmp_path
):
    """Rung 1 of the contenders keeps its end states for rung 2: a checkpoints 'folder'
    that is a regular file is found before any cluster starts."""
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "checkpoints").write_text("not a folder\n")
    quick, store = PROTOCOLS["quick"], Store(tmp_path / "results")
    grid = golden.experiments.experiment("grid")
    folder = store.folder("grid", quick)  # the grid rung 1 is promoted from, made up
    store.prepare(folder, [])
    for config in grid.configs(quick):
        store.write(folder, made_up_history(config), quick, "grid")
    monkeypatch.setattr(runner, "cluster_client", refuse_cluster)
    before = files_under(tmp_path)
    assert_fault(
        exit_status("sweep contenders10 --protocol quick".split()),
        capsys.readouterr().err,
        "cannot keep checkpoints in",
        "checkpoints/quick (Not a directory)",
        "GOLDEN_DATA_HOME",
    )
    assert files_under(tmp_path) == before


# ---------------------------------------------- figures: the folder before the drawing


def figure_drawn(drawn: list[str], name: str) -> plots.Registered:
    """A registered figure that notes in ``drawn`` that it was drawn."""

    def draw() -> plt.Figure:
        drawn.append(name)
        fig, ax = plt.subplots()
        ax.plot([0, 1])
        return fig

    return plots.Registered(draw)


@pytest.mark.parametrize(
    "out, words",
    [("file", ["file (Not a directory)"]), ("file/figures", ["Not a directory"])],
)
def test_a_figures_folder_that_cannot_be_used_is_found_before_drawing(
    capsys, monkeypatch, tmp_path, out, words
):
    drawn = []
    monkeypatch.setattr(figures, "registry", lambda: {"a": figure_drawn(drawn, "a")})
    status = exit_status(["figures", "--out", str(tmp_path / out)])
    assert_fault(status, capsys.readouterr().err, "cannot write figures to", *words)
    assert drawn == []


def test_a_figures_folder_that_fails_mid_way_is_one_line(capsys, monkeypatch, tmp_path):
    drawn = []
    names = ("first", "second", "third")
    monkeypatch.setattr(
        figures, "registry", lambda: {name: figure_drawn(drawn, name) for name in names}
    )
    save = plots.save_figure

    def save_then_turn_read_only(fig, name, note="", folder=None):
        if name != "first":
            read_only()
        return save(fig, name, note, folder)

    monkeypatch.setattr(plots, "save_figure", save_then_turn_read_only)
    status = exit_status(["figures", "--out", str(tmp_path / "figures")])
    out, err = capsys.readouterr()
    assert_fault(
        status,
        err,
        "second.png (Read-only file system)",
        "1 of the 3 figures were written and are kept",
    )
    assert drawn == list(names) and out == ""  # all drawn before the first is written
    assert [path.name for path in (tmp_path / "figures").iterdir()] == ["first.png"]


def test_an_unwritable_figures_folder_is_one_line_even_as_root(tmp_path):
    out = tmp_path / "figures"
    out.mkdir()
    out.chmod(0o555)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "MPLBACKEND": "Agg"}
    done = golden_unprivileged(out, tmp_path, env, "figures", "--out", str(out))
    assert_fault(
        done.returncode,
        done.stderr,
        "cannot write figures to",
        "Permission denied",
        "--out",
    )
    assert done.stdout == "" and list(out.iterdir()) == []
