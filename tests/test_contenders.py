"""Checks of golden.studies.contenders: every branch of the 30-epoch verdict on small
synthetic record sets (diverged runs, runs that did not learn, missing folds), pairing
by fold, Holm's correction, the table and the rank figure."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pytest

from golden import report, results, stats
from golden.experiments import COMMON_PAIR, GOLDEN_PAIR
from golden.protocols import protocol
from golden.studies import contenders

OTHER = (0.1, 0.825)


def fold_run(pair, fold, test, val=None, diverged=False, epochs=30) -> dict:
    """A stored run of ``epochs`` epochs, with the last one's accuracies given."""
    config = {
        "lr": pair[0],
        "momentum": pair[1],
        "seed": fold,
        "fold": fold,
        "epochs": epochs,
    }
    if diverged:
        return {
            "config": config,
            "diverged": True,
            "train_loss": [math.inf],
            "val_acc": [],
            "test_acc": [],
        }
    val = test if val is None else val
    return {
        "config": config,
        "diverged": False,
        "train_loss": [0.1] * epochs,
        "val_acc": [0.5] * (epochs - 1) + [val],
        "test_acc": [0.5] * (epochs - 1) + [test],
    }


def grid_run(pair, seed, val) -> dict:
    """A 2-epoch run of the grid: seed ``seed`` on the fixed split (fold -1)."""
    run = fold_run(pair, -1, val, epochs=2)
    run["config"]["seed"] = seed
    return run


def final_rung(runs) -> report.Study:
    """A final rung made of ``runs``."""
    return report.Study("contenders30", protocol("quick"), tuple(results.runs_of(runs)))


def verdict(runs) -> contenders.Verdict:
    return contenders.verdict(final_rung(runs))


def runs_of(scores: dict) -> list[dict]:
    return [
        fold_run(pair, fold, test)
        for pair, tests in scores.items()
        for fold, test in enumerate(tests)
    ]


def test_golden_first():
    found = verdict(
        runs_of(
            {
                GOLDEN_PAIR: [0.992, 0.991, 0.993],
                OTHER: [0.990, 0.990, 0.991],
                COMMON_PAIR: [0.989, 0.990, 0.988],
            }
        )
    )
    assert found.finding == "first" and found.golden_rank == 1 and found.epochs == 30
    assert [c.b for c in found.comparisons] == [COMMON_PAIR, OTHER]
    assert "ranks 1" in found.text() and "claim holds" in found.text()


def test_tied_when_a_pair_is_ahead_within_the_noise():
    found = verdict(
        runs_of(
            {
                GOLDEN_PAIR: [0.990, 0.992, 0.991],
                OTHER: [0.993, 0.990, 0.993],
                COMMON_PAIR: [0.989, 0.990, 0.988],
            }
        )
    )
    assert found.finding == "tied" and found.golden_rank == 2
    ahead = next(c for c in found.comparisons if c.b == OTHER)
    assert (
        ahead.diff.mean == pytest.approx(-0.001)
        and ahead.p_adjusted >= contenders.ALPHA
    )
    text = found.text()
    assert (
        "ranks 2" in text
        and "ahead by 0.0010" in text
        and "shares the first place" in text
    )


def test_beaten_when_a_pair_is_ahead_on_every_fold_beyond_the_correction():
    found = verdict(
        runs_of(
            {
                GOLDEN_PAIR: [0.980, 0.981, 0.982],
                OTHER: [0.990, 0.992, 0.994],
                COMMON_PAIR: [0.979, 0.985, 0.978],
            }
        )
    )
    assert found.finding == "beaten"
    beaten = next(c for c in found.comparisons if c.b == OTHER)
    assert (
        beaten.diff.mean == pytest.approx(-0.011)
        and beaten.p_adjusted < contenders.ALPHA
    )
    assert beaten.p_adjusted == pytest.approx(
        2 * beaten.p_value
    )  # the smaller of 2 p-values
    assert (
        "does **not** hold" in found.text() and contenders.label(OTHER) in found.text()
    )


