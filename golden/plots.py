"""The book's figures: one matplotlib style, the stamp under each figure, saving, the
drawing helpers the studies share, and the registry of every figure by name.

A study registers a figure with :func:`figure`; the chapter calls the drawing function
on the study it loaded and :func:`show` saves the figure under its registered name,
while ``python -m golden figures`` (:mod:`golden.figures`) draws every registered
figure from its own ``load()``. This module imports no study, so any may import it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

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
    # Opaque white: on the book's dark theme, a transparent figure's black text would
    # stand on black.
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "savefig.transparent": False,
}


def use_style() -> None:
    """Apply the book's style; chapters call this once at the top."""
    plt.rcParams.update(STYLE)


def stamp(fig: plt.Figure, note: str = "") -> None:
    """Write the run mode (and an optional protocol note) under the figure's right
    corner; the tight bounding box of ``savefig`` grows to hold it, so it never covers
    an axis label."""
    text = f"mode: {settings.mode_name()}" + (f" · {note}" if note else "")
    fig.text(0.99, -0.01, text, ha="right", va="top", fontsize=8, color="0.4")


def save_figure(
    fig: plt.Figure, name: str, note: str = "", folder: Path | None = None
) -> Path:
    """Write ``fig`` as ``<folder>/<name>.png`` (default folder: the book's figures), on
    white; with a ``note``, stamp it first (registered figures come stamped)."""
    if note:
        stamp(fig, note)
    folder = Path(folder) if folder is not None else settings.figures_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    fig.savefig(path, facecolor="white", transparent=False)
    return path


def show(fig: plt.Figure):
    """Save a registered figure under its name (see :func:`save_figure`) and return it
    as an image for the notebook page."""
    from IPython.display import Image

    name = fig.get_label()
    if name not in FIGURES:
        raise ValueError(f"figure {name!r} is not registered: decorate its function")
    path = save_figure(fig, name)
    plt.close(fig)
    return Image(filename=str(path))


@dataclass(frozen=True)
class Registered:
    """A figure of the book: its drawing function and how to load what it draws."""

    draw: Callable[..., plt.Figure]
    load: Callable[[], object] | None = None

    def __call__(self) -> plt.Figure:
        return self.draw() if self.load is None else self.draw(self.load())

    @property
    def module(self) -> str:
        """The name of the module that registered it."""
        return self.draw.__module__


FIGURES: dict[str, Registered] = {}  # every figure of the book, by name


def _where(draw: Callable) -> str:
    """A drawing function's full name (of the function it wraps, once registered), so
    that importing a module again registers nothing twice."""
    draw = getattr(draw, "__wrapped__", draw)
    return f"{draw.__module__}.{draw.__qualname__}"


def figure(name: str, load: Callable[[], object] | None = None) -> Callable:
    """Register the decorated function as the figure ``name``, drawn from ``load()``
    (from nothing without it); every figure it returns is labelled ``name``, the name
    :func:`show` and :mod:`golden.figures` save it under."""

    def register(draw: Callable[..., plt.Figure]) -> Callable[..., plt.Figure]:
        @functools.wraps(draw)
        def labelled(*args, **kwargs) -> plt.Figure:
            fig = draw(*args, **kwargs)
            fig.set_label(name)
            return fig

        known = FIGURES.get(name)
        if known is not None and _where(known.draw) != _where(draw):
            raise ValueError(
                f"figure {name!r} is registered twice (again by {_where(draw)})"
            )
        FIGURES[name] = Registered(labelled, load)
        return labelled

    return register


