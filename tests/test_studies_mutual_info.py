"""Checks of golden.studies.mutual_info on small synthetic runs: every branch of the
verdict (close, loose, below Fano's bound, no data; decay higher, lower, tied,
untested), pairing by seed with missing seeds, diverged runs and runs at chance
accuracy, the rule check, the tables and both figures."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest

from factories import make_run
from golden import beyond, experiments, report
from golden.protocols import protocol
from golden.results import Run
from golden.studies import mutual_info
from golden.studies.mutual_info import verdict

GOLDEN = experiments.GOLDEN_PAIR
NEIGHBOUR = (0.1, experiments.GOLDEN_GRID_MOMENTUM)
H = math.log2(10)  # label entropy of ten equally frequent classes


def bound(acc: float) -> float:
    return float(beyond.least_information(1 - acc, 10, H))


def mi_run(
    pair,
    seed,
    accs,
    schedule="constant",
    slack=0.05,
    test=None,
    diverged=False,
    lrs=None,
) -> Run:
    """A run whose mutual information lies ``slack`` bits above Fano's bound at each
    epoch's validation accuracy (``slack`` may be a list)."""
    slacks = slack if isinstance(slack, list) else [slack] * len(accs)
    bits = [bound(a) + s for a, s in zip(accs, slacks)]
    extra = {
        "val_mi": bits,
        "val_label_bits": [H] * len(accs),
        "val_nmi": [b / H for b in bits],
    }
    if lrs is not None:
        extra["lr"] = lrs
    return make_run(
        *pair,
        replicate=seed,
        val_acc=list(accs),
        test_acc=list(accs) if test is None else test,
        diverged=diverged,
        schedule=schedule,
        extra=extra,
    )


def decayed(seed, accs, test=None, broken=False) -> Run:
    """A run under the MI-driven decay, its rates by the rule (unless ``broken``)."""
    run = mi_run(GOLDEN, seed, accs, "mi_decay", test=test)
    rates = mutual_info.expected_rates(run)
    if broken:
        rates[-1] *= 1.01
    return mi_run(GOLDEN, seed, accs, "mi_decay", test=test, lrs=rates)


ACCS = [0.90, 0.95, 0.97]


def study_of(runs) -> mutual_info.report.Study:
    return report.Study("mutual_info", protocol("quick"), tuple(runs))


def with_decay(differences, seeds=(0, 1, 2), constant_seeds=(0, 1, 2)) -> list[Run]:
    """The golden pair at a constant rate and under the decay, the decay's final test
    accuracy ``difference`` above the constant one's, seed by seed."""
    runs = [
        mi_run(GOLDEN, s, ACCS, test=[0.9, 0.95, 0.97 + 0.001 * s])
        for s in constant_seeds
    ]
    runs += [
        decayed(s, ACCS, test=[0.9, 0.95, 0.97 + 0.001 * s + d])
        for s, d in zip(seeds, differences)
    ]
    return runs + [mi_run(NEIGHBOUR, s, [0.8, 0.85, 0.88]) for s in range(3)]


def test_close_tracking_and_a_higher_decay():
    found = verdict(study_of(with_decay([0.01, 0.01, 0.01])))
    assert found.tracking == "close" and found.fit.rho == pytest.approx(1.0)
    assert found.fit.points == 27 and found.fit.least_slack == pytest.approx(0.05)
    assert found.decay == "higher" and found.comparison.replicates == (0, 1, 2)
    assert found.comparison.diff.mean == pytest.approx(0.01)
    text = found.text()
    assert "follows accuracy almost monotonically (Spearman ρ = 1.000 over 27" in text
    assert "adds little to accuracy" in text and "ends with a higher mean" in text
    assert "significant at the 5% level" in text
    cut = 1 - (bound(0.90) + 0.05) / H  # every seed has the same first epoch here
    assert found.cuts == pytest.approx((cut, cut, cut))
    assert found.cut_range == pytest.approx((cut, cut))
    assert (
        f"to {cut:.1%} of its value after the first epoch in each of the three "
        "seeds," in text
    )


