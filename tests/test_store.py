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
from factories import TINY_DATA
from golden.experiments import Experiment, ExperimentError, Protocol
from golden.results import group
from golden.store import (
    MAX_RECORD_BYTES,
    CorruptRecordWarning,
    Store,
    _checksum,
    run_id,
)
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
TINY_EXPERIMENT = Experiment(
    "tiny", lambda proto, store: ex.as_variants(PAIRS), lambda p: p.epochs
)


@pytest.fixture
def store(tmp_path, monkeypatch) -> Store:
    """Runs on synthetic data; a store under tmp_path."""
    monkeypatch.setattr(runner, "splits", lambda *args: TINY_DATA)
    threads = torch.get_num_threads()  # run_one sets one thread per run
    yield Store(tmp_path / "results")
    torch.set_num_threads(threads)


def counting(monkeypatch) -> list[TrainConfig]:
    CALLS.clear()
    monkeypatch.setattr(runner, "run_one", counting_run_one)
    return CALLS


def sweep(store: Store, experiment: Experiment | None = None) -> Path:
    """The tiny experiment (or ``experiment``) swept into ``store`` in this process."""
    return runner.sweep(
        experiment or TINY_EXPERIMENT,
        TINY,
        store,
        workers=1,
        progress=False,
        processes=False,
    )


def ids(configs) -> list[str]:
    return sorted(run_id(config) for config in configs)


ALL_IDS = ids(TINY_EXPERIMENT.configs(TINY))


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
            TINY_EXPERIMENT,
            TINY,
            InterruptedStore(store.root, interrupt_at=3),
            workers=1,
            progress=False,
            processes=False,
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
    configs = TINY_EXPERIMENT.configs(TINY)
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
    diverging = Experiment(
        "tiny", lambda proto, store: ex.as_variants(pairs), lambda p: p.epochs
    )
    folder = sweep(store, diverging)
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
    config = TINY_EXPERIMENT.configs(TINY)[0]
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
            TINY_EXPERIMENT,
            TINY,
            Store(blocker / "results"),
            workers=1,
            progress=False,
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


# ------------------------------------------------- what a reader refuses, and says so


def made_up_records(store: Store) -> Path:
    """The tiny experiment's four records, with made-up histories (nothing trained)."""
    folder = store.folder("tiny", TINY)
    store.prepare(folder, [])
    for config in TINY_EXPERIMENT.configs(TINY):
        history = {
            "config": dataclasses.asdict(config),
            "train_loss": [0.9],
            "val_acc": [0.5],
            "test_acc": [0.5],
            "val_confusion": [[[1, 0], [0, 1]]],
            "lr": [config.lr],
            "probes": {},
            "diverged": False,
            "wall_time_s": 1.0,
        }
        store.write(folder, history, TINY, "tiny")
    return folder


def snapshot(folder: Path) -> list[tuple[str, int]]:
    """Names and modification times, read without opening anything."""
    return sorted((p.name, p.lstat().st_mtime_ns) for p in folder.iterdir())


def assert_named_and_skipped(store: Store, path: Path, reason: str) -> None:
    """``path`` does not count: read says so, load names it with ``reason`` and counts
    the other three, nothing in the folder changes, and a sweep would rerun it."""
    before = snapshot(path.parent)
    assert store.read(path) is None
    with pytest.warns(CorruptRecordWarning) as warned:
        assert len(store.load("tiny", TINY)) == 3
    named = [str(w.message) for w in warned if w.category is CorruptRecordWarning]
    assert named == [f"ignored {path}: {reason}"]
    assert snapshot(path.parent) == before
    configs = TINY_EXPERIMENT.configs(TINY)
    assert [run_id(c) for c in store.pending(configs, path.parent)] == [path.stem]


def fifo(path: Path) -> None:
    os.mkfifo(path)


def endless(path: Path) -> None:
    path.symlink_to("/dev/zero")