def learning_curves(
    curves: dict[str, list[list[float]]],
    ylabel: str,
    ax: plt.Axes | None = None,
    x: list[float] | None = None,
    xlabel: str = "epoch",
    styles: dict[str, dict] | None = None,
    band: str = "ci",
) -> plt.Axes:
    """One line per label: the mean over seeds at each point (epochs 1, 2, ... unless
    ``x`` is given), with a band of +- one 95% half-width (``band="ci"``) or from the
    lowest to the highest seed (``band="range"``, for log axes, where a t-interval of
    three seeds can reach below zero). ``styles`` passes plot options per label."""
    from golden.stats import mean_ci

    ax = ax or plt.subplots()[1]
    for label, per_seed in curves.items():
        points = min(len(seed_curve) for seed_curve in per_seed)
        columns = [[seed_curve[e] for seed_curve in per_seed] for e in range(points)]
        stats = [mean_ci(column) for column in columns]
        means = [m for m, _ in stats]
        if band == "range":
            low, high = (
                [min(column) for column in columns],
                [max(column) for column in columns],
            )
        else:
            halves = [
                0.0 if h != h else h for _, h in stats
            ]  # NaN half-width (one seed): no band
            low, high = (
                [m - h for m, h in zip(means, halves)],
                [m + h for m, h in zip(means, halves)],
            )
        xs = list(range(1, points + 1)) if x is None else x[:points]
        (line,) = ax.plot(
            xs,
            means,
            **{"marker": "o", "ms": 3, **(styles or {}).get(label, {})},
            label=label,
        )
        ax.fill_between(xs, low, high, color=line.get_color(), alpha=0.2, lw=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    return ax


def _grid_position(values: tuple[float, ...], value: float, log: bool) -> float:
    """Where ``value`` falls on an axis whose ticks ``values`` are at 0, 1, 2, ..."""
    import numpy as np

    transform = np.log10 if log else (lambda v: v)
    return float(
        np.interp(transform(value), transform(np.array(values)), np.arange(len(values)))
    )


HEATMAP_MARKS = (  # outline colour and line style of the 1st, 2nd, 3rd ... marked pair
    ("#d62728", "-"),
    ("black", (0, (3, 1.5))),
    ("#1f77b4", (0, (1, 1))),
)
HEATMAP_FONT = 7.5  # points: the numbers in the cells
_DARK_TEXT, _LIGHT_TEXT = "0.1", "white"


def _luminance(rgba) -> float:
    """Relative luminance (WCAG 2) of a colour: 0 black, 1 white."""
    channels = [
        c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgba[:3]
    ]
    return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]


def text_colour(background) -> str:
    """Dark text on a light cell, white on a dark one (whichever contrasts more)."""
    lum = _luminance(background)
    dark = (lum + 0.05) / (_luminance((0.1, 0.1, 0.1)) + 0.05)
    light = 1.05 / (lum + 0.05)
    return _DARK_TEXT if dark >= light else _LIGHT_TEXT


def _guide(ax, lrs, momenta, step: float, boxes, **style) -> None:
    """The curve eta / (1 - alpha) = step, left out inside every box (data units)."""
    import numpy as np

    alphas = np.linspace(min(momenta), max(momenta), 4000)
    etas = step * (1 - alphas)
    inside = (etas >= min(lrs)) & (etas <= max(lrs))
    xs = np.array([_grid_position(lrs, eta, log=True) for eta in etas[inside]])
    ys = np.array(
        [_grid_position(momenta, alpha, log=False) for alpha in alphas[inside]]
    )
    for x0, y0, x1, y1 in boxes:
        hidden = (xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)
        xs, ys = np.where(hidden, np.nan, xs), np.where(hidden, np.nan, ys)
    ax.plot(xs, ys, **style)


