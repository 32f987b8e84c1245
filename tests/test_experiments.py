"""Checks of golden.experiments (protocols, the catalogue, promotion from the store
it is given) and golden.stats.

The store and the sweeps are checked in test_store.py and test_runner.py.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

import golden.experiments as ex
from factories import store_made_up_records
from golden.experiments import ExperimentError, Protocol
from golden.results import group
from golden.stats import mean_ci, paired_t
from golden.store import Store, run_id

# Student-t 97.5% quantiles, 1 and 2 d.o.f.
T_975 = {
    1: 12.706204736174707,
    2: 4.302652729749464,
}


# --------------------------------------------------------------------------- the
# protocol


def changed(value):
    """A different value of the same type."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, float):
        return value / 2
    if isinstance(value, tuple):
        return value + (max(value, default=0) + 1,)
    raise TypeError(value)


@pytest.mark.parametrize("name", list(ex.PROTOCOLS))
def test_every_protocol_field_enters_the_digest(name):
    proto = ex.PROTOCOLS[name]
    for field in dataclasses.fields(Protocol):
        other = dataclasses.replace(
            proto, **{field.name: changed(getattr(proto, field.name))}
        )
        assert other.digest() != proto.digest(), field.name
    assert dataclasses.replace(proto).digest() == proto.digest()
    assert len({p.digest() for p in ex.PROTOCOLS.values()}) == len(ex.PROTOCOLS)


def test_fields_added_later_keep_the_stored_folders():
    """The stored results live under these digests: cross-validation and the data
    fraction, added later, enter a digest only when they differ from their defaults."""
    assert ex.PROTOCOLS["book"].digest() == "b17398cc"
    assert (
        ex.PROTOCOLS["paper"].digest()
        != dataclasses.replace(ex.PROTOCOLS["paper"], cross_validation=False).digest()
    )


protocols = st.builds(
    Protocol,
    name=st.sampled_from(["book", "paper", "quick", "x"]),
    epochs=st.integers(1, 3),
    long_epochs=st.integers(1, 3),
    seeds=st.lists(st.integers(0, 2), max_size=3).map(tuple),
    quick_data=st.booleans(),
    batch_size=st.sampled_from([32, 64]),
    model=st.sampled_from(["cnn", "mlp"]),
)


@settings(max_examples=200, deadline=None)
@given(protocols, protocols)
def test_digest_is_equal_exactly_for_equal_protocols(p, q):
    assert (p.digest() == q.digest()) == (p == q)
    assert Store("r").folder("grid", p) == Store("r").folder(
        "grid", Protocol(**dataclasses.asdict(p))
    )


def test_unknown_names_are_refused():
    with pytest.raises(ExperimentError, match="unknown protocol 'nope'.*quick"):
        ex.protocol("nope")
    with pytest.raises(ExperimentError, match="unknown experiment 'nope'.*grid"):
        ex.experiment("nope")


# --------------------------------------------------------------------------------- the
# grid


def test_default_grid_has_sixty_pairs_with_golden_and_common():
    pairs = ex.grid_pairs()
    assert len(pairs) == 60 == len(set(pairs))
    assert ex.GOLDEN_PAIR in pairs and ex.COMMON_PAIR in pairs
    assert ex.GOLDEN_PAIR == (round(ex.theory.ETA, 3), round(ex.theory.ALPHA, 3))
    assert len(ex.EXPERIMENTS["grid"].configs(ex.PROTOCOLS["book"])) == 180


def test_a_grid_point_is_one_point_however_often_and_however_it_is_written():
    """0.1 and 0.10 are one learning rate, -0 and 0 one momentum (else two sets of
    records, m0 and m-0, with the same numbers); the order given is kept."""
    pairs = ex.grid_pairs([0.1, 0.1, 0.10, 0.01], [0.0, -0.0, 0.9, 0.9])
    assert pairs == [(0.1, 0.0), (0.1, 0.9), (0.01, 0.0), (0.01, 0.9)]
    assert all(math.copysign(1, m) == 1 for _, m in pairs)
    configs = ex.Experiment(
        "custom", lambda p, store: ex.as_variants(pairs), lambda p: 1
    ).configs(ex.PROTOCOLS["quick"])
    assert len({run_id(config) for config in configs}) == len(configs) == 8


