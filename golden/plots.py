"""One matplotlib style for the whole book; figures are saved by the code that draws them."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from golden import settings  # noqa: E402

STYLE = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 10,
    "legend.frameon": False,
}


def use_style() -> None:
    """Apply the book's style; chapters call this once at the top."""
    plt.rcParams.update(STYLE)


def stamp(fig: plt.Figure, note: str = "") -> None:
    """Write the run mode (and an optional protocol note) in the figure's corner."""
    text = f"mode: {settings.mode_name()}" + (f" · {note}" if note else "")
    fig.text(0.99, 0.005, text, ha="right", va="bottom", fontsize=7, color="0.4")


def save_figure(fig: plt.Figure, name: str, note: str = "") -> Path:
    """Stamp ``fig`` and write it as ``<figures>/<name>.png``; return the path."""
    stamp(fig, note)
    folder = settings.figures_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    fig.savefig(path)
    return path
