"""Checks of golden.figures: every figure of the book is registered once, drawn without
a chapter, on white, and legible at the width the page shows it."""

from __future__ import annotations

import re
from collections.abc import Iterator

import matplotlib.pyplot as plt
import pytest
from matplotlib.text import Text

from factories import stamps
from golden import cli, figures, plots
from golden.derivations import momentum

PAGE_WIDTH_IN = 7.5  # the book's content column: a wider figure is shrunk to it
SMALLEST_PT = 6.0  # the smallest text a reader sees on the page, in points
SHOWN = re.compile(r"plots\.show\((\w+)\.(\w+)\(")  # module alias, drawing function
IMPORTED = re.compile(r"^from golden[.\w]* import (.+)$", re.MULTILINE)


def shown_in(chapter: str) -> set[tuple[str, str]]:
    """(module, drawing function) of every figure a chapter shows, its import aliases
    (``from golden.studies import effective_lr as elr``) resolved."""
    names = {}
    for imported in IMPORTED.findall(chapter):
        for name in imported.split(","):
            module, _, alias = name.strip().partition(" as ")
            names[alias or module] = module
    return {(names[alias], draw) for alias, draw in SHOWN.findall(chapter)}


@pytest.fixture(scope="module")
def drawn() -> Iterator[dict[str, plt.Figure]]:
    """Every figure of the book, drawn once for this module's tests, closed after."""
    plots.use_style()
    with plt.rc_context({"figure.max_open_warning": 0}):
        figs = {name: draw() for name, draw in figures.registry().items()}
    yield figs
    for fig in figs.values():
        plt.close(fig)


def test_every_page_figure_and_every_committed_png_is_registered(repo_root):
    registered = set(figures.registry())
    drawing = {
        (entry.module.rsplit(".", 1)[-1], entry.draw.__name__)
        for entry in figures.registry().values()
    }
    chapters = [path.read_text() for path in (repo_root / "chapters").glob("*.md")]
    shown = {pair for text in chapters for pair in shown_in(text)}
    committed = {path.stem for path in (repo_root / "figures").glob("*.png")}
    assert shown and shown <= drawing, f"shown, not registered: {shown - drawing}"
    assert all(
        "plots.show(" not in line or '"' not in line
        for text in chapters
        for line in text.splitlines()
    ), "a chapter types a figure's name"
    assert committed <= registered, f"stale PNGs: {sorted(committed - registered)}"


def test_a_figure_is_shown_under_its_registered_name_only(tmp_path, monkeypatch):
    monkeypatch.setattr(plots.settings, "figures_dir", lambda: tmp_path)
    fig = momentum.stability_figure()
    assert fig.get_label() == "heavy_ball_stability"
    plots.show(fig)
    assert [path.name for path in tmp_path.iterdir()] == ["heavy_ball_stability.png"]
    blank = plt.figure()
    with pytest.raises(ValueError, match="not registered"):
        plots.show(blank)
    plt.close(blank)


def test_a_name_registered_by_another_function_is_refused():
    with pytest.raises(ValueError, match="'heavy_ball_stability' is registered twice"):
        plots.figure("heavy_ball_stability")(lambda: plt.figure())
    assert plots.FIGURES["heavy_ball_stability"].module == momentum.__name__


def test_every_figure_draws_and_is_stamped(drawn):
    for name, fig in drawn.items():
        assert fig.axes, name
        assert len(stamps(fig)) == 1, f"{name}: {len(stamps(fig))} stamps"


def test_every_text_is_legible_at_the_page_width(drawn):
    for name, fig in drawn.items():
        width = fig.get_size_inches()[0]
        scale = min(1.0, PAGE_WIDTH_IN / width)
        for text in fig.findobj(Text):
            if text.get_visible() and text.get_text().strip():
                shown_pt = text.get_fontsize() * scale
                assert shown_pt >= SMALLEST_PT, (
                    f"{name}: {text.get_text()[:30]!r} shows at {shown_pt:.1f} pt "
                    f"({text.get_fontsize():g} pt in a {width:g} in wide figure)"
                )


def test_the_command_writes_figures_on_white(tmp_path, capsys):
    name = next(iter(figures.registry()))
    assert cli.main(["figures", "--out", str(tmp_path), name]) == 0
    path = tmp_path / f"{name}.png"
    assert capsys.readouterr().out.strip() == str(path)
    image = plt.imread(path)
    assert image.shape[2] == 3 or image[..., 3].min() == 1.0  # opaque
    assert image[0, 0, :3].tolist() == [1.0, 1.0, 1.0]  # the corner is white


def test_an_unknown_figure_is_one_line_and_status_2(tmp_path, capsys):
    assert cli.main(["figures", "--out", str(tmp_path), "no_such_figure"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "unknown figure 'no_such_figure'" in error
    assert not list(tmp_path.iterdir())


def refuse_to_train(*args, **kwargs):
    raise AssertionError("python -m golden figures must train nothing")


def test_figures_without_records_is_one_line_naming_the_sweep(
    tmp_path, capsys, monkeypatch
):
    """An empty results folder: one line naming the command that computes the missing
    records, status 2, nothing written, and no run started (quick mode, where a chapter
    would train the quick fallback)."""
    monkeypatch.setattr("golden.runner.sweep", refuse_to_train)
    out_folder = tmp_path / "out"
    argv = ["figures", "--results", str(tmp_path / "empty"), "--out", str(out_folder)]
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("golden: error: "), err
    assert "python -m golden sweep training --protocol book" in err
    assert out == "" and not list(out_folder.iterdir())


def test_the_figures_command_draws_every_figure_from_the_records_alone(
    tmp_path, capsys, monkeypatch
):
    """From the committed records, every figure is written and no run is trained."""
    monkeypatch.setattr("golden.runner.sweep", refuse_to_train)
    monkeypatch.setattr("golden.runner.run_one", refuse_to_train)
    assert cli.main(["figures", "--out", str(tmp_path)]) == 0
    written = capsys.readouterr().out.split()
    assert sorted(written) == sorted(
        str(tmp_path / f"{name}.png") for name in figures.registry()
    )
