"""Datasets for training and validating SD-BNNs, without torchvision.

Every dataset yields ``(image, label)``: a float image in [0, 1] shaped (C, H, W)
and an int64 label. Images are kept as integers in memory and scaled on access.

- ``digits``: scikit-learn's embedded 8x8 digits (1797 images, pixels 0..16),
  1x8x8. A fixed stratified split (seed 0): 1437 train / 360 test images.
- ``mnist``: the four standard idx files (optionally ``.gz``), 1x28x28.
- ``cifar10``: the ``cifar-10-batches-py`` pickles, 3x32x32; training images
  get a random 32x32 crop of the 4-pixel zero-padded image and a random
  horizontal flip.

Missing or unreadable files raise :class:`DatasetError`, naming the file, the
folder searched and what to put there.
"""
from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

DATASETS = ("digits", "mnist", "cifar10")
NUM_CLASSES = 10

MNIST_URL = "https://yann.lecun.com/exdb/mnist/ (or any mirror)"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0


class DatasetError(FileNotFoundError, ValueError):
    """A dataset file is missing (a FileNotFoundError) or malformed (a ValueError)."""


class ImageDataset(Dataset):
    """Integer images (N, C, H, W) returned as floats ``image / max_value``.

    ``transform`` (optional) is applied to each float image.
    """

    def __init__(self, images: Tensor, labels: Tensor, max_value: float, transform=None):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels.long()
        self.max_value = float(max_value)
        self.transform = transform
        self.num_classes = NUM_CLASSES

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape[1:])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        x = self.images[i].float() / self.max_value
        if self.transform is not None:
            x = self.transform(x)
        return x, self.labels[i]