def test_the_cut_of_the_decay_is_a_range_over_the_seeds_that_learned():
    """Each seed's first epoch differs, so the decay cuts the rate by a different
    amount in each; the text gives the lowest and the highest, not seed 0's. A decay
    run at chance accuracy has no cut."""
    runs = [mi_run(GOLDEN, s, ACCS, test=[0.9, 0.95, 0.97]) for s in range(4)]
    firsts = {0: 0.90, 1: 0.80, 2: 0.95}
    runs += [
        decayed(s, [first, 0.95, 0.97], test=[0.9, 0.95, 0.98])
        for s, first in firsts.items()
    ]
    runs += [decayed(3, [0.1, 0.1, 0.1])]
    found = verdict(study_of(runs))
    cuts = {s: 1 - (bound(first) + 0.05) / H for s, first in firsts.items()}
    assert found.cuts == pytest.approx(tuple(cuts.values()))
    low, high = min(cuts.values()), max(cuts.values())
    assert found.cut_range == pytest.approx((low, high)) and low < cuts[0] < high
    assert (
        f"cuts the golden learning rate to between {low:.1%} and {high:.1%} of its "
        "value after the first epoch across the three seeds,"
    ) in found.text()


def test_no_cut_without_a_decay_run_that_learned():
    runs = with_decay([]) + [mi_run(GOLDEN, 0, [0.1, 0.1, 0.1], "mi_decay")]
    found = verdict(study_of(runs))
    assert found.cuts == () and all(math.isnan(x) for x in found.cut_range)


def test_lower_decay():
    found = verdict(study_of(with_decay([-0.02, -0.02, -0.02])))
    assert found.decay == "lower" and found.comparison.direction == -1
    assert "ends with a lower mean test accuracy" in found.text()


def test_tied_decay_pairs_by_seed_not_position():
    """The decay lacks seed 0 and the constant pair seed 3: the comparison uses seeds
    1 and 2, where the decay is 0.003 and -0.001 ahead."""
    runs = with_decay([0.003, -0.001, 0.002], seeds=(1, 2, 3))
    found = verdict(study_of(runs))
    assert found.decay == "tied" and found.comparison.replicates == (1, 2)
    assert found.comparison.diff.mean == pytest.approx(0.001)
    assert "a difference the two seeds cannot tell from noise" in found.text()
    assert "paired by seed, p = " in found.text()


def test_untested_when_the_decay_runs_did_not_learn():
    runs = with_decay([0.01]) + [
        mi_run(GOLDEN, 1, [0.1, 0.1, 0.1], "mi_decay"),
        mi_run(GOLDEN, 2, [0.9, 0.9, 0.9], "mi_decay", diverged=True),
    ]
    found = verdict(study_of(runs))
    assert found.decay == "untested" and found.comparison is None
    assert "fewer than two seeds learned under both" in found.text()
    assert found.fit.points == 9 + 9 + 3  # only learned runs are points
    lines = mutual_info.decay_table(study_of(runs)).splitlines()
    assert lines[3].endswith("| 1 of 3 |") and "n/a (fewer than two seeds" in lines[4]


def test_loose_tracking():
    runs = with_decay([0.01, 0.01, 0.01])
    runs += [
        mi_run(NEIGHBOUR, s, [0.90, 0.92, 0.94, 0.96], slack=[1.5, 1.0, 0.5, 0.0])
        for s in range(3, 6)
    ]
    found = verdict(study_of(runs))
    assert found.tracking == "loose" and found.fit.rho < mutual_info.CLOSE
    assert "follows accuracy only loosely" in found.text()
    assert "adds little" not in found.text()


def test_a_point_below_fanos_bound_means_the_records_are_wrong():
    runs = with_decay([0.01, 0.01, 0.01]) + [
        mi_run(NEIGHBOUR, 7, ACCS, slack=[0.05, -0.01, 0.05])
    ]
    found = verdict(study_of(runs))
    assert found.tracking == "violates"
    assert found.fit.least_slack == pytest.approx(-0.01)
    assert "lies below Fano's bound (by 0.0100 bits)" in found.text()
    assert "SOME BELOW Fano's bound" in found.fit.lines()


def test_no_data_when_nothing_learned():
    runs = [mi_run(GOLDEN, s, [0.1, 0.1], test=[0.1, 0.1]) for s in range(3)]
    found = verdict(study_of(runs))
    assert found.tracking == "no data" and found.decay == "untested"
    assert "cannot be compared with accuracy" in found.text()


