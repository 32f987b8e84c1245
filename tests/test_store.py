"""Checks of golden.store and of golden.runner's sweep logic (resume, corrupt records,
Ctrl-C).

Sweeps here run a tiny experiment (2 pairs x 2 seeds, one epoch of a small model on 128
synthetic images) on an in-process Dask cluster (``processes=False``), so that the
stand-ins patched into this process reach the workers; records go to a Store under
pytest's tmp_path. The real multi-process and multi-machine paths are in test_runner.py.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import threading
from pathlib import Path

import pytest
import torch

import golden.experiments as ex
import golden.runner as runner
from golden.data import MnistSplits, Split
from golden.experiments import Experiment, ExperimentError, Protocol
from golden.results import group
from golden.store import CorruptRecordWarning, Store, run_id
from golden.train import TrainConfig

PAIRS = [(0.05, 0.5), (0.01, 0.9)]
DIVERGING_LR = 1e12  # one epoch of the MLP at this rate ends in an infinite loss
TINY = Protocol(
    "tiny",
    epochs=1,
    long_epochs=1,
    seeds=(0, 1),
    quick_data=True,
    batch_size=32,
    model="mlp",
)


def synthetic_split(n: int, seed: int) -> Split:
    generator = torch.Generator().manual_seed(seed)
    return Split(
        torch.rand(n, 1, 28, 28, generator=generator) * 2 - 1,
        torch.randint(10, (n,), generator=generator),
    )


TINY_DATA = MnistSplits(
    synthetic_split(128, 1), synthetic_split(32, 2), synthetic_split(32, 3)
)


CALLS: list[
    TrainConfig
] = []  # what counting_run_one trained (Dask pickles functions by name)


def counting_run_one(
    config: TrainConfig, quick_data: bool, continues: bool = False
) -> dict:
    """Stands in for ``run_one`` and records the runs it trains."""
    CALLS.append(config)
    return REAL_RUN_ONE(config, quick_data, continues)


class InterruptedStore(Store):
    """A store whose driver is interrupted (Ctrl-C) just before it writes its n-th
    record."""

    def __init__(self, root, interrupt_at: int):
        super().__init__(root)
        self.interrupt_at, self.writes = interrupt_at, 0

    def write(self, *args, **kwargs):
        self.writes += 1
        if self.writes == self.interrupt_at:
            raise KeyboardInterrupt
        return super().write(*args, **kwargs)


REAL_RUN_ONE = runner.run_one


@pytest.fixture
def store(tmp_path, monkeypatch) -> Store:
    """A tiny experiment 'tiny' on synthetic data; a store under tmp_path."""
    monkeypatch.setitem(
        ex.EXPERIMENTS,
        "tiny",
        Experiment("tiny", lambda proto: ex.as_variants(PAIRS), lambda p: p.epochs),
    )
    monkeypatch.setattr(runner, "splits", lambda *args: TINY_DATA)
    threads = torch.get_num_threads()  # run_one sets one thread per run
    yield Store(tmp_path / "results")
    torch.set_num_threads(threads)


def counting(monkeypatch) -> list[TrainConfig]:
    CALLS.clear()
    monkeypatch.setattr(runner, "run_one", counting_run_one)
    return CALLS


def sweep(store: Store) -> Path:
    return runner.sweep(
        "tiny", TINY, workers=1, progress=False, store=store, processes=False
    )


def ids(configs) -> list[str]:
    return sorted(run_id(config) for config in configs)


ALL_IDS = ids(
    Experiment("tiny", lambda p: ex.as_variants(PAIRS), lambda p: p.epochs).configs(
        TINY
    )
)


def files(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.json"))


# ------------------------------------------------------------------------------ sweeps


def test_sweep_stores_one_intact_record_per_run(store, monkeypatch):
    calls = counting(monkeypatch)
    folder = sweep(store)
    assert (
        folder
        == store.folder("tiny", TINY)
        == store.root / "tiny" / f"tiny-{TINY.digest()}"
    )
    assert ids(calls) == ALL_IDS and len(calls) == 4
    assert files(folder) == ALL_IDS
    record = store.read(folder / f"{ALL_IDS[0]}.json")
    assert record["experiment"] == "tiny" and record["protocol"]["name"] == "tiny"
    assert set(record["provenance"]) >= {"python", "torch", "git_commit"}
    # no temporary files left
    assert not [p for p in folder.iterdir() if p.suffix != ".json"]


def test_a_finished_sweep_does_nothing_the_second_time(store, monkeypatch):
    folder = sweep(store)
    before = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.json")}
    calls = counting(monkeypatch)
    sweep(store)
    assert calls == []
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("*.json")} == before


def test_an_interrupted_sweep_resumes_where_it_stopped(store, monkeypatch):
    with pytest.raises(
        KeyboardInterrupt
    ):  # Ctrl-C as the third record is about to be written
        runner.sweep(
            "tiny",
            TINY,
            workers=1,
            progress=False,
            processes=False,
            store=InterruptedStore(store.root, interrupt_at=3),
        )
    folder = store.folder("tiny", TINY)
    done = {p.name: p.read_bytes() for p in folder.glob("*.json")}
    assert len(done) == 2
    calls = counting(monkeypatch)
    sweep(store)
    assert len(calls) == 2 and not {f"{i}.json" for i in ids(calls)} & set(done)
    assert files(folder) == ALL_IDS  # each run exactly once
    assert {
        name: (folder / name).read_bytes() for name in done
    } == done  # earlier ones untouched


def alter_a_number(path: Path) -> None:
    record = json.loads(path.read_text())
    record["run"]["test_acc"][-1] += 0.01  # the checksum is left as it was
    path.write_text(json.dumps(record, indent=1, sort_keys=True))


def test_corrupt_records_are_named_and_rerun(store, monkeypatch):
    folder = sweep(store)
    truncated, altered, intact, interrupted = (
        folder / f"{run}.json" for run in ALL_IDS
    )
    truncated.write_text(truncated.read_text()[: len(truncated.read_text()) // 2])
    alter_a_number(altered)
    # killed before the rename
    interrupted.rename(folder / f".{interrupted.stem}.123.abcd.tmp")
    configs = ex.experiment("tiny").configs(TINY)
    assert store.read(truncated) is None and store.read(altered) is None
    assert ids(store.pending(configs, folder)) == sorted(
        [truncated.stem, altered.stem, interrupted.stem]
    )
    with pytest.warns(CorruptRecordWarning) as warned:
        assert len(store.load("tiny", TINY)) == 1
    assert sorted(
        Path(str(w.message).split()[1].rstrip(":")).stem for w in warned
    ) == sorted([truncated.stem, altered.stem])
    calls = counting(monkeypatch)
    sweep(store)
    assert ids(calls) == sorted([truncated.stem, altered.stem, interrupted.stem])
    assert store.pending(configs, folder) == [] and len(store.load("tiny", TINY)) == 4


@pytest.mark.parametrize(
    "text",
    [
        "",
        "null",
        "[]",
        "42",
        '"x"',
        '{"checksum": "0"}',
        "{not json",
        "[" * 100_000 + "]" * 100_000,
    ],
)
def test_what_is_not_a_record_does_not_count(tmp_path, text):
    path = tmp_path / "tiny" / "tiny-x" / "r.json"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    assert Store(tmp_path).read(path) is None
    assert Store(tmp_path).read(tmp_path / "missing.json") is None


def test_an_intact_record_under_another_name_or_folder_does_not_count(store):
    """A record copied over another run's file (or into another experiment's or
    protocol's folder) would count one seed twice: only the file its configuration names
    counts."""
    folder = sweep(store)
    first, second = (folder / f"{run}.json" for run in ALL_IDS[:2])
    second.write_bytes(first.read_bytes())
    assert store.read(first) is not None and store.read(second) is None
    for other in (
        store.root / "other" / folder.name,
        store.root / "tiny" / "tiny-00000000",
    ):
        other.mkdir(parents=True)
        (other / first.name).write_bytes(first.read_bytes())
        assert store.read(other / first.name) is None


def test_a_diverging_run_is_recorded_as_strict_json(store, monkeypatch):
    pairs = [(DIVERGING_LR, 0.9)] + PAIRS
    monkeypatch.setitem(
        ex.EXPERIMENTS,
        "tiny",
        Experiment("tiny", lambda proto: ex.as_variants(pairs), lambda p: p.epochs),
    )
    folder = sweep(store)
    diverged_files = sorted(folder.glob(f"lr{DIVERGING_LR:g}_*.json"))
    assert len(diverged_files) == 2
    for path in diverged_files:
        text = path.read_text()
        assert "Infinity" not in text and "NaN" not in text
        json.loads(
            text, parse_constant=lambda name: pytest.fail(f"{name} in {path.name}")
        )
        assert json.loads(text)["run"]["train_loss"][-1] is None
    runs = store.load("tiny", TINY)
    assert len(runs) == 6
    diverged = [run for run in runs if run["diverged"]]
    assert sorted(run["config"]["seed"] for run in diverged) == [0, 1]
    assert all(
        math.isinf(run["train_loss"][-1]) and run["val_acc"] == [] for run in diverged
    )
    diverging = group(runs)[(DIVERGING_LR, 0.9)]
    assert diverging.diverged == 2
    assert math.isnan(diverging.estimate("test_acc").mean)


def test_a_record_with_infinity_does_not_count(store):
    folder = sweep(store)
    path = folder / f"{ALL_IDS[0]}.json"
    path.write_text(
        path.read_text().replace('"wall_time_s": ', '"wall_time_s": Infinity, "x": ')
    )
    assert store.read(path) is None


def test_two_writers_of_one_record_never_leave_it_corrupt(store):
    """Writers use temporary files of their own, so concurrent writes of one run all
    land whole."""
    folder = store.folder("tiny", TINY)
    store.prepare(folder, [])
    config = ex.experiment("tiny").configs(TINY)[0]
    history = REAL_RUN_ONE(config, True)
    threads = [
        threading.Thread(target=store.write, args=(folder, history, TINY, "tiny"))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [p.name for p in folder.iterdir()] == [f"{run_id(config)}.json"]
    assert store.read(folder / f"{run_id(config)}.json") is not None


def test_two_sweeps_on_one_store_at_once(store):
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(sweep(store))) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2 and files(results[0]) == ALL_IDS
    assert len(store.load("tiny", TINY)) == 4


def test_an_unwritable_store_fails_before_any_training(store, tmp_path, monkeypatch):
    calls = counting(monkeypatch)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ExperimentError, match="cannot write results to"):
        runner.sweep(
            "tiny",
            TINY,
            workers=1,
            progress=False,
            store=Store(blocker / "results"),
            processes=False,
        )
    folder = store.folder("tiny", TINY)
    (folder / f"{ALL_IDS[1]}.json").mkdir(parents=True)
    with pytest.raises(ExperimentError, match="in the way of a record"):
        sweep(store)
    assert calls == []


def test_reading_never_writes(store, tmp_path):
    folder = sweep(store)
    (folder / f"{ALL_IDS[0]}.json").write_text("{broken")
    before = sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir())
    os.chmod(folder, 0o555)
    try:
        with pytest.warns(CorruptRecordWarning, match=ALL_IDS[0]):
            assert len(store.load("tiny", TINY)) == 3
    finally:
        os.chmod(folder, 0o755)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir()) == before


def test_same_seed_same_record():
    """Two real runs of the paper's CNN (dropout included) with one seed: equal
    histories."""
    config = TrainConfig(lr=0.05, momentum=0.9, epochs=2, seed=7, batch_size=32)
    first, second = runner.run_one(config, True), runner.run_one(config, True)
    assert first.pop("wall_time_s") > 0
    second.pop("wall_time_s")
    assert first == second
    assert len(first["train_loss"]) == 2 and not first["diverged"]
    other = runner.run_one(dataclasses.replace(config, seed=8), True)
    assert other["train_loss"] != first["train_loss"]  # the seed does matter


def test_distinct_configs_get_distinct_run_ids():
    a, b = (
        TrainConfig(lr=0.0158679, momentum=0.9),
        TrainConfig(lr=0.01586792, momentum=0.9),
    )
    assert run_id(a) != run_id(b)
    assert (
        run_id(TrainConfig(lr=0.01, momentum=0.9, fold=3, data_fraction=0.5))
        == "lr0.01_m0.9_f3_frac0.5_s0"
    )


def test_every_committed_record_is_strict_json_and_counts(repo_root):
    """The records in results/ parse with a strict JSON parser (no Infinity or NaN) and
    each passes the store's checks: checksum, file name and folder."""
    results = Store(repo_root / "results")
    paths = sorted(results.root.glob("*/*/*.json"))
    assert paths, "no stored records"
    for path in paths:
        json.loads(
            path.read_text(),
            parse_constant=lambda name: pytest.fail(f"{name} in {path}"),
        )
        assert results.read(path) is not None, path
