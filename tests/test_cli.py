"""Checks of the command line: every expected failure is one line on stderr and exit
status 2.

``golden.cli.main`` runs in this process (argparse's own errors leave through
SystemExit(2), golden's through the return value); one call goes through
``python -m golden`` to prove that no traceback reaches the terminal. Nothing here loads
MNIST: data are tiny synthetic tensors.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import golden.data
import golden.experiments
from factories import TINY_DATA
from golden import cli

REPO_ROOT = Path(__file__).resolve().parent.parent


REAL_SPLITS = golden.data.splits


def refuse_data(*args, **kwargs):
    raise AssertionError("a refused command must fail before it loads any data")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No results, data or downloads outside tmp_path; no command may load MNIST unless
    a test says so."""
    monkeypatch.setenv("GOLDEN_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("GOLDEN_DATA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GOLDEN_MNIST_SOURCE", str(tmp_path / "empty"))
    monkeypatch.setattr(golden.data, "splits", refuse_data)
    # bound there at import
    monkeypatch.setattr(golden.experiments, "splits", refuse_data)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def exit_status(argv: list[str]) -> int:
    """main's return value, or the status argparse exits with."""
    try:
        return cli.main(argv)
    except SystemExit as stop:
        return stop.code


def assert_one_line_error(capsys, argv: list[str], *words: str) -> str:
    status = exit_status(argv)
    out, err = capsys.readouterr()
    assert status == 2, (status, err)
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line: {err!r}"
    assert err.startswith("golden: error: "), err
    for word in words:
        assert word in err, f"{word!r} not in {err!r}"
    return err


@pytest.mark.parametrize(
    "argv, words",
    [
        (["train", "--lr", "0"], ["learning rate", "0"]),
        (["train", "--lr", "-0.5"], ["learning rate", "-0.5"]),
        (["train", "--lr", "nan"], ["learning rate", "nan"]),
        (["train", "--lr", "inf"], ["learning rate"]),
        (["train", "--momentum", "1"], ["momentum", "[0, 1)"]),
        (["train", "--momentum", "-0.1"], ["momentum"]),
        (["train", "--momentum", "nan"], ["momentum"]),
        (["train", "--model", "resnet"], ["unknown model 'resnet'", "cnn"]),
        (["train", "--loss", "hinge"], ["unknown loss 'hinge'"]),
        (["train", "--epochs", "0"], ["epochs", "from 1 to 10,000"]),
        (["train", "--optimizer", "lbfgs"], ["unknown optimizer 'lbfgs'", "adam"]),
        (["train", "--optimizer", "adam"], ["Adam", "momentum to 0"]),
        (["train", "--label-noise", "1.5"], ["label noise", "1.5"]),
        (["train", "--schedule", "cosine"], ["unknown schedule 'cosine'", "mi_decay"]),
        (
            ["train", "--epochs", "two"],
            ["--epochs", "two", "python -m golden train --help"],
        ),
        (["train", "--lr", "abc"], ["--lr", "abc"]),
        (["sweep", "nope"], ["unknown experiment 'nope'", "grid"]),
        (["sweep", "grid", "--protocol", "nope"], ["unknown protocol 'nope'", "book"]),
        (["sweep", "grid", "--lrs", "0.1,-2"], ["bad grid point", "-2"]),
        (["sweep", "grid", "--momenta", "0.5,1"], ["bad grid point", "momentum=1"]),
        (
            ["sweep", "grid", "--lrs", "abc"],
            ["--lrs", "comma-separated numbers", "abc"],
        ),
        (["sweep", "grid", "--workers", "many"], ["--workers"]),
        (["fly"], ["invalid choice", "fly"]),
        ([], ["required", "command"]),
    ],
)
def test_bad_input_is_one_line_and_status_2(capsys, argv, words):
    assert_one_line_error(capsys, argv, *words)


def test_empty_custom_grid_is_refused(capsys):
    assert_one_line_error(
        capsys, ["sweep", "grid", "--lrs", ",", "--workers", "1"], "empty"
    )


@pytest.mark.parametrize("command", ["sweep grid", "figures", "unpack x.tar.gz"])
def test_an_empty_results_folder_is_refused(capsys, command):
    """``--results "$DIR"`` with DIR unset names no folder: refused, as an empty
    GOLDEN_RESULTS is, never read as the working directory."""
    argv = [*command.split(), "--results", ""]
    assert_one_line_error(capsys, argv, "the results folder is empty")


def test_top_level_hint_names_the_right_command(capsys):
    err = assert_one_line_error(capsys, ["fly"])
    assert err.endswith("(see python -m golden --help)\n")


def test_subcommand_hint_names_the_subcommand(capsys):
    err = assert_one_line_error(capsys, ["sweep", "grid", "--lrs", "x"])
    assert err.endswith("(see python -m golden sweep --help)\n")


def test_no_traceback_reaches_the_terminal(tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "GOLDEN_RESULTS": str(tmp_path / "results"),
        "GOLDEN_DATA_HOME": str(tmp_path / "home"),
        "GOLDEN_MNIST_SOURCE": str(tmp_path / "empty"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "golden", "train", "--lr", "-1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,  # a bound on a hang only: imports take long on a loaded machine
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert (
        done.stderr.startswith("golden: error: learning rate")
        and done.stderr.count("\n") == 1
    )
    assert "Traceback" not in done.stderr


def test_missing_data_is_one_line(capsys, tmp_path, monkeypatch):
    """The real golden.data.splits on an empty source folder: a DataError, told in one
    line."""
    # the environment still points into tmp_path
    monkeypatch.setattr(golden.data, "splits", REAL_SPLITS)
    (tmp_path / "empty").mkdir()
    golden.data.splits.cache_clear()
    assert_one_line_error(
        capsys, ["train", "--epochs", "1"], "is missing from", "GOLDEN_MNIST_SOURCE"
    )
    assert not (
        tmp_path / "home" / "MNIST" / "raw" / "train-images-idx3-ubyte"
    ).exists()


def test_train_prints_metrics_per_epoch(capsys, monkeypatch):
    monkeypatch.setattr(golden.data, "splits", lambda *args, **kwargs: TINY_DATA)
    status = cli.main("train --lr 0.05 --momentum 0.5 --epochs 2 --model mlp".split())
    out, err = capsys.readouterr()
    assert status == 0 and "error" not in err
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines[:2]] == ["epoch 1", "epoch 2"]
    for line in lines[:2]:
        assert "train loss" in line and "val acc" in line and "test acc" in line
        assert 0 <= float(line.split("test acc ")[1]) <= 1
    assert (
        lines[2].startswith("final test accuracy ")
        and lines[2].split()[3] == lines[1].split()[-1]
    )


def test_train_reports_divergence(capsys, monkeypatch):
    monkeypatch.setattr(golden.data, "splits", lambda *args, **kwargs: TINY_DATA)
    assert (
        cli.main(["train", "--lr", "1e30", "--momentum", "0.9", "--model", "mlp"]) == 0
    )
    out, _ = capsys.readouterr()
    assert out.splitlines()[0] == "epoch 1: train loss inf"
    assert out.splitlines()[1].startswith("diverged")


def test_interrupted_sweep_exits_130_with_one_line(capsys, monkeypatch):
    from golden import runner

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "sweep", interrupt)
    assert exit_status(["sweep", "grid", "--protocol", "quick"]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "rerun resumes" in err
