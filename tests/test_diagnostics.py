"""Checks of golden.diagnostics against explicit computations on models small enough to
write the covariance and the Hessian out in full, and of the options that use them in
golden.train (probes, the MI-driven decay, Adam, label noise)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from factories import learnable
from golden import diagnostics
from golden.data import Split, with_label_noise
from golden.models import FastPaperCNN, PaperCNN
from golden.train import ConfigError, TrainConfig, make_optimizer, seeded_model, train
from test_train import images_with_ties

# ---------------------------------------------------------------------- mutual
# information


def test_mutual_information_of_perfect_and_of_independent_predictions():
    perfect = torch.diag(torch.full((10,), 7))
    assert diagnostics.mutual_information(perfect) == pytest.approx(math.log2(10))
    assert diagnostics.normalised_mutual_information(perfect) == pytest.approx(1.0)
    # joint = product of marginals
    independent = torch.outer(torch.arange(1, 11), torch.arange(3, 13))
    assert diagnostics.mutual_information(independent) == pytest.approx(0.0, abs=1e-12)


def test_mutual_information_by_hand_for_two_classes():
    # joint [[0.4, 0.1], [0.1, 0.4]]: I = sum p log2(p / (0.5 * 0.5))
    by_hand = 2 * 0.4 * math.log2(0.4 / 0.25) + 2 * 0.1 * math.log2(0.1 / 0.25)
    assert diagnostics.mutual_information([[4, 1], [1, 4]]) == pytest.approx(by_hand)
    assert diagnostics.label_entropy([[4, 1], [1, 4]]) == pytest.approx(1.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 50), min_size=9, max_size=9).filter(
        lambda counts: sum(counts) > 0
    )
)
def test_mutual_information_lies_between_zero_and_both_entropies(counts):
    confusion = torch.tensor(counts).reshape(3, 3)
    information = diagnostics.mutual_information(confusion)
    assert -1e-12 <= information <= diagnostics.label_entropy(confusion) + 1e-12
    assert information == pytest.approx(
        diagnostics.mutual_information(confusion.T), abs=1e-12
    )
    assert information <= diagnostics.label_entropy(confusion.T) + 1e-12


def test_confusion_matrix_counts_pairs():
    labels, predictions = (
        torch.tensor([0, 0, 1, 2, 2, 2]),
        torch.tensor([0, 1, 1, 2, 0, 2]),
    )
    assert diagnostics.confusion_matrix(predictions, labels, classes=3).tolist() == [
        [1, 1, 0],
        [0, 1, 0],
        [1, 0, 2],
    ]


# ------------------------------------------------------------ gradient noise and
# sharpness


def tiny_problem(n: int = 12, seed: int = 0):
    """A softmax regression 5 -> 3 (18 parameters) and a batch: small enough for
    explicit matrices."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 3))
    generator = torch.Generator().manual_seed(seed + 1)
    return (
        model,
        torch.randn(n, 5, generator=generator),
        torch.randint(3, (n,), generator=generator),
    )


def explicit_gradients(model, images, labels) -> torch.Tensor:
    rows = []
    for image, label in zip(images, labels):
        grads = torch.autograd.grad(
            F.cross_entropy(model(image[None]), label[None]), list(model.parameters())
        )
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows)


def test_per_example_gradients_equal_one_backward_pass_per_example():
    model, images, labels = tiny_problem()
    fast = diagnostics.per_example_gradients(model, F.cross_entropy, images, labels)
    torch.testing.assert_close(fast, explicit_gradients(model, images, labels))


def test_gradient_noise_equals_the_explicit_covariance():
    model, images, labels = tiny_problem()
    grads = explicit_gradients(model, images, labels).double()
    covariance = torch.cov(grads.T, correction=0)  # (P, P), the 1/n covariance
    eigenvalues = torch.linalg.eigvalsh(covariance)
    noise = diagnostics.gradient_noise(grads, batch_size=4)
    assert noise["grad_variance"] == pytest.approx(
        float(covariance.trace()) / 4, rel=1e-9
    )
    assert noise["grad_conditioning"] == pytest.approx(
        float(eigenvalues[-1] / covariance.trace()), rel=1e-9
    )
    assert 0 < noise["grad_conditioning"] <= 1


def test_sharpness_equals_the_top_eigenvalue_of_the_explicit_hessian():
    model, images, labels = tiny_problem()
    weight, bias = model[0].weight, model[0].bias

    def loss(flat):
        w, b = flat[:15].reshape(3, 5), flat[15:]
        return F.cross_entropy(images @ w.T + b, labels)

    hessian = torch.autograd.functional.hessian(
        loss, torch.cat([weight.reshape(-1), bias]).detach()
    )
    # cross-entropy of a linear model: PSD Hessian
    top = float(torch.linalg.eigvalsh(hessian)[-1])
    start = {name: torch.ones_like(p) for name, p in model.named_parameters()}
    estimate, vector = diagnostics.sharpness(
        model, F.cross_entropy, images, labels, start, iterations=200
    )
    assert estimate == pytest.approx(top, rel=1e-4)
    assert math.sqrt(
        sum(float(v.pow(2).sum()) for v in vector.values())
    ) == pytest.approx(1.0)


