"""Checks of golden.ledger: every branch of every study's verdict maps to a ledger word
(on synthetic verdicts made by the studies' own functions or constructors), the ledger
built from the stored records carries every chapter's verdict with its numbers, the
rows without an experiment carry no result, the quick-fallback warning, and the page's
place in the book."""

from __future__ import annotations

import dataclasses
import math
import re

import pytest
import yaml

from golden import ledger, theory
from golden.experiments import COMMON_PAIR, GOLDEN_PAIR
from golden.results import Comparison, Estimate
from golden.studies import (
    breakeven,
    contenders,
    grid,
    mse,
    mutual_info,
    noise,
)

OTHER = (0.1, 0.825)


def comparison(a, b, diff, p) -> Comparison:
    return Comparison(a, b, (0, 1, 2), Estimate(diff, abs(diff) / 2, 3), p, p)


# --- every branch maps to a word ------------------------------------------------------


def test_the_word_maps_use_only_ledger_words():
    for words in ledger.WORDS_BY_FINDING.values():
        assert set(words.values()) <= set(ledger.WORDS)
    with pytest.raises(ValueError, match="not a ledger word"):
        ledger.Entry("c", "s", "confirmed", "n", "1", "r")


def test_every_grid_finding_maps_to_a_word(monkeypatch):
    from test_studies_grid import FILLERS, SELECTED, study_of

    first = grid.verdict(study_of({GOLDEN_PAIR: [0.992, 0.991], OTHER: [0.99, 0.99]}))
    tied = grid.verdict(study_of(SELECTED))
    beaten = grid.verdict(
        study_of({GOLDEN_PAIR: [0.980, 0.981, 0.982], OTHER: [0.990, 0.991, 0.9921]})
    )
    none = grid.verdict(study_of({OTHER: [0.99, 0.98]}))
    chosen = grid.Selection({OTHER: 0.01, **{p: 1.0 for p in FILLERS}}, (1.0,) * 99, 7)
    monkeypatch.setattr(grid, "selection", lambda study: chosen)
    suggestive = grid.verdict(study_of(SELECTED))
    found = {v.finding: ledger.grid_entry(v) for v in (first, tied, beaten, none)}
    found["suggestive"] = ledger.grid_entry(suggestive)
    assert set(found) == set(ledger.WORDS_BY_FINDING["grid"])
    for finding, entry in found.items():
        assert entry.verdict == ledger.WORDS_BY_FINDING["grid"][finding]
        assert entry.finding == finding and entry.study == "grid"
    assert found["beaten"].verdict == "not reproduced"
    assert found["no golden"].numbers == "fewer than two golden runs learned"
    tied_entry = found["tied"]
    assert f"max-t {tied.best_max_t:.3f}" in tied_entry.numbers
    assert f"Holm {tied.best.p_adjusted:.3f}" in tied_entry.numbers


def test_every_contenders_finding_maps_to_a_word():
    from test_contenders import fold_run, runs_of, verdict

    first = verdict(runs_of({GOLDEN_PAIR: [0.992] * 3, OTHER: [0.99] * 3}))
    tied = verdict(
        runs_of({GOLDEN_PAIR: [0.990, 0.992, 0.991], OTHER: [0.993, 0.990, 0.993]})
    )
    beaten = verdict(
        runs_of({GOLDEN_PAIR: [0.980, 0.981, 0.982], OTHER: [0.990, 0.992, 0.994]})
    )
    none = verdict([fold_run(OTHER, 0, 0.99), fold_run(OTHER, 1, 0.99)])
    entries = {
        v.finding: ledger.contenders_entry(v) for v in (first, tied, beaten, none)
    }
    assert set(entries) == set(ledger.WORDS_BY_FINDING["contenders"])
    for finding, entry in entries.items():
        assert entry.verdict == ledger.WORDS_BY_FINDING["contenders"][finding]
    assert "folds 0-2 of a stratified" in entries["tied"].claim
    assert f"golden − {contenders.label(OTHER)} -0.0010 ± " in entries["tied"].numbers