class RandomCropFlip:
    """Random H x W crop of the zero-padded image, then a horizontal flip with p = 0.5.

    Draws from torch's global RNG, so DataLoader workers and seeding apply.
    """

    def __init__(self, padding: int = 4, flip: bool = True):
        self.padding = padding
        self.flip = flip

    def __call__(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        p = self.padding
        padded = F.pad(x, (p, p, p, p))
        i, j = torch.randint(0, 2 * p + 1, (2,)).tolist()
        out = padded[..., i : i + h, j : j + w]
        if self.flip and torch.rand(()) < 0.5:
            out = out.flip(-1)
        return out


def default_data_dir(name: str) -> Path:
    """``$SDBNN_DATA/<name>``, or ``data/<name>`` when the variable is unset."""
    return Path(os.environ.get("SDBNN_DATA", "data")) / name


def load_dataset(name: str, data_dir=None, train: bool = True, augment: bool | None = None):
    """The train or test split of dataset ``name`` as an :class:`ImageDataset`.

    ``augment`` defaults to True for the CIFAR-10 training split and False
    otherwise; only CIFAR-10 has a standard augmentation.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    augment = (name == "cifar10" and train) if augment is None else augment
    if augment and name != "cifar10":
        raise ValueError(f"no augmentation is defined for {name!r}, only for 'cifar10'")
    if name == "digits":
        images, labels, max_value = _load_digits(train)
    else:
        folder = Path(data_dir) if data_dir is not None else default_data_dir(name)
        load = _load_mnist if name == "mnist" else _load_cifar10
        images, labels = load(folder, train)
        max_value = 255
    transform = RandomCropFlip(padding=4) if augment else None
    return ImageDataset(torch.from_numpy(images), torch.from_numpy(labels), max_value, transform)


def get_loaders(
    name: str,
    data_dir=None,
    batch_size: int = 128,
    workers: int = 0,
    augment: bool | None = None,
    seed: int = 0,
    world_size: int = 1,
    rank: int = 0,
    pin_memory: bool = False,
):
    """(train_loader, test_loader) for dataset ``name``.

    The training loader shuffles with a :class:`DistributedSampler` (one replica
    when not distributed) whose order depends only on ``seed`` and the epoch:
    call ``train_loader.sampler.set_epoch(epoch)`` before each epoch.
    """
    train_set = load_dataset(name, data_dir, train=True, augment=augment)
    test_set = load_dataset(name, data_dir, train=False)
    sampler = DistributedSampler(
        train_set, num_replicas=world_size, rank=rank, shuffle=True, seed=seed
    )
    common = dict(batch_size=batch_size, num_workers=workers, pin_memory=pin_memory)
    train_loader = DataLoader(train_set, sampler=sampler, **common)
    test_loader = DataLoader(test_set, shuffle=False, **common)
    return train_loader, test_loader


def digits_split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, test) indices: 80/20, stratified by label, seed 0."""
    from sklearn.model_selection import train_test_split

    train_idx, test_idx = train_test_split(
        np.arange(len(labels)),
        test_size=DIGITS_TEST_FRACTION,
        stratify=labels,
        random_state=DIGITS_SPLIT_SEED,
    )
    return np.sort(train_idx), np.sort(test_idx)


def _load_digits(train: bool):
    """scikit-learn's digits as uint8 (N, 1, 8, 8) images (0..16) and labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.uint8)[:, None]  # pixels are integers 0..16
    labels = digits.target.astype(np.int64)
    train_idx, test_idx = digits_split(labels)
    idx = train_idx if train else test_idx
    return images[idx], labels[idx], 16


# ---------------------------------------------------------------- MNIST (idx files)

MNIST_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IDX_UBYTE = 0x08  # idx type code of unsigned bytes


def _load_mnist(folder: Path, train: bool):
    image_name, label_name = MNIST_FILES[train]
    images = read_idx(_find_mnist_file(folder, image_name), ndim=3)
    labels = read_idx(_find_mnist_file(folder, label_name), ndim=1)
    if len(images) != len(labels):
        raise DatasetError(
            f"{folder / image_name} holds {len(images)} images but "
            f"{folder / label_name} holds {len(labels)} labels"
        )
    _check_labels(labels, folder / label_name)
    return images[:, None], labels.astype(np.int64)


def _find_mnist_file(folder: Path, name: str) -> Path:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise DatasetError(
        f"MNIST file {name} (or {name}.gz) not found in {folder}. Download "
        f"train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        f"t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz from {MNIST_URL} "
        f"and put them (gzipped or not) into {folder}"
    )


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An idx file of unsigned bytes with ``ndim`` dimensions as a uint8 array.

    Header: two zero bytes, the type code 0x08, the number of dimensions, then
    one big-endian uint32 per dimension; the data follows, row-major.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:  # a truncated or non-gzip .gz file
        raise DatasetError(f"{path} cannot be read: {e}") from e
    expected_magic = (IDX_UBYTE << 8) | ndim
    header = 4 + 4 * ndim
    magic = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if magic != expected_magic:
        raise DatasetError(
            f"{path} is not an idx file of {ndim}-d unsigned bytes: magic number "
            f"{magic if magic is None else hex(magic)}, expected {expected_magic:#010x}"
        )
    if len(raw) < header:
        raise DatasetError(f"{path} is truncated inside its header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    size = int(np.prod(shape))
    if len(raw) != header + size:
        raise DatasetError(
            f"{path} has {len(raw) - header} data bytes, its header {shape} says {size}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


# ---------------------------------------------------------------- CIFAR-10 (pickles)

CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILES = ("test_batch",)


def _load_cifar10(folder: Path, train: bool):
    folder = _find_cifar10_folder(folder)
    images, labels = [], []
    for name in CIFAR10_TRAIN_FILES if train else CIFAR10_TEST_FILES:
        x, y = _read_cifar_batch(folder / name)
        images.append(x)
        labels.append(y)
    return np.concatenate(images), np.concatenate(labels)


def _find_cifar10_folder(folder: Path) -> Path:
    """``folder`` or ``folder/cifar-10-batches-py``, whichever holds ``test_batch``."""
    for candidate in (folder, folder / "cifar-10-batches-py"):
        if (candidate / "test_batch").is_file():
            return candidate
    return folder / "cifar-10-batches-py"  # the missing file is reported from here


def _read_cifar_batch(path: Path):
    """One CIFAR-10 batch pickle: (N, 3, 32, 32) uint8 images and int64 labels."""
    if not path.is_file():
        raise DatasetError(
            f"CIFAR-10 file {path.name} not found in {path.parent}. Download "
            f"cifar-10-python.tar.gz from {CIFAR10_URL} and extract it into "
            f"{path.parent.parent} (it creates {path.parent.name}/ with "
            f"data_batch_1..5 and test_batch)"
        )
    try:
        with open(path, "rb") as f:
            batch = _NumpyUnpickler(f, encoding="bytes").load()
        data = np.asarray(batch[b"data"])
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except Exception as e:  # any unpickling or format problem means a bad file
        raise DatasetError(f"{path} is not a CIFAR-10 batch pickle: {e!r}") from e
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DatasetError(
            f"{path}: b'data' must be uint8 rows of 3072 bytes, got {data.dtype} {data.shape}"
        )
    if len(labels) != len(data):
        raise DatasetError(f"{path}: {len(data)} images but {len(labels)} labels")
    _check_labels(labels, path)
    return data.reshape(-1, 3, 32, 32), labels


class _NumpyUnpickler(pickle.Unpickler):
    """Unpickles only plain data and numpy arrays, never arbitrary objects."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _check_labels(labels: np.ndarray, path: Path) -> None:
    if labels.size and not (labels.min() >= 0 and labels.max() < NUM_CLASSES):
        raise DatasetError(
            f"{path}: labels must be 0..{NUM_CLASSES - 1}, found {labels.min()}..{labels.max()}"
        )
