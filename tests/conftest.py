"""Shared pytest set-up: the suite always runs in quick mode unless told otherwise."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# `make test` exports GOLDEN_QUICK=1; a bare `pytest tests/` gets the same default.
os.environ.setdefault("GOLDEN_QUICK", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (the folder holding _toc.yml)."""
    return REPO_ROOT