def test_every_effective_step_finding_maps_to_a_word():
    from test_studies_effective_lr import GOLDEN, verdict_of
    from test_studies_effective_lr import grid as synthetic

    found = {
        a.finding: a
        for a in (
            verdict_of(synthetic()),
            verdict_of(synthetic(shift={GOLDEN: 0.04})),
            verdict_of(synthetic(shift={GOLDEN: -0.04})),
            verdict_of(synthetic(top=0.99)),
            verdict_of(synthetic(diverged={(GOLDEN, 1)})),
        )
    }
    assert set(found) == set(ledger.WORDS_BY_FINDING["effective_lr"])
    for finding, a in found.items():
        special, alone = ledger.effective_lr_entries(a, 2)
        assert special.verdict == ledger.WORDS_BY_FINDING["effective_lr"][finding]
        assert alone.verdict == "reproduced" and alone.finding == "α adds little"
    assert (
        "the golden pair had a diverged seed"
        in ledger.effective_lr_entries(found["missing"], 2)[0].numbers
    )
    moved = verdict_of(synthetic(alpha_effect=0.2, top=0.75))
    assert ledger.effective_lr_entries(moved, 2)[1].verdict == "not reproduced"


def test_every_breakeven_outcome_maps_to_a_word():
    from test_studies_breakeven import FALLS, RISES, full, staged_study, study_of

    better = lambda step: (1 / (1 + step),) * 2  # noqa: E731
    cases = {
        "reproduced": breakeven.verdict(staged_study(FALLS, FALLS, better)),
        "partly": breakeven.verdict(staged_study(FALLS, FALLS)),
        "not reproduced": breakeven.verdict(staged_study(RISES, RISES)),
        "not testable here": breakeven.verdict(study_of(full()[:2])),
    }
    for word, found in cases.items():
        entry = ledger.breakeven_entry(found, 1)
        assert entry.verdict == word and entry.finding == found.finding
    # judged at matched loss: a fall that does not survive the matching is not shown
    assert ledger.breakeven_word(breakeven.verdict(staged_study(FALLS, RISES))) == (
        "not reproduced"
    )
    unmatched = dataclasses.replace(cases["partly"], matched=None)
    assert ledger.breakeven_word(unmatched) == "partly"
    assert "at matched loss" not in ledger.breakeven_entry(unmatched, 1).numbers


@pytest.mark.parametrize(
    "finding, golden_ahead, word",
    [
        ("slower", True, "reproduced"),
        ("slower", False, "partly"),
        ("not slower", True, "partly"),
        ("not slower", False, "not reproduced"),
        ("untested", False, "not testable here"),
    ],
)
def test_every_mse_outcome_maps_to_a_word(finding, golden_ahead, word):
    est = Estimate(0.98, 0.002, 3)
    tests = (comparison(GOLDEN_PAIR, GOLDEN_PAIR, 0.01 if golden_ahead else 0.0, 0.01),)
    found = mse.Verdict(finding, 5, (est, est), (est, est), tests, 0, "loss")
    entry = ledger.mse_entry(found)
    assert entry.verdict == word and entry.epochs == "5"


@pytest.mark.parametrize(
    "finding",
    ["holds", "holds at some levels", "does not hold", "indistinguishable", "untested"],
)
@pytest.mark.parametrize(
    "robustness",
    ["SGD loses less", "SGD loses more", "mixed", "indistinguishable", "untested"],
)
def test_every_noise_outcome_maps_to_a_word(finding, robustness):
    accuracy = (comparison((0.2, "sgd"), (0.2, "adam"), -0.0014, 0.5),)
    found = noise.Verdict(finding, robustness, 5, (0.0, 0.2), accuracy, (), 0, "noise")
    word = ledger.noise_entry(found).verdict
    expected = (
        "not testable here"
        if (finding, robustness) == ("untested", "untested")
        else "reproduced"
        if (finding, robustness) == ("holds", "SGD loses less")
        else "partly"
        if finding.startswith("holds") or robustness in ("SGD loses less", "mixed")
        else "not reproduced"
    )
    assert word == expected
    assert "20% noise: SGD − Adam -0.0014 ± 0.0007 (Holm 0.500)" in (
        ledger.noise_entry(found).numbers
    )


