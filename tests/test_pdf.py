"""The whole book as one PDF, printed offline (`make pdf`), from the quick build.

The PDF is made by tools/book_pdf.py from the session's quick build of the book (the
``quick_book`` fixture of conftest.py, which test_book.py checks as HTML): its executed
notebooks are built into one page, which headless Chromium prints once MathJax has
typeset every formula. A PDF text extractor (pypdf) then reads every chapter title and
a sample of equation numbers back out of it; the numbers must be those of the web
pages.
"""

from __future__ import annotations

import re
import sys
import unicodedata

import pypdf
import pytest

from conftest import BUILD_DIR, HTML_DIR, REPO_ROOT, Build, toc_files

sys.path.insert(0, str(REPO_ROOT / "tools"))
import book_pdf  # noqa: E402

pytestmark = pytest.mark.book

PDF = BUILD_DIR / "pdf" / "book.pdf"
EQUATION_SAMPLE = 12  # numbered equations read back from the PDF, spread over the book
WEB_NUMBER = r'id="equation-{label}">\s*<span class="eqno">(\([\d.]+\))'


def normalised(text: str) -> str:
    """Ligatures undone, curly apostrophes straightened, all white space one space."""
    text = unicodedata.normalize("NFKC", text).replace("\u2019", "'")
    return re.sub(r"\s+", " ", text)


def title_of(doc: str) -> str:
    """The first heading of a chapter's MyST source, as Sphinx prints it."""
    source = (REPO_ROOT / f"{doc}.md").read_text()
    return re.search(r"^# (.+)$", source, re.M).group(1).replace("`", "")


def web_numbers() -> dict[str, str]:
    """Label -> equation number on the quick build's web pages, for every display."""
    found = {}
    for page in sorted((HTML_DIR / "chapters").glob("*.html")):
        html = page.read_text()
        for label in re.findall(r'id="equation-([\w-]+)"', html):
            number = re.search(WEB_NUMBER.format(label=re.escape(label)), html)
            if number:
                found[label] = number.group(1)
    return found


@pytest.fixture(scope="module")
def pdf(quick_book: Build) -> dict:
    """The PDF of the quick build, its report and its text."""
    if not (BUILD_DIR / "_build" / "jupyter_execute").is_dir():  # test_book.py says why
        pytest.fail("the quick build left no executed notebooks to print")
    report = book_pdf.make_pdf(BUILD_DIR / "_build", PDF)
    reader = pypdf.PdfReader(PDF)
    text = normalised("\n".join(page.extract_text() for page in reader.pages))
    images = sum(len(page.images) for page in reader.pages)
    pages = len(reader.pages)
    print(f"\nPDF: {pages} pages, {images} images, {report['math']} formulas")
    return {"report": report, "text": text, "pages": pages, "images": images}


def test_pdf_has_every_chapter_title(pdf):
    titles = [title_of(doc) for doc in toc_files()]
    missing = [title for title in titles if normalised(title) not in pdf["text"]]
    assert not missing, f"chapter titles not found in {PDF}: {missing}"


def test_pdf_math_typeset_and_figures_in(pdf):
    report = pdf["report"]
    assert report["math"] > 100 and report["untypeset"] == 0 and report["merrors"] == 0
    # raw TeX of a display (code cells hold TeX for matplotlib, so test a display's own)
    assert "\\text{[Jaeger 2024" not in pdf["text"], "a display was printed as raw TeX"
    assert report["images"] > 0 and not report["broken"]
    assert pdf["images"] > 0, "the PDF holds no image"


def test_pdf_equation_numbers_are_those_of_the_web_pages(pdf):
    web = web_numbers()
    assert len(web) > 50, "too few numbered equations on the web pages"
    in_pdf = pdf["report"]["equation_numbers"]
    assert sorted(in_pdf) == sorted(web.values()), "the PDF numbers them differently"
    labels = sorted(web)
    sample = labels[:: max(1, len(labels) // EQUATION_SAMPLE)]
    missing = {label: web[label] for label in sample if web[label] not in pdf["text"]}
    assert not missing, f"web page equation numbers not found in the PDF: {missing}"
    assert all(re.fullmatch(r"\(\d+\.\d+\)", web[label]) for label in sample), (
        "equation numbers must carry their chapter, as (2.5)"
    )