def grid_heatmap(
    cells: dict[tuple[float, float], float | None],
    lrs: tuple[float, ...],
    momenta: tuple[float, ...],
    label: str,
    marks: dict[str, tuple[float, float]],
    guides: dict[str, tuple[float, ...]] | None = None,
    fmt: str = "{:.2f}",
    log: bool = True,
    missing: dict[tuple[float, float], str] | None = None,
    title: str = "",
    cmap: str = "viridis_r",
) -> plt.Figure:
    """A learning rate x momentum heatmap, readable at the page's width (7.5 in).

    ``cells`` maps each pair to its value (None: no value, written as
    ``missing[pair]``, default "×", on grey). Colours follow a log scale by default
    (``log``), so that the good pairs, all within a factor of a few of each other,
    do not share one colour. Each number is written dark on a light cell and white
    on a dark one. ``marks`` outlines named pairs (the first in red, then black
    dashed, then blue dotted; one pair may carry several marks, drawn inside one
    another). ``guides`` draws, for each legend label, the curves eta / (1 - alpha)
    = c for its values c: they pass between the numbers, never through them. The
    legend sits under the axes, inside the figure, so that it cannot cover the stamp
    that :func:`stamp` writes below the figure.
    """
    import numpy as np
    from matplotlib import colors, patheffects, ticker

    values = np.full((len(momenta), len(lrs)), np.nan)
    for (lr, m), value in cells.items():
        if value is not None:
            values[momenta.index(m), lrs.index(lr)] = value
    finite = values[np.isfinite(values)]
    colour_map = plt.get_cmap(cmap).with_extremes(bad="0.88")
    if log and finite.size and finite.min() > 0:
        norm = colors.LogNorm(finite.min(), finite.max())
    else:
        norm = colors.Normalize(
            *(finite.min(), finite.max()) if finite.size else (0, 1)
        )
    fig = plt.figure(figsize=(7.5, 6.0))
    ax = fig.add_axes((0.1, 0.22, 0.72, 0.71))
    bar_ax = fig.add_axes((0.85, 0.22, 0.025, 0.71))
    ax.grid(False)
    image = ax.imshow(values, origin="lower", cmap=colour_map, norm=norm, aspect="auto")
    bar = fig.colorbar(image, cax=bar_ax, label=label)
    if isinstance(norm, colors.LogNorm):
        bar.ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1, 2, 5)))
        bar.ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
        bar.ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    texts = []
    for (lr, m), value in cells.items():
        x, y = lrs.index(lr), momenta.index(m)
        if value is None:
            text, colour = (missing or {}).get((lr, m), "×"), _DARK_TEXT
        else:
            text, colour = fmt.format(value), text_colour(colour_map(norm(value)))
        texts.append(
            ax.text(
                x,
                y,
                text,
                ha="center",
                va="center",
                fontsize=HEATMAP_FONT,
                color=colour,
            )
        )
    halo = [patheffects.withStroke(linewidth=4.2, foreground="white")]
    for i, (name, (lr, m)) in enumerate(marks.items()):
        colour, style = HEATMAP_MARKS[i % len(HEATMAP_MARKS)]
        inset = 0.04 + 0.07 * list(marks.values())[:i].count((lr, m))
        ax.add_patch(
            plt.Rectangle(
                (lrs.index(lr) - 0.5 + inset, momenta.index(m) - 0.5 + inset),
                1 - 2 * inset,
                1 - 2 * inset,
                fill=False,
                lw=2.2,
                ec=colour,
                ls=style,
                label=name,
                path_effects=halo,
                zorder=3,
            )
        )
    ax.set_xticks(range(len(lrs)), [f"{lr:g}" for lr in lrs])
    ax.set_yticks(range(len(momenta)), [f"{m:g}" for m in momenta])
    ax.set_xlim(-0.5, len(lrs) - 0.5)
    ax.set_ylim(-0.5, len(momenta) - 0.5)
    ax.set_xlabel("learning rate η")
    ax.set_ylabel("momentum α")
    if title:
        ax.set_title(title, fontsize=10)
    renderer = fig.canvas.get_renderer()
    to_data = ax.transData.inverted()
    boxes = [
        to_data.transform(
            t.get_window_extent(renderer).expanded(1.5, 1.8).get_points()
        ).ravel()
        for t in texts
    ]
    line_styles = [
        dict(color="#d62728", lw=1.6),
        dict(color="0.15", lw=1.1, ls=(0, (4, 2))),
    ]
    for i, (name, steps) in enumerate((guides or {}).items()):
        style = line_styles[i % len(line_styles)]
        for j, step in enumerate(steps):
            _guide(
                ax,
                lrs,
                momenta,
                step,
                boxes,
                label=name if j == 0 else None,
                path_effects=[patheffects.withStroke(linewidth=3, foreground="white")],
                zorder=2,
                **style,
            )
    fig.legend(
        *ax.get_legend_handles_labels(),
        loc="lower left",
        bbox_to_anchor=(0.02, 0.005),
        ncol=2,
        fontsize=8,
        handlelength=3,
    )
    return fig
