"""Where things live and which mode we run in, read from the environment at each call,
so that a test or a script may change a variable between two commands.

Environment variables (documented in README.md):

* ``GOLDEN_QUICK=1`` (or ``true``, ``yes``, ``on``)  quick mode: tiny data and few
  epochs, same code path as a full run; unset, empty, ``0``, ``false``, ``no`` or
  ``off``: full mode; any other value is refused.
* ``GOLDEN_MNIST_SOURCE``  a folder holding the official MNIST ``*.gz`` files (either
  directly or under ``MNIST/raw/``); default: ``../shared/data`` beside the repository.
* ``GOLDEN_FASHION_MNIST_SOURCE``  the same for Fashion-MNIST (or under
  ``FashionMNIST/raw/``); default: where Debian's ``dataset-fashion-mnist`` puts them.
* ``GOLDEN_DATA_HOME``  golden's own data folder, where the files are copied;
  default: ``~/.cache/golden``.
* ``GOLDEN_RESULTS``  where experiment results are stored; default: ``results/``. A
  command's ``--results DIR`` names another folder for that command alone.

A folder variable set but empty is an error, not the default: ``GOLDEN_RESULTS=$DIR``
with ``DIR`` unset would otherwise write records into the wrong folder.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """An environment variable golden cannot use, named in one line."""


def _folder(variable: str) -> Path | None:
    """The folder ``variable`` names, None if unset; set but empty is refused."""
    value = os.environ.get(variable)
    if value is None:
        return None
    if not value.strip():
        raise SettingsError(f"{variable} is set but empty: unset it or name a folder")
    return Path(value).expanduser()


# GOLDEN_QUICK's values, in any case; any other is refused, so that a typo never starts
# the expensive mode (or the cheap one) unnoticed.
QUICK_VALUES = ("1", "true", "yes", "on")
FULL_VALUES = ("", "0", "false", "no", "off")


def quick_mode() -> bool:
    """True when ``GOLDEN_QUICK`` asks for quick mode (``1``, ``true``, ``yes``,
    ``on``), False when it is unset or asks for full mode (empty, ``0``, ``false``,
    ``no``, ``off``); any other value is a SettingsError."""
    value = os.environ.get("GOLDEN_QUICK", "")
    if value.strip().lower() in QUICK_VALUES:
        return True
    if value.strip().lower() in FULL_VALUES:
        return False
    raise SettingsError(
        f"GOLDEN_QUICK={value!r} names no mode: set it to 1, true, yes or on for "
        "quick mode, to 0, false, no or off (or unset it) for full mode"
    )


def mode_name() -> str:
    """The label stamped on every figure and table: ``quick`` or ``full``."""
    return "quick" if quick_mode() else "full"


# Where each data set's files are found when its variable is unset: MNIST beside the
# repository (this project's machines), Fashion-MNIST where Debian's package puts it.
DEFAULT_SOURCES = {
    "GOLDEN_MNIST_SOURCE": REPO_ROOT.parent / "shared" / "data",
    "GOLDEN_FASHION_MNIST_SOURCE": Path("/usr/share/datasets/fashion-mnist"),
}


def data_source(variable: str) -> Path | None:
    """The folder to copy a data set's files from (named by ``variable``, else its
    default folder where that exists), or None to let torchvision download them."""
    explicit = _folder(variable)
    if explicit is not None:
        return explicit
    default = DEFAULT_SOURCES[variable]
    return default if default.is_dir() else None


def data_home() -> Path:
    """golden's own data folder, where the source files are copied (never modified)."""
    return _folder("GOLDEN_DATA_HOME") or Path("~/.cache/golden").expanduser()


def checkpoints_dir() -> Path:
    """End states of the runs that longer runs continue (successive halving): a cache,
    not results."""
    return data_home() / "checkpoints"


def figures_dir() -> Path:
    """Where figures go: ``figures/`` in full mode (committed), ``figures/quick/`` in
    quick mode."""
    folder = REPO_ROOT / "figures"
    return folder / "quick" if quick_mode() else folder


def results_dir() -> Path:
    """The folder of stored experiment results (plain JSON, written only by
    :mod:`golden.runner`); :meth:`golden.store.Store.default` is its one reader."""
    return _folder("GOLDEN_RESULTS") or REPO_ROOT / "results"