def test_rule_check_finds_the_run_that_broke_the_rule():
    runs = with_decay([0.01, 0.01]) + [decayed(2, ACCS, broken=True)]
    check = mutual_info.rule_check(study_of(runs))
    assert check.followed == (0, 1) and check.broken == (2,) and check.seed == 0
    assert check.rates[0] == GOLDEN[0] and len(check.rates) == 3
    text = check.lines()
    assert text.startswith("2 runs follow the rule; 1 do NOT (seeds 2)")
    assert all(len(line) <= 88 for line in text.splitlines())
    assert (
        mutual_info.rule_check(study_of(with_decay([]))).lines()
        == "no run used the MI-driven decay"
    )


def test_information_of_a_stored_confusion_matrix():
    perfect = np.eye(10, dtype=int) * 6
    record = {
        "config": {"lr": 0.016, "momentum": 0.874, "seed": 0},
        "diverged": False,
        "val_acc": [1.0],
        "test_acc": [1.0],
        "val_confusion": [perfect.tolist()],
    }
    run = Run.from_record(mutual_info.with_information(record))
    assert run.metrics["val_mi"] == pytest.approx([H])
    assert run.metrics["val_label_bits"] == pytest.approx([H])
    assert run.metrics["val_nmi"] == pytest.approx([1.0])
    assert "val_confusion" not in run.metrics


def test_table_has_a_row_per_variant_over_learned_runs():
    runs = with_decay([0.01, 0.01, 0.01]) + [mi_run(NEIGHBOUR, 3, [0.1, 0.1, 0.1])]
    lines = mutual_info.table(study_of(runs)).splitlines()
    assert len(lines) == 2 + 3
    constant, decay, neighbour = lines[2:]
    assert constant.startswith(
        f"| {report.pair_label(GOLDEN)} | 0.016 | 0.874 | constant | "
    )
    assert decay.startswith(f"| {report.pair_label(GOLDEN)}, MI decay | ")
    bits = bound(0.97) + 0.05
    assert f"| {bits:.4f} ± 0.0000 | {bits / H:.4f} | 0.9700 ± 0.0000 |" in constant
    assert neighbour.endswith("| 0.8800 ± 0.0000 | 0.8800 ± 0.0000 | 3 of 4 |")


def test_decay_table_and_printed_lines():
    study = study_of(with_decay([0.01, 0.01, 0.01]))
    lines = mutual_info.decay_table(study).splitlines()
    assert lines[2].startswith("| constant rate | 0.9710 ± ")
    assert lines[3].startswith("| MI-driven decay | 0.9810 ± ")
    assert lines[4] == (
        "| MI decay − constant, paired by seed | +0.0100 ± 0.0000 "
        "(p = 0.000) | 3 seeds |"
    )
    for text in (mutual_info.design(study), mutual_info.verdict(study).fit.lines()):
        assert all(len(line) <= 88 for line in text.splitlines())
    assert "under the MI-driven decay: η=0.016, α=0.874 (golden)" in mutual_info.design(
        study
    )


def test_tracking_figure():
    fig = mutual_info.tracking_figure(study_of(with_decay([0.01, 0.01, 0.01])))
    left, right = fig.axes
    assert fig.get_size_inches()[0] <= 10
    assert len(left.lines) == 2  # the two constant-rate pairs, not the decay
    assert len(right.collections) == 1 and len(right.collections[0].get_offsets()) == 18
    assert len(right.lines) == 2  # Fano's bound and H(Y)
    assert right.lines[1].get_ydata()[0] == pytest.approx(H)
    assert any("mutual_info, protocol quick" in t.get_text() for t in fig.texts)
    plt.close(fig)


def test_decay_figure():
    fig = mutual_info.decay_figure(study_of(with_decay([0.01, 0.01, 0.01])))
    left, right = fig.axes
    assert fig.get_size_inches()[0] <= 10 and left.get_yscale() == "log"
    labels = [line.get_label() for line in left.lines]
    golden = report.pair_label(GOLDEN)
    assert labels == [golden, golden + ", MI decay"]
    assert list(left.lines[0].get_ydata()) == pytest.approx([GOLDEN[0]] * 3)
    assert len(right.lines) == 2
    plt.close(fig)
