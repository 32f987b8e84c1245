"""MNIST, or Fashion-MNIST, held in memory as tensors, split as in the paper (54,000 /
6,000 / 10,000).

Two ways to hold out the 6,000 validation images: the book's one fixed random 10%
(``fold`` -1), or fold k of the source's 10-fold cross-validation (stratified by class).
Either may start from a stratified fraction of the training images (the source's 50%
subset).

The ``.gz`` files are copied from a source folder (see :mod:`golden.settings`) into
golden's own data folder after a checksum: the md5 that torchvision publishes for the
official file, or, for a file repackaged with other gzip headers (Debian's
Fashion-MNIST), a pinned md5 of its unpacked bytes. Each load unpacks the verified files
into a fresh folder of its own, where torchvision's dataset class reads them (or, where
there is no source, downloads and checks the official files); the folder is removed
after reading. So no unpacked file or ``processed/*.pt`` cache that lingers, and no
other process's half-unpacked file, is ever read: the data are always verified bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from torchvision.datasets import MNIST, FashionMNIST

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
class Dataset:
    """A data set of MNIST's shape: its name in configurations, its title in headers,
    the torchvision class that reads (or downloads) it and where its files come from."""

    name: str
    title: str
    reader: type[MNIST]
    source_variable: str  # the environment variable naming the source folder
    # md5 of the unpacked bytes of files repackaged with other gzip headers
    unpacked_md5: tuple[tuple[str, str], ...] = ()
    get_it: str = ""  # what to do when the files are missing

    def accepts(self, path: Path, name: str, expected: str) -> bool:
        """True if ``path`` is the official ``name`` (its md5) or a repackaged copy of
        it (the md5 of its unpacked bytes)."""
        try:
            if path.is_file() and md5(path) == expected:
                return True
            unpacked = dict(self.unpacked_md5).get(name)
            return unpacked is not None and md5_unpacked(path) == unpacked
        except (OSError, EOFError, zlib.error):
            return False


MNIST_DATA = Dataset(
    "mnist",
    "MNIST",
    MNIST,
    "GOLDEN_MNIST_SOURCE",
    get_it="put the four official MNIST .gz files there",
)
# Debian's dataset-fashion-mnist ships the official files with rewritten gzip headers,
# so their .gz md5s differ from the published ones; the unpacked bytes are pinned here.
FASHION_MNIST = Dataset(
    "fashion-mnist",
    "Fashion-MNIST",
    FashionMNIST,
    "GOLDEN_FASHION_MNIST_SOURCE",
    unpacked_md5=(
        ("train-images-idx3-ubyte.gz", "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
        ("train-labels-idx1-ubyte.gz", "9018921c3c673c538a1fc5bad174d6f9"),
        ("t10k-images-idx3-ubyte.gz", "8181f5470baa50b63fa0f6fddb340f0a"),
        ("t10k-labels-idx1-ubyte.gz", "15d484375f8d13e6eb1aabb0c3f46965"),
    ),
    get_it="install Debian's package dataset-fashion-mnist (apt-get install "
    "dataset-fashion-mnist), or put the four official Fashion-MNIST .gz files there",
)
DATASETS = {data.name: data for data in (MNIST_DATA, FASHION_MNIST)}


def dataset(name: str) -> Dataset:
    if name not in DATASETS:
        raise DataError(
            f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}"
        )
    return DATASETS[name]


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


def md5_unpacked(path: Path) -> str:
    """The md5 of a ``.gz`` file's unpacked bytes, read in chunks."""
    digest = hashlib.md5()
    with gzip.open(path, "rb") as packed:
        while chunk := packed.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _find_source_file(source: Path, name: str, folder_name: str) -> Path | None:
    for folder in (source, source / folder_name / "raw", source / "raw"):
        if (folder / name).is_file():
            return folder / name
    return None


