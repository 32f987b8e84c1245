"""MNIST held in memory as tensors, split as in the paper (54,000 / 6,000 / 10,000).

Two ways to hold out the 6,000 validation images: the book's one fixed random 10%
(``fold`` -1), or fold k of the source's 10-fold cross-validation (stratified by class).
Either may start from a stratified fraction of the training images (the source's 50%
subset).

The official ``.gz`` files are copied from a source folder (see :mod:`golden.settings`)
into golden's own data folder after an md5 check. Each load hands links to them to
``torchvision.datasets.MNIST(download=True)`` in a fresh folder of its own, where
torchvision checks the md5 again (or downloads, where there is no source) and unpacks
them; the folder is removed after reading. So no unpacked file or ``processed/*.pt``
cache that lingers, and no other process's half-unpacked file, is ever read: the data
are always the verified bytes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from torchvision.datasets import MNIST

from golden import settings

# 6,000 of the 60,000 training images, as in the paper's protocol
VALIDATION_FRACTION = 0.1
# fixes which images form the validation split, for every run of the book
SPLIT_SEED = 0
QUICK_SIZES = {"train": 2048, "val": 512, "test": 1000}
CLASSES = 10
FOLDS = 10  # the source's 10-fold cross-validation
SUBSET_SEED = 1  # fixes which images form a stratified training subset
# label-noise seeds live apart from the batch-order seeds 0, 1, 2 (torch keeps 32 bits)
NOISE_SEED_BASE = 2**31


class DataError(RuntimeError):
    """Raised with one sentence that says what is wrong with the data and what to do."""


@dataclass(frozen=True)
class Split:
    """Images in [-1, 1] of shape (N, 1, 28, 28) and integer labels of shape (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def head(self, n: int) -> "Split":
        return Split(self.images[:n], self.labels[:n])


@dataclass(frozen=True)
class MnistSplits:
    train: Split
    val: Split
    test: Split


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _find_source_file(source: Path, name: str) -> Path | None:
    for folder in (source, source / "MNIST" / "raw", source / "raw"):
        if (folder / name).is_file():
            return folder / name
    return None


def _has_md5(path: Path, expected: str) -> bool:
    try:
        return path.is_file() and md5(path) == expected
    except OSError:
        return False


def _unwritable(folder: Path, error: OSError) -> DataError:
    return DataError(
        f"cannot write to {folder} ({error.strerror}): "
        "set GOLDEN_DATA_HOME to a folder golden may write to"
    )


def stage_raw_files(
    source: Path | None, root: Path, dataset: type[MNIST] = MNIST
) -> Path:
    """Copy the ``.gz`` files from ``source`` into ``root/MNIST/raw`` after checking
    their md5 (without a source, torchvision downloads them later); the folder that
    holds them.

    Files already staged with the right checksum are kept; the source is only read.
    """
    raw = root / dataset.__name__ / "raw"
    try:
        raw.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _unwritable(raw, error) from None
    for name, expected in dataset.resources:
        target = raw / name
        if _has_md5(target, expected):
            continue
        if source is None:
            continue  # torchvision downloads it, and checks its md5
        found = _find_source_file(source, name)
        if found is None:
            raise DataError(
                f"{name} is missing from {source}: put the four official MNIST .gz "
                "files there, "
                "or point GOLDEN_MNIST_SOURCE at the folder that holds them."
            )
        try:
            actual = md5(found)
        except OSError as error:
            raise DataError(
                f"cannot read {found} ({error.strerror}): fix its permissions or "
                "replace it."
            ) from None
        if actual != expected:
            raise DataError(
                f"{found} has md5 {actual}, expected {expected}: replace it with the "
                "official MNIST file."
            )
        try:
            shutil.copyfile(found, target)
        except OSError as error:
            raise _unwritable(raw, error) from None
    return raw


def load_raw(
    source: Path | None = None, root: Path | None = None, dataset: type[MNIST] = MNIST
) -> tuple[Split, Split]:
    """The 60,000 training and 10,000 test images as uint8 tensors wrapped in Splits,
    read by torchvision from the md5-verified ``.gz`` files, unpacked afresh (see the
    module's doc)."""
    source = settings.mnist_source() if source is None else source
    root = settings.data_home() if root is None else root
    raw = stage_raw_files(source, root, dataset)
    try:
        scratch = Path(tempfile.mkdtemp(prefix=".unpack-", dir=root))
    except OSError as error:
        raise _unwritable(root, error) from None
    try:
        (scratch / dataset.__name__ / "raw").mkdir(parents=True)
        for staged in raw.glob("*.gz"):
            os.link(staged, scratch / dataset.__name__ / "raw" / staged.name)
        sets = [
            dataset(str(scratch), train=train, download=True) for train in (True, False)
        ]
    except (RuntimeError, OSError, ValueError, EOFError, zlib.error) as error:
        raise DataError(
            f"MNIST could not be read from {raw} ({' '.join(str(error).split())}): set "
            "GOLDEN_MNIST_SOURCE to a folder with the official MNIST .gz files, or "
            "retry with "
            "internet access."
        ) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return tuple(checked(Split(part.data, part.targets), raw) for part in sets)


def checked(part: Split, raw: Path) -> Split:
    """``part`` if it has as many labels as images and every label is a digit."""
    if len(part.images) != len(part.labels) or int(part.labels.max()) >= CLASSES:
        raise DataError(
            f"{raw} holds {len(part.images)} images, {len(part.labels)} labels, the "
            f"largest {int(part.labels.max())}: replace them with the official MNIST "
            "files."
        )
    return part


def scale(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float (N, 1, 28, 28) in [-1, 1], exactly as ToTensor +
    Normalize(0.5, 0.5)."""
    return images.unsqueeze(1).to(torch.float32).div(255).sub(0.5).div(0.5)


def stratified_subset(
    labels: torch.Tensor, fraction: float, seed: int = SUBSET_SEED
) -> torch.Tensor:
    """Indices of round(fraction * n_c) random images of every class c, in ascending
    order."""
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for digit in range(CLASSES):
        members = (labels == digit).nonzero().squeeze(1)
        shuffled = members[torch.randperm(len(members), generator=generator)]
        chosen.append(shuffled[: round(fraction * len(members))])
    return torch.cat(chosen).sort().values


def stratified_folds(
    labels: torch.Tensor, folds: int = FOLDS, seed: int = SPLIT_SEED
) -> torch.Tensor:
    """The fold (0 .. folds-1) of every image: each class is shuffled and dealt
    round-robin, continuing where the previous class stopped, so folds differ in size by
    at most one image and in each class's count by at most one."""
    generator = torch.Generator().manual_seed(seed)
    fold_of = torch.empty(len(labels), dtype=torch.long)
    dealt = 0
    for digit in range(CLASSES):
        members = (labels == digit).nonzero().squeeze(1)
        shuffled = members[torch.randperm(len(members), generator=generator)]
        fold_of[shuffled] = (torch.arange(len(members)) + dealt) % folds
        dealt += len(members)
    return fold_of


def validation_indices(
    labels: torch.Tensor, fold: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(validation, training) indices: the fixed random 10% for fold -1, else fold
    ``fold``."""
    if fold == -1:
        order = torch.randperm(
            len(labels), generator=torch.Generator().manual_seed(SPLIT_SEED)
        )
        n_val = int(len(labels) * VALIDATION_FRACTION)
        return order[:n_val], order[n_val:]
    in_fold = stratified_folds(labels) == fold
    return in_fold.nonzero().squeeze(1), (~in_fold).nonzero().squeeze(1)


def split(
    train: Split,
    test: Split,
    quick: bool = False,
    fold: int = -1,
    fraction: float = 1.0,
) -> MnistSplits:
    """Hold out the validation images of ``fold`` (see validation_indices) from a
    stratified ``fraction`` of the training images; scale all to [-1, 1]."""
    if fraction < 1:
        kept = stratified_subset(train.labels, fraction)
        train = Split(train.images[kept], train.labels[kept])
    val_idx, train_idx = validation_indices(train.labels, fold)
    parts = {
        "train": Split(scale(train.images[train_idx]), train.labels[train_idx]),
        "val": Split(scale(train.images[val_idx]), train.labels[val_idx]),
        "test": Split(scale(test.images), test.labels),
    }
    if quick:
        parts = {name: part.head(QUICK_SIZES[name]) for name, part in parts.items()}
    return MnistSplits(**parts)


def with_label_noise(part: Split, fraction: float, seed: int) -> Split:
    """``part`` with exactly round(fraction * N) labels, picked at random, each replaced
    by a uniformly drawn *different* class (symmetric noise); the images are untouched.

    The generator is seeded apart from the run's batch-order stream
    (``NOISE_SEED_BASE + seed``), so the corrupted images are not the first ones an
    epoch visits.
    """
    if fraction == 0:
        return part
    generator = torch.Generator().manual_seed(NOISE_SEED_BASE + seed)
    corrupted = torch.randperm(len(part), generator=generator)[
        : round(fraction * len(part))
    ]
    shift = torch.randint(1, CLASSES, (len(corrupted),), generator=generator)
    labels = part.labels.clone()
    labels[corrupted] = (labels[corrupted] + shift) % CLASSES
    return Split(part.images, labels)


@lru_cache(maxsize=2)
def mnist(
    quick: bool | None = None, fold: int = -1, fraction: float = 1.0
) -> MnistSplits:
    """The book's MNIST splits (cached per process); quick mode keeps small fixed
    subsets."""
    quick = settings.quick_mode() if quick is None else quick
    return split(*load_raw(), quick=quick, fold=fold, fraction=fraction)