def test_every_mutual_information_outcome_maps_to_a_word():
    fit = mutual_info.Tracking(90, 0.1, 0.99, 0.05, 0.5, 3.0)
    c = comparison(("mi_decay",), ("constant",), -0.0028, 0.1)
    for decay, word in ledger.WORDS_BY_FINDING["mutual_info"].items():
        found = mutual_info.Verdict(
            "close", decay, fit, None if decay == "untested" else c
        )
        entry = ledger.mutual_info_entry(found, 5)
        assert entry.verdict == word and entry.finding == decay
    wrong = mutual_info.Verdict("violates", "tied", fit, c)
    assert ledger.mutual_info_entry(wrong, 5).verdict == "not testable here"
    assert "ρ" not in ledger.mutual_info_entry(wrong, 5).numbers


def test_every_fashion_finding_maps_to_a_word():
    from test_studies_fashion import FASHION, MNIST, rung_study, verdict

    def found(golden, common):
        rung = rung_study({GOLDEN_PAIR: golden, COMMON_PAIR: common})
        return ledger.fashion_entry(verdict([FASHION, rung], MNIST))

    first = found([0.92, 0.915, 0.918], [0.912, 0.909, 0.912])
    holds = found([0.91, 0.913, 0.909], [0.912, 0.909, 0.912])
    beaten = found([0.880, 0.890, 0.885], [0.900, 0.9101, 0.9052])
    none = found([0.1, 0.1, 0.1], [0.9, 0.91, 0.92])
    words = {e.finding: e.verdict for e in (holds, beaten, none)}
    assert words == ledger.WORDS_BY_FINDING["fashion"]
    assert (first.finding, first.verdict) == ("holds", "reproduced")
    assert "rank 2 of 2, 0 of 1 pairs ahead after Holm" in holds.numbers
    assert none.numbers.startswith("fewer than two golden runs learned")
    assert all("ρ = 1.00" in e.numbers and e.epochs == "10" for e in (first, none))


def test_the_rows_without_an_experiment_carry_no_result():
    rows = ledger.fixed_entries()
    assert all(not row.study and row.epochs == "—" for row in rows)
    postulate = rows[0]
    assert postulate.verdict == "flagged as a postulate"
    assert f"α = {theory.ALPHA:.4f}, η = {theory.ETA:.4f}" in postulate.numbers
    assert {row.verdict for row in rows[1:]} == {"not testable here"}
    assert "600 runs of 30 epochs (protocol paper_half)" in rows[1].numbers


# --- the ledger from the stored records -----------------------------------------------


@pytest.fixture(scope="module")
def stored() -> ledger.Verdicts:
    return ledger.verdicts()


def test_every_study_verdict_is_in_the_ledger_with_its_word(stored):
    rows = ledger.entries(stored)
    by_study = {}
    for row in rows:
        by_study.setdefault(row.study, []).append(row)
    assert set(by_study) - {""} == set(ledger.STUDIES)
    v = stored.found
    for name in ("grid", "contenders"):
        (row,) = by_study[name]
        assert row.finding == v[name].finding
        assert row.verdict == ledger.WORDS_BY_FINDING[name][v[name].finding]
        assert row.epochs == str(v[name].epochs)
    special = by_study["effective_lr"][0]
    assert (
        special.verdict
        == ledger.WORDS_BY_FINDING["effective_lr"][v["effective_lr"].finding]
    )
    (row,) = by_study["breakeven"]
    assert row.verdict == ledger.breakeven_word(v["breakeven"])
    (row,) = by_study["mse"]
    assert row.verdict == ledger.mse_word(v["mse"]) and row.finding == v["mse"].finding
    (row,) = by_study["noise"]
    assert row.verdict == ledger.noise_word(v["noise"])
    (row,) = by_study["mutual_info"]
    assert row.finding == v["mutual_info"].decay
    (row,) = by_study["fashion"]
    assert row.finding == v["fashion"].finding
    assert row.epochs == str(v["fashion"].stages[-1].epochs)
    assert all(row.verdict in ledger.WORDS for row in rows)