def _unwritable(folder: Path, error: OSError) -> DataError:
    return DataError(
        f"cannot write to {folder} ({error.strerror}): "
        "set GOLDEN_DATA_HOME to a folder golden may write to"
    )


def stage_raw_files(
    source: Path | None, root: Path, data: Dataset = MNIST_DATA
) -> Path:
    """Copy the ``.gz`` files from ``source`` into ``root/<reader>/raw`` after checking
    them (without a source, torchvision downloads them later); the folder that holds
    them.

    Files already staged and verified are kept; the source is only read.
    """
    raw = root / data.reader.__name__ / "raw"
    try:
        raw.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _unwritable(raw, error) from None
    for name, expected in data.reader.resources:
        target = raw / name
        if data.accepts(target, name, expected):
            continue
        if source is None:
            continue  # torchvision downloads it, and checks its md5
        found = _find_source_file(source, name, data.reader.__name__)
        if found is None:
            raise DataError(
                f"{name} is missing from {source}: {data.get_it}, "
                f"or point {data.source_variable} at the folder that holds them."
            )
        try:
            actual = md5(found)
        except OSError as error:
            raise DataError(
                f"cannot read {found} ({error.strerror}): fix its permissions or "
                "replace it."
            ) from None
        if not data.accepts(found, name, expected):
            pinned = " (or a pinned md5 of its unpacked bytes)"
            raise DataError(
                f"{found} has md5 {actual}, expected {expected}"
                f"{pinned * bool(data.unpacked_md5)}: replace it with the official "
                f"{data.title} file."
            )
        try:
            shutil.copyfile(found, target)
        except OSError as error:
            raise _unwritable(raw, error) from None
    return raw


def load_raw(
    source: Path | None = None, root: Path | None = None, data: Dataset = MNIST_DATA
) -> tuple[Split, Split]:
    """The 60,000 training and 10,000 test images as uint8 tensors wrapped in Splits,
    read by torchvision from the verified ``.gz`` files, unpacked afresh (see the
    module's doc)."""
    source = settings.data_source(data.source_variable) if source is None else source
    root = settings.data_home() if root is None else root
    raw = stage_raw_files(source, root, data)
    try:
        scratch = Path(tempfile.mkdtemp(prefix=".unpack-", dir=root))
    except OSError as error:
        raise _unwritable(root, error) from None
    try:
        unpacked = scratch / data.reader.__name__ / "raw"
        unpacked.mkdir(parents=True)
        for staged in raw.glob("*.gz"):
            with gzip.open(staged, "rb") as packed:
                (unpacked / staged.stem).write_bytes(packed.read())
        sets = [
            data.reader(str(scratch), train=train, download=True)
            for train in (True, False)
        ]
    except (RuntimeError, OSError, ValueError, EOFError, zlib.error) as error:
        raise DataError(
            f"{data.title} could not be read from {raw} "
            f"({' '.join(str(error).split())}): set {data.source_variable} to a folder "
            f"with the official {data.title} .gz files ({data.get_it}), or retry with "
            "internet access."
        ) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return tuple(checked(Split(part.data, part.targets), raw, data) for part in sets)


def checked(part: Split, raw: Path, data: Dataset = MNIST_DATA) -> Split:
    """``part`` if it has as many labels as images and every label is one of the ten
    classes."""
    if len(part.images) != len(part.labels) or int(part.labels.max()) >= CLASSES:
        raise DataError(
            f"{raw} holds {len(part.images)} images, {len(part.labels)} labels, the "
            f"largest {int(part.labels.max())}: replace them with the official "
            f"{data.title} files."
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
def splits(
    name: str = "mnist",
    quick: bool | None = None,
    fold: int = -1,
    fraction: float = 1.0,
) -> MnistSplits:
    """The book's splits of data set ``name`` (cached per process); quick mode keeps
    small fixed subsets."""
    quick = settings.quick_mode() if quick is None else quick
    return split(
        *load_raw(data=dataset(name)), quick=quick, fold=fold, fraction=fraction
    )
