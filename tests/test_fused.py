"""Checks of the fused engine (golden.fused, golden.fused_runner, tools/gpu_run.py), all
on the CPU: a model's history does not depend on its companions (bit for bit), its
first steps agree with the per-run engine's, a diverging model is recorded as the
per-run engine records it and leaks nothing, the update is torch.optim.SGD's, what the
engine does not train is refused in one line, and a sweep writes records the grid
study reads, stops at a time limit, resumes, archives and plans. The path runs with
Dask, Jupyter and tqdm made unimportable, as on the GPU machines it is meant for.

Training runs on small synthetic tensors, or on the quick MNIST subsets with two pairs;
no test depends on how fast anything runs (time limits run on a clock of the test's).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import golden.experiments as ex
import golden.fused
import golden.train
from factories import learnable
from golden import cli, fused, fused_runner, report
from golden.experiments import COMMON_PAIR, GOLDEN_PAIR, Experiment
from golden.protocols import protocol
from golden.results import runs_of
from golden.store import Store
from golden.studies import grid
from golden.train import ConfigError, TrainConfig, train

REPO_ROOT = Path(__file__).resolve().parent.parent
# no tqdm either: train() imports it only when it trains, golden.runner when it sweeps
UNAVAILABLE = (
    "dask",
    "distributed",
    "tqdm",
    "jupyter",
    "jupyter_core",
    "jupyter_client",
    "ipykernel",
    "IPython",
    "nbclient",
)


SMALL = learnable(192)  # three steps of 64 an epoch
A = TrainConfig(lr=0.05, momentum=0.9, epochs=2, seed=4)
B_DIVERGES = replace(A, lr=1e30, momentum=0.5)
C = replace(A, lr=0.01, momentum=0.0)


def histories(configs, data=SMALL) -> list[dict]:
    """The fused histories of ``configs`` trained together, without their times."""
    trained = fused.train_group(configs, lambda config: data)
    return [without_time(history.as_dict()) for history in trained]


def without_time(run: dict) -> dict:
    return {key: value for key, value in run.items() if key != "wall_time_s"}


# ------------------------------------------------------------------ the engine itself


def test_a_models_history_does_not_depend_on_its_companions():
    """A fused with a diverging B, with C, with both in another order, and alone (beside
    a copy of itself): A's history is the same to the last bit, so nothing of B's NaNs
    reaches A through a shared reduction."""
    with_b, beside_b = histories([A, B_DIVERGES])
    with_c, beside_c = histories([A, C])
    reordered = histories([C, B_DIVERGES, A])
    (alone,) = histories([A])
    assert beside_b["diverged"] and not beside_c["diverged"]
    assert with_b == with_c == reordered[2] == alone
    assert reordered[0] == beside_c and reordered[1] == beside_b
    assert len(with_b["val_acc"]) == 2 and all(map(math.isfinite, with_b["train_loss"]))


def test_several_folds_at_once_agree_with_one_at_a_time():
    """Two lanes (seeds 4 and 5, each with its own data) as one network: each lane's
    histories are those it has alone, to rounding (the first convolution is grouped
    by lane, which sums in another order); the diverging model diverges in both."""
    other = learnable(192, 64)
    a5, b5 = replace(A, seed=5), replace(B_DIVERGES, seed=5)
    data = {4: SMALL, 5: other}
    both = fused.train_group([A, C, a5, b5], lambda config: data[config.seed])
    apart = histories([A, C]) + histories([a5, b5], other)
    for together, alone in zip(both, apart):
        assert together.diverged == alone["diverged"]
        assert together.train_loss == pytest.approx(alone["train_loss"], rel=1e-5)
        assert len(together.val_acc) == len(alone["val_acc"])
    assert apart[3]["diverged"] and not apart[2]["diverged"]


def test_a_diverging_model_is_recorded_as_the_per_run_engine_records_it():
    """lr 1e30: non-finite within the first epoch in both engines; the same fields."""
    per_run = without_time(train(B_DIVERGES, SMALL, progress=False).as_dict())
    _, in_group = histories([C, B_DIVERGES])
    assert per_run["diverged"] and per_run["train_loss"] == [math.inf]
    assert in_group == per_run


def test_the_first_ten_steps_agree_with_the_per_run_engine(monkeypatch):
    """Same initial weights, batches and dropout masks: the losses of the first 10 steps
    agree to a relative 1e-5 (only the order of float additions differs), and so do the
    epoch's loss; both learn, so the agreement is not trivial."""
    data = learnable(640)  # ten steps of 64
    config = replace(A, epochs=1)
    per_run, together = [], []
    batch_loss, model_losses = golden.train.batch_loss, golden.fused.model_losses

    def record_batch_loss(*args):
        loss = batch_loss(*args)
        per_run.append(loss.item())
        return loss

    def record_model_losses(*args):
        losses = model_losses(*args)
        together.append(losses[0].item())
        return losses

    monkeypatch.setattr(golden.train, "batch_loss", record_batch_loss)
    monkeypatch.setattr(golden.fused, "model_losses", record_model_losses)
    expected = train(config, data, progress=False)
    found, _ = fused.train_group([config, replace(C, epochs=1)], lambda _: data)
    assert len(per_run) == len(together) == 10
    assert together == pytest.approx(per_run, rel=1e-5, abs=0)
    assert found.train_loss == pytest.approx(expected.train_loss, rel=1e-5, abs=0)
    assert per_run[-1] < per_run[0]


