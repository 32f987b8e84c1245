"""Checks of golden.studies.training: the protocols table and its note on the 50%
subset, the two short runs (trained through a stand-in), their table, figure and every
branch of the one-seed verdict."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pytest

from factories import make_run
from golden import experiments
from golden.studies import training
from golden.train import History


def short(golden_acc, common_acc, diverged=False) -> training.ShortTraining:
    runs = {
        name: make_run(lr, m, 0, test_acc=[0.9, acc], diverged=diverged and i == 1)
        for i, ((name, (lr, m)), acc) in enumerate(
            zip(training.PAIRS.items(), (golden_acc, common_acc))
        )
    }
    return training.ShortTraining(runs, 54_000, 10_000)


@pytest.mark.parametrize(
    "golden, common, finding, words",
    [
        (
            0.99,
            0.98,
            "golden ahead",
            "the golden pair ends ahead in test accuracy by 0.0100",
        ),
        (
            0.97,
            0.98,
            "common ahead",
            "the common pair ends ahead in test accuracy by 0.0100",
        ),
        (0.98, 0.98, "equal", "both runs reach the same test accuracy, 0.9800"),
    ],
)
def test_verdict_branches(golden, common, finding, words):
    found = training.verdict(short(golden, common))
    assert found.finding == finding and found.epochs == 2
    assert words in found.text() and "One seed says little" in found.text()


def test_verdict_when_a_run_diverged():
    found = training.verdict(short(0.99, 0.98, diverged=True))
    assert found.finding == "diverged" and math.isnan(found.common)
    assert "cannot be compared" in found.text()


def test_runs_table_and_protocol_line():
    found = short(0.99, 0.98)
    lines = training.runs_table(found).splitlines()
    assert len(lines) == 4
    assert lines[2].startswith("| golden (η, α) | 0.0158") and "| 0.9900 |" in lines[2]
    assert lines[3].startswith("| common (0.01, 0.9) | 0.01 | 0.9 |")
    line = found.protocol()
    assert "54,000 training images, 2 epoch(s)" in line and len(line) <= 88


def test_curves_figure_is_stamped():
    found = short(0.99, 0.98)
    fig = training.curves_figure(found)
    assert len(fig.axes) == 2 and all(len(ax.lines) == 2 for ax in fig.axes)
    assert any(found.protocol() in text.get_text() for text in fig.texts)
    assert fig.get_size_inches()[0] <= 8
    plt.close(fig)


def test_short_training_trains_both_pairs_from_one_seed(monkeypatch):
    seen = []

    def fake_train(config, data, progress=None):
        seen.append(config)
        acc = [0.9] * config.epochs
        return History(config, [0.1] * config.epochs, acc, acc, lr=[config.lr])

    class Data:
        train, test = range(100), range(30)

    monkeypatch.setattr(training, "train", fake_train)
    found = training.short_training(Data(), epochs=3)
    assert [(c.lr, c.momentum) for c in seen] == list(training.PAIRS.values())
    assert {(c.seed, c.epochs) for c in seen} == {(training.SEED, 3)}
    assert found.epochs == 3 and (found.train_images, found.test_images) == (100, 30)


def test_protocols_table_has_a_row_per_protocol(monkeypatch):
    monkeypatch.setattr(experiments, "load_records", lambda name, proto: [{}] * 2)
    lines = training.protocols_table().split("\n\n")[0].splitlines()
    assert len(lines) == 2 + len(experiments.PROTOCOLS)
    book = next(line for line in lines if line.startswith("| `book` |"))
    assert book.endswith("| all | 2 |")


def test_subset_note_branches():
    assert "No protocol trains on the 50% subset" in training.subset_note({})
    assert (
        "Grid runs on the 50% subset are stored (paper_half)"
        in training.subset_note({"paper_half": 600})
    )
    note = training.subset_note({"paper_half": 0})
    assert "no grid runs of it are stored" in note
    assert "--protocol paper_half" in note
