"""Shared pytest set-up: the suite always runs in quick mode unless told otherwise."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hypothesis import settings

# `make test` exports GOLDEN_QUICK=1; a bare `pytest tests/` gets the same default.
os.environ.setdefault("GOLDEN_QUICK", "1")
# No test may pass or fail by chance: Hypothesis's "ci" profile draws the same examples
# on every run (derandomize, no example database), with no deadline and no health check
# on the time data generation takes (a loaded machine is slow, not wrong).
settings.load_profile("ci")

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "tools"))
import book_pdf  # noqa: E402  (tools/ is not a package; its one reader of _toc.yml serves here too)


@pytest.fixture(autouse=True)
def no_figure_left_open():
    """The figures a test opens are closed after it (pyplot would keep them all);
    those of wider fixtures, opened before it, stay open."""
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    yield
    for number in set(plt.get_fignums()) - before:
        plt.close(number)


@pytest.fixture
def book_style():
    """The book's matplotlib style, for tests of what a figure shows."""
    from golden import plots

    plots.use_style()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (the folder holding _toc.yml)."""
    return REPO_ROOT


EQUATION_LABEL = re.compile(r"^\$\$\s*\(([\w-]+)\)\s*$", re.MULTILINE)
"""A MyST display equation's label, ``$$ (label)``, on its closing line."""


def labels_without_their_check(text: str, module: str) -> list[str]:
    """Labels in ``text`` whose ``module.check("label")`` call does not follow the
    equation before the next labelled one."""
    missing = []
    for label in EQUATION_LABEL.findall(text):
        after = text[text.index(f"$$ ({label})") :]
        following = EQUATION_LABEL.search(after[len(label) + 5 :])
        window = (
            after if following is None else after[: len(label) + 5 + following.start()]
        )
        if f'{module}.check("{label}")' not in window:
            missing.append(label)
    return missing


# ---------------------------------------------------------- the quick build of the book
# One build serves test_book.py (the HTML) and test_pdf.py (the PDF printed from it), so
# the session-scoped fixture lives here, where both see the same one.

BUILD_DIR = REPO_ROOT / "_build" / "quick"
HTML_DIR = BUILD_DIR / "_build" / "html"
BUILD_TIMEOUT_S = 1800
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def toc_files() -> list[str]:
    """Every document named in _toc.yml (root first), without suffix."""
    toc = yaml.safe_load((REPO_ROOT / "_toc.yml").read_text())
    return [re.sub(r"\.(md|ipynb)$", "", f) for f in book_pdf.toc_documents(toc)]


@dataclass
class Build:
    returncode: int
    log: str
    seconds: float

    def failed_notebooks(self) -> list[str]:
        """Notebooks named by myst-nb's execution errors in the log."""
        found = re.findall(r"ExecutionError: (\S+\.(?:md|ipynb))$", self.log, re.M)
        found += re.findall(r"^.*Executing notebook failed.*$", self.log, re.M)
        return list(dict.fromkeys(found))

    def problems(self) -> str:
        lines = [
            ln
            for ln in self.log.splitlines()
            if re.search(r"WARNING:|ERROR:|Error|Traceback|failed", ln)
            and "[IPKernelApp]" not in ln
        ]
        return "\n".join(lines[-60:]) + "\n--- log tail ---\n" + self.log[-4000:]


@pytest.fixture(scope="session")
def quick_book() -> Build:
    """Build the whole book once, in quick mode, warnings as errors.

    The build uses _config.yml with one change: a failing notebook does not stop the
    build (execute.raise_on_error false), so that every chapter is executed and each
    failing one is named; its "Executing notebook failed" warning still fails the build
    under -W.
    """
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    if not jupyter_book.exists():
        jupyter_book = Path(shutil.which("jupyter-book") or "jupyter-book")
    shutil.rmtree(BUILD_DIR, ignore_errors=True)
    BUILD_DIR.mkdir(parents=True)
    config = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())
    config.setdefault("execute", {})["raise_on_error"] = False
    (BUILD_DIR / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    env = {**os.environ, "GOLDEN_QUICK": "1"}
    cmd = [
        str(jupyter_book),
        "build",
        str(REPO_ROOT),
        "--path-output",
        str(BUILD_DIR),
        "--config",
        str(BUILD_DIR / "_config.yml"),
        "--warningiserror",
        "--keep-going",
    ]
    start = time.monotonic()
    try:
        proc = subprocess.run(
            cmd,
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
        )
        returncode, log = proc.returncode, ANSI.sub("", proc.stdout + proc.stderr)
    except subprocess.TimeoutExpired as exc:
        returncode = -1
        out = [
            o.decode(errors="replace") if isinstance(o, bytes) else (o or "")
            for o in (exc.stdout, exc.stderr)
        ]
        log = (
            ANSI.sub("", "".join(out))
            + f"\nquick build timed out after {BUILD_TIMEOUT_S} s"
        )
    build = Build(returncode, log, time.monotonic() - start)
    (BUILD_DIR / "build.log").write_text(log)
    print(
        f"\nquick book build: {build.seconds:.0f} s, exit {returncode}, "
        f"log {BUILD_DIR / 'build.log'}"
    )
    return build
