"""Style: one layout and lines of at most 88 characters, checked by ruff ([tool.ruff],
pyproject.toml).

``ruff format --check`` and ``ruff check`` run over golden/, tests/ and tools/. ``ruff
check`` also runs over the code cells of every chapter (chapters/*.md, MyST notebooks):
each chapter's cells are handed to ruff as one Python file, ``chapters/<chapter>.py``
(on stdin; no such file exists), and a finding names the chapter's own line. To fix
most findings: ``ruff format`` (the code), then ``ruff check --fix`` (import order);
long comments, docstrings and strings by hand. The printed outputs of the executed book
are checked in tests/test_book.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
LINTED = ["golden", "tests", "tools"]
CHAPTERS = sorted((REPO_ROOT / "chapters").glob("*.md"))
CELL_START = re.compile(r"^(`{3,})\{code-cell\}")


def ruff() -> list[str]:
    """The ruff of this environment: next to the interpreter, else on PATH, else -m."""
    beside = Path(sys.executable).parent / "ruff"
    if beside.exists():
        return [str(beside)]
    if shutil.which("ruff"):
        return [shutil.which("ruff")]
    return [sys.executable, "-m", "ruff"]


def run_ruff(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            [*ruff(), *args],
            cwd=REPO_ROOT,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
        )
    except FileNotFoundError:
        pytest.fail("ruff is not installed: pip install -r requirements.txt")


@dataclass
class Cells:
    """A chapter's code cells as one Python source, and where each line came from."""

    source: str
    # lines[i]: the chapter's line (1-based) of the source's line i + 1;
    # cells[i]: the number (1-based) of the cell of that line.
    lines: list[int]
    cells: list[int]


def code_cells(markdown: str) -> Cells:
    """The code cells of a MyST notebook: ```{code-cell} blocks, without their options.

    Options are lines that begin with ``:`` (``:tags: [...]``, ``:mystnb:`` and its
    ``:  key: value`` lines) or a ``---`` YAML block, right after the opening fence.
    Cells are separated by a blank line.
    """
    out: list[str] = []
    lines: list[int] = []
    cells: list[int] = []
    text = markdown.splitlines()
    i, cell = 0, 0
    while i < len(text):
        opening = CELL_START.match(text[i])
        i += 1
        if not opening:
            continue
        fence, cell = opening.group(1), cell + 1
        if i < len(text) and text[i].strip() == "---":  # YAML options
            i += 1
            while i < len(text) and text[i].strip() != "---":
                i += 1
            i += 1
        else:  # ":key: value" lines, and ":  key: value" lines that continue them
            while i < len(text) and text[i].startswith(":"):
                i += 1
        if out:
            out.append("")
            lines.append(lines[-1] + 1)
            cells.append(cells[-1])
        while i < len(text) and text[i].rstrip() != fence:
            out.append(text[i])
            lines.append(i + 1)
            cells.append(cell)
            i += 1
        i += 1
    return Cells("\n".join(out) + "\n" if out else "", lines, cells)


def test_ruff_passes_on_the_code() -> None:
    """``ruff check`` finds nothing in golden/, tests/ and tools/."""
    proc = run_ruff("check", "--output-format", "concise", "--no-fix", *LINTED)
    assert proc.returncode == 0, (
        f"`ruff check {' '.join(LINTED)}` failed (exit {proc.returncode}); "
        "run `ruff format` on the files named, then fix what remains:\n"
        f"{proc.stdout}{proc.stderr}"
    )


def test_the_code_is_laid_out_by_ruff_format() -> None:
    """``ruff format --check`` would change nothing: one layout throughout."""
    proc = run_ruff("format", "--check", *LINTED)
    assert proc.returncode == 0, (
        f"`ruff format --check {' '.join(LINTED)}` failed (exit {proc.returncode}); "
        "run `ruff format` on the files named:\n"
        f"{proc.stdout}{proc.stderr}"
    )


def test_ruff_format_check_flags_a_misformatted_line() -> None:
    """The check above can fail: a badly spaced line is reported."""
    proc = run_ruff(
        "format",
        "--check",
        "--stdin-filename",
        "golden/_probe.py",
        "-",
        stdin="x  =  1\n",
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.stem)
def test_ruff_passes_on_the_chapters_code_cells(chapter: Path) -> None:
    """``ruff check`` finds nothing in the chapter's code cells (lines of the .md)."""
    found = code_cells(chapter.read_text())
    if not found.source:
        pytest.skip(f"{chapter.name} has no code cells")
    name = f"chapters/{chapter.stem}.py"
    proc = run_ruff(
        "check",
        "--output-format",
        "json",
        "--no-fix",
        "--stdin-filename",
        name,
        "-",
        stdin=found.source,
    )
    try:
        findings = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"ruff failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"
        )
    problems = []
    for finding in findings:
        row = finding["location"]["row"]
        index = min(max(row - 1, 0), len(found.lines) - 1)
        problems.append(
            f"chapters/{chapter.name}:{found.lines[index]}:"
            f"{finding['location']['column']}: cell {found.cells[index]}: "
            f"{finding['code'] or 'error'} {finding['message']}"
        )
    assert proc.returncode == 0 and not problems, (
        f"ruff on the code cells of {chapter.name} (exit {proc.returncode}):\n"
        + "\n".join(problems or [proc.stderr])
    )


def test_ruff_flags_a_line_of_89_characters() -> None:
    """The configuration is in force: 88 characters pass, 89 fail (E501)."""
    fits = f"x = {'1' * 84}\n"
    proc = run_ruff(
        "check", "--no-fix", "--stdin-filename", "golden/_probe.py", "-", stdin=fits
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = run_ruff(
        "check",
        "--no-fix",
        "--stdin-filename",
        "golden/_probe.py",
        "-",
        stdin=f"x = {'1' * 85}\n",
    )
    assert proc.returncode == 1 and "E501" in proc.stdout, proc.stdout + proc.stderr


def test_code_cells_are_extracted_with_their_lines() -> None:
    markdown = "\n".join(
        [
            "---",
            "kernelspec: {name: python3}",
            "---",
            "# A chapter",
            "```{code-cell} ipython3",
            ":tags: [remove-input]",
            ":mystnb:",
            ":  markdown_format: myst",
            "import math",
            "```",
            "Text with `code`.",
            "````{code-cell} ipython3",
            "---",
            "tags: [hide-output]",
            "---",
            "print(math.pi)",
            "```",
            "````",
            "```python",
            "not_a_cell()",
            "```",
        ]
    )
    found = code_cells(markdown)
    assert found.source == "import math\n\nprint(math.pi)\n```\n"
    assert found.lines == [9, 10, 16, 17]
    assert found.cells == [1, 1, 2, 2]