def test_diagnostics_see_through_the_fast_cnn():
    """vmap and forward-over-reverse pass through FastPaperCNN's flatten and give
    PaperCNN's numbers."""
    images = images_with_ties(8, 0).contiguous(memory_format=torch.channels_last)
    labels = torch.arange(8)
    results = []
    for cls in (PaperCNN, FastPaperCNN):
        torch.manual_seed(0)
        model = cls().to(memory_format=torch.channels_last).eval()
        start = {name: torch.ones_like(p) for name, p in model.named_parameters()}
        results.append(
            (
                diagnostics.per_example_gradients(
                    model, F.cross_entropy, images, labels
                ),
                diagnostics.sharpness(
                    model, F.cross_entropy, images, labels, start, iterations=3
                )[0],
            )
        )
    (paper_gradients, paper_sharpness), (fast_gradients, fast_sharpness) = results
    assert torch.equal(paper_gradients, fast_gradients)
    assert paper_sharpness == fast_sharpness > 0


# ------------------------------------------------------------------- the training
# options


def test_probes_measure_on_schedule_without_changing_the_run():
    data = learnable(256)
    plain = train(
        TrainConfig(lr=0.05, momentum=0.5, epochs=1, seed=2, model="mlp"),
        data,
        progress=False,
    )
    probed = train(
        TrainConfig(
            lr=0.05, momentum=0.5, epochs=1, seed=2, model="mlp", probe_every=2
        ),
        data,
        progress=False,
    )
    assert probed.train_loss == plain.train_loss and probed.test_acc == plain.test_acc
    assert probed.probes["step"] == [0, 2]  # 256 images / 64 per batch = 4 steps
    assert all(len(values) == 2 for values in probed.probes.values())
    assert all(
        value > 0
        for value in probed.probes["grad_variance"] + probed.probes["sharpness"]
    )
    assert plain.probes == {}


def test_mi_decay_sets_each_epoch_rate_from_the_last_validation_confusion():
    config = TrainConfig(
        lr=0.05, momentum=0.5, epochs=3, seed=0, model="mlp", schedule="mi_decay"
    )
    history = train(config, learnable(256), progress=False)
    assert history.lr[0] == config.lr
    for epoch in (1, 2):
        information = diagnostics.normalised_mutual_information(
            history.val_confusion[epoch - 1]
        )
        assert history.lr[epoch] == pytest.approx(config.lr * (1 - information))
    assert history.val_acc == [
        sum(row[i] for i, row in enumerate(c)) / 64 for c in history.val_confusion
    ]


def test_constant_schedule_keeps_the_rate():
    history = train(
        TrainConfig(lr=0.05, momentum=0.5, epochs=2, model="mlp"),
        learnable(128),
        progress=False,
    )
    assert history.lr == [0.05, 0.05]


def test_adam_is_pytorch_adam_with_default_betas():
    config = TrainConfig(lr=1e-3, momentum=0.0, optimizer="adam", model="mlp")
    optimizer = make_optimizer(seeded_model(config), config)
    assert isinstance(optimizer, torch.optim.Adam)
    assert (
        optimizer.defaults["betas"] == (0.9, 0.999) and optimizer.defaults["lr"] == 1e-3
    )


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"optimizer": "adam", "momentum": 0.9}, "momentum to 0"),
        ({"optimizer": "rmsprop"}, "unknown optimizer"),
        ({"label_noise": 1.0}, "label noise"),
        ({"label_noise": -0.1}, "label noise"),
        ({"schedule": "cosine"}, "unknown schedule"),
        ({"probe_every": -1}, "probe_every"),
        ({"probe_every": 2.5}, "probe_every"),
    ],
)
def test_bad_options_are_one_line_errors(fields, words):
    with pytest.raises(ConfigError, match=words) as error:
        TrainConfig(**{"lr": 0.01, "momentum": 0.0, **fields})
    assert "\n" not in str(error.value)


# ---------------------------------------------------------------------------------
# label noise


@settings(max_examples=25, deadline=None)
@given(st.sampled_from([0.0, 0.1, 0.2, 0.4, 0.9]), st.integers(0, 5))
def test_label_noise_changes_exactly_the_stated_share_to_other_classes(fraction, seed):
    clean = Split(
        torch.zeros(500, 1, 2, 2),
        torch.randint(10, (500,), generator=torch.Generator().manual_seed(9)),
    )
    noisy = with_label_noise(clean, fraction, seed)
    # every picked label is wrong
    assert int((noisy.labels != clean.labels).sum()) == round(fraction * 500)
    assert (
        noisy.images is clean.images
        and noisy.labels.min() >= 0
        and noisy.labels.max() <= 9
    )
    # fixed by the seed
    assert torch.equal(with_label_noise(clean, fraction, seed).labels, noisy.labels)


def test_label_noise_depends_on_the_seed_and_spares_the_evaluation_splits():
    data = learnable(400)
    original = data.train.labels.clone()
    a, b = (with_label_noise(data.train, 0.4, seed).labels for seed in (0, 1))
    assert not torch.equal(a, b)
    # seed 0's batch order
    first_visited = torch.randperm(400, generator=torch.Generator().manual_seed(0))[
        :160
    ]
    corrupted = torch.nonzero(a != original)[:, 0]
    # about 40% overlap, not all 160
    assert len(set(first_visited.tolist()) & set(corrupted.tolist())) < 100
    noisy = train(
        TrainConfig(lr=0.05, momentum=0.5, model="mlp", label_noise=0.4),
        data,
        progress=False,
    )
    clean = train(TrainConfig(lr=0.05, momentum=0.5, model="mlp"), data, progress=False)
    # the caller's split is never modified
    assert torch.equal(data.train.labels, original)
    assert noisy.train_loss != clean.train_loss