def test_no_verdict_without_two_golden_folds():
    runs = runs_of({OTHER: [0.99, 0.99, 0.99]}) + [
        fold_run(GOLDEN_PAIR, 0, 0.99),
        fold_run(GOLDEN_PAIR, 1, 0, diverged=True),
    ]
    found = verdict(runs)
    assert found.finding == "no golden" and found.comparisons == []
    assert "no verdict" in found.text()
    assert verdict([]).finding == "no golden"


def test_diverged_unlearned_and_missing_folds_are_paired_by_fold_not_position():
    """OTHER diverged on fold 0 and never learned on fold 2; COMMON has no fold 1. Each
    is compared with the golden pair on the folds both finished, not by position."""
    runs = runs_of({GOLDEN_PAIR: [0.990, 0.980, 0.970, 0.960]})
    runs += [
        fold_run(OTHER, 0, 0, diverged=True),
        fold_run(OTHER, 1, 0.985),
        fold_run(OTHER, 2, 0.098),
        fold_run(OTHER, 3, 0.965),
    ]
    runs += [
        fold_run(COMMON_PAIR, k, t) for k, t in ((0, 0.991), (2, 0.971), (3, 0.961))
    ]
    results = contenders.pair_results(runs)
    assert results[OTHER].diverged == 1 and results[OTHER].unlearned == 1
    assert results[OTHER].values("test_acc") == {1: 0.985, 3: 0.965}
    by_pair = {c.b: c for c in verdict(runs).comparisons}
    assert by_pair[OTHER].replicates == (1, 3) and by_pair[
        OTHER
    ].diff.mean == pytest.approx(-0.005)
    assert by_pair[COMMON_PAIR].replicates == (0, 2, 3) and by_pair[
        COMMON_PAIR
    ].diff.mean == pytest.approx(-0.001)


def test_a_pair_with_one_shared_fold_is_not_compared():
    runs = runs_of({GOLDEN_PAIR: [0.99, 0.98, 0.97]}) + [fold_run(OTHER, 2, 0.999)]
    found = verdict(runs)
    assert (
        found.comparisons == []
        and found.ranking[0].key == OTHER
        and found.finding == "tied"
    )


def test_holm_against_a_hand_computation():
    adjusted = stats.holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.5})
    assert adjusted == pytest.approx({"a": 0.04, "c": 0.09, "b": 0.09, "d": 0.5})
    assert stats.holm({}) == {} and stats.holm({"x": 0.7, "y": 0.6}) == {
        "y": 1.0,
        "x": 1.0,
    }


def test_table_has_a_row_per_pair_with_its_comparison():
    runs = runs_of({GOLDEN_PAIR: [0.992, 0.991, 0.993], OTHER: [0.990, 0.990, 0.991]})
    lines = contenders.table(final_rung(runs)).splitlines()
    assert lines[0].startswith("| rank (test) | rank (validation) | η | α |")
    assert len(lines) == 4 and lines[2].startswith(
        "| 1 | 1 | 0.016 | 0.874 | 0.9920 ± "
    )
    assert lines[2].endswith("| 3 | — | — | — |") and "| +0.0017 ± " in lines[3]
    assert all(len(line) <= 88 for line in lines[2:])


def test_rank_figure_follows_each_pair_through_the_rungs():
    grid = [
        grid_run(pair, s, acc)
        for s in range(3)
        for pair, acc in (
            (GOLDEN_PAIR, 0.97),
            (OTHER, 0.98),
            (COMMON_PAIR, 0.96),
            ((0.001, 0.9), 0.90),
        )
    ]
    rung1 = runs_of(
        {GOLDEN_PAIR: [0.990] * 3, OTHER: [0.985] * 3, COMMON_PAIR: [0.980] * 3}
    )
    rung2 = runs_of({GOLDEN_PAIR: [0.991] * 3, OTHER: [0.993] * 3})
    assert contenders.ranks(contenders.pair_results(rung2)) == {
        OTHER: 1,
        GOLDEN_PAIR: 2,
    }
    fig = contenders.rank_figure(grid, rung1, rung2)
    lines = {tuple(line.get_ydata()) for line in fig.axes[0].lines}
    assert lines == {
        (2, 1, 2),
        (1, 2, 1),
        (3, 3),
    }  # golden, other, common (cut after 10 epochs)
    plt.close(fig)
    assert contenders.missed(grid, [GOLDEN_PAIR, OTHER, COMMON_PAIR]) == (
        (0.001, 0.9),
        4,
        0.90,
    )


