"""The book builds in quick mode, every chapter executes, and it reads well offline.

One quick-mode build (``jupyter-book build -W --keep-going`` into ``_build/quick``,
the ``quick_book`` fixture of conftest.py) serves every test here and the PDF test; it
runs once per session and its log is kept in ``_build/quick/build.log``. Deselect these
(slow) tests with ``pytest -m "not book"``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import jupytext
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "tools"))
import browser_check  # noqa: E402
from conftest import BUILD_DIR, HTML_DIR, Build, toc_files  # noqa: E402

pytestmark = pytest.mark.book

# Where myst-nb writes the executed notebooks of the quick build, <doc>.ipynb.
EXECUTED_DIR = BUILD_DIR / "_build" / "jupyter_execute"
# The line length of the code, too (pyproject.toml, tests/test_style.py).
MAX_OUTPUT_WIDTH = 88
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def source_of(doc: str) -> Path:
    for suffix in (".md", ".ipynb"):
        if (REPO_ROOT / f"{doc}{suffix}").exists():
            return REPO_ROOT / f"{doc}{suffix}"
    raise FileNotFoundError(
        f"{doc} is listed in _toc.yml but has no .md or .ipynb source"
    )


def is_notebook(path: Path) -> bool:
    """A MyST notebook (kernelspec in its front matter) or an .ipynb."""
    if path.suffix == ".ipynb":
        return True
    match = re.match(r"---\n(.*?)\n---\n", path.read_text(), re.S)
    return bool(match and "kernelspec" in (yaml.safe_load(match.group(1)) or {}))


def shows_code(path: Path) -> bool:
    """Some code cell of the chapter keeps its input on the page (a chapter whose every
    cell is tagged remove-input, such as the ledger, shows outputs only)."""
    cells = [c for c in jupytext.read(path).cells if c.cell_type == "code"]
    hidden = {"remove-input", "remove-cell"}
    return any(not hidden & set(c.metadata.get("tags", ())) for c in cells)


def has_code_cells(path: Path) -> bool:
    text = path.read_text()
    return (
        '"cell_type": "code"' in text
        if path.suffix == ".ipynb"
        else "{code-cell}" in text
    )


def test_quick_build_has_no_errors_or_warnings(quick_book: Build) -> None:
    assert quick_book.returncode == 0, (
        f"`jupyter-book build -W --keep-going` failed (exit {quick_book.returncode}); "
        f"failed notebooks: {quick_book.failed_notebooks() or 'none named'}\n"
        f"{quick_book.problems()}"
    )


@pytest.mark.parametrize("doc", toc_files())
def test_chapter_built_and_executed(quick_book: Build, doc: str) -> None:
    """Each chapter of _toc.yml has an HTML page; a notebook chapter shows executed
    outputs."""
    source = source_of(doc)
    page = HTML_DIR / f"{doc}.html"
    failed = [f for f in quick_book.failed_notebooks() if f"{doc}." in f]
    assert not failed, (
        f"{doc}: notebook execution failed in quick mode: {failed}\n"
        f"{quick_book.problems()}"
    )
    assert page.exists(), (
        f"{doc}: no page {page.relative_to(REPO_ROOT)}; "
        f"build exit {quick_book.returncode}\n"
        f"{quick_book.problems()}"
    )
    if not is_notebook(source):
        return
    if not has_code_cells(source):
        pytest.skip(f"{doc} is a notebook without code cells (placeholder?)")
    html = page.read_text()
    if shows_code(source):
        assert 'class="cell_input' in html, f"{doc}: the page shows no code cells"
    assert 'class="cell_output' in html, (
        f"{doc}: the page shows no executed output (did the notebook run?)"
    )
    assert "output traceback" not in html and 'class="output error' not in html, (
        f"{doc}: the page shows an error output"
    )


def test_mathjax_is_served_with_the_book(quick_book: Build) -> None:
    """No page loads MathJax (or any script) from a CDN; one local MathJax script per
    math page."""
    assert (HTML_DIR / "mathjax" / "tex-chtml.js").exists(), (
        "mathjax/tex-chtml.js missing from the build: "
        "run `make` (it copies MathJax to _vendor/)"
    )
    problems = []
    for page in sorted(HTML_DIR.rglob("*.html")):
        if page.is_relative_to(HTML_DIR / "mathjax"):
            continue
        name, html = page.relative_to(HTML_DIR), page.read_text(errors="replace")
        if "cdn.jsdelivr" in html:
            problems.append(f"{name}: mentions cdn.jsdelivr")
        sources = re.findall(r"<script[^>]*\ssrc=\"([^\"]+)\"", html)
        problems += [
            f"{name}: script from the internet: {src}"
            for src in sources
            if re.match(r"(https?:)?//", src)
        ]
        mathjax = [src for src in sources if "mathjax/" in src]
        if len(mathjax) > 1:
            problems.append(
                f"{name}: {len(mathjax)} MathJax scripts (expected one): {mathjax[:3]}"
            )
    assert not problems, "\n".join(problems)


def test_book_reads_offline_in_chromium(quick_book: Build) -> None:
    """Headless Chromium, with every host but 127.0.0.1 unreachable: math typeset,
    images load."""
    pages = [
        f"{doc}.html" for doc in toc_files() if (HTML_DIR / f"{doc}.html").exists()
    ]
    assert pages, "no chapter page was built"
    # Virtual time bounds what the pages may wait for; this bounds only a hang, so it
    # is generous: rendering every page takes real time that grows with the load.
    report = browser_check.check_pages(HTML_DIR, pages, timeout_s=900)
    problems = browser_check.problems(report)
    assert not problems, "\n".join(problems)
    intro = report["pages"][f"{toc_files()[0]}.html"]  # the root page
    assert intro["mathjax"] and intro["mjx"] > 0, (
        f"MathJax typeset nothing on the intro page: {intro}"
    )
    typeset = {page: r["mjx"] for page, r in report["pages"].items()}
    print(f"\nmjx-container per page: {typeset}")
    images = {page: len(r["images"]) for page, r in report["pages"].items()}
    print(f"images per page: {images}")


def printed_lines(cell: dict) -> list[tuple[str, int, str]]:
    """The lines a code cell prints on the page: (output, line number, text).

    Stream outputs (stdout, stderr) and results shown as plain text, i.e. whose bundle
    has nothing richer than text/plain; Markdown, HTML, LaTeX and images are laid out
    by the page. A carriage return overwrites its line, as in a terminal; outputs that
    the cell's tags remove are not shown, so not counted.
    """
    tags = set(cell.get("metadata", {}).get("tags", []))
    if tags & {"remove-output", "remove-cell"}:
        return []
    shown = []
    for output in cell.get("outputs", []):
        kind = output["output_type"]
        if kind == "stream":
            if f"remove-{output['name']}" in tags:
                continue
            name, text = output["name"], output["text"]
        elif kind in ("execute_result", "display_data"):
            if set(output.get("data", {})) != {"text/plain"}:
                continue
            name, text = "text/plain", output["data"]["text/plain"]
        else:  # an error: test_chapter_built_and_executed fails on it
            continue
        text = "".join(text) if isinstance(text, list) else text
        for number, line in enumerate(ANSI_ESCAPE.sub("", text).split("\n"), 1):
            shown.append((name, number, line.rsplit("\r", 1)[-1].expandtabs()))
    return shown


def wide_output_lines(notebook: Path, source: Path, width: int) -> list[str]:
    """Every printed line of an executed notebook wider than ``width`` characters,
    named by the chapter's source line of its cell."""
    cells = json.loads(notebook.read_text())["cells"]
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    starts = []  # the line of each code cell's opening fence in a MyST source
    if source.suffix == ".md":
        lines = enumerate(source.read_text().splitlines(), 1)
        starts = [n for n, line in lines if re.match(r"`{3,}\{code-cell\}", line)]
    wide = []
    for index, cell in enumerate(code):
        where = f"{source.relative_to(REPO_ROOT)}"
        where += f":{starts[index]}" if index < len(starts) else ""
        for name, number, line in printed_lines(cell):
            if len(line) > width:
                wide.append(
                    f"{where}: code cell {index + 1}, {name} line {number}, "
                    f"{len(line)} > {width} characters: {line[:width]}..."
                )
    return wide


@pytest.mark.parametrize("doc", toc_files())
def test_printed_output_fits_the_page(quick_book: Build, doc: str) -> None:
    """No line printed by a chapter's code (streams, plain-text results) is wider than
    88 characters: the page does not wrap it, it would scroll sideways."""
    notebook = EXECUTED_DIR / f"{doc}.ipynb"
    source = source_of(doc)
    if not is_notebook(source) or not has_code_cells(source):
        pytest.skip(f"{doc} has no code cells")
    assert notebook.exists(), (
        f"{doc}: no executed notebook {notebook.relative_to(REPO_ROOT)}; "
        f"build exit {quick_book.returncode}"
    )
    wide = wide_output_lines(notebook, source, MAX_OUTPUT_WIDTH)
    assert not wide, (
        f"{doc}: {len(wide)} printed line(s) wider than {MAX_OUTPUT_WIDTH} "
        "characters (wrap or shorten what the cell prints):\n" + "\n".join(wide)
    )
