"""Checks of golden.data on a tiny synthetic MNIST written in MNIST's own IDX format.

The four ``.gz`` files hold 200 training and 50 test images (28 x 28, uint8) whose first
two pixels encode the image's index, so every image is unique and traceable. A subclass
of torchvision's MNIST lists these files and their md5s and has no reachable mirror, so
nothing is ever downloaded; everything is written under pytest's ``tmp_path``. The same
files with other gzip headers stand in for Debian's repackaged Fashion-MNIST.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision import transforms
from torchvision.datasets import MNIST

import golden.data
from golden.data import (
    FASHION_MNIST,
    FOLDS,
    MNIST_DATA,
    VALIDATION_FRACTION,
    DataError,
    Dataset,
    Split,
    load_raw,
    scale,
    split,
    stratified_folds,
    stratified_subset,
)

N_TRAIN, N_TEST = 200, 50
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049
FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


# ------------------------------------------------------------------------------------
# helpers


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    """MNIST's IDX format: big-endian magic number, one big-endian uint32 per dimension,
    the bytes."""
    header = struct.pack(">I", magic) + b"".join(
        struct.pack(">I", size) for size in array.shape
    )
    return header + array.astype(np.uint8).tobytes()


def synthetic_images(n: int, offset: int, seed: int) -> np.ndarray:
    """n random uint8 images; pixels (0, 0) and (0, 1) hold the global index offset +
    i."""
    images = np.random.default_rng(seed).integers(
        0, 256, size=(n, 28, 28), dtype=np.uint8
    )
    index = np.arange(offset, offset + n)
    images[:, 0, 0], images[:, 0, 1] = index % 256, index // 256
    return images


def image_ids(images: torch.Tensor) -> list[int]:
    """The indices encoded in uint8 images of shape (N, 28, 28)."""
    return (images[:, 0, 0].long() + 256 * images[:, 0, 1].long()).tolist()


def write_idx_set(folder: Path, mtime: int = 0) -> dict[str, str]:
    """Write the four gzip'ed IDX files into ``folder`` (``mtime`` in their gzip
    headers); their md5s by file name."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        FILES[0]: (synthetic_images(N_TRAIN, 0, seed=1), IMAGE_MAGIC),
        FILES[1]: (np.arange(N_TRAIN) % 10, LABEL_MAGIC),
        FILES[2]: (synthetic_images(N_TEST, N_TRAIN, seed=2), IMAGE_MAGIC),
        FILES[3]: ((np.arange(N_TEST) * 7) % 10, LABEL_MAGIC),
    }
    md5s = {}
    for name, (array, magic) in arrays.items():
        data = gzip.compress(idx_bytes(array, magic), mtime=mtime)
        (folder / name).write_bytes(data)
        md5s[name] = hashlib.md5(data).hexdigest()
    return md5s


# the discard port: a download attempt is refused at once
UNREACHABLE = "http://127.0.0.1:9/"


def dataset_class(
    md5s: dict[str, str], name: str = "TinyMNIST", like: Dataset = MNIST_DATA
) -> Dataset:
    """``like`` read by a torchvision MNIST that knows our files and cannot download
    anything.

    Its one mirror is unreachable rather than absent: torchvision's download() walks the
    mirrors even for files already in place (where it then finds them verified and
    connects to nothing), and with no mirror at all it reports every file as failed.
    """
    reader = type(
        name,
        (MNIST,),
        {"resources": [(file, md5s[file]) for file in FILES], "mirrors": [UNREACHABLE]},
    )
    return dataclasses.replace(like, title=name, reader=reader)


def fingerprint(folder: Path) -> dict[str, tuple[int, str]]:
    """(mtime in ns, md5) of every file in a folder: to prove the source is only
    read."""
    return {
        path.name: (path.stat().st_mtime_ns, golden.data.md5(path))
        for path in sorted(folder.iterdir())
    }


@pytest.fixture
def source(tmp_path) -> Path:
    return tmp_path / "source"


