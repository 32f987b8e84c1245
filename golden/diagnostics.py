"""Diagnostics of a training run: gradient noise, sharpness and mutual information.

* Gradient noise (Jastrzebski et al. 2020): per-example gradients on a fixed probe
  batch, computed with ``torch.func``; from them the trace of the gradient covariance
  and the share of that trace carried by its largest eigenvalue (how badly conditioned
  the noise is).
* Sharpness: the largest eigenvalue of the loss Hessian on the probe batch, by power
  iteration on Hessian-vector products.
* Mutual information between predicted and true labels, read off a confusion matrix
  (Vasudevan 2020 uses it to set the learning rate).

Probes run the network in evaluation mode (no dropout), so they measure the
deterministic loss and never draw from the random stream that decides the training run's
dropout masks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch.func import functional_call, grad, jvp, vmap

from golden.data import CLASSES

PROBE_SIZE = 256  # images in the fixed probe batch
POWER_ITERATIONS = 20  # at the first probe, from a random direction
# at later probes, which start from the previous probe's eigenvector
WARM_ITERATIONS = 10


def mutual_information(confusion) -> float:
    """I(Y; Ŷ) in bits from a confusion matrix (rows: true labels, columns:
    predictions)."""
    joint = torch.as_tensor(confusion, dtype=torch.float64)
    joint = joint / joint.sum()
    outer = joint.sum(1, keepdim=True) * joint.sum(0, keepdim=True)
    nonzero = joint > 0
    return float((joint[nonzero] * torch.log2(joint[nonzero] / outer[nonzero])).sum())


def label_entropy(confusion) -> float:
    """H(Y) in bits of the true labels (the row sums): the most I(Y; Ŷ) can be."""
    counts = torch.as_tensor(confusion, dtype=torch.float64).sum(1)
    marginal = counts[counts > 0] / counts.sum()
    return float(-(marginal * torch.log2(marginal)).sum())


def normalised_mutual_information(confusion) -> float:
    """I(Y; Ŷ) / H(Y): 0 when predictions say nothing about the labels, 1 when they
    determine them."""
    return mutual_information(confusion) / label_entropy(confusion)


def confusion_matrix(
    predictions: torch.Tensor, labels: torch.Tensor, classes: int = CLASSES
) -> torch.Tensor:
    return torch.bincount(
        labels * classes + predictions, minlength=classes * classes
    ).reshape(classes, classes)


def _loss_of(model, loss_fn):
    """The loss as a function of a parameter dict, for torch.func."""

    def loss(params, images, labels):
        return loss_fn(functional_call(model, params, (images,)), labels)

    return loss


def per_example_gradients(model, loss_fn, images, labels) -> torch.Tensor:
    """(n, P): the gradient of the loss of each example alone, flattened."""
    params = {name: p.detach() for name, p in model.named_parameters()}
    loss = _loss_of(model, loss_fn)

    def one(params, image, label):
        return loss(params, image[None], label[None])

    grads = vmap(grad(one), in_dims=(None, 0, 0))(params, images, labels)
    return torch.cat([g.reshape(len(images), -1) for g in grads.values()], dim=1)


def gradient_noise(per_example: torch.Tensor, batch_size: int) -> dict:
    """Trace of the mini-batch gradient covariance and its largest eigenvalue over its
    trace.

    With per-example covariance C, a batch of B examples drawn at random has gradient
    covariance C / B; the conditioning ratio λ_max(C) / tr(C) does not depend on B.
    """
    deviations = per_example - per_example.mean(0)
    # same non-zero eigenvalues as C
    gram = deviations @ deviations.T / len(per_example)
    eigenvalues = torch.linalg.eigvalsh(gram.double())
    trace = float(eigenvalues.clamp_min(0).sum())
    return {
        "grad_variance": trace / batch_size,
        "grad_conditioning": float(eigenvalues[-1]) / trace,
    }


def sharpness(
    model,
    loss_fn,
    images,
    labels,
    start: dict[str, torch.Tensor],
    iterations: int = POWER_ITERATIONS,
):
    """Largest-magnitude Hessian eigenvalue of the batch loss and its eigenvector (power
    iteration)."""
    params = {name: p.detach() for name, p in model.named_parameters()}
    gradient = grad(_loss_of(model, loss_fn))

    def norm(vector):
        return math.sqrt(sum(float(v.pow(2).sum()) for v in vector.values()))

    def normalised(vector):
        length = norm(vector)
        return {name: v / length for name, v in vector.items()}

    vector = normalised(start)
    eigenvalue = math.nan
    for _ in range(iterations):
        _, product = jvp(lambda p: gradient(p, images, labels), (params,), (vector,))
        eigenvalue = sum(float((product[name] * vector[name]).sum()) for name in vector)
        vector = normalised(product)
    return eigenvalue, vector


@dataclass
class Prober:
    """Measures gradient noise and sharpness every ``every`` optimizer steps of a
    run."""

    images: torch.Tensor
    labels: torch.Tensor
    loss_fn: object
    batch_size: int
    every: int
    seed: int
    step: int = 0
    record: dict[str, list[float]] = field(
        default_factory=lambda: {
            "step": [],
            "probe_loss": [],
            "grad_variance": [],
            "grad_conditioning": [],
            "sharpness": [],
        }
    )
    _direction: dict | None = None

    def __call__(self, model) -> None:
        """Called before every optimizer step; measures on steps 0, every, 2·every,
        ..."""
        if self.step % self.every == 0:
            self.measure(model)
        self.step += 1

    def measure(self, model) -> None:
        was_training = model.training
        model.eval()
        iterations = WARM_ITERATIONS
        if self._direction is None:
            generator = torch.Generator().manual_seed(self.seed)
            self._direction = {
                name: torch.randn(p.shape, generator=generator)
                for name, p in model.named_parameters()
            }
            iterations = POWER_ITERATIONS
        with torch.no_grad():
            probe_loss = float(self.loss_fn(model(self.images), self.labels))
        noise = gradient_noise(
            per_example_gradients(model, self.loss_fn, self.images, self.labels),
            self.batch_size,
        )
        top, self._direction = sharpness(
            model, self.loss_fn, self.images, self.labels, self._direction, iterations
        )
        for key, value in {
            "step": self.step,
            "probe_loss": probe_loss,
            **noise,
            "sharpness": top,
        }.items():
            self.record[key].append(value)
        model.train(was_training)
