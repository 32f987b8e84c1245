"""Checks of golden.studies.training: the protocols table and its note on the 50%
subset, the two stored runs (loaded from the records the runner wrote), their table,
figure and every branch of the one-seed verdict."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from factories import make_run
from golden import experiments, report, theory
from golden.report import RecordsMissing
from golden.store import Store
from golden.studies import training

REPO_ROOT = Path(__file__).resolve().parent.parent
BOOK = experiments.PROTOCOLS["book"]


def short(golden_acc, common_acc, diverged=False) -> report.Study:
    runs = (
        make_run(lr, m, 0, test_acc=[0.9, acc], diverged=diverged and i == 1)
        for i, ((lr, m), acc) in enumerate(
            zip(training.PAIRS.values(), (golden_acc, common_acc))
        )
    )
    return report.Study("training", BOOK, tuple(runs))


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


def test_runs_table_names_the_two_pairs_golden_first():
    found = short(0.99, 0.98)
    found = dataclasses.replace(found, runs=found.runs[::-1])  # order of the store
    lines = training.runs_table(found).splitlines()
    assert len(lines) == 4
    assert lines[2].startswith("| golden (η, α) | 0.0158") and "| 0.9900 |" in lines[2]
    assert lines[3].startswith("| common (0.01, 0.9) | 0.01 | 0.9 |")


def test_curves_figure_is_stamped():
    found = short(0.99, 0.98)
    fig = training.curves_figure(found)
    assert len(fig.axes) == 2 and all(len(ax.lines) == 2 for ax in fig.axes)
    assert any(found.stamp("seed 0") in text.get_text() for text in fig.texts)
    assert fig.get_size_inches()[0] <= 8
    plt.close(fig)


def test_the_stored_training_records_load_into_the_study():
    """The records the runner wrote (committed in results/): the golden pair as derived
    and the common pair, seed 0, 5 epochs on the full split, read and never trained."""
    found = training.load(Store(REPO_ROOT / "results"))
    assert found.proto == BOOK and not found.fell_back
    runs = training.named_runs(found)
    assert [run.pair for run in runs.values()] == [
        (theory.ETA, theory.ALPHA),
        experiments.COMMON_PAIR,
    ]
    assert all(run.config.seed == 0 and run.config.epochs == 5 for run in runs.values())
    assert "2 runs of 5 epochs, seeds 0" in found.header()
    assert training.verdict(found).epochs == 5


def test_missing_training_records_name_the_sweep_that_makes_them(tmp_path):
    with pytest.raises(RecordsMissing, match="sweep training --protocol book"):
        report.load("training", store=Store(tmp_path), compute=False)


class GridRuns:
    """A stand-in store: two grid runs under every protocol."""

    def load(self, name, proto):
        return [{}] * 2 if name == "grid" else []


def test_protocols_table_has_a_row_per_protocol():
    lines = training.protocols_table(GridRuns()).split("\n\n")[0].splitlines()
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