@pytest.fixture
def tiny(source) -> Dataset:
    """The synthetic data set's class, its files written to ``source``."""
    return dataset_class(write_idx_set(source))


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Nothing of this file may touch ~/.cache or the shared data folder."""
    monkeypatch.setenv("GOLDEN_DATA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GOLDEN_MNIST_SOURCE", str(tmp_path / "nowhere"))


# -------------------------------------------------------------------------------
# loading


def test_load_raw_reads_the_idx_files(tiny, source, tmp_path):
    train, test = load_raw(source, tmp_path / "home", tiny)
    assert train.images.shape == (N_TRAIN, 28, 28) and train.images.dtype == torch.uint8
    assert test.images.shape == (N_TEST, 28, 28) and test.images.dtype == torch.uint8
    assert image_ids(train.images) == list(range(N_TRAIN))
    assert image_ids(test.images) == list(range(N_TRAIN, N_TRAIN + N_TEST))
    assert torch.equal(train.labels, torch.arange(N_TRAIN) % 10)
    assert torch.equal(
        test.images, torch.from_numpy(synthetic_images(N_TEST, N_TRAIN, seed=2))
    )
    # stage_raw_files names the folder after the dataset class, as torchvision does
    assert sorted(
        p.name for p in (tmp_path / "home" / "TinyMNIST" / "raw").glob("*.gz")
    ) == sorted(FILES)


def test_source_may_hold_files_under_the_torchvision_layout(tmp_path):
    """As torchvision lays them out: MNIST/raw, FashionMNIST/raw (here TinyMNIST/raw)."""
    nested = tmp_path / "shared" / "TinyMNIST" / "raw"
    tiny = dataset_class(write_idx_set(nested))
    train, _ = load_raw(tmp_path / "shared", tmp_path / "home", tiny)
    assert len(train) == N_TRAIN


def test_source_files_are_never_modified(tiny, source, tmp_path):
    before = fingerprint(source)
    load_raw(source, tmp_path / "home", tiny)
    load_raw(source, tmp_path / "home", tiny)  # second call: files already staged
    assert fingerprint(source) == before
    assert sorted(before) == sorted(FILES)  # nothing added to the source either


def test_defaults_come_from_the_environment(tiny, source, tmp_path, monkeypatch):
    monkeypatch.setenv("GOLDEN_MNIST_SOURCE", str(source))
    monkeypatch.setenv("GOLDEN_DATA_HOME", str(tmp_path / "env-home"))
    train, _ = load_raw(data=tiny)
    assert len(train) == N_TRAIN
    assert (tmp_path / "env-home" / "TinyMNIST" / "raw" / FILES[0]).is_file()


# ----------------------------------------------------------------------------------
# splits


@pytest.fixture
def raw(tiny, source, tmp_path) -> tuple[Split, Split]:
    return load_raw(source, tmp_path / "home", tiny)


def test_split_sizes_hold_out_ten_percent(raw):
    parts = split(*raw)
    n_val = int(N_TRAIN * VALIDATION_FRACTION)
    assert (len(parts.train), len(parts.val), len(parts.test)) == (
        N_TRAIN - n_val,
        n_val,
        N_TEST,
    )
    assert parts.train.images.shape == (N_TRAIN - n_val, 1, 28, 28)
    assert parts.val.labels.dtype == torch.int64


def ids_of(part: Split) -> list[int]:
    """Indices encoded in scaled images (the inverse of golden.data.scale on pixels (0,
    0), (0, 1))."""
    pixels = ((part.images[:, 0, 0, :2] + 1) * 127.5).round().long()
    return (pixels[:, 0] + 256 * pixels[:, 1]).tolist()


def test_train_and_validation_are_disjoint_and_cover_the_training_set(raw):
    parts = split(*raw)
    train_ids, val_ids = ids_of(parts.train), ids_of(parts.val)
    assert not set(train_ids) & set(val_ids)
    assert sorted(train_ids + val_ids) == list(range(N_TRAIN))
    assert sorted(ids_of(parts.test)) == list(range(N_TRAIN, N_TRAIN + N_TEST))
    # labels travel with their images
    assert parts.val.labels.tolist() == [i % 10 for i in val_ids]
    assert val_ids != sorted(val_ids)  # a random hold-out, not the last 10%


def test_split_is_deterministic(raw, tiny, source, tmp_path):
    first, second = split(*raw), split(*load_raw(source, tmp_path / "home", tiny))
    for name in ("train", "val", "test"):
        assert torch.equal(getattr(first, name).images, getattr(second, name).images)
        assert torch.equal(getattr(first, name).labels, getattr(second, name).labels)


def test_ten_folds_partition_the_training_set_stratified_by_class(raw):
    """Each image is in exactly one validation fold; folds and their class counts differ
    by at most one image; fold k's run trains on the other nine."""
    labels = raw[0].labels
    fold_of = stratified_folds(labels)
    sizes = torch.bincount(fold_of, minlength=FOLDS)
    assert int(sizes.sum()) == N_TRAIN and int(sizes.max() - sizes.min()) <= 1
    for digit in range(10):
        counts = torch.bincount(fold_of[labels == digit], minlength=FOLDS)
        assert int(counts.max() - counts.min()) <= 1
    val_sets = []
    for fold in range(FOLDS):
        parts = split(*raw, fold=fold)
        train_ids, val_ids = ids_of(parts.train), ids_of(parts.val)
        assert sorted(train_ids + val_ids) == list(range(N_TRAIN))
        assert sorted(val_ids) == sorted(
            (fold_of == fold).nonzero().squeeze(1).tolist()
        )
        val_sets.append(set(val_ids))
    assert (
        set().union(*val_sets) == set(range(N_TRAIN))
        and sum(map(len, val_sets)) == N_TRAIN
    )


