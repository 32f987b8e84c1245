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
    # Opaque white: the book's dark theme would put a transparent figure's black text on black.
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "savefig.transparent": False,
}


def use_style() -> None:
    """Apply the book's style; chapters call this once at the top."""
    plt.rcParams.update(STYLE)


def stamp(fig: plt.Figure, note: str = "") -> None:
    """Write the run mode (and an optional protocol note) under the figure's right corner; the
    tight bounding box of ``savefig`` grows to hold it, so it never covers an axis label."""
    text = f"mode: {settings.mode_name()}" + (f" · {note}" if note else "")
    fig.text(0.99, -0.01, text, ha="right", va="top", fontsize=8, color="0.4")


def save_figure(fig: plt.Figure, name: str, note: str = "", folder: Path | None = None) -> Path:
    """Write ``fig`` as ``<folder>/<name>.png`` (default folder: the book's figures), on white;
    with a ``note``, stamp it first (figures of :mod:`golden.figures` come stamped)."""
    if note:
        stamp(fig, note)
    folder = Path(folder) if folder is not None else settings.figures_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    fig.savefig(path, facecolor="white", transparent=False)
    return path


def show(fig: plt.Figure, name: str, note: str = ""):
    """Save ``fig`` (see :func:`save_figure`) and return it as an image for the notebook page."""
    from IPython.display import Image

    path = save_figure(fig, name, note)
    plt.close(fig)
    return Image(filename=str(path))


def learning_curves(curves: dict[str, list[list[float]]], ylabel: str, ax: plt.Axes | None = None,
                    x: list[float] | None = None, xlabel: str = "epoch", styles: dict[str, dict] | None = None,
                    band: str = "ci") -> plt.Axes:
    """One line per label: the mean over seeds at each point (epochs 1, 2, ... unless ``x`` is
    given), with a band of +- one 95% half-width (``band="ci"``) or from the lowest to the
    highest seed (``band="range"``, for log axes, where a t-interval of three seeds can reach
    below zero). ``styles`` passes plot options per label."""
    from golden.stats import mean_ci

    ax = ax or plt.subplots()[1]
    for label, per_seed in curves.items():
        points = min(len(seed_curve) for seed_curve in per_seed)
        columns = [[seed_curve[e] for seed_curve in per_seed] for e in range(points)]
        stats = [mean_ci(column) for column in columns]
        means = [m for m, _ in stats]
        if band == "range":
            low, high = [min(column) for column in columns], [max(column) for column in columns]
        else:
            halves = [0.0 if h != h else h for _, h in stats]  # NaN half-width (one seed): no band
            low, high = [m - h for m, h in zip(means, halves)], [m + h for m, h in zip(means, halves)]
        xs = list(range(1, points + 1)) if x is None else x[:points]
        line, = ax.plot(xs, means, **{"marker": "o", "ms": 3, **(styles or {}).get(label, {})}, label=label)
        ax.fill_between(xs, low, high, color=line.get_color(), alpha=0.2, lw=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    return ax


def results_note(proto, fell_back: bool) -> str:
    """The box a chapter shows above its results: stored ``book`` results, or a quick fallback."""
    if fell_back:
        return (":::{warning}\nThe stored `book`-protocol results were not found, so this page shows the "
                "tiny `quick` protocol, run just now. Its numbers say nothing about the claims; run "
                "`make reproduce` and rebuild.\n:::")
    return (f":::{{note}}\nStored results of protocol `{proto.name}` [{proto.digest()}], made by "
            "`golden`'s runner (`python -m golden sweep`); this page only reads them.\n:::")


def _grid_position(values: tuple[float, ...], value: float, log: bool) -> float:
    """Where ``value`` falls on an axis whose ticks are ``values`` at positions 0, 1, 2, ..."""
    import numpy as np

    transform = np.log10 if log else (lambda v: v)
    return float(np.interp(transform(value), transform(np.array(values)), np.arange(len(values))))


def grid_heatmap(cells: dict[tuple[float, float], float | None], lrs: tuple[float, ...], momenta: tuple[float, ...],
                 title: str, marks: dict[str, tuple[float, float]], effective_steps: tuple[float, ...] = (),
                 fmt: str = "{:.3f}", cmap: str = "viridis") -> plt.Figure:
    """A learning rate x momentum heatmap; None cells (diverged) are drawn as grey crosses.

    ``marks`` outlines named pairs; ``effective_steps`` draws the curves eta/(1 - alpha) = c.
    """
    import numpy as np

    values = np.full((len(momenta), len(lrs)), np.nan)
    for (lr, m), value in cells.items():
        if value is not None:
            values[momenta.index(m), lrs.index(lr)] = value
    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    ax.grid(False)
    image = ax.imshow(values, origin="lower", cmap=cmap, aspect="auto")
    fig.colorbar(image, ax=ax, label=title)
    for (lr, m), value in cells.items():
        x, y = lrs.index(lr), momenta.index(m)
        text = "×" if value is None else fmt.format(value)
        ax.text(x, y, text, ha="center", va="center", fontsize=6.5,
                color="0.5" if value is None else "white")
    for name, (lr, m) in marks.items():
        ax.add_patch(plt.Rectangle((lrs.index(lr) - 0.5, momenta.index(m) - 0.5), 1, 1, fill=False, lw=2,
                                   ec="red" if "golden" in name else "orange", label=name))
    for step in effective_steps:
        alphas = np.linspace(min(momenta), max(momenta), 200)
        etas = step * (1 - alphas)
        inside = (etas >= min(lrs)) & (etas <= max(lrs))
        xs = [_grid_position(lrs, eta, log=True) for eta in etas[inside]]
        ys = [_grid_position(momenta, alpha, log=False) for alpha in alphas[inside]]
        ax.plot(xs, ys, "w--", lw=1)
        if xs:
            ax.annotate(f"η/(1−α)={step:.3g}", (xs[0], ys[0]), fontsize=7, color="white",
                        xytext=(3, 6), textcoords="offset points", rotation=75)
    ax.set_xticks(range(len(lrs)), [f"{lr:g}" for lr in lrs])
    ax.set_yticks(range(len(momenta)), [f"{m:g}" for m in momenta])
    ax.set_xlabel("learning rate η")
    ax.set_ylabel("momentum α")
    ax.legend(loc="upper left", bbox_to_anchor=(0, -0.12), ncol=2, fontsize=8)
    return fig
