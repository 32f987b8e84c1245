"""The book is citable: CITATION.cff, a How to cite page, one meaning per number.

Book equations are numbered by chapter, (2.5); a bare number such as "Eq. (24)" is the
source's (Jaeger 2024), and the equation index maps the two. These tests keep that map
complete: every source number the text quotes is in the index, and the index agrees with
the displays themselves.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from conftest import EQUATION_LABEL, REPO_ROOT
from golden import publish

CHAPTERS = REPO_ROOT / "chapters"
INDEX = CHAPTERS / "equations.md"
SOURCE_TAG = re.compile(r"\\text\{\[Jaeger 2024: ([^\]]*)\]\}")
"""How a display shows the source's number: \\text{[Jaeger 2024: (24)]}."""
QUOTED = re.compile(r"Eqs?\.\s*((?:\(\d+\)(?:\s*(?:,\s*and|,|–|-|and|to)\s*(?=\())?)+)")
"""Source numbers quoted in the text: "Eq. (10)", "Eqs. (11)–(16)", "(1) and (2)"."""
INDEX_ROW = re.compile(
    r"^\| \{eq\}`([\w-]+)` \| `([\w-]+)` \| .* \| (.*?) \| `(#[\w-]+)` \|$", re.M
)
PAGE = re.compile(r"`chapters/(\w+)\.html`")
REVERSE_ROW = re.compile(r"^\| (\(\d+\)(?:–\(\d+\))?) \| (.*?) \| .*\|$", re.M)
CFF_TYPES = {"software", "dataset"}


def numbers_in(text: str) -> set[int]:
    """Every number in runs such as "(11)–(16)", "(26), (27)" or "(10) and (12)"."""
    found: set[int] = set()
    tokens = re.findall(r"\((\d+)\)|([–-])", text)
    for i, (number, dash) in enumerate(tokens):
        if number:
            found.add(int(number))
        elif 0 < i < len(tokens) - 1 and tokens[i - 1][0] and tokens[i + 1][0]:
            found.update(range(int(tokens[i - 1][0]), int(tokens[i + 1][0]) + 1))
    return found


def quoted_source_numbers(text: str) -> set[int]:
    runs = [
        match.group(1)
        for pattern in (QUOTED, SOURCE_TAG)
        for match in pattern.finditer(text)
    ]
    return {n for run in runs for n in numbers_in(run)}


def chapter_texts() -> dict[str, str]:
    return {
        path.stem: path.read_text()
        for path in sorted(CHAPTERS.glob("*.md"))
        if path != INDEX
    }


def display_sources() -> dict[str, tuple[str, str]]:
    """label -> (chapter, the source tag of its display or '–')."""
    found = {}
    for name, text in chapter_texts().items():
        for match in EQUATION_LABEL.finditer(text):
            display = text[text.rfind("$$\n", 0, match.start()) : match.start()]
            tag = SOURCE_TAG.search(display)
            found[match.group(1)] = (name, tag.group(1) if tag else "–")
    return found


def index_rows() -> list[dict]:
    """The book -> source tables of the index, each row with the page named above it."""
    rows, page = [], None
    for line in INDEX.read_text().splitlines():
        named = PAGE.search(line)
        if named and not line.startswith("|"):
            page = named.group(1)
        row = INDEX_ROW.match(line)
        if row:
            eq, label, source, anchor = row.groups()
            rows.append(
                {
                    "eq": eq,
                    "label": label,
                    "source": source,
                    "anchor": anchor,
                    "page": page,
                }
            )
    return rows


def reverse_rows() -> dict[int, list[str]]:
    """Source number -> the labels the last table of the index says restate it."""
    found = {}
    for numbers, labels in REVERSE_ROW.findall(INDEX.read_text()):
        for n in numbers_in(numbers):
            found[n] = re.findall(r"`([\w-]+)`", labels)
    return found


# ----------------------------------------------------------------- CITATION.cff


@pytest.fixture(scope="module")
def cff() -> dict:
    return publish.citation()


def test_citation_cff_has_the_required_keys_of_cff_1_2_0(cff):
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors"):
        assert cff.get(key), f"CITATION.cff lacks {key}"
    assert cff.get("type", "software") in CFF_TYPES
    for author in cff["authors"]:
        person = author.get("family-names") and author.get("given-names")
        assert author.get("name") or person, author
    for reference in cff.get("references", []):
        assert {"type", "title", "authors"} <= set(reference), reference
        assert all(
            author.get("family-names") or author.get("name")
            for author in reference["authors"]
        )


def test_the_book_has_a_licence_and_citation_cff_names_it(cff):
    """LICENSE splits code (MIT) from text and figures (CC BY 4.0) at its top, and
    CITATION.cff names both by their SPDX identifiers."""
    licence = REPO_ROOT / "LICENSE"
    assert licence.is_file(), "the repository has no LICENSE"
    text = licence.read_text(encoding="utf-8")
    head = text.split("MIT License\n", 1)[0]
    assert "MIT License" in head and "CC BY 4.0" in head, "the split is not at the top"
    assert "Permission is hereby granted, free of charge" in text
    assert "Copyright (c) 2026 The Golden Ratio book authors" in text
    assert "https://creativecommons.org/licenses/by/4.0/legalcode" in text
    assert cff["license"] == ["MIT", "CC-BY-4.0"]
    assert "LICENSE" in (REPO_ROOT / "README.md").read_text()
    assert "LICENSE" in (CHAPTERS / "cite.md").read_text()


def test_citation_cff_names_this_book_and_its_version(cff):
    config = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert cff["title"] == config["title"]
    assert str(cff["version"]) == project["version"]


