"""Checks of golden.report: the header says what the runs ran, the tables are Markdown,
the labels name the book's pairs, a study extends into a kind of study, and loading
decides between stored records, the quick fallback and an error naming the sweep,
training only when it may."""

from __future__ import annotations

import dataclasses

import pytest

from factories import make_run, store_made_up_records
from golden import experiments, report
from golden.protocols import protocol
from golden.store import Store


def test_the_header_reads_the_runs_not_the_protocol_defaults():
    runs = [
        make_run(
            replicate=k,
            epochs=5,
            optimizer=o,
            lr=1e-3 if o == "adam" else 0.016,
            momentum=0.0 if o == "adam" else 0.874,
        )
        for k in range(3)
        for o in ("sgd", "adam")
    ]
    text = report.header("noise", protocol("book"), runs)
    assert "18" not in text and "6 runs of 5 epochs, seeds 0-2" in text
    assert "SGD with momentum, Adam" in text and "2 epochs" not in text
    assert all(len(line) <= 88 for line in text.splitlines())


def test_the_header_counts_how_runs_ended_and_names_folds():
    runs = [make_run(replicate=k, folds=True) for k in (0, 1, 2)]
    runs += [
        make_run(replicate=3, folds=True, diverged=True),
        make_run(replicate=4, folds=True, test_acc=0.1),
    ]
    text = report.header("contenders30", protocol("book"), runs)
    assert "folds 0-4 of a stratified 10-fold split" in text
    assert "1 diverged, 1 at chance accuracy" in text


def test_a_table_is_markdown_and_refuses_a_ragged_row():
    table = report.table(["pair", "acc"], [["a|b", 0.5]])
    assert table.splitlines() == ["| pair | acc |", "|---|---|", "| a\\|b | 0.5 |"]
    with pytest.raises(ValueError, match="2 columns"):
        report.table(["pair", "acc"], [[1]])


def test_pair_labels_name_the_golden_and_the_common_pair():
    assert report.pair_label(experiments.GOLDEN_PAIR).endswith("(golden)")
    assert report.pair_label(experiments.COMMON_PAIR) == "η=0.01, α=0.9 (common)"
    assert report.pair_label((0.1, 0.8)) == "η=0.1, α=0.8"


def test_the_results_note_warns_when_it_fell_back_to_quick():
    assert "{warning}" in report.results_note(protocol("quick"), True)
    assert "b17398cc" in report.results_note(protocol("book"), False)


def test_a_study_stamps_its_experiment_and_protocol():
    study = report.Study("grid", protocol("book"), (make_run(epochs=2),))
    assert study.stamp("95% bands") == "grid, protocol book [b17398cc], 95% bands"
    assert study.epochs == 2 and study.replicates == [0] and not study.cross_validated


def test_one_epoch_is_singular():
    text = report.header("breakeven", protocol("book"), [make_run(epochs=1)])
    assert "  1 run of 1 epoch, seeds 0" in text


def store_with_quick_training(root) -> Store:
    """A store holding the training experiment's quick records (made up) alone."""
    quick = protocol("quick")
    configs = experiments.experiment("training").configs(quick)
    return store_made_up_records(Store(root), "training", configs, quick)


def refuse_to_train(*args, **kwargs):
    raise AssertionError("loading that may not train started a sweep")


def test_reading_only_takes_quick_records_in_quick_mode_alone(tmp_path, monkeypatch):
    """Without the book's records, what may only be read shows the quick records in
    quick mode, and in full mode names the sweep that makes the book's; never trains."""
    monkeypatch.setattr("golden.runner.sweep", refuse_to_train)
    store = store_with_quick_training(tmp_path)
    monkeypatch.setenv("GOLDEN_QUICK", "1")
    study = report.load("training", store=store, compute=False)
    assert study.fell_back and study.proto == protocol("quick") and study.store is store
    monkeypatch.setenv("GOLDEN_QUICK", "0")
    with pytest.raises(report.RecordsMissing) as missing:
        report.load("training", store=store, compute=False)
    assert str(missing.value) == (
        f"the records of training are not stored in {tmp_path}: compute them with "
        "python -m golden sweep training --protocol book"
    )
    assert study == report.load("training", store=store)  # a chapter reads them


def test_stored_only_is_the_store_and_the_rule_of_the_loads_within(
    tmp_path, monkeypatch
):
    """Within stored_only(store), a load with no arguments reads that store and trains
    nothing; after it, loads train again (the quick fallback of a chapter)."""
    monkeypatch.setattr("golden.runner.sweep", refuse_to_train)
    empty = Store(tmp_path / "empty")
    with report.stored_only(empty):
        with pytest.raises(report.RecordsMissing, match="contenders10 --protocol book"):
            report.load("contenders30")
    assert report.SOURCE.get() == report.Source()
    with pytest.raises(AssertionError, match="started a sweep"):
        report.load("training", store=empty)


def test_a_study_extends_into_a_kind_of_study_that_keeps_what_it_read():
    @dataclasses.dataclass(frozen=True)
    class WithRung(report.Study):
        rung: tuple = ()

    runs = (make_run(0.016, 0.874, 0),)
    study = report.Study("grid", protocol("quick"), runs, fell_back=True)
    extended = study.extended(WithRung, rung=runs)
    assert isinstance(extended, WithRung) and extended.rung == runs
    assert (extended.runs, extended.fell_back) == (runs, True)
    assert extended.stamp() == study.stamp() and extended.header() == study.header()
