"""Shared pytest set-up: the suite always runs in quick mode unless told otherwise."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

# `make test` exports GOLDEN_QUICK=1; a bare `pytest tests/` gets the same default.
os.environ.setdefault("GOLDEN_QUICK", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (the folder holding _toc.yml)."""
    return REPO_ROOT


EQUATION_LABEL = re.compile(r"^\$\$\s*\(([\w-]+)\)\s*$", re.MULTILINE)
"""A MyST display equation's label, ``$$ (label)``, on its closing line."""


def labels_without_their_check(text: str, module: str) -> list[str]:
    """Labels in ``text`` whose ``module.check("label")`` call does not follow the equation
    before the next labelled one."""
    missing = []
    for label in EQUATION_LABEL.findall(text):
        after = text[text.index(f"$$ ({label})"):]
        following = EQUATION_LABEL.search(after[len(label) + 5:])
        window = after if following is None else after[: len(label) + 5 + following.start()]
        if f'{module}.check("{label}")' not in window:
            missing.append(label)
    return missing
