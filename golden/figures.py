"""Every figure of the book, by name, drawn from stored results (or from theory).

Each module listed in :data:`FIGURE_MODULES` declares ``FIGURES``: figure names mapped
to
functions that take nothing and return a stamped matplotlib figure. ``python -m golden
figures --out DIR`` draws them all without executing a chapter; the chapters call the
same functions.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

import matplotlib.pyplot as plt

from golden import plots, report, settings
from golden.files import prove_writable
from golden.protocols import ExperimentError
from golden.store import Store

FIGURE_MODULES = (
    "golden.derivations.momentum",
    "golden.derivations.bayes",
    "golden.dynamics",
    "golden.studies.training",
    "golden.studies.grid",
    "golden.studies.contenders",
    "golden.studies.effective_lr",
    "golden.studies.breakeven",
    "golden.studies.mse",
    "golden.studies.noise",
    "golden.studies.mutual_info",
    "golden.studies.fashion",
)


def registry() -> dict[str, Callable[[], plt.Figure]]:
    """Figure name -> drawing function, over every figure module; a name is never
    reused."""
    figures: dict[str, Callable[[], plt.Figure]] = {}
    for module_name in FIGURE_MODULES:
        for name, draw in importlib.import_module(module_name).FIGURES.items():
            if name in figures:
                raise ValueError(
                    f"figure {name!r} is declared twice (again in {module_name})"
                )
            figures[name] = draw
    return figures


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
            for name in names:
                drawn.append((name, figures[name]()))
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