@pytest.mark.parametrize(
    "lrs, momenta",
    [
        ([], [0.9]),
        ([0.1], []),
        ([0.0], [0.9]),
        ([-0.1], [0.9]),
        ([math.nan], [0.9]),
        ([0.1], [1.0]),
        ([0.1], [1.5]),
        ([0.1], [-0.1]),
        ([0.1], [math.nan]),
        ([0.1, 0.2], [0.5, 1.0]),
    ],
)
def test_bad_grids_are_refused(lrs, momenta):
    with pytest.raises(ExperimentError):
        ex.grid_pairs(lrs, momenta)


# ---------------------------------------------------------------------------- summaries


def run(lr, momentum, seed, test, val, loss, diverged=False) -> dict:
    """A run as the store holds it; two epochs, of which only the last counts."""
    if diverged:
        return {
            "config": {"lr": lr, "momentum": momentum, "seed": seed},
            "diverged": True,
            "train_loss": [math.inf],
            "val_acc": [],
            "test_acc": [],
        }
    return {
        "config": {"lr": lr, "momentum": momentum, "seed": seed},
        "diverged": False,
        "train_loss": [9.0, loss],
        "val_acc": [0.1, val],
        "test_acc": [0.1, test],
    }


def test_promotion_ranks_pairs_with_all_seeds_diverged_last():
    runs = [
        run(0.001, 0.6, 0, 0.5, 0.5, 0.1),
        run(0.01, 0.0, 0, 0, 0, 0, diverged=True),
        run(0.1, 0.5, 0, 0.9, 0.9, 0.1),
        run(0.2, 0.9, 0, 0.7, 0.7, 0.1),
    ]
    assert ex.promoted_pairs(runs, best=1) == [
        ex.GOLDEN_PAIR,
        ex.COMMON_PAIR,
        (0.1, 0.5),
    ]
    assert ex.promoted_pairs(runs, best=3) == [
        ex.GOLDEN_PAIR,
        ex.COMMON_PAIR,
        (0.1, 0.5),
        (0.2, 0.9),
        (0.001, 0.6),
    ]


class RecordsOf:
    """A stand-in store: the runs of each experiment, by name, whatever the
    protocol."""

    def __init__(self, stored: dict[str, list[dict]]):
        self.stored = stored

    def load(self, name, proto) -> list[dict]:
        return self.stored.get(name, [])


def test_contender_rungs_promote_from_the_stored_grid_then_from_rung_one():
    """Rung 1 takes the golden, the common and the 6 best grid pairs; rung 2 the golden,
    the common and the 4 best of rung 1; both run folds 0, 1, 2 at 10 and 30 epochs
    (book)."""
    book = ex.PROTOCOLS["book"]
    grid = [
        run(lr, m, seed, val / 100, val / 100, 0.1)
        for val, (lr, m) in enumerate(ex.grid_pairs())
        for seed in book.seeds
    ]
    stored = {"grid": grid}
    store = RecordsOf(stored)
    rung1 = ex.EXPERIMENTS["contenders10"].configs(book, store)
    pairs1 = ex.contender_pairs(book, store, 0)
    assert pairs1[:2] == [ex.GOLDEN_PAIR, ex.COMMON_PAIR] and len(pairs1) == 8
    assert (
        pairs1[2:]
        == [pair for pair in ex.grid_pairs()[::-1] if pair not in pairs1[:2]][:6]
    )
    assert {(c.epochs, c.fold, c.seed) for c in rung1} == {
        (10, k, k) for k in (0, 1, 2)
    }
    assert len(rung1) == 24 and run_id(rung1[0]) == "lr0.016_m0.874_f0_s0"
    with pytest.raises(ExperimentError, match="finished contenders10"):
        ex.EXPERIMENTS["contenders30"].configs(book, store)
    score = lambda lr, m: lr + m / 100  # noqa: E731 - distinct for every pair
    rung1_runs = [
        run(c.lr, c.momentum, c.seed, 0.5, score(c.lr, c.momentum), 0.1) for c in rung1
    ]
    stored["contenders10"] = [
        {**r, "config": {**r["config"], "fold": r["config"]["seed"]}}
        for r in rung1_runs
    ]
    # not a rung-1 run: left out
    stored["contenders10"].append(run(0.2, 0.925, 0, 1.0, 1.0, 0.1))
    rung2 = ex.EXPERIMENTS["contenders30"].configs(book, store)
    ranked = sorted(pairs1[2:], key=lambda pair: -score(*pair))
    assert ex.contender_pairs(book, store, 1) == [
        ex.GOLDEN_PAIR,
        ex.COMMON_PAIR,
        *ranked[:4],
    ]
    assert len(rung2) == 18 and {(c.epochs, c.fold) for c in rung2} == {
        (30, k) for k in (0, 1, 2)
    }


