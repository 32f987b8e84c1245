"""MNIST held in memory as tensors, split as in the paper (54,000 / 6,000 / 10,000).

Two ways to hold out the 6,000 validation images: the book's one fixed random 10% (``fold``
-1), or fold k of the source's 10-fold cross-validation (stratified by class). Either may
start from a stratified fraction of the training images (the source's 50% subset).

The official files are copied from a source folder (see :mod:`golden.settings`) into
golden's own data folder and unpacked there by ``torchvision.datasets.MNIST(download=True)``,
which verifies their md5 and needs no network when the files are already in place.
"""
from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from torchvision.datasets import MNIST

from golden import settings

VALIDATION_FRACTION = 0.1  # 6,000 of the 60,000 training images, as in the paper's protocol
SPLIT_SEED = 0  # fixes which images form the validation split, for every run of the book
QUICK_SIZES = {"train": 2048, "val": 512, "test": 1000}
CLASSES = 10
FOLDS = 10  # the source's 10-fold cross-validation
SUBSET_SEED = 1  # fixes which images form a stratified training subset
NOISE_SEED_BASE = 2**31  # label-noise seeds live apart from the batch-order seeds 0, 1, 2 (torch keeps 32 bits)


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


def stage_raw_files(source: Path | None, root: Path, dataset: type[MNIST] = MNIST) -> None:
    """Copy the ``.gz`` files from ``source`` into ``root/MNIST/raw`` after checking their md5.

    Files already staged with the right checksum are kept; the source is only read.
    """
    raw = root / dataset.__name__ / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, expected in dataset.resources:
        target = raw / name
        if target.is_file() and md5(target) == expected:
            continue
        found = _find_source_file(source, name) if source is not None else None
        if found is None:
            if source is not None:
                raise DataError(
                    f"{name} is missing from {source}: put the four official MNIST .gz files there, "
                    "or point GOLDEN_MNIST_SOURCE at the folder that holds them."
                )
            continue  # no source: torchvision downloads it
        try:
            actual = md5(found)
        except OSError as error:
            raise DataError(f"cannot read {found} ({error.strerror}): fix its permissions or replace it.") from None
        if actual != expected:
            raise DataError(
                f"{found} has md5 {actual}, expected {expected}: replace it with the official MNIST file."
            )
        shutil.copyfile(found, target)


def load_raw(
    source: Path | None = None, root: Path | None = None, dataset: type[MNIST] = MNIST
) -> tuple[Split, Split]:
    """The 60,000 training and 10,000 test images as uint8 tensors wrapped in Splits."""
    source = settings.mnist_source() if source is None else source
    root = settings.data_home() if root is None else root
    stage_raw_files(source, root, dataset)
    try:
        train = dataset(str(root), train=True, download=True)
        test = dataset(str(root), train=False, download=True)
    except (RuntimeError, OSError, ValueError) as error:
        raise DataError(
            f"MNIST could not be loaded from {root} ({' '.join(str(error).split())}): set GOLDEN_MNIST_SOURCE to a folder with the "
            f"official MNIST .gz files, or delete {root / dataset.__name__} and retry with internet access."
        ) from None
    return Split(train.data, train.targets), Split(test.data, test.targets)


def scale(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float (N, 1, 28, 28) in [-1, 1], exactly as ToTensor + Normalize(0.5, 0.5)."""
    return images.unsqueeze(1).to(torch.float32).div(255).sub(0.5).div(0.5)


def stratified_subset(labels: torch.Tensor, fraction: float, seed: int = SUBSET_SEED) -> torch.Tensor:
    """Indices of round(fraction * n_c) random images of every class c, in ascending order."""
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for digit in range(CLASSES):
        members = (labels == digit).nonzero().squeeze(1)
        shuffled = members[torch.randperm(len(members), generator=generator)]
        chosen.append(shuffled[: round(fraction * len(members))])
    return torch.cat(chosen).sort().values


def stratified_folds(labels: torch.Tensor, folds: int = FOLDS, seed: int = SPLIT_SEED) -> torch.Tensor:
    """The fold (0 .. folds-1) of every image: each class is shuffled and dealt round-robin,
    continuing where the previous class stopped, so folds differ in size by at most one image
    and in each class's count by at most one."""
    generator = torch.Generator().manual_seed(seed)
    fold_of = torch.empty(len(labels), dtype=torch.long)
    dealt = 0
    for digit in range(CLASSES):
        members = (labels == digit).nonzero().squeeze(1)
        shuffled = members[torch.randperm(len(members), generator=generator)]
        fold_of[shuffled] = (torch.arange(len(members)) + dealt) % folds
        dealt += len(members)
    return fold_of


def validation_indices(labels: torch.Tensor, fold: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(validation, training) indices: the fixed random 10% for fold -1, else fold ``fold``."""
    if fold == -1:
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(SPLIT_SEED))
        n_val = int(len(labels) * VALIDATION_FRACTION)
        return order[:n_val], order[n_val:]
    in_fold = stratified_folds(labels) == fold
    return in_fold.nonzero().squeeze(1), (~in_fold).nonzero().squeeze(1)


def split(train: Split, test: Split, quick: bool = False, fold: int = -1, fraction: float = 1.0) -> MnistSplits:
    """Hold out the validation images of ``fold`` (see validation_indices) from a stratified
    ``fraction`` of the training images; scale all to [-1, 1]."""
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
    """``part`` with exactly round(fraction * N) labels, picked at random, each replaced by a
    uniformly drawn *different* class (symmetric noise); the images are untouched.

    The generator is seeded apart from the run's batch-order stream (``NOISE_SEED_BASE + seed``),
    so the corrupted images are not the first ones an epoch visits.
    """
    if fraction == 0:
        return part
    generator = torch.Generator().manual_seed(NOISE_SEED_BASE + seed)
    corrupted = torch.randperm(len(part), generator=generator)[: round(fraction * len(part))]
    shift = torch.randint(1, CLASSES, (len(corrupted),), generator=generator)
    labels = part.labels.clone()
    labels[corrupted] = (labels[corrupted] + shift) % CLASSES
    return Split(part.images, labels)


@lru_cache(maxsize=2)
def mnist(quick: bool | None = None, fold: int = -1, fraction: float = 1.0) -> MnistSplits:
    """The book's MNIST splits (cached per process); quick mode keeps small fixed subsets."""
    quick = settings.quick_mode() if quick is None else quick
    return split(*load_raw(), quick=quick, fold=fold, fraction=fraction)