def test_missed_text_names_the_slowest_pair_left_out():
    grid = [
        grid_run(pair, s, acc)
        for s in range(2)
        for pair, acc in (
            (GOLDEN_PAIR, 0.97),
            ((0.001, 0.9), 0.90),
            ((0.0001, 0.9), 0.5),
        )
    ]
    rung1 = tuple(results.runs_of(runs_of({GOLDEN_PAIR: [0.99] * 3})))
    halving = contenders.Halving(
        "contenders30",
        protocol("quick"),
        (),
        rung1=rung1,
        grid=tuple(results.runs_of(grid)),
    )
    text = contenders.missed_text(halving)
    assert (
        "η=0.0001, α=0.9, rank 3 of 3 after 2 epochs (mean validation accuracy 0.5000)"
        in text
    )
    assert "with 3 folds instead of ten" in text


def test_the_header_names_both_rungs_within_the_page_width():
    rung1 = runs_of({GOLDEN_PAIR: [0.99] * 3, OTHER: [0.98] * 3})
    rung2 = runs_of({GOLDEN_PAIR: [0.99] * 3, COMMON_PAIR: [0.99] * 3})
    text = contenders.header(protocol("book"), rung1, rung2)
    assert "rung 1: 2 pairs" in text and "rung 2: 2 pairs" in text
    assert all(len(line) <= 88 for line in text.splitlines())


# --- ties ----------------------------------------------------------------------------


def test_tied_ranks_share_a_rank_and_skip_the_next():
    assert results.tied_ranks({"a": 0.99, "b": 0.98, "c": 0.99, "d": 0.97}) == {
        "a": 1,
        "c": 1,
        "b": 3,
        "d": 4,
    }
    # means of three accuracies that tie exactly can differ in their last bit
    a, b = (0.9924 + 0.9929 + 0.9936) / 3, (0.9926 + 0.9924 + 0.9939) / 3
    assert a != b and results.tied_ranks({"a": a, "b": b}) == {"a": 1, "b": 1}
    assert results.tied_ranks({}) == {}


def test_pairs_tied_ahead_of_golden_are_named_together_and_share_the_first_rank():
    runs = runs_of(
        {
            GOLDEN_PAIR: [0.9927, 0.9927, 0.9930],
            (0.016, 0.925): [0.9924, 0.9929, 0.9936],
            COMMON_PAIR: [0.9926, 0.9924, 0.9939],
            OTHER: [0.9892, 0.9887, 0.9912],
        }
    )
    found = verdict(runs)
    assert found.finding == "tied" and found.golden_rank == 3
    assert found.ranks == {COMMON_PAIR: 1, (0.016, 0.925): 1, GOLDEN_PAIR: 3, OTHER: 4}
    assert [g.key for g in found.ranking][:2] == [COMMON_PAIR, (0.016, 0.925)]
    text = found.text()
    assert (
        f"{contenders.label(COMMON_PAIR)} and {contenders.label((0.016, 0.925))}, "
        "tied at rank 1 with equal means, are ahead of it by 0.0002 ± " in text
    )
    assert "respectively (paired by fold, p = " in text and " and " in text
    lines = contenders.table(final_rung(runs)).splitlines()
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| 1", "| 1", "| 3", "| 4"]


def test_golden_tied_for_first_is_first_and_says_with_whom():
    found = verdict(
        runs_of(
            {
                GOLDEN_PAIR: [0.9927, 0.9927, 0.9930],
                COMMON_PAIR: [0.9930, 0.9927, 0.9927],
                OTHER: [0.9892, 0.9887, 0.9912],
            }
        )
    )
    assert found.finding == "first" and found.golden_rank == 1
    assert found.tied_with_golden == [COMMON_PAIR] and not found.ahead
    text = found.text()
    assert (
        "ranks 1 of 3 by mean test accuracy, tied with "
        f"{contenders.label(COMMON_PAIR)}" in text
    )
    assert "(equal means share a rank)" in text and "claim holds" in text