def test_long_run_needs_the_finished_grid():
    with pytest.raises(ExperimentError, match="finished grid"):
        ex.long_run_pairs(ex.PROTOCOLS["book"], RecordsOf({}))


def test_promotion_reads_the_store_it_is_given_and_no_other(tmp_path, monkeypatch):
    """The grid stored in the default folder does not promote anything for a sweep given
    another store, and without a store there is nothing to promote from."""
    quick = ex.PROTOCOLS["quick"]
    grid = ex.EXPERIMENTS["grid"]
    default = Store(tmp_path / "default")
    monkeypatch.setenv("GOLDEN_RESULTS", str(default.root))
    store_made_up_records(default, "grid", grid.configs(quick), quick)
    long = ex.EXPERIMENTS["long"]
    assert len(long.configs(quick, default)) == 5 * len(quick.seeds)
    with pytest.raises(ExperimentError, match="needs the finished grid"):
        long.configs(quick, Store(tmp_path / "other"))
    with pytest.raises(ExperimentError, match="give it the store"):
        long.configs(quick)


def test_the_training_runs_are_two_pairs_from_one_seed():
    """The golden pair as derived and the common pair, seed 0 under every protocol: 5
    epochs on the full split, 1 on the quick subset."""
    training = ex.EXPERIMENTS["training"]
    for name, epochs in (("book", 5), ("quick", 1), ("paper", 5)):
        configs = training.configs(ex.PROTOCOLS[name])
        assert [(c.lr, c.momentum) for c in configs] == [
            (ex.theory.ETA, ex.theory.ALPHA),
            ex.COMMON_PAIR,
        ]
        assert {(c.seed, c.epochs) for c in configs} == {(0, epochs)}


# ------------------------------------------------------------------------------
# statistics


samples = st.lists(st.floats(0, 1, allow_nan=False), min_size=2, max_size=8)


@settings(max_examples=100, deadline=None)
@given(samples)
def test_mean_ci_matches_scipy(values):
    mean, half = mean_ci(values)
    assert mean == pytest.approx(np.mean(values), abs=1e-12)
    sem = scipy_stats.sem(values)
    expected = scipy_stats.t.ppf(0.975, len(values) - 1) * sem
    assert half == pytest.approx(expected, rel=1e-9, abs=1e-12)
    if sem > 1e-9:
        low, high = scipy_stats.t.interval(
            0.95, len(values) - 1, loc=np.mean(values), scale=sem
        )
        assert half == pytest.approx((high - low) / 2, rel=1e-9)


def test_mean_ci_small_cases():
    assert all(math.isnan(x) for x in mean_ci([]))
    mean, half = mean_ci([0.7])
    assert mean == 0.7 and math.isnan(half)
    assert mean_ci([1.0, 3.0], confidence=0.9) == pytest.approx(
        (2.0, scipy_stats.t.ppf(0.95, 1) * 1.0)
    )