def huge(path: Path) -> None:
    with path.open("wb") as sparse:
        sparse.truncate(MAX_RECORD_BYTES + 1)


@pytest.mark.parametrize(
    "make, reason",
    [
        (fifo, "not a regular file"),  # reading it would wait for a writer for ever
        (endless, "not a regular file"),  # reading it would fill the memory
        (Path.mkdir, "not a regular file"),
        (
            huge,
            f"{MAX_RECORD_BYTES + 1:,} bytes, over the limit of {MAX_RECORD_BYTES:,}",
        ),
    ],
    ids=["fifo", "link to /dev/zero", "folder", "over 16 MiB"],
)
def test_a_file_that_cannot_be_a_record_is_named_and_never_read(store, make, reason):
    path = made_up_records(store) / f"{ALL_IDS[1]}.json"
    path.unlink()
    make(path)
    assert_named_and_skipped(store, path, reason)


def without(name: str):
    return lambda run: run.pop(name)


def setting(name: str, value):
    return lambda run: run.__setitem__(name, value)


def one_value_short(name: str):
    return lambda run: run[name].pop()


# id: (change to the run, the field named)
MISTYPED = {
    "no train_loss": (without("train_loss"), "train_loss"),
    "no diverged": (without("diverged"), "diverged"),
    "no wall_time_s": (without("wall_time_s"), "wall_time_s"),
    "train_loss a string": (setting("train_loss", "0.9"), "train_loss"),
    "val_acc with a string": (setting("val_acc", [0.5, "x"]), "val_acc"),
    "test_acc null": (setting("test_acc", None), "test_acc"),
    "diverged a string": (setting("diverged", "no"), "diverged"),
    "wall_time_s a list": (setting("wall_time_s", [1.0]), "wall_time_s"),
    "lr a boolean": (setting("lr", [True]), "lr"),
    "a count of 1.5": (setting("val_confusion", [[[1.5]]]), "val_confusion"),
    "a probe a string": (setting("probes", {"sharpness": ["big"]}), "probes"),
}


@pytest.mark.parametrize("change, field", MISTYPED.values(), ids=MISTYPED.keys())
def test_a_record_with_a_field_missing_or_mistyped_does_not_count(store, change, field):
    """With its checksum made to hold again, so that only the fields can tell: every
    reader (sweeps, studies, figures) gets records through this one check."""
    path = made_up_records(store) / f"{ALL_IDS[1]}.json"
    rewrite(path, change)
    assert_named_and_skipped(store, path, f"its field {field!r} is missing or mistyped")


UNFIT = {
    "one accuracy short": one_value_short("val_acc"),
    "one learning rate short": one_value_short("lr"),
    "no epoch": setting("train_loss", []),
    "two epochs": setting("train_loss", [0.9, 0.8]),
    # a diverged run has no evaluation of the epoch it diverged in
    "diverged, evaluated": setting("diverged", True),
}


@pytest.mark.parametrize("change", UNFIT.values(), ids=UNFIT.keys())
def test_a_record_whose_history_does_not_fit_its_epochs_does_not_count(store, change):
    path = made_up_records(store) / f"{ALL_IDS[1]}.json"
    rewrite(path, change)
    assert_named_and_skipped(store, path, "its history does not fit epochs=1")


def rewrite(path: Path, change) -> None:
    """Apply ``change`` to a record's run and make its checksum hold again."""
    record = json.loads(path.read_text())
    change(record["run"])
    del record["checksum"]
    path.write_text(json.dumps({**record, "checksum": _checksum(record)}))


def test_only_the_store_reads_records(repo_root):
    """Studies, figures and sweeps get records through Store.load and Store.read (the
    one place that decides what counts): no other module of golden parses JSON."""
    readers = sorted(
        path.relative_to(repo_root).as_posix()
        for path in (repo_root / "golden").rglob("*.py")
        if "json.load" in path.read_text()
    )
    assert readers == ["golden/store.py"]
