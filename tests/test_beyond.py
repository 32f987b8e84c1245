"""Checks of golden.beyond (the SymPy facts of the last part) in numbers, and of the
studies' experiment definitions in golden.experiments: each study trains what its
chapter says it trains. (The identities of golden.beyond are proved in
tests/test_theory.py.)"""

from __future__ import annotations

import dataclasses
import math

import pytest
import sympy as sp

from golden import beyond, experiments, store, theory
from golden.store import Store
from golden.train import TrainConfig

# Every identity is proved and spot-checked, and found next to its equation, in
# tests/test_theory.py.


def test_sharpness_limit_in_numbers():
    assert beyond.sharpness_limit(0.01, 0.9) == pytest.approx(380.0)
    golden = beyond.sharpness_limit(theory.ETA, theory.ALPHA)
    assert golden == pytest.approx(2 * (1 + theory.ALPHA) / (1 - theory.ALPHA) ** 2)


@pytest.mark.parametrize("error", [0.01, 0.1, 0.5])
def test_fano_bound_in_numbers_matches_a_symmetric_confusion(error):
    from golden import diagnostics

    classes, n = 10, 9000  # counts divisible so that errors spread exactly evenly
    confusion = [
        [
            n * (1 - error) if i == j else n * error / (classes - 1)
            for j in range(classes)
        ]
        for i in range(classes)
    ]
    assert diagnostics.mutual_information(confusion) == pytest.approx(
        beyond.least_information(error, classes, math.log2(classes)), abs=1e-12
    )


def test_mi_decay_rule_is_the_one_training_uses():
    rule = sp.lambdify(
        (beyond.base_rate, beyond.normalised_information), beyond.MI_DECAY_RULE
    )
    assert (
        rule(0.016, 0.0) == 0.016
        and rule(0.016, 1.0) == 0.0
        and rule(0.02, 0.25) == pytest.approx(0.015)
    )


# ------------------------------------------------------------- the studies' experiments

BOOK = experiments.protocol("book")


def configs(name: str) -> list[TrainConfig]:
    return experiments.EXPERIMENTS[name].configs(BOOK)


def test_run_ids_are_unique_within_every_experiment_and_unchanged_for_plain_runs():
    for name in ("grid", "breakeven", "loss", "noise", "mutual_info"):
        ids = [store.run_id(c) for c in configs(name)]
        assert len(ids) == len(set(ids)), name
    assert store.run_id(TrainConfig(lr=0.01, momentum=0.9, seed=2)) == "lr0.01_m0.9_s2"
    tagged = TrainConfig(
        lr=1e-3, momentum=0.0, optimizer="adam", label_noise=0.2, seed=1
    )
    assert store.run_id(tagged) == "lr0.001_m0_adam_noise0.2_s1"


def test_every_config_field_that_varies_has_a_tag():
    fixed = {"lr", "momentum", "seed", "epochs", "model", "batch_size"}
    assert set(store.TAGS) == {f.name for f in dataclasses.fields(TrainConfig)} - fixed


def test_noise_study_pairs_sgd_golden_with_adam_at_each_level():
    runs = configs("noise")
    assert {(c.label_noise, c.optimizer) for c in runs} == {
        (level, opt) for level in experiments.NOISE_LEVELS for opt in ("sgd", "adam")
    }
    assert all(
        (c.lr, c.momentum) == experiments.GOLDEN_PAIR
        for c in runs
        if c.optimizer == "sgd"
    )
    assert all(c.lr == 1e-3 and c.momentum == 0 for c in runs if c.optimizer == "adam")
    assert len(runs) == 6 * len(BOOK.seeds) and all(c.epochs == 5 for c in runs)


def test_loss_and_mutual_information_studies():
    loss = {(c.loss, c.lr, c.momentum) for c in configs("loss")}
    assert loss == {
        (name, *pair)
        for name in ("cross_entropy", "mse")
        for pair in (experiments.GOLDEN_PAIR, experiments.COMMON_PAIR)
    }
    mi = configs("mutual_info")
    assert {(c.lr, c.momentum) for c in mi if c.schedule == "constant"} == set(
        experiments.MI_PAIRS
    )
    assert {(c.lr, c.momentum) for c in mi if c.schedule == "mi_decay"} == {
        experiments.GOLDEN_PAIR
    }


def test_breakeven_probes_about_fifteen_times_in_one_epoch(monkeypatch):
    monkeypatch.setattr(experiments, "train_size", lambda proto: 54_000)
    runs = configs("breakeven")
    assert {(c.lr, c.momentum) for c in runs} == set(
        experiments.grid_pairs(experiments.BREAKEVEN_LRS, experiments.BREAKEVEN_MOMENTA)
    )
    assert all(c.epochs == 1 and c.probe_every == 56 for c in runs)
    assert experiments.GOLDEN_PAIR[0] in experiments.BREAKEVEN_LRS


def test_old_records_read_with_the_new_fields_at_their_defaults(tmp_path):
    proto = experiments.protocol("quick")
    results = Store(tmp_path)
    config = {
        "lr": 0.01,
        "momentum": 0.9,
        "epochs": 1,
        "seed": 0,
        "model": "cnn",
        "batch_size": 64,
        "loss": "cross_entropy",
    }  # a record written before the new fields existed
    run = {
        "config": config,
        "train_loss": [1.0],
        "val_acc": [0.5],
        "test_acc": [0.5],
        "diverged": False,
        "wall_time_s": 1.0,
    }
    results.prepare(results.folder("grid", proto), [])
    results.write(results.folder("grid", proto), run, proto, "grid")
    (loaded,) = results.load("grid", proto)
    assert TrainConfig(**loaded["config"]) == TrainConfig(lr=0.01, momentum=0.9)
    assert (
        loaded["config"]["optimizer"] == "sgd"
        and loaded["config"]["label_noise"] == 0.0
    )