def test_the_update_is_torch_sgd_with_a_rate_and_a_momentum_per_model():
    """Three models with their own (lr, momentum), one frozen from the start: each
    trained one is torch.optim.SGD (no dampening, no Nesterov) on its own, bit for bit,
    over six steps; the first step's buffer is the gradient; the frozen one stays."""
    generator = torch.Generator().manual_seed(0)
    start = [torch.randn(4, 3, 2, generator=generator), torch.randn(4, 5)]
    pairs = [(0.1, 0.9), (0.016, 0.874), (0.3, 0.0), (0.2, 0.5)]
    targets = torch.randn(4, 3, 2, generator=generator)

    def gradients(weights, target):
        return [2 * (weights[0] - target) * weights[0].abs(), weights[1].sin()]

    stacked = [w.clone() for w in start]
    alive = torch.tensor([True, True, True, False])
    optimizer = fused.StackedSGD(
        stacked,
        torch.tensor([lr for lr, _ in pairs]),
        torch.tensor([m for _, m in pairs]),
    )
    for step in range(6):
        grads = gradients(stacked, targets)
        optimizer.step(grads, alive)
        if step == 0:
            assert all(torch.equal(b, g) for b, g in zip(optimizer.buffers, grads))
    for k, (lr, momentum) in enumerate(pairs[:3]):
        single = [w[k].clone().requires_grad_() for w in start]
        sgd = torch.optim.SGD(single, lr=lr, momentum=momentum)
        for _ in range(6):
            for w, g in zip(
                single, gradients([w.detach() for w in single], targets[k])
            ):
                w.grad = g
            sgd.step()
        assert all(torch.equal(w.detach(), s[k]) for w, s in zip(single, stacked))
    assert all(torch.equal(w[3], s[3]) for w, s in zip(start, stacked))


@pytest.mark.parametrize(
    "change, named",
    [
        ({"optimizer": "adam", "momentum": 0.0}, "optimizer 'adam'"),
        ({"loss": "mse"}, "loss 'mse'"),
        ({"schedule": "mi_decay"}, "schedule 'mi_decay'"),
        ({"probe_every": 5}, "probe_every 5"),
        ({"label_noise": 0.2}, "label noise 0.2"),
        ({"model": "mlp"}, "model 'mlp'"),
    ],
)
def test_what_the_engine_does_not_train_is_refused_in_one_line(change, named):
    with pytest.raises(ConfigError) as refused:
        fused.check(replace(A, **change))
    message = str(refused.value)
    assert named in message and "--engine per-run" in message
    assert "\n" not in message


def test_a_group_abandoned_at_its_time_limit_raises_time_up():
    with pytest.raises(fused.TimeUp):
        fused.train_group([A, C], lambda _: SMALL, time_up=lambda: True)


# -------------------------------------------------------------------- sweeps and files

PAIRS = [GOLDEN_PAIR, COMMON_PAIR]
QUICK = protocol("quick", engine="fused")
LIMIT = 1e9  # seconds on the test's clock


@pytest.fixture
def pairs():
    """Experiment "pairs": the golden and the common pair, seeds 0 and 1."""
    return Experiment(
        "pairs", lambda proto, store: ex.as_variants(PAIRS), lambda p: p.epochs
    )


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """One quick fused sweep of the two pairs, archived: (store, written, archive)."""
    root = tmp_path_factory.mktemp("swept")
    store = Store(root / "results")
    pairs = Experiment("pairs", lambda proto, store: ex.as_variants(PAIRS), lambda p: 1)
    written = fused_runner.run(
        [(pairs, QUICK)], store, archive=root / "out", progress=False
    )
    (archive,) = (root / "out").glob("*.tar.gz")
    return store, written, archive


