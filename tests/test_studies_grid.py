"""Checks of golden.studies.grid on small synthetic run sets: every verdict branch,
pairing by seed with diverged, unlearned and missing seeds, Holm's correction, the
tables, and the heatmap's legibility (contrast, marks, guide lines, layout)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib import colors
from matplotlib.path import Path

from factories import make_run
from golden import plots, report
from golden.experiments import (
    COMMON_PAIR,
    GOLDEN_PAIR,
    GRID_LRS,
    GRID_MOMENTA,
    protocol,
)
from golden.studies import grid

OTHER = (0.1, 0.825)
FILLERS = [(0.001, m) for m in GRID_MOMENTA[:5]]


def study_of(scores: dict, extra=()) -> report.Study:
    """A study whose pair ``p`` has seed k's final test accuracy ``scores[p][k]``."""
    runs = [
        make_run(pair[0], pair[1], k, test_acc=acc)
        for pair, accs in scores.items()
        for k, acc in enumerate(accs)
    ]
    return report.Study("grid", protocol("quick"), tuple(runs) + tuple(extra))


def test_golden_first():
    found = grid.verdict(
        study_of({GOLDEN_PAIR: [0.992, 0.991, 0.993], OTHER: [0.990, 0.990, 0.991]})
    )
    assert (found.finding, found.rank, found.pairs) == ("first", 1, 2)
    assert "ranks first of 2: the claim holds" in found.text()


def test_tied_when_the_best_pair_is_ahead_within_the_noise():
    found = grid.verdict(
        study_of(
            {
                GOLDEN_PAIR: [0.990, 0.992, 0.991],
                OTHER: [0.993, 0.990, 0.993],
                COMMON_PAIR: [0.989, 0.990, 0.988],
            }
        )
    )
    assert found.finding == "tied" and found.rank == 2 and found.best.b == OTHER
    assert found.best.diff.mean == pytest.approx(-0.001) and found.best.p_value > 0.05
    assert "shares the first place" in found.text()
    assert f"even taken alone (max-t p = {found.best_max_t:.3f})" in found.text()
    assert "1 pair(s) have a higher mean" in found.text()
    assert f"common pair {COMMON_PAIR} differs from it by +0.0020" in found.text()


SELECTED = {
    GOLDEN_PAIR: [0.980, 0.981, 0.982],
    OTHER: [0.983, 0.9835, 0.9855],
    **{pair: [0.980, 0.979, 0.981] for pair in FILLERS},
}


def test_tied_when_significant_alone_but_not_after_selection():
    found = grid.verdict(study_of(SELECTED))
    assert found.finding == "tied" and found.tested == 6
    assert found.best.p_value < 0.05 <= found.best.p_adjusted
    assert found.selection.patterns == 8 and found.selection.smallest == 1 / 8
    assert found.best_max_t >= found.selection.smallest
    text = found.text()
    assert "Taken alone that difference is significant at the 5% level" in text
    assert "picked as the best of the 6 compared" in text
    assert "(all 8 sign patterns of the 3 seeds)" in text
    reached = found.selection.reached(OTHER)
    assert (
        f"in {reached} of them (p = {found.best_max_t:.3f}; 3 seeds cannot give less "
        "than 0.125)" in text
    )
    assert "Nothing shows that the golden pair is beaten" in text


def test_suggestive_when_the_lead_survives_selection_but_not_holm(monkeypatch):
    chosen = grid.Selection({OTHER: 0.01, **{p: 1.0 for p in FILLERS}}, (1.0,) * 100, 7)
    monkeypatch.setattr(grid, "selection", lambda study: chosen)
    found = grid.verdict(study_of(SELECTED))
    assert found.finding == "suggestive" and found.best_max_t == 0.01
    text = found.text()
    assert "in 1 of them (p = 0.010; 7 seeds cannot give less than 0.010)" in text
    assert "its lead survives that selection, though not the Holm correction" in text
    assert "suggestive, not conclusive" in text and "over the 6 pairs" in text


def test_selection_is_the_max_t_test_of_the_holm_family():
    study = study_of(SELECTED)
    chosen = grid.selection(study)
    assert set(chosen.adjusted) == {c.b for c in grid.comparisons(study)}
    assert chosen.replicates == 3 and chosen.patterns == 8
    assert chosen.reached(OTHER) == round(chosen.adjusted[OTHER] * 8)


def test_family_line_counts_the_pairs_compared():
    assert grid.family_line(study_of(SELECTED)).splitlines() == [
        "the golden pair against 6 of the 6 other pairs;",
        "every one shares two or more learned seeds with it",
    ]
    runs = [make_run(*COMMON_PAIR, 0, test_acc=0.99)]  # one seed: not compared
    text = grid.family_line(study_of(SELECTED, runs))
    assert text.splitlines() == [
        "the golden pair against 6 of the 7 other pairs;",
        "1 have fewer than two seeds learned by both",
    ]


