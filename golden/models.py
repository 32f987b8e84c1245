"""The paper's CNN (Jaeger 2024, MNIST appendix) and a small MLP for comparison.

The appendix lists the layers but not the width of the hidden fully connected layer nor
an activation between the two fully connected layers; we use 128 units and a ReLU, which
gives the "about 200k parameters" the appendix states (206,922 exactly).

:class:`PaperCNN` is the network written as the paper lists it; golden trains
:class:`FastPaperCNN`, the same network evaluated in an order that is faster on a CPU,
with the same parameters, outputs and gradients to the last bit
(``tests/test_train.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

HIDDEN_UNITS = 128


class PaperCNN(nn.Module):
    """conv 1->16 -> pool -> conv 16->32 -> pool -> dropout 0.25 -> fc -> fc -> 10
    classes.

    PyTorch's default initialisation of Conv2d and Linear is Kaiming-uniform, as in the
    paper.
    """

    def __init__(self, hidden: int = HIDDEN_UNITS, dropout: float = 0.25):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, stride=1, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, kernel_size=3, stride=1, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(32 * 7 * 7, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 10),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class _FlattenKeepingLayout(torch.autograd.Function):
    """``x.flatten(1)`` whose gradient comes back in ``x``'s memory layout.

    PyTorch's own flatten hands back an NCHW gradient; max-pooling's backward, given a
    channels_last input, then copies its input and that gradient to match (about 5% of a
    one-thread training step). Written with ``setup_context`` and a ``jvp`` so that the
    ``torch.func`` transforms of :mod:`golden.diagnostics` see through it.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return x.flatten(1)

    @staticmethod
    def setup_context(ctx, inputs, output):
        (x,) = inputs
        ctx.shape = x.shape
        ctx.channels_last = not x.is_contiguous()

    @staticmethod
    def backward(ctx, grad):
        grad = grad.view(ctx.shape)
        if (
            ctx.channels_last
        ):  # as permutes, because vmap refuses contiguous(memory_format=channels_last)
            return grad.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
        return grad

    @staticmethod
    def jvp(ctx, tangent):
        return tangent.flatten(1)


class FastPaperCNN(PaperCNN):
    """:class:`PaperCNN` computed faster on a CPU, bit for bit the same.

    Max-pooling comes before each ReLU: ReLU is monotone, so the maxima are the same,
    the gradient reaches the same position (or is zero in both orders), and ReLU and its
    backward touch a quarter of the elements. The flatten keeps the gradient in
    channels_last layout.
    """

    def forward(self, x):
        conv1, _, pool1, conv2, _, pool2 = self.features
        x = F.relu(pool1(conv1(x)))
        x = F.relu(pool2(conv2(x)))
        # its nn.Flatten leaves 2-d input as it is
        return self.classifier(_FlattenKeepingLayout.apply(x))


class MLP(nn.Module):
    """784 -> hidden -> 10 with a ReLU: a baseline without convolutions."""

    def __init__(self, hidden: int = HIDDEN_UNITS):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(28 * 28, hidden), nn.ReLU(), nn.Linear(hidden, 10)
        )

    def forward(self, x):
        return self.net(x)


MODELS = {"cnn": FastPaperCNN, "mlp": MLP}


def build_model(name: str) -> nn.Module:
    """A fresh model by name; initialised from torch's global random generator."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
    return MODELS[name]()


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
