"""``python -m golden figures``: every figure of the book, drawn without a chapter.

Each figure is registered where it is drawn (:func:`golden.plots.figure`); this module
imports every module that draws one, so that the registry holds them all, and writes
them as PNG files.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from golden import dynamics, plots, report, settings
from golden.derivations import bayes, momentum
from golden.files import prove_writable
from golden.protocols import ExperimentError
from golden.store import Store
from golden.studies import (
    breakeven,
    contenders,
    effective_lr,
    fashion,
    grid,
    mse,
    mutual_info,
    noise,
    training,
)

DRAWING_MODULES = (
    momentum,
    bayes,
    dynamics,
    training,
    grid,
    contenders,
    effective_lr,
    breakeven,
    mse,
    noise,
    mutual_info,
    fashion,
)  # every module that registers a figure, in the book's order


def registry() -> dict[str, plots.Registered]:
    """Figure name -> its registered drawing, every figure of the book, in the order
    of :data:`DRAWING_MODULES` (whatever order the modules were imported in)."""
    order = {module.__name__: i for i, module in enumerate(DRAWING_MODULES)}
    return dict(sorted(plots.FIGURES.items(), key=lambda item: order[item[1].module]))


def write(
    store: Store, out: Path | None = None, names: list[str] | None = None
) -> list[Path]:
    """Draw the named figures (default: all) from the records in ``store`` into ``out``
    (default: the book's figures/). Nothing is trained: a figure whose records are
    missing is a :class:`~golden.report.RecordsMissing` error naming the command that
    computes them, raised before any file is written."""
    figures = registry()
    unknown = sorted(set(names or ()) - set(figures))
    if unknown:
        raise ExperimentError(
            f"unknown figure {unknown[0]!r}: choose from {', '.join(figures)}"
        )
    folder = settings.figures_dir() if out is None else Path(out)
    try:
        prove_writable(folder)  # before the drawing, which may take a while
    except OSError as error:
        raise ExperimentError(
            f"cannot write figures to {folder} ({error.strerror or error}): make it a "
            "folder you may write to, or choose another with --out"
        ) from None
    plots.use_style()
    names = names or list(figures)
    drawn = []
    try:  # every figure is drawn, its records found, before the first is written
        with report.stored_only(store), plt.rc_context({"figure.max_open_warning": 0}):
            studies = {}  # each study loaded once, however many figures it draws
            for name in names:
                drawn.append((name, _drawn(figures[name], studies)))
        paths = []
        for name, fig in drawn:
            try:
                paths.append(plots.save_figure(fig, name, folder=folder))
            except OSError as error:
                raise ExperimentError(
                    f"cannot write {folder / name}.png ({error.strerror or error}); "
                    f"{len(paths)} of the {len(names)} figures were written and are "
                    "kept"
                ) from None
    finally:
        for _, fig in drawn:
            plt.close(fig)
    return paths


def _drawn(figure: plots.Registered, studies: dict) -> plt.Figure:
    """``figure`` drawn from its study, loaded unless ``studies`` holds it already."""
    if figure.load is None:
        return figure.draw()
    if figure.load not in studies:
        studies[figure.load] = figure.load()
    return figure.draw(studies[figure.load])