# Accuracies, as the book compares them: a count of images over the 60,000 at most. (Any
# floats in [0, 1] would include differences like +-1e-200, whose variance underflows to
# zero and leaves scipy and golden alike with a p-value of NaN.)
accuracies = st.integers(0, 60_000).map(lambda count: count / 60_000)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(2, 8).flatmap(
        lambda n: st.tuples(
            st.lists(accuracies, min_size=n, max_size=n),
            st.lists(accuracies, min_size=n, max_size=n),
        )
    )
)
def test_paired_t_matches_scipy(pair):
    a, b = pair
    result = paired_t(a, b)
    diffs = np.subtract(a, b)
    assert result["n"] == len(a)
    assert result["mean_diff"] == pytest.approx(diffs.mean(), abs=1e-12)
    assert result["ci"] == pytest.approx(
        scipy_stats.t.ppf(0.975, len(a) - 1) * scipy_stats.sem(diffs),
        rel=1e-9,
        abs=1e-12,
    )
    if np.ptp(diffs) > 0:
        assert result["p_value"] == pytest.approx(
            scipy_stats.ttest_rel(a, b).pvalue, rel=1e-9, abs=1e-15
        )
    assert 0 <= result["p_value"] <= 1


def test_paired_t_edge_cases():
    # identical: no evidence at all
    assert paired_t([0.5, 0.6], [0.5, 0.6])["p_value"] == 1.0
    # the same exact gain every time
    assert paired_t([1.5, 2.5, 4.5], [1.0, 2.0, 4.0])["p_value"] == 0.0
    with pytest.raises(ValueError):
        paired_t([0.1], [0.2])
    with pytest.raises(ValueError):
        paired_t([0.1, 0.2], [0.2])


@pytest.mark.parametrize("name", list(ex.PROTOCOLS))
def test_a_protocol_describes_itself_within_the_page_width(name):
    text = ex.protocol(name).describe()
    assert all(len(line) <= 88 for line in text.splitlines())
    assert "plain SGD" not in text  # an experiment's optimiser is its header's to say


def test_groups_against_a_hand_computation():
    runs = [
        run(0.1, 0.5, 2, 0.90, 0.80, 0.3),
        run(0.1, 0.5, 1, 0.0, 0.0, 0.0, diverged=True),
        run(0.1, 0.5, 0, 0.80, 0.70, 0.5),
        run(0.01, 0.9, 1, 0.92, 0.91, 0.2),
        run(0.01, 0.9, 0, 0.90, 0.89, 0.1),
        run(0.01, 0.9, 2, 0.94, 0.93, 0.3),
        run(0.2, 0.925, 0, 0, 0, 0, diverged=True),
    ]
    a, b, c = group(runs).values()  # sorted by (lr, momentum)
    assert (a.key, b.key, c.key) == ((0.01, 0.9), (0.1, 0.5), (0.2, 0.925))
    assert a.replicates == b.replicates == [0, 1, 2] and c.replicates == [0]
    assert (a.diverged, b.diverged, c.diverged) == (0, 1, 1)
    assert a.values("test_acc") == {0: 0.90, 1: 0.92, 2: 0.94}  # by seed
    estimate = a.estimate("test_acc")  # sd of 0.90, 0.92, 0.94 is 0.02
    assert estimate.mean == pytest.approx(0.92)
    assert estimate.half == pytest.approx(T_975[2] * 0.02 / math.sqrt(3))
    assert a.estimate("train_loss").mean == pytest.approx(0.2)
    # the diverged seed is left out, not counted as zero
    assert b.values("test_acc") == {0: 0.80, 2: 0.90}
    assert b.estimate("test_acc").half == pytest.approx(T_975[1] * 0.05)
    assert b.estimate("val_acc").mean == pytest.approx(0.75)
    assert c.values("test_acc") == {} and math.isnan(c.estimate("val_acc").mean)