def test_golden_tied_below_the_top_is_tied_with_that_pair():
    found = verdict(
        runs_of(
            {
                GOLDEN_PAIR: [0.990, 0.991, 0.992],
                COMMON_PAIR: [0.992, 0.991, 0.990],
                OTHER: [0.995, 0.996, 0.997],
            }
        )
    )
    assert found.golden_rank == 2 and found.tied_with_golden == [COMMON_PAIR]
    assert [c.b for c in found.ahead] == [OTHER]
    assert f"{contenders.label(OTHER)} is ahead by 0.0050" in found.text()


def test_validation_ranks_in_the_table_are_the_figures_and_can_differ_from_test():
    runs = [
        fold_run(GOLDEN_PAIR, k, test, val)
        for k, (test, val) in enumerate([(0.990, 0.995)] * 3)
    ] + [fold_run(OTHER, k, 0.993, 0.991) for k in range(3)]
    lines = contenders.table(final_rung(runs)).splitlines()
    assert lines[2].startswith("| 1 | 2 | 0.1 | 0.825 |")
    assert lines[3].startswith("| 2 | 1 | 0.016 | 0.874 |")
    fig = contenders.rank_figure(
        [grid_run(pair, s, 0.9) for s in range(2) for pair in (GOLDEN_PAIR, OTHER)],
        runs,
        runs,
    )
    assert fig.axes[0].get_title() == contenders.RANK_TITLE
    assert "validation" in contenders.RANK_TITLE and "test" in contenders.RANK_TITLE
    plt.close(fig)


# --- compute -------------------------------------------------------------------------


def timed(run: dict, seconds: float) -> dict:
    return {**run, "wall_time_s": seconds}


def test_rung_hours_count_a_promoted_runs_first_epochs_once():
    rung1 = [
        timed(fold_run(p, k, 0.99, epochs=10), 600.0)
        for p in (GOLDEN_PAIR, OTHER)
        for k in range(3)
    ]
    rung2 = [timed(fold_run(GOLDEN_PAIR, k, 0.99), 1800.0) for k in range(3)]
    # golden's 30-epoch times include its 10-epoch part; OTHER was not promoted
    assert contenders.rung_hours(rung1, rung2) == pytest.approx(
        (3 * 1800 + 3 * 600) / 3600
    )
    assert contenders.rung_hours(rung1, []) == pytest.approx(6 * 600 / 3600)
    text = contenders.header(protocol("book"), rung1, rung2)
    assert "compute: 2.0 core-hours, each epoch counted once" in text


def test_seconds_per_epoch_and_the_full_grid_cost():
    grid = [timed(grid_run(GOLDEN_PAIR, s, 0.9), 40.0) for s in range(3)]  # 20 s/epoch
    rung = [timed(fold_run(OTHER, k, 0.99, epochs=10), 500.0) for k in range(2)]
    assert contenders.seconds_per_epoch(grid) == pytest.approx(20.0)
    with pytest.raises(ValueError, match="no trained epoch"):
        contenders.seconds_per_epoch([])
    cost = contenders.full_grid_cost({"grid": grid, "rung": rung}, protocol("book"))
    assert (cost.runs, cost.epochs) == (600, 600 * 30)
    assert cost.low == pytest.approx(18_000 * 20 / 3600)
    assert cost.high == pytest.approx(18_000 * 50 / 3600)
    lines = cost.text().splitlines()
    assert lines[0] == "the full grid of protocol 'paper': 600 runs, 18,000 epochs"
    assert (
        lines[1]
        == "  at 20.0 s an epoch (mean of the stored grid runs): 100 core-hours"
    )
    assert lines[-1] == "  estimate: 100 to 250 core-hours on this machine"
    assert all(len(line) <= 88 for line in lines)


def test_no_full_grid_estimate_from_runs_on_smaller_data():
    grid = [timed(grid_run(GOLDEN_PAIR, s, 0.9), 4.0) for s in range(2)]
    cost = contenders.full_grid_cost({"grid": grid}, protocol("quick"))
    assert cost.timed_on == "quick"
    assert cost.text().splitlines()[-1] == (
        "  timed on protocol 'quick', whose data are smaller: no estimate"
    )