def test_beaten_after_holm():
    found = grid.verdict(
        study_of({GOLDEN_PAIR: [0.980, 0.981, 0.982], OTHER: [0.990, 0.991, 0.9921]})
    )
    assert found.finding == "beaten" and [c.b for c in found.beaten_by] == [OTHER]
    assert found.best.p_adjusted < 0.05
    assert (
        "does **not** hold" in found.text() and report.pair_label(OTHER) in found.text()
    )


def test_no_verdict_without_two_learned_golden_seeds():
    runs = [
        make_run(*GOLDEN_PAIR, 1, diverged=True),
        make_run(*GOLDEN_PAIR, 2, test_acc=0.1),  # at chance
    ]
    found = grid.verdict(study_of({GOLDEN_PAIR: [0.99], OTHER: [0.99, 0.98]}, runs))
    assert found.finding == "no golden" and "no verdict" in found.text()
    assert grid.comparisons(study_of({OTHER: [0.99, 0.98]})) == []


def test_pairs_by_seed_leaving_out_diverged_unlearned_and_missing_seeds():
    """OTHER diverged on seed 0 and stayed at chance on seed 2; COMMON has no seed 1."""
    runs = [
        make_run(*OTHER, 0, diverged=True),
        make_run(*OTHER, 1, test_acc=0.985),
        make_run(*OTHER, 2, test_acc=0.098),
        make_run(*OTHER, 3, test_acc=0.965),
    ]
    runs += [make_run(*COMMON_PAIR, k, test_acc=t) for k, t in ((0, 0.991), (2, 0.971))]
    study = study_of({GOLDEN_PAIR: [0.990, 0.980, 0.970, 0.960]}, runs)
    by_pair = {c.b: c for c in grid.comparisons(study)}
    assert by_pair[OTHER].replicates == (1, 3)
    assert by_pair[OTHER].diff.mean == pytest.approx(-0.005)
    assert by_pair[COMMON_PAIR].replicates == (0, 2)
    assert by_pair[COMMON_PAIR].diff.mean == pytest.approx(-0.001)
    # the table counts how the runs ended; the unlearned run is not averaged in
    other_row = next(
        line
        for line in grid.best_table(study).splitlines()
        if "| 0.1 | 0.825 |" in line
    )
    assert "0.9750 ± " in other_row and other_row.endswith("| 2 / 1 / 1 |")


def test_best_table_and_golden_rank():
    scores = {pair: [0.9 + 0.001 * i] * 2 for i, pair in enumerate(FILLERS)}
    scores[GOLDEN_PAIR] = [0.95, 0.951]
    scores[COMMON_PAIR] = [0.1, 0.1]  # at chance: no rank
    study = study_of(scores)
    lines = grid.best_table(study, top=3).splitlines()
    assert len(lines) == 2 + 3
    assert lines[2].startswith("| 1 | 0.016 | 0.874 | 0.9505 ± ")
    assert lines[3].startswith("| 2 | 0.001 | 0.8 | 0.9040")
    assert grid.golden_rank_text(study).startswith("The golden pair ranks **1** of 6 ")


def test_comparison_table_shows_holm_p():
    study = study_of(
        {
            GOLDEN_PAIR: [0.990, 0.992, 0.991],
            OTHER: [0.993, 0.990, 0.993],
            COMMON_PAIR: [0.989, 0.990, 0.988],
        }
    )
    lines = grid.comparison_table(study).splitlines()
    assert lines[2].startswith("| best other pair | 0.1 | 0.825 | -0.0010 ± ")
    assert lines[3].startswith("| common pair | 0.01 | 0.9 | +0.0020 ± ")
    assert lines[3].endswith("| 3 |") and "Holm p | max-t p |" in lines[0]


def test_long_table_and_figure():
    runs = [make_run(*OTHER, k, diverged=True) for k in range(2)]
    study = study_of(
        {GOLDEN_PAIR: [[0.9, 0.99], [0.91, 0.98]], COMMON_PAIR: [[0.9, 0.97]] * 2}, runs
    )
    lines = grid.long_table(study).splitlines()
    assert lines[2].startswith("| 1 | 0.016 | 0.874 | 0.9850 ± ")
    assert lines[4] == "| — | 0.1 | 0.825 | n/a | n/a | 0 / 2 / 0 |"
    fig = grid.long_run_figure(study)
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 2
    assert any(study.stamp("long run, 95% bands") in t.get_text() for t in fig.texts)
    plt.close(fig)


# --- the heatmap ----------------------------------------------------------------


