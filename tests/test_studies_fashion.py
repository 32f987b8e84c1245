"""Checks of golden.studies.fashion on synthetic runs: every branch of the verdict, the
stages it rests on, the transfer of the landscape (correlation, its interval and its
strength), the regions, the tables and figures, and that Fashion-MNIST is named."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pytest

from factories import make_run
from golden import report
from golden.experiments import COMMON_PAIR, GOLDEN_PAIR, protocol
from golden.studies import fashion

PAIRS = [(0.001, 0.0), (0.01, 0.6), (0.1, 0.8), COMMON_PAIR, GOLDEN_PAIR, (0.2, 0.9)]


def grid_study(scores: dict, dataset: str = "fashion-mnist") -> report.Study:
    """A 'grid' study whose pair p has seed k's final test accuracy scores[p][k]."""
    runs = [
        make_run(p[0], p[1], k, test_acc=acc, dataset=dataset)
        for p, accs in scores.items()
        for k, acc in enumerate(accs)
    ]
    return report.Study("grid", protocol("quick", dataset), tuple(runs))


def rung_study(scores: dict, epochs: int = 10) -> report.Study:
    """A 'contenders10' study on folds 0-2 (paired by fold)."""
    runs = [
        make_run(p[0], p[1], k, test_acc=acc, folds=True, epochs=epochs)
        for p, accs in scores.items()
        for k, acc in enumerate(accs)
    ]
    return report.Study("contenders10", protocol("quick", "fashion-mnist"), tuple(runs))


def fashion_study(stages: list[report.Study], mnist: report.Study) -> fashion.Fashion:
    """The Fashion-MNIST study whose grid is ``stages[0]``, compared with ``mnist``."""
    return stages[0].extended(fashion.Fashion, stages=tuple(stages), mnist=mnist)


def verdict(stages: list[report.Study], mnist: report.Study) -> fashion.Verdict:
    return fashion.verdict(fashion_study(stages, mnist))


def spread(base: float) -> list[float]:
    return [base, base + 0.002, base - 0.001]


# accuracies that rise along PAIRS on both data sets: the landscape transfers
MNIST = grid_study({p: spread(0.90 + 0.01 * i) for i, p in enumerate(PAIRS)}, "mnist")
FASHION = grid_study({p: spread(0.80 + 0.01 * i) for i, p in enumerate(PAIRS)})


def test_holds_when_no_pair_beats_the_golden_pair_at_the_longest_stage():
    rung = rung_study(
        {GOLDEN_PAIR: [0.91, 0.913, 0.909], COMMON_PAIR: [0.912, 0.909, 0.912]}
    )
    found = verdict([FASHION, rung], MNIST)
    assert found.finding == "holds"
    last = found.stages[-1]
    assert (last.epochs, last.pairs, last.beaten_by, last.tested) == (10, 2, 0, 1)
    text = found.text()
    assert "after 10 epochs" in text and "1 pair(s) have a higher mean" in text
    assert "none of the 1 pairs" in text and "not shown to be best" in text
    assert "Earlier stages: after 1 epoch rank 2 of 6" in text


def test_holds_and_first_when_no_pair_has_a_higher_mean():
    rung = rung_study(
        {GOLDEN_PAIR: [0.92, 0.915, 0.918], COMMON_PAIR: [0.912, 0.909, 0.912]}
    )
    found = verdict([FASHION, rung], MNIST)
    assert found.finding == "holds" and found.stages[-1].rank == 1
    assert "No pair has a higher mean" in found.text()
    assert "not shown to be best" not in found.text()


def test_beaten_when_a_pair_is_ahead_after_holm_at_the_longest_stage():
    rung = rung_study(
        {
            GOLDEN_PAIR: [0.880, 0.890, 0.885],
            COMMON_PAIR: [0.900, 0.9101, 0.9052],
            (0.1, 0.8): [0.882, 0.889, 0.886],
        }
    )
    found = verdict([FASHION, rung], MNIST)
    assert found.finding == "beaten"
    assert found.stages[-1].beaten_by == 1 and found.stages[-1].tested == 2
    assert "does **not** hold on this data set" in found.text()


def test_no_golden_when_it_has_no_learned_runs():
    rung = rung_study({GOLDEN_PAIR: [0.1, 0.1, 0.1], COMMON_PAIR: [0.9, 0.91, 0.92]})
    found = verdict([FASHION, rung], MNIST)
    assert found.finding == "no golden" and found.stages[-1].rank is None
    assert "no verdict" in found.text()


def test_the_grid_alone_is_a_stage_of_its_own():
    found = verdict([FASHION], MNIST)
    assert [s.epochs for s in found.stages] == [1]
    assert found.stages[0].rank == 2 and found.stages[0].tested == 5
    assert "Earlier stages" not in found.text()


def test_a_transfer_along_the_same_order_is_strong():
    found = fashion.transfer(MNIST, FASHION)
    assert found.pairs == len(PAIRS) and found.rho == pytest.approx(1.0)
    assert found.strength == "strong"
    mnist, fash = found.regions
    assert (mnist.title, fash.title) == ("MNIST", "Fashion-MNIST")
    assert mnist.best == fash.best == (0.2, 0.9)
    assert "stays where it was" in found.text()