def test_a_fused_sweep_writes_records_the_grid_study_reads(swept):
    store, written, _ = swept
    records = store.load("pairs", QUICK)
    assert len(records) == len(written) == 4
    assert {p.parent.name for p in written} == {f"quick-fused-{QUICK.digest()}"}
    study = report.Study("grid", QUICK, tuple(runs_of(records)))
    assert {g.key for g in grid.ranking(study)} == set(PAIRS)
    found = grid.verdict(study)
    assert found.finding != "no golden" and found.pairs == 2 and found.epochs == 1
    assert "the golden pair ranks" in found.text()
    assert grid.best_table(study).count("\n") == 3  # header, rule, two pairs
    header = study.header().splitlines()
    assert header[0].endswith(", fused engine") and header[-1].endswith("device-hours")
    assert "fused engine (`python -m golden sweep --engine fused`)" in study.note()
    for path in written:
        provenance = store.read(path)["provenance"]
        assert provenance["engine"] == "fused" and provenance["device"] == "cpu"
        assert provenance["precision"] == "fp32"
        assert provenance["torch"] == torch.__version__


def test_the_archive_holds_the_new_records_and_unpacks_into_a_store(
    swept, tmp_path, capsys, monkeypatch
):
    """`golden unpack` puts an archive's records into the results folder, each once,
    and refuses a member that is not an intact record of its path."""
    store, written, archive = swept
    with tarfile.open(archive) as packed:
        names = sorted(packed.getnames())
    assert names == sorted(p.relative_to(store.root).as_posix() for p in written)
    tampered = tmp_path / "tampered.tar.gz"
    with tarfile.open(tampered, "w:gz") as packed:
        packed.add(written[0], arcname=names[1])  # another run's file name
    monkeypatch.setenv("GOLDEN_RESULTS", str(tmp_path / "results"))
    for path in (archive, archive, tampered):
        assert cli.main(["unpack", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    results = tmp_path / "results"
    assert lines[0].endswith(f"4 records added to {results}, 0 already there")
    assert lines[1].endswith(f"0 records added to {results}, 4 already there")
    assert lines[2].endswith(f"0 already there, 1 refused: {names[1]}")
    assert Store(tmp_path / "results").load("pairs", QUICK) == store.load(
        "pairs", QUICK
    )


def test_a_time_limit_stops_before_a_group_and_the_same_sweep_resumes(
    tmp_path, pairs, monkeypatch
):
    """The test's clock reaches the limit (longer than any estimate, however slow the
    machine) as the first group finishes: the sweep stops before the second, with the
    first group's records written; run again, it trains only the second group."""
    store = Store(tmp_path)
    now = [0.0]
    trained = []
    train_group = fused.train_group

    def timed_group(configs, *args, **kwargs):
        trained.append([(c.lr, c.seed) for c in configs])
        result = train_group(configs, *args, **kwargs)
        now[0] += LIMIT
        return result

    monkeypatch.setattr(fused, "train_group", timed_group)
    deadline = fused_runner.Deadline(LIMIT, clock=lambda: now[0])
    first = fused_runner.sweep(pairs, QUICK, store=store, deadline=deadline)
    assert first.stopped and len(first.written) == 2 and len(trained) == 1
    before = {path: path.read_bytes() for path in first.written}
    second = fused_runner.sweep(pairs, QUICK, store=store)
    assert not second.stopped and len(second.written) == 2 and len(trained) == 2
    assert {seed for _, seed in trained[0]} != {seed for _, seed in trained[1]}
    assert all(path.read_bytes() == data for path, data in before.items())
    assert len(store.load(pairs.name, QUICK)) == 4


def test_on_a_gpu_lanes_fill_its_memory_and_a_share_of_the_time_limit(monkeypatch):
    """The GPU's arithmetic, on the CPU: a memory that holds two lanes and a half gives
    two lanes a group; a time limit shorter than GROUPS_PER_LIMIT lanes' time, one."""
    sizes = fused_runner.Sizes(train=256, val=64, test=64, batch=64, epochs=1)
    one = sum(fused_runner.memory_bytes(2, 1, sizes).values())
    monkeypatch.setattr(
        fused_runner,
        "device_memory",
        lambda device: 2.5 * one / fused_runner.MEMORY_SHARE,
    )
    assert fused_runner.lanes_per_group(2, 3, sizes, "cpu") == 2
    rate, _ = fused_runner.calibrate(2, 2, sizes.batch, "cpu", None)
    lane = sizes.work(2) / rate
    short = fused_runner.Deadline(1.5 * lane * fused_runner.GROUPS_PER_LIMIT)
    assert fused_runner.lanes_per_group(2, 3, sizes, "cpu", short) == 1
    long = fused_runner.Deadline(2.5 * lane * fused_runner.GROUPS_PER_LIMIT)
    assert fused_runner.lanes_per_group(2, 3, sizes, "cpu", long) == 2


def test_a_sweep_of_two_folds_as_one_network_agrees_with_one_at_a_time(
    swept, tmp_path, pairs, monkeypatch
):
    """What a GPU with room for both seeds does, on the CPU: one group of two lanes;
    the records agree with the one-lane sweep's to rounding."""
    monkeypatch.setattr(fused_runner, "device_memory", lambda device: 2**40)
    outcome = fused_runner.sweep(pairs, QUICK, store=Store(tmp_path), progress=False)
    assert len(outcome.written) == 4
    together = Store(tmp_path).load(pairs.name, QUICK)
    apart = swept[0].load(pairs.name, QUICK)
    for run, alone in zip(together, apart):
        assert run["config"] == alone["config"]
        assert run["train_loss"] == pytest.approx(alone["train_loss"], rel=1e-5)
        assert run["val_acc"] == pytest.approx(alone["val_acc"], abs=2 / 512)


def test_groups_hold_lanes_with_the_same_pairs_and_split_sizes():
    """Folds 0-2 with two pairs each, two lanes a group; a lane whose training split
    differs in size, or that lacks a pair, gets a group of its own."""
    configs = [
        TrainConfig(lr=lr, momentum=0.9, seed=fold, fold=fold)
        for fold in range(3)
        for lr in (0.1, 0.01)
    ]

    def lanes(groups):
        return [[(c.fold, c.lr) for c in group] for group in groups]

    assert lanes(fused_runner.groups_of(configs, 2)) == [
        [(0, 0.1), (0, 0.01), (1, 0.1), (1, 0.01)],
        [(2, 0.1), (2, 0.01)],
    ]
    sized = fused_runner.groups_of(configs, 2, lambda c: 100 + (c.fold == 1))
    assert [[c.fold for c in group] for group in sized] == [[0, 0, 2, 2], [1, 1]]
    assert lanes(fused_runner.groups_of(configs[1:], 3)) == [
        [(0, 0.01)],
        [(1, 0.1), (1, 0.01), (2, 0.1), (2, 0.01)],
    ]


def test_the_plan_of_the_paper_grid(tmp_path, capsys, monkeypatch):
    """`sweep grid --protocol paper --engine fused --device cpu --plan`: 600 runs,
    the memory and an estimate from a calibration (here one step), nothing run."""
    monkeypatch.setenv("GOLDEN_RESULTS", str(tmp_path))
    monkeypatch.setitem(fused_runner.CALIBRATION, "cpu", (0, 1))
    argv = "sweep grid --protocol paper --engine fused --device cpu --plan".split()
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    digest = protocol("paper", engine="fused").digest()
    assert f"grid under protocol 'paper' [{digest}], fused engine" in out
    assert "runs: 600 of 30 epochs, folds 0-9 of a stratified 10-fold split" in out
    assert "0 stored, 600 to run (18,000 epochs)" in out
    assert "on cpu: 10 groups of up to 60 runs (1 x 60)" in out
    assert "memory of a group:" in out and "GiB estimated" in out
    assert "trained images/s on cpu" in out and "estimate:" in out
    assert max(len(line) for line in out.splitlines()) <= 88
    assert not list(tmp_path.rglob("*.json"))


# ------------------------------------------------------- protocols and the command line


def test_the_engine_names_its_folders_and_leaves_the_stored_ones_alone():
    """Every stored per-run folder keeps its name; a fused protocol gets its own."""
    stored = {folder.name for folder in (REPO_ROOT / "results").glob("*/*")}
    per_run = {protocol(name).folder_name() for name in ("book", "paper", "quick")}
    assert "book-b17398cc" in stored and "book-b17398cc" in per_run
    paper = protocol("paper", engine="fused")
    assert paper.folder_name() == f"paper-fused-{paper.digest()}"
    assert paper.digest() != protocol("paper").digest()
    assert (
        protocol("paper", "fashion-mnist", "fused")
        .folder_name()
        .startswith("paper-fashion-mnist-fused-")
    )


@pytest.mark.parametrize(
    "argv, words",
    [
        ("sweep grid --engine warp", ["unknown engine 'warp'", "fused"]),
        ("sweep noise --protocol quick --engine fused", ["optimizer 'adam'"]),
        ("sweep grid --device cuda", ["options of the fused engine"]),
        ("sweep grid --time-limit 8m", ["options of the fused engine"]),
        ("sweep grid --engine fused --workers 2", ["--workers"]),
        ("sweep grid --engine fused --time-limit soon", ["--time-limit", "8m"]),
        ("sweep grid --engine fused --device tpu", ["unknown device 'tpu'"]),
    ],
)
def test_bad_engine_options_are_one_line(capsys, tmp_path, monkeypatch, argv, words):
    monkeypatch.setenv("GOLDEN_RESULTS", str(tmp_path))
    try:
        status = cli.main(argv.split())
    except SystemExit as stop:
        status = stop.code
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and err.startswith("golden: error: ")
    assert all(word in err for word in words), err
    assert not list(tmp_path.rglob("*.json"))


def test_no_gpu_is_one_line(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    argv = "sweep grid --protocol quick --engine fused --device cuda".split()
    assert cli.main(argv) == 2
    assert "no CUDA device here" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text, seconds", [("90", 90), ("90s", 90), ("8m", 480), ("1.5h", 5400)]
)
def test_durations(text, seconds):
    assert fused_runner.duration(text) == seconds


# ---------------------------------------------- the GPU command, on a machine without

# A module set to None in sys.modules is one Python cannot import, and one that
# importlib.util.find_spec reports missing (torch asks it about tqdm): as if absent.
BLOCKER = f"import sys\nsys.modules.update(dict.fromkeys({UNAVAILABLE!r}))\n"


def without_cluster_tools(tmp_path: Path) -> dict:
    """An environment whose Python cannot import Dask, Jupyter or tqdm (its
    sitecustomize module blocks them), with results and data in tmp_path."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    return {
        **os.environ,
        "PYTHONPATH": f"{site}{os.pathsep}{REPO_ROOT}",
        "GOLDEN_RESULTS": str(tmp_path / "results"),
        "GOLDEN_DATA_HOME": str(tmp_path / "home"),
        "GOLDEN_QUICK": "1",
    }


def test_the_cli_and_the_gpu_command_run_without_cluster_tools_and_resume(tmp_path):
    """Without Dask, Jupyter or tqdm, as on a GPU machine: the command line's fused
    sweep under a time limit of 0 stops before its first group and archives nothing;
    then tools/gpu_run.py in quick mode on the CPU (the same code as on a GPU) checks,
    calibrates, plans, trains what is left and archives it. (A stop after a finished
    group, and a resumption that trains only what is left, are tested above.)"""
    env = without_cluster_tools(tmp_path)
    blocked = subprocess.run(
        [sys.executable, "-c", "import tqdm"], env=env, capture_output=True, text=True
    )
    assert blocked.returncode == 1 and "import of tqdm halted" in blocked.stderr
    out = tmp_path / "out"
    grid = ["--lrs", "0.05,1e4", "--momenta", "0.9"]
    commands = [
        [sys.executable, "-m", "golden", "sweep", "grid", "--protocol", "quick"]
        + ["--engine", "fused", *grid, "--time-limit", "0", "--archive", str(out)],
        [sys.executable, str(REPO_ROOT / "tools" / "gpu_run.py"), "--device", "cpu"]
        + ["--protocols", "quick", *grid, "--minutes", "100000", "--out", str(out)],
    ]
    outputs = []
    for command in commands:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    stopped, finished = outputs
    assert "time limit: stopping before group 1/2" in stopped
    assert "custom: 0 of 4 runs stored" in stopped
    assert "archive: 0 new records" in stopped
    assert "device: cpu" in finished and "checksums verified" in finished
    assert "calibration:" in finished and "estimate:" in finished
    assert "epoch 1/1" in finished and "sweep 0:00 left" in finished
    assert "custom: 4 of 4 runs stored" in finished
    assert "archive: 4 new records" in finished
    assert len(list(out.glob("*.tar.gz"))) == 2
    records = Store(tmp_path / "results").load("custom", QUICK)
    assert sorted(r["diverged"] for r in records) == [False, False, True, True]