@pytest.mark.parametrize("fraction", [0.5, 0.3])
def test_stratified_subset_keeps_the_fraction_of_every_class(raw, fraction):
    labels = raw[0].labels
    kept = stratified_subset(labels, fraction)
    assert len(set(kept.tolist())) == len(kept)
    for digit in range(10):
        assert int((labels[kept] == digit).sum()) == round(
            fraction * int((labels == digit).sum())
        )
    parts = split(*raw, fold=0, fraction=fraction)
    assert sorted(ids_of(parts.train) + ids_of(parts.val)) == sorted(kept.tolist())


def test_fixed_split_is_unchanged_by_the_cross_validation_options(raw):
    """fold -1 and fraction 1 give the split every stored record was trained on."""
    order = torch.randperm(N_TRAIN, generator=torch.Generator().manual_seed(0))
    assert (
        ids_of(split(*raw).val) == order[: int(N_TRAIN * VALIDATION_FRACTION)].tolist()
    )


def test_scaling_equals_totensor_and_normalize(raw, tiny, tmp_path):
    reference = tiny.reader(
        str(tmp_path / "home"),
        train=True,
        download=True,  # unpacks, offline
        transform=transforms.Compose(
            [transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))]
        ),
    )
    scaled = scale(raw[0].images)
    assert scaled.shape == (N_TRAIN, 1, 28, 28) and scaled.dtype == torch.float32
    for i in (0, 1, 57, N_TRAIN - 1):
        assert torch.equal(scaled[i], reference[i][0])
    assert scaled.min() == -1 and scaled.max() == 1  # random pixels cover 0 and 255


def test_scale_maps_black_to_minus_one_and_white_to_one():
    pixels = torch.tensor([[[0, 255] + [0] * 26] * 28], dtype=torch.uint8)
    scaled = scale(pixels)
    assert scaled[0, 0, 0, 0] == -1 and scaled[0, 0, 0, 1] == 1


def test_quick_mode_keeps_fixed_heads(raw, monkeypatch):
    monkeypatch.setattr(golden.data, "QUICK_SIZES", {"train": 30, "val": 7, "test": 11})
    full, quick = split(*raw), split(*raw, quick=True)
    assert (len(quick.train), len(quick.val), len(quick.test)) == (30, 7, 11)
    for name, size in (("train", 30), ("val", 7), ("test", 11)):
        assert torch.equal(
            quick.__dict__[name].images, full.__dict__[name].images[:size]
        )


def test_quick_mode_on_a_small_set_keeps_everything(raw):
    quick = split(*raw, quick=True)  # the real QUICK_SIZES exceed this tiny set
    assert (len(quick.train), len(quick.val), len(quick.test)) == (180, 20, 50)


def test_splits_use_the_environment_and_quick_flag(tiny, source, tmp_path, monkeypatch):
    """golden.data.splits() goes through load_raw with the settings; patch load_raw's
    dataset."""
    monkeypatch.setenv("GOLDEN_MNIST_SOURCE", str(source))
    asked = []
    monkeypatch.setattr(
        golden.data,
        "load_raw",
        lambda data: asked.append(data.name) or load_raw(data=tiny),
    )
    monkeypatch.setattr(golden.data, "QUICK_SIZES", {"train": 16, "val": 8, "test": 4})
    golden.data.splits.cache_clear()
    try:
        assert len(golden.data.splits(quick=True).train) == 16
        assert len(golden.data.splits(quick=False).train) == 180
        golden.data.splits("fashion-mnist", quick=True)
    finally:
        golden.data.splits.cache_clear()
    assert asked == ["mnist", "mnist", "fashion-mnist"]