def test_a_reversed_landscape_is_no_transfer_and_the_best_pair_moves():
    reversed_ = grid_study({p: spread(0.85 - 0.01 * i) for i, p in enumerate(PAIRS)})
    found = fashion.transfer(MNIST, reversed_)
    assert found.rho == pytest.approx(-1.0) and found.strength != "strong"
    assert f"moves from {report.pair_label((0.2, 0.9))}" in found.text()


@pytest.mark.parametrize(
    "low, high, strength",
    [(0.75, 0.95, "strong"), (-0.2, 0.4, "none shown"), (0.2, 0.8, "moderate")],
)
def test_strength_is_judged_by_the_interval(low, high, strength):
    found = fashion.Transfer(60, (low + high) / 2, low, high, 0.01, ())
    assert found.strength == strength


def test_spearman_interval_contains_rho_and_narrows_with_more_pairs():
    wide, narrow = (fashion.spearman_interval(0.6, n) for n in (10, 60))
    assert wide[0] < narrow[0] < 0.6 < narrow[1] < wide[1]
    assert fashion.spearman_interval(1.0, 60) == (1.0, 1.0)
    assert fashion.spearman_interval(0.5, 3) == (0.5, 0.5)


def test_region_medians_and_the_golden_rank():
    found = fashion.region(FASHION, top=2)
    assert found.best == (0.2, 0.9) and found.golden_rank == 2 and found.pairs == 6
    assert found.median_lr == pytest.approx((0.2 + GOLDEN_PAIR[0]) / 2)
    assert found.median_momentum == pytest.approx((0.9 + GOLDEN_PAIR[1]) / 2)
    steps = [0.2 / 0.1, GOLDEN_PAIR[0] / (1 - GOLDEN_PAIR[1])]
    assert found.median_step == pytest.approx(sum(steps) / 2)


def test_tables_name_both_data_sets_and_every_stage():
    study = fashion_study([FASHION], MNIST)
    regions = fashion.regions_table(study)
    assert "| MNIST |" in regions and "| Fashion-MNIST |" in regions
    stages = fashion.stages_table(study)
    assert stages.count("\n") == 2 and "seeds 0-2" in stages


def test_figures_are_stamped_with_the_data_set():
    fig = fashion.transfer_figure(fashion_study([FASHION], MNIST))
    stamp = " ".join(t.get_text() for t in fig.texts)
    assert "grid on Fashion-MNIST" in stamp and "against grid on MNIST" in stamp
    plt.close(fig)
    rung = rung_study({GOLDEN_PAIR: spread(0.9), COMMON_PAIR: spread(0.89)})
    grid = grid_study({GOLDEN_PAIR: spread(0.8), COMMON_PAIR: spread(0.81)})
    fig = fashion.ranks_figure(fashion_study([grid, rung], MNIST))
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["1 epoch", "10 epochs"]
    assert "contenders10 on Fashion-MNIST" in " ".join(t.get_text() for t in fig.texts)
    plt.close(fig)


def test_with_the_grid_alone_the_ranks_figure_names_the_command():
    fig = fashion.ranks_figure(fashion_study([FASHION], MNIST))
    (text,) = fig.axes[0].texts
    assert "python -m golden sweep contenders --protocol quick" in text.get_text()
    assert "--dataset fashion-mnist" in text.get_text()
    plt.close(fig)


def test_mean_accuracies_leave_out_pairs_that_did_not_learn():
    study = grid_study({GOLDEN_PAIR: spread(0.9), (0.2, 0.9): [0.1, 0.1, 0.1]})
    assert set(fashion.mean_accuracies(study)) == {GOLDEN_PAIR}
    assert math.isclose(fashion.mean_accuracies(study)[GOLDEN_PAIR], 0.9 + 0.001 / 3)


def test_a_rung_under_another_protocol_is_never_mixed_in(monkeypatch):
    book = report.Study("grid", protocol("book", "fashion-mnist"), FASHION.runs)
    quick_rung = rung_study({GOLDEN_PAIR: spread(0.9)})
    monkeypatch.setattr(fashion.report, "load", lambda *args, **kwargs: quick_rung)
    assert fashion.load_stages(book) == [book]


def test_the_stages_of_a_grid_that_fell_back_say_so(monkeypatch):
    """Rungs read under the grid's quick fallback show that fallback too (the ledger
    lists the studies that fell back from the longest stage)."""
    fell_back = report.Study("grid", FASHION.proto, FASHION.runs, fell_back=True)
    rung = rung_study({GOLDEN_PAIR: spread(0.9)})
    monkeypatch.setattr(fashion.report, "load", lambda *args, **kwargs: rung)
    monkeypatch.setattr(fashion.report, "complete_runs", lambda *args: None)
    stages = fashion.load_stages(fell_back)
    assert [stage.experiment for stage in stages] == ["grid", "contenders10"]
    assert all(stage.fell_back for stage in stages)
    assert stages[1].runs == rung.runs
