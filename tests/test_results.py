"""Checks of golden.results: how runs end, pairing by replicate, Holm families, one
group against the rest, estimates, the comparison format and older records."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from factories import make_run
from golden import results, stats


def test_a_run_ends_learned_diverged_or_unlearned():
    assert make_run(test_acc=0.98).status == "learned"
    assert make_run(diverged=True).status == "diverged"
    assert make_run(test_acc=0.11).status == "unlearned"  # finite loss, chance accuracy


def test_only_learned_runs_enter_a_mean_and_the_others_are_counted():
    runs = [
        make_run(replicate=0, test_acc=0.98),
        make_run(replicate=1, test_acc=0.96),
        make_run(replicate=2, diverged=True),
        make_run(replicate=3, test_acc=0.1),
    ]
    group = results.group(runs)[(0.016, 0.874)]
    assert group.values("test_acc") == {0: 0.98, 1: 0.96}
    assert (group.diverged, group.unlearned) == (1, 1)
    assert group.estimate("test_acc").mean == pytest.approx(0.97)
    assert group.replicates == [0, 1, 2, 3]


def test_comparisons_pair_by_replicate_never_by_position():
    # seed 0 of a diverged: a positional pairing would put b's seed 1 beside a's seed 0
    a = {0: 0.90, 1: 0.91, 2: 0.92}
    b = {1: 0.91, 2: 0.92}
    comparison = results.compare(a, b)
    assert comparison.replicates == (1, 2)
    assert comparison.diff.mean == 0.0 and comparison.p_value == 1.0


def test_a_comparison_needs_two_shared_replicates():
    assert results.compare({0: 0.9, 1: 0.8}, {1: 0.7, 2: 0.6}) is None


def test_a_family_is_holm_adjusted_together_and_drops_missing_comparisons():
    c1 = results.compare({0: 0.90, 1: 0.92, 2: 0.94}, {0: 0.80, 1: 0.83, 2: 0.85})
    c2 = results.compare({0: 0.90, 1: 0.91, 2: 0.95}, {0: 0.90, 1: 0.92, 2: 0.93})
    tested = results.family([c1, None, c2])
    expected = stats.holm({0: c1.p_value, 1: c2.p_value})
    assert [c.p_adjusted for c in tested] == [expected[0], expected[1]]
    assert tested[0].direction == 1 and tested[1].direction == 0


def test_direction_reads_the_adjusted_p_value():
    difference = results.Estimate(-0.01, 0.002, 3)
    raw_only = results.Comparison("a", "b", (0, 1, 2), difference, 0.01)
    adjusted = results.Comparison("a", "b", (0, 1, 2), difference, 0.01, 0.2)
    assert raw_only.direction == -1 and adjusted.direction == 0


def test_estimates_format_with_their_interval_or_alone():
    assert format(results.Estimate.of([0.9, 0.92]), ".3f").startswith("0.910 ± ")
    assert format(results.Estimate.of([0.9]), ".3f") == "0.900"
    assert format(results.Estimate.of([]), ".3f") == "n/a"


def test_a_comparison_prints_one_way_and_reads_the_other_way_round():
    difference = results.Estimate(-0.0123, 0.00456, 3)
    c = results.Comparison("a", "b", (0, 1, 2), difference, 0.0123, 0.0456)
    assert f"{c}" == "-0.0123 ± 0.0046"
    assert (
        f"{c.flipped}" == "+0.0123 ± 0.0046" and f"{c.flipped:.4f}" == "0.0123 ± 0.0046"
    )
    assert (c.flipped.a, c.flipped.b, c.flipped.p_adjusted) == ("b", "a", 0.0456)
    assert c.p_text == "p = 0.012, Holm-corrected 0.046"
    assert c.cells == ("-0.0123 ± 0.0046", "0.012", "0.046")
    alone = results.Comparison("a", "b", (0, 1, 2), difference, 0.0123)
    assert alone.p_text == "p = 0.012"


def test_one_group_against_the_rest_is_one_family_and_decides_its_standing():
    runs = [
        make_run(lr, 0.9, seed, test_acc=acc)
        for lr, accs in {0.01: [0.95, 0.96, 0.97], 0.1: [0.90, 0.91, 0.93]}.items()
        for seed, acc in enumerate(accs)
    ] + [make_run(0.5, 0.9, 0, test_acc=0.99)]  # one replicate: nothing to pair
    groups = results.group(runs)
    found = results.against_the_rest(groups, (0.1, 0.9))
    assert [(c.a, c.b) for c in found] == [((0.1, 0.9), (0.01, 0.9))]
    assert found[0].p_adjusted == found[0].p_value and found[0].direction == -1
    assert results.standing(found, rank=2) == "beaten"
    assert results.against_the_rest(groups, (0.3, 0.9)) == []
    assert results.standing([], rank=1) == "first"
    assert results.standing([], rank=2) == "tied"


def test_an_old_record_without_fold_reads_as_the_fixed_split():
    record = {
        "config": {"lr": 0.01, "momentum": 0.9, "epochs": 2, "seed": 2},
        "diverged": False,
        "train_loss": [0.3, 0.2],
        "val_acc": [0.9, 0.95],
        "test_acc": [0.91, 0.96],
        "val_confusion": [[[1]]],
        "wall_time_s": 3.0,
    }
    run = results.Run.from_record(record)
    assert (run.config.fold, run.replicate, run.pair) == (-1, 2, (0.01, 0.9))
    assert run.final("test_acc") == 0.96 and run.final("test_acc", 1) == 0.91
    assert "val_confusion" not in run.metrics and math.isnan(run.final("val_mi"))


def test_cross_validated_runs_pair_on_their_fold():
    run = make_run(replicate=4, folds=True)
    assert run.replicate == run.config.fold == 4


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(0.2, 1.0), min_size=2, max_size=8),
    st.lists(st.floats(-0.05, 0.05), min_size=2, max_size=8),
)
def test_a_paired_difference_is_the_mean_of_the_differences(values, shifts):
    n = min(len(values), len(shifts))
    a = dict(enumerate(values[:n]))
    b = {k: v + shifts[k] for k, v in a.items()}
    comparison = results.compare(a, b)
    assert comparison.diff.mean == pytest.approx(-sum(shifts[:n]) / n, abs=1e-9)
    assert 0.0 <= comparison.p_value <= 1.0


# --- the max-t test ------------------------------------------------------------------


def test_max_t_against_a_brute_force_enumeration():
    import itertools

    from scipy import stats as scipy_stats

    diffs = {"a": {0: 1.0, 1: 2.0, 2: 3.5}, "b": {0: -1.0, 1: 0.5, 2: 0.2}}
    found = stats.max_t(diffs)
    assert found["patterns"] == 8
    maxima = []
    for signs in itertools.product((1, -1), repeat=3):
        maxima.append(
            max(
                scipy_stats.ttest_1samp(
                    [s * v for s, v in zip(signs, d.values())], 0
                ).statistic
                for d in diffs.values()
            )
        )
    assert sorted(found["maxima"]) == pytest.approx(sorted(maxima))
    for key, d in diffs.items():
        t = scipy_stats.ttest_1samp(list(d.values()), 0).statistic
        assert found["observed"][key] == pytest.approx(t)
        assert found["adjusted"][key] == sum(m >= t - 1e-12 for m in maxima) / 8
    assert min(found["adjusted"].values()) >= 1 / 8  # the identity always counts


def test_max_t_leaves_out_single_replicates_and_samples_many_patterns():
    assert stats.max_t({"a": {0: 1.0}})["patterns"] == 0
    found = stats.max_t({"a": {0: 1.0}, "b": {0: 1.0, 1: 1.0}})
    assert set(found["adjusted"]) == {"b"}
    assert found["observed"]["b"] == math.inf and found["adjusted"]["b"] == 1 / 4
    many = {"a": {k: 1.0 + 0.1 * k for k in range(13)}}
    found = stats.max_t(many)
    assert found["patterns"] == stats.MAX_PATTERNS
    assert stats.max_t(many)["maxima"] == found["maxima"]  # a fixed sample
    assert 1 / stats.MAX_PATTERNS <= found["adjusted"]["a"] < 0.01


def test_t_statistic_of_constant_values():
    assert stats.t_statistic([0.0, 0.0]) == 0.0
    assert stats.t_statistic([-1.0, -1.0]) == -math.inf
