"""How the book is cited and handed out: citation, equation addresses, notebooks.

The citation comes from ``CITATION.cff`` at the top of the repository, the one file
that states the book's title and authors for citation tools; the "How to cite" chapter
renders it as BibTeX. Listed in ``_config.yml`` as a Sphinx extension, this module also
puts each chapter's executed notebook (.ipynb) into the built book and into the page's
download menu.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CITATION_FILE = REPO_ROOT / "CITATION.cff"
EXECUTED_FOLDER = "jupyter_execute"  # myst-nb's executed notebooks, beside the HTML
DOWNLOAD_FOLDER = "_sources"  # where the book theme looks for a page's .ipynb


def citation() -> dict:
    """CITATION.cff as a dict."""
    import yaml

    return yaml.safe_load(CITATION_FILE.read_text(encoding="utf-8"))


def _bibtex_name(author: dict) -> str:
    """An organisation in braces, a person as 'Family, Given'."""
    if "name" in author:
        return "{" + author["name"] + "}"
    return f"{author['family-names']}, {author['given-names']}"


def _git(*args: str) -> str:
    """Output of a git command in the repository, or '' outside a git checkout."""
    try:
        found = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return found.stdout.strip() if found.returncode == 0 else ""


def commit() -> str:
    """The git commit the book is built from, or 'unknown' outside a git checkout."""
    return _git("rev-parse", "--short=12", "HEAD") or "unknown"


def year() -> str:
    """The year of that commit; outside git, the copyright year of _config.yml."""
    import yaml

    dated = _git("log", "-1", "--format=%cs")
    if dated:
        return dated[:4]
    return str(yaml.safe_load((REPO_ROOT / "_config.yml").read_text())["copyright"])


def bibtex(key: str = "golden_book") -> str:
    """A BibTeX entry for the book, from CITATION.cff; the note names the commit."""
    cff = citation()
    reproduced = cff["references"][0]
    arxiv = next(
        identifier["value"]
        for identifier in reproduced["identifiers"]
        if identifier["value"].startswith("arXiv:")
    )
    fields = {
        "title": "{" + cff["title"] + "}",
        "author": " and ".join(_bibtex_name(author) for author in cff["authors"]),
        "year": year(),
        "howpublished": "Executable book (Jupyter Book)",
        "version": f"{cff['version']} (commit {commit()})",
        "note": f"Reproduces {arxiv}, {reproduced['authors'][0]['family-names']} "
        f"{reproduced['year']}",
    }
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields.items())
    return f"@misc{{{key},\n{body}\n}}"


def equation_anchor(label: str) -> str:
    """The anchor Sphinx gives the display labelled ``label``: stable across
    versions."""
    return f"#equation-{label}"


def equation_address(label: str, chapters: Path = REPO_ROOT / "chapters") -> str:
    """Page and anchor of a labelled equation, relative to the root of the built
    book."""
    pattern = re.compile(rf"^\$\$\s*\({re.escape(label)}\)\s*$", re.MULTILINE)
    pages = [
        path.stem
        for path in sorted(chapters.glob("*.md"))
        if pattern.search(path.read_text())
    ]
    if len(pages) != 1:
        raise KeyError(f"equation label {label!r} is on {len(pages)} pages, not one")
    return f"chapters/{pages[0]}.html{equation_anchor(label)}"


# ------------------------------------------------------------------- Sphinx extension


def _offer_executed_notebook(app, pagename, templatename, context, doctree) -> None:
    """Copy the page's executed notebook beside its source, for the download menu.

    sphinx-book-theme lists ``context["ipynb_source"]`` in the download menu, but sets
    it only when a launch button (Binder, Colab, ...) is configured; this book has none.
    """
    executed = Path(app.outdir).parent / EXECUTED_FOLDER / f"{pagename}.ipynb"
    if doctree is None or not executed.is_file():
        return
    target = Path(app.outdir) / DOWNLOAD_FOLDER / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(executed, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def setup(app) -> dict:
    # before the theme builds its header buttons (priority 501)
    app.connect("html-page-context", _offer_executed_notebook, priority=450)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