def test_citation_cff_references_the_reproduced_papers_of_the_bibliography(cff):
    bibliography = (REPO_ROOT / "references.bib").read_text()
    identifiers = [
        identifier["value"]
        for reference in cff["references"]
        for identifier in reference["identifiers"]
    ]
    assert identifiers[0] == "arXiv:2006.04751"  # the reproduced paper comes first
    for identifier in identifiers:
        assert identifier.removeprefix("arXiv:") in bibliography, identifier


def test_bibtex_entry_is_built_from_citation_cff(cff):
    entry = publish.bibtex()
    assert entry.startswith("@misc{golden_book,") and entry.endswith("}")
    assert entry.count("{") == entry.count("}")
    assert f"title = {{{{{cff['title']}}}}}" in entry
    assert re.search(r"year = \{\d{4}\}", entry)
    assert (
        "arXiv:2006.04751" in entry and f"version = {{{cff['version']} (commit" in entry
    )
    assert max(len(line) for line in entry.splitlines()) <= 88


def test_how_to_cite_page_is_in_the_book_and_uses_golden_publish():
    toc = (REPO_ROOT / "_toc.yml").read_text()
    assert "file: chapters/cite" in toc
    page = (CHAPTERS / "cite.md").read_text()
    assert "publish.bibtex()" in page and "publish.equation_address(" in page
    address = publish.equation_address("golden-alpha")
    assert address == "chapters/golden_values.html#equation-golden-alpha"
    with pytest.raises(KeyError):
        publish.equation_address("no-such-label")


# ------------------------------------------------------------ one number, one equation


def test_equations_are_numbered_by_chapter():
    toc = yaml.safe_load((REPO_ROOT / "_toc.yml").read_text())
    assert all(part.get("numbered") for part in toc["parts"]), "a part is not numbered"
    config = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())
    # chapter numbers run on across parts
    assert config["html"]["use_multitoc_numbering"] is True
    sphinx = config["sphinx"]["config"]
    assert sphinx["math_numfig"] is True and sphinx["numfig_secnum_depth"] == 1


def test_the_number_parser():
    assert numbers_in("(11)–(16)") == {11, 12, 13, 14, 15, 16}
    assert numbers_in("(10), (11) and (12)") == {10, 11, 12}
    text = "Eqs. (33) and (34); Eq.\n(16); Eq. (2.5); (7)"
    assert quoted_source_numbers(text) == {16, 33, 34}
    assert quoted_source_numbers(r"x \text{[Jaeger 2024: (26), (27)]}") == {26, 27}


def test_every_source_number_quoted_in_the_text_is_in_the_index():
    indexed = set(reverse_rows())
    missing = {
        name: sorted(quoted_source_numbers(text) - indexed)
        for name, text in chapter_texts().items()
    }
    missing = {name: numbers for name, numbers in missing.items() if numbers}
    assert not missing, f"quoted source numbers missing from the index: {missing}"


def test_the_index_lists_every_source_equation_once():
    rows = REVERSE_ROW.findall(INDEX.read_text())
    numbers = [n for numbers, _ in rows for n in sorted(numbers_in(numbers))]
    assert numbers == list(range(1, max(numbers) + 1))


def test_index_rows_match_the_displays():
    """Page, anchor and source number of each index row are those of its display."""
    displays = display_sources()
    rows = index_rows()
    assert {row["label"] for row in rows} == set(displays)
    for row in rows:
        chapter, source = displays[row["label"]]
        assert row["eq"] == row["label"]
        assert row["anchor"] == publish.equation_anchor(row["label"])
        label = row["label"]
        assert row["page"] == chapter, f"{label}: on {chapter}, not {row['page']}"
        assert row["source"] == source, f"{label}: source {source}, not {row['source']}"


def test_reverse_table_agrees_with_the_displays():
    restated: dict[int, set[str]] = {}
    for label, (_, source) in display_sources().items():
        if not source.startswith("one of"):  # the summary cannot place it exactly
            for n in numbers_in(source):
                restated.setdefault(n, set()).add(label)
    reverse = {n: set(labels) for n, labels in reverse_rows().items() if labels}
    assert reverse == restated


# ------------------------------------------------------------ notebooks to download


@pytest.mark.book
def test_every_notebook_page_offers_its_executed_notebook(quick_book):
    """Each chapter page links its executed .ipynb in the download menu, and the file,
    there in the build, holds the chapter's code cells with their outputs."""
    from conftest import HTML_DIR, toc_files

    problems = []  # a chapter that failed to execute is test_book.py's to report
    for doc in toc_files():
        source = (REPO_ROOT / f"{doc}.md").read_text()
        if "kernelspec" not in source.split("\n---\n", 1)[0]:
            continue  # not a notebook (references)
        page = (HTML_DIR / f"{doc}.html").read_text()
        name = Path(doc).name
        link = re.search(rf'href="([^"]*_sources/{re.escape(doc)}\.ipynb)"', page)
        notebook = HTML_DIR / "_sources" / f"{doc}.ipynb"
        if not link or "download-notebook-button" not in page:
            problems.append(f"{name}: no .ipynb in the download menu")
        elif not notebook.is_file():
            problems.append(f"{name}: {link.group(1)} is not in the build")
        else:
            cells = json.loads(notebook.read_text())["cells"]
            code = [cell for cell in cells if cell["cell_type"] == "code"]
            if "{code-cell}" in source and not any(cell["outputs"] for cell in code):
                problems.append(f"{name}: the notebook holds no outputs")
    assert not problems, "\n".join(problems)