def test_the_ledgers_numbers_are_those_the_chapters_print(stored):
    """Each number the ledger gives for a study is in the text its chapter prints."""
    rows = {row.study: row for row in reversed(ledger.entries(stored))}
    v = stored.found
    best = v["grid"].best
    for number in (
        f"{best.p_value:.3f}",
        f"{best.p_adjusted:.3f}",
        f"{v['grid'].best_max_t:.3f}",
        f"{best.diff.half:.4f}",
    ):
        assert number in rows["grid"].numbers and number in v["grid"].text()
    for c in v["contenders"].ahead[:1]:
        assert f"{c.p_adjusted:.3f}" in rows["contenders"].numbers
        assert f"{c.p_adjusted:.3f}" in v["contenders"].text()
    golden = v["effective_lr"].golden
    if golden is not None:
        assert f"{abs(golden.residual):.4f}" in rows["effective_lr"].numbers
        assert f"{abs(golden.residual):.4f}" in v["effective_lr"].text()
    for c in v["noise"].accuracy:
        for number in (f"{c.diff.mean:+.4f}", f"{c.p_adjusted:.3f}"):
            assert number in rows["noise"].numbers and number in v["noise"].text()
    t = v["breakeven"].trends["grad_variance"]
    if not math.isnan(t.rho):
        assert f"{t.rho:+.2f}" in rows["breakeven"].numbers
        assert f"{t.rho:+.2f}" in v["breakeven"].text()
    if v["mse"].finding != "untested":
        ce = format(v["mse"].final[0], ".4f")
        assert ce in rows["mse"].numbers and ce in v["mse"].text()
    t = v["fashion"].transfer
    for number in (f"{t.rho:.2f}", f"{t.low:.2f}"):
        assert number in rows["fashion"].numbers and number in v["fashion"].text()
    c = v["mutual_info"].comparison
    if c is not None:
        for number in (f"{c.diff.mean:+.4f}", f"{c.p_value:.3f}"):
            assert number in rows["mutual_info"].numbers
            assert number in v["mutual_info"].text()


def test_the_page_is_a_table_with_a_row_per_claim_and_its_sources(stored):
    text = ledger.page(stored)
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + len(ledger.entries(stored))
    assert rows[0].startswith("| claim | source | verdict |")
    assert all(re.search(r"\{(ref|doc)\}`", row) for row in rows[1:])
    assert all("{cite:t}`" in row or "own question" in row for row in rows[1:])
    assert text.splitlines()[-1].startswith("Read from: grid, protocol ")
    assert ":::{warning}" not in text or stored.fell_back
    fell = dataclasses.replace(stored, fell_back=("noise",))
    assert ledger.page(fell).startswith(
        ":::{warning}\nThe stored `book`-protocol results of noise were not found"
    )


def test_the_ledger_is_in_the_reference_part_before_the_equations(repo_root):
    toc = yaml.safe_load((repo_root / "_toc.yml").read_text())
    reference = next(p for p in toc["parts"] if p["caption"] == "Reference")
    files = [chapter["file"] for chapter in reference["chapters"]]
    assert files.index("chapters/ledger") + 1 == files.index("chapters/equations")
    assert "ledger.page()" in (repo_root / "chapters" / "ledger.md").read_text()
    assert COMMON_PAIR  # the pairs the rows name come from golden.experiments