# ----------------------------------------------------------------------------- error
# paths


def assert_one_actionable_line(error: DataError, *words: str) -> None:
    message = str(error)
    assert "\n" not in message.strip(), f"multi-line message: {message!r}"
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


def test_missing_source_file(tiny, source, tmp_path):
    (source / FILES[2]).unlink()
    with pytest.raises(DataError) as caught:
        load_raw(source, tmp_path / "home", tiny)
    assert_one_actionable_line(
        caught.value, FILES[2], str(source), "GOLDEN_MNIST_SOURCE"
    )


def test_wrong_md5_is_refused_and_source_left_alone(tiny, tmp_path):
    corrupt = tmp_path / "corrupt"
    shutil.copytree(tmp_path / "source", corrupt)
    data = bytearray((corrupt / FILES[1]).read_bytes())
    data[-1] ^= 0xFF
    (corrupt / FILES[1]).write_bytes(bytes(data))
    before = fingerprint(corrupt)
    with pytest.raises(DataError) as caught:
        load_raw(corrupt, tmp_path / "home", tiny)
    assert_one_actionable_line(caught.value, FILES[1], "md5", "replace it")
    assert fingerprint(corrupt) == before
    assert not (
        tmp_path / "home" / "TinyMNIST" / "raw" / FILES[1]
    ).exists()  # never staged


def test_corrupt_staged_file_is_replaced_from_the_source(tiny, source, tmp_path):
    home = tmp_path / "home"
    load_raw(source, home, tiny)
    staged = home / "TinyMNIST" / "raw" / FILES[0]
    staged.write_bytes(b"garbage")
    load_raw(source, home, tiny)
    assert golden.data.md5(staged) == golden.data.md5(source / FILES[0])


def test_directory_in_place_of_a_file(tiny, source, tmp_path):
    (source / FILES[0]).unlink()
    (source / FILES[0]).mkdir()
    with pytest.raises(DataError) as caught:
        load_raw(source, tmp_path / "home", tiny)
    assert_one_actionable_line(caught.value, FILES[0], "GOLDEN_MNIST_SOURCE")


def make_unreadable(path: Path) -> None:
    """chmod 000 where that blocks reading; as root (where it does not), a link to a
    file that exists but fails every read (/proc/self/mem at offset 0 gives EIO)."""
    path.chmod(0)
    try:
        path.read_bytes()
    except PermissionError:
        return
    path.unlink()
    if not Path("/proc/self/mem").exists():
        pytest.skip("running as root without /proc: no way to make a file unreadable")
    path.symlink_to("/proc/self/mem")


def test_unreadable_source_file(tiny, source, tmp_path):
    make_unreadable(source / FILES[3])
    with pytest.raises(DataError) as caught:
        load_raw(source, tmp_path / "home", tiny)
    assert_one_actionable_line(caught.value, "cannot read", FILES[3], "permissions")


def unreachable(md5s: dict[str, str]) -> Dataset:
    return dataset_class(md5s, name="OfflineMNIST")