def full_grid() -> report.Study:
    """Every grid pair, two seeds: accuracy rising with the learning rate, the golden
    pair good, one pair diverged, one at chance, one pair best."""
    runs = []
    for i, lr in enumerate(GRID_LRS):
        for j, m in enumerate(GRID_MOMENTA):
            for k in range(2):
                if (lr, m) == (0.2, 0.925):
                    runs.append(make_run(lr, m, k, diverged=True))
                    continue
                acc = 0.1 if (lr, m) == (0.2, 0.9) else 0.5 + 0.08 * i + 0.001 * j
                acc = {GOLDEN_PAIR: 0.99, OTHER: 0.992}.get((lr, m), acc) + 0.0005 * k
                runs.append(make_run(lr, m, k, test_acc=acc, train_loss=1.01 - acc))
    return report.Study("grid", protocol("quick"), tuple(runs))


@pytest.fixture(scope="module")
def heatmap():
    plots.use_style()
    fig = grid.test_accuracy_figure(full_grid())
    fig.canvas.draw()
    yield fig
    plt.close(fig)


def cell_texts(ax):
    """(pair, text) of every cell's number."""
    found = {}
    for text in ax.texts:
        x, y = text.get_position()
        found[(GRID_LRS[round(x)], GRID_MOMENTA[round(y)])] = text
    return found


def test_heatmap_is_log_scaled_page_sized_and_readable(heatmap):
    ax = heatmap.axes[0]
    assert isinstance(ax.images[0].norm, colors.LogNorm)
    assert heatmap.get_size_inches()[0] <= 8
    assert min(t.get_fontsize() for t in ax.texts) >= 7
    texts = cell_texts(ax)
    assert texts[(0.2, 0.925)].get_text() == "diverged"
    assert texts[(0.2, 0.9)].get_text() == "chance"
    assert texts[GOLDEN_PAIR].get_text() == f"{100 * (1 - 0.99025):.2f}"  # error in %


def test_heatmap_text_contrasts_with_its_cell(heatmap):
    ax = heatmap.axes[0]
    image = ax.images[0]
    ratios, by_luminance = [], []
    for pair, text in cell_texts(ax).items():
        value = image.get_array()[GRID_MOMENTA.index(pair[1]), GRID_LRS.index(pair[0])]
        if np.ma.is_masked(value):
            continue
        cell = plots._luminance(image.cmap(image.norm(value)))
        ink = plots._luminance(colors.to_rgba(text.get_color()))
        ratios.append((max(cell, ink) + 0.05) / (min(cell, ink) + 0.05))
        by_luminance.append((cell, ink))
    by_luminance.sort()
    assert by_luminance[0][1] > 0.9  # the darkest cell: white text
    assert by_luminance[-1][1] < 0.05  # the lightest cell: dark text
    assert min(ratios) >= 4  # every number is readable on its cell


def test_heatmap_marks_the_golden_and_the_best_pair(heatmap):
    ax = heatmap.axes[0]
    centres = {
        p.get_label(): (p.get_x() + p.get_width() / 2, p.get_y() + p.get_height() / 2)
        for p in ax.patches
    }
    golden = next(c for name, c in centres.items() if "golden" in name)
    best = next(c for name, c in centres.items() if "best" in name)
    assert golden == pytest.approx(
        (GRID_LRS.index(GOLDEN_PAIR[0]), GRID_MOMENTA.index(GOLDEN_PAIR[1]))
    )
    assert best == pytest.approx(
        (GRID_LRS.index(OTHER[0]), GRID_MOMENTA.index(OTHER[1]))
    )


def test_heatmap_guide_lines_pass_between_the_numbers(heatmap):
    ax = heatmap.axes[0]
    renderer = heatmap.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert len(ax.lines) == 4  # eta / (1 - alpha) = 0.01, 0.1, golden, 1
    for line in ax.lines:
        xy = ax.transData.transform(np.column_stack(line.get_data()))
        pieces = np.split(xy, np.where(np.isnan(xy[:, 0]))[0])
        pieces = [piece[~np.isnan(piece[:, 0])] for piece in pieces]
        drawn = [piece for piece in pieces if len(piece) >= 2]
        assert drawn  # the curve is shown
        for piece in drawn:
            assert not any(
                Path(piece).intersects_bbox(box, filled=False) for box in boxes
            )


def test_heatmap_legend_and_colourbar_clear_of_the_stamp_and_the_cells(heatmap):
    renderer = heatmap.canvas.get_renderer()
    ax, bar = heatmap.axes
    stamp = heatmap.texts[-1]
    assert stamp.get_text().startswith("mode: ")
    stamp_box = stamp.get_window_extent(renderer)
    legend_box = heatmap.legends[0].get_window_extent(renderer)
    bar_box = bar.get_tightbbox(renderer)
    assert not legend_box.overlaps(stamp_box) and not bar_box.overlaps(stamp_box)
    assert not legend_box.overlaps(ax.get_tightbbox(renderer))
    assert not bar_box.overlaps(ax.get_window_extent(renderer))


def test_train_loss_heatmap_renders():
    fig = grid.train_loss_figure(full_grid())
    assert isinstance(fig.axes[0].images[0].norm, colors.LogNorm)
    assert "training loss" in fig.axes[1].get_ylabel()
    plt.close(fig)
