"""The paper's CNN (Jaeger 2024, MNIST appendix) and a small MLP for comparison.

The appendix lists the layers but not the width of the hidden fully connected layer nor
an activation between the two fully connected layers; we use 128 units and a ReLU, which
gives the "about 200k parameters" the appendix states (206,922 exactly).
"""
from __future__ import annotations

from torch import nn

HIDDEN_UNITS = 128


class PaperCNN(nn.Module):
    """conv 1->16 -> pool -> conv 16->32 -> pool -> dropout 0.25 -> fc -> fc -> 10 classes.

    PyTorch's default initialisation of Conv2d and Linear is Kaiming-uniform, as in the paper.
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


class MLP(nn.Module):
    """784 -> hidden -> 10 with a ReLU: a baseline without convolutions."""

    def __init__(self, hidden: int = HIDDEN_UNITS):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, hidden), nn.ReLU(), nn.Linear(hidden, 10))

    def forward(self, x):
        return self.net(x)


MODELS = {"cnn": PaperCNN, "mlp": MLP}


def build_model(name: str) -> nn.Module:
    """A fresh model by name; initialised from torch's global random generator."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
    return MODELS[name]()


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