def test_no_source_and_no_network(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(golden.data.settings, "data_source", lambda variable: None)
    offline = unreachable({name: md5 for name, md5 in tiny.reader.resources})
    with pytest.raises(DataError) as caught:
        load_raw(None, tmp_path / "home", offline)
    message = str(caught.value)
    assert (
        "GOLDEN_MNIST_SOURCE" in message
        and "internet" in message
        and "OfflineMNIST" in message
    )


def test_no_network_error_is_one_line(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(golden.data.settings, "data_source", lambda variable: None)
    offline = unreachable({name: md5 for name, md5 in tiny.reader.resources})
    with pytest.raises(DataError) as caught:
        load_raw(None, tmp_path / "home", offline)
    assert_one_actionable_line(caught.value, "GOLDEN_MNIST_SOURCE")


# ----------------------------------------------------------------- Fashion-MNIST
# Debian's package holds the official files with other gzip headers: the .gz md5s
# differ from the published ones, the unpacked bytes are the same.


def unpacked_md5s(folder: Path) -> tuple[tuple[str, str], ...]:
    return tuple((name, golden.data.md5_unpacked(folder / name)) for name in FILES)


@pytest.fixture
def repackaged(source, tmp_path) -> tuple[Path, Dataset]:
    """The tiny files with other gzip headers in their own folder, and a Fashion-MNIST
    that publishes the original files' md5s and pins the unpacked bytes."""
    published = write_idx_set(source)
    folder = tmp_path / "debian"
    write_idx_set(folder, mtime=1_590_000_000)
    assert golden.data.md5(folder / FILES[0]) != published[FILES[0]]
    fashion = dataclasses.replace(
        dataset_class(published, "TinyFashion", like=FASHION_MNIST),
        unpacked_md5=unpacked_md5s(source),
    )
    return folder, fashion


def test_repackaged_files_are_accepted_by_their_unpacked_md5(repackaged, tmp_path):
    folder, fashion = repackaged
    train, test = load_raw(folder, tmp_path / "home", fashion)
    assert (len(train), len(test)) == (N_TRAIN, N_TEST)
    assert image_ids(train.images) == list(range(N_TRAIN))


def test_repackaged_files_without_pinned_md5s_are_refused(repackaged, tmp_path):
    folder, fashion = repackaged
    unpinned = dataclasses.replace(fashion, unpacked_md5=())
    with pytest.raises(DataError) as caught:
        load_raw(folder, tmp_path / "home", unpinned)
    assert_one_actionable_line(caught.value, FILES[0], "md5", "TinyFashion")


def test_repackaged_file_with_altered_content_is_refused(repackaged, tmp_path):
    folder, fashion = repackaged
    labels = folder / FILES[1]
    content = bytearray(gzip.decompress(labels.read_bytes()))
    content[-1] = (content[-1] + 1) % 10
    labels.write_bytes(gzip.compress(bytes(content)))
    with pytest.raises(DataError) as caught:
        load_raw(folder, tmp_path / "home", fashion)
    assert_one_actionable_line(caught.value, FILES[1], "unpacked bytes", "replace it")
    assert not (tmp_path / "home" / "TinyFashion" / "raw" / FILES[1]).exists()


def test_a_truncated_repackaged_file_is_refused(repackaged, tmp_path):
    folder, fashion = repackaged
    images = folder / FILES[0]
    images.write_bytes(images.read_bytes()[:100])
    with pytest.raises(DataError) as caught:
        load_raw(folder, tmp_path / "home", fashion)
    assert_one_actionable_line(caught.value, FILES[0], "md5")


def test_missing_fashion_files_say_how_to_install_them(repackaged, tmp_path):
    folder, fashion = repackaged
    (folder / FILES[2]).unlink()
    with pytest.raises(DataError) as caught:
        load_raw(folder, tmp_path / "home", fashion)
    assert_one_actionable_line(
        caught.value,
        "apt-get install dataset-fashion-mnist",
        "GOLDEN_FASHION_MNIST_SOURCE",
    )


def test_no_fashion_source_and_no_network(repackaged, tmp_path, monkeypatch):
    _, fashion = repackaged
    monkeypatch.setattr(golden.data.settings, "data_source", lambda variable: None)
    with pytest.raises(DataError) as caught:
        load_raw(None, tmp_path / "home", fashion)
    assert_one_actionable_line(
        caught.value, "dataset-fashion-mnist", "GOLDEN_FASHION_MNIST_SOURCE", "internet"
    )


def test_fashion_source_comes_from_its_own_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("GOLDEN_FASHION_MNIST_SOURCE", str(tmp_path / "fashion"))
    assert golden.data.settings.data_source(FASHION_MNIST.source_variable) == (
        tmp_path / "fashion"
    )
    monkeypatch.setenv("GOLDEN_FASHION_MNIST_SOURCE", " ")
    with pytest.raises(golden.data.settings.SettingsError, match="FASHION"):
        golden.data.settings.data_source(FASHION_MNIST.source_variable)


def test_an_unknown_dataset_is_named_with_the_choices():
    with pytest.raises(DataError, match="'kmnist'.*mnist, fashion-mnist"):
        golden.data.dataset("kmnist")


DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(
    not DEBIAN_FASHION.is_dir(), reason="Debian's dataset-fashion-mnist not installed"
)
def test_the_pinned_md5s_are_those_of_debians_files():
    """The pins are of the files `make test` installs; each is accepted as it is."""
    for name, published in FASHION_MNIST.reader.resources:
        assert FASHION_MNIST.accepts(DEBIAN_FASHION / name, name, published), name
