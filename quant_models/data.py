"""Datasets for training and validating SD-BNNs, without torchvision.

Every dataset yields ``(image, label)``: a float image in [0, 1] shaped (C, H, W)
and an int64 label; indexed with a list or tensor of indices it yields a batch
(the training loaders fetch whole batches this way). Images are kept as
integers in memory and scaled on access.

- ``digits``: scikit-learn's embedded 8x8 digits (1797 images, pixels 0..16),
  1x8x8. A fixed stratified split (seed 0): 1437 train / 360 test images.
- ``mnist``: the four standard idx files (optionally ``.gz``), 1x28x28.
- ``cifar10``: the ``cifar-10-batches-py`` pickles, or an image-folder tree
  (``train/<class>/*.jpg``, ``test/<class>/...``; a folder, a ``.tar.gz`` or a
  folder of archives) whose class names are CIFAR-10's; 3x32x32. Training
  images get a random 32x32 crop of the 4-pixel zero-padded image and a random
  horizontal flip.
- ``imagefolder``: any image-folder tree (see :mod:`quant_models.imagefolder`);
  classes are the sorted folder names, the shape is the images'.

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
from torch.utils.data import BatchSampler, DataLoader, Dataset, DistributedSampler, SequentialSampler

from .imagefolder import ImageFolderError, has_image_tree, load_split

DATASETS = ("digits", "mnist", "cifar10", "imagefolder")
NUM_CLASSES = 10
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")

MNIST_URL = "https://yann.lecun.com/exdb/mnist/ (or any mirror)"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0


class DatasetError(FileNotFoundError, ValueError):
    """A dataset file is missing (a FileNotFoundError) or malformed (a ValueError)."""


class ImageDataset(Dataset):
    """Integer images (N, C, H, W) returned as floats ``image / max_value``.

    ``transform`` (optional) is applied to each float image, or to a whole
    batch when the index is a list or tensor of indices.
    """

    def __init__(self, images: Tensor, labels: Tensor, max_value: float, transform=None,
                 classes: tuple[str, ...] | None = None):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels.long()
        self.max_value = float(max_value)
        self.transform = transform
        self.classes = tuple(classes) if classes is not None else tuple(str(c) for c in range(NUM_CLASSES))
        self.num_classes = len(self.classes)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape[1:])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        if not isinstance(i, (int, np.integer)):
            i = torch.as_tensor(i, dtype=torch.long)
        x = self.images[i].float() / self.max_value
        if self.transform is not None:
            x = self.transform(x)
        return x, self.labels[i]


class RandomCropFlip:
    """Random H x W crop of the zero-padded image, then a horizontal flip with p = 0.5.

    Takes one image (C, H, W) or a batch (N, C, H, W), every image with its own
    crop and flip, drawn from torch's global RNG so DataLoader workers and
    seeding apply.
    """

    def __init__(self, padding: int = 4, flip: bool = True):
        self.padding = padding
        self.flip = flip

    def __call__(self, x: Tensor) -> Tensor:
        single = x.dim() == 3
        batch = x[None] if single else x
        n, c, h, w = batch.shape
        p = self.padding
        padded = F.pad(batch, (p, p, p, p))
        offsets = torch.randint(0, 2 * p + 1, (n, 2))
        rows = (offsets[:, 0, None] + torch.arange(h))[:, None, :, None]  # (n, 1, h, 1)
        cols = (offsets[:, 1, None] + torch.arange(w))[:, None, None, :]  # (n, 1, 1, w)
        if self.flip:
            flipped = torch.rand(n) < 0.5
            cols = torch.where(flipped[:, None, None, None], cols.flip(-1), cols)
        out = padded[torch.arange(n)[:, None, None, None], torch.arange(c)[None, :, None, None], rows, cols]
        return out[0] if single else out


class BatchLoader:
    """Batches of a dataset, fetched by index lists (one gather per batch).

    ``sampler`` orders the indices (``set_epoch`` reaches it as
    ``loader.sampler.set_epoch``); with ``workers`` > 0 the batches are
    prepared by that many DataLoader processes.
    """

    def __init__(self, dataset, sampler, batch_size: int, workers: int = 0, pin_memory: bool = False):
        self.dataset, self.sampler = dataset, sampler
        self.batch_size, self.workers, self.pin_memory = batch_size, workers, pin_memory

    def __len__(self) -> int:
        return -(-len(self.sampler) // self.batch_size)

    def __iter__(self):
        batches = list(BatchSampler(self.sampler, self.batch_size, drop_last=False))
        if self.workers > 0:
            yield from DataLoader(self.dataset, sampler=batches, batch_size=None,
                                  num_workers=self.workers, pin_memory=self.pin_memory,
                                  persistent_workers=False)
            return
        for b in batches:
            x, y = self.dataset[b]
            yield (x.pin_memory(), y.pin_memory()) if self.pin_memory else (x, y)


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
    classes = None
    if name == "digits":
        images, labels, max_value = _load_digits(train)
    else:
        folder = Path(data_dir) if data_dir is not None else default_data_dir(name)
        if name == "mnist":
            images, labels = _load_mnist(folder, train)
        elif name == "cifar10":
            images, labels = _load_cifar10(folder, train)
            classes = CIFAR10_CLASSES
        else:
            images, labels, classes = _load_imagefolder(folder, train)
        max_value = 255
    transform = RandomCropFlip(padding=4) if augment else None
    return ImageDataset(torch.from_numpy(images), torch.from_numpy(labels), max_value, transform, classes)


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
    if test_set.classes != train_set.classes:
        raise DatasetError(f"{name}: the test split's classes {test_set.classes} differ from the "
                           f"training split's {train_set.classes}")
    sampler = DistributedSampler(
        train_set, num_replicas=world_size, rank=rank, shuffle=True, seed=seed
    )
    train_loader = BatchLoader(train_set, sampler, batch_size, workers, pin_memory)
    test_loader = BatchLoader(test_set, SequentialSampler(test_set), batch_size, workers, pin_memory)
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


CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"


def _load_cifar10(folder: Path, train: bool):
    """The pickles (extracted, or inside the official archive) when ``folder``
    has them, else an image-folder tree of CIFAR-10's classes."""
    names = CIFAR10_TRAIN_FILES if train else CIFAR10_TEST_FILES
    pickles = _find_cifar10_folder(folder)
    archive = folder if folder.name == CIFAR10_ARCHIVE else folder / CIFAR10_ARCHIVE
    if (pickles / "test_batch").is_file() or not (archive.is_file() or has_image_tree(folder)):
        batches = [_read_cifar_batch(pickles / name) for name in names]
    elif archive.is_file():
        batches = _read_cifar_archive(archive, names)
    else:
        try:
            images, labels, _ = load_split(folder, train, CIFAR10_CLASSES, "cifar10")
        except ImageFolderError as e:
            raise DatasetError(str(e)) from e
        if images.shape[1:] != (3, 32, 32):
            raise DatasetError(f"{folder}: CIFAR-10 images are 32x32 RGB, these are "
                               f"{images.shape[3]}x{images.shape[2]} with {images.shape[1]} channel(s)")
        return images, labels
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


def _read_cifar_archive(path: Path, names) -> list:
    """The batches ``names`` read straight from the official ``cifar-10-python.tar.gz``."""
    import tarfile

    found = {}
    try:
        with tarfile.open(path) as tar:
            for m in tar:
                base = m.name.rsplit("/", 1)[-1]
                if m.isfile() and base in names:
                    found[base] = _parse_cifar_batch(tar.extractfile(m), Path(f"{path}:{m.name}"))
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DatasetError(f"{path} is not a readable tar archive: {e}") from e
    missing = [n for n in names if n not in found]
    if missing:
        raise DatasetError(f"{path} holds no {', '.join(missing)}: it is not CIFAR-10's "
                           f"python archive ({CIFAR10_URL})")
    return [found[n] for n in names]


def _load_imagefolder(folder: Path, train: bool):
    if not has_image_tree(folder):
        raise DatasetError(
            f"{folder} is not an image-folder data set: expected train/<class>/*.jpg|png and "
            f"test/<class>/... (a folder, a .tar.gz of one, or a folder of such archives)")
    try:
        return load_split(folder, train, None, "imagefolder")
    except ImageFolderError as e:
        raise DatasetError(str(e)) from e


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
            f"data_batch_1..5 and test_batch), or point --data-dir at an image-folder "
            f"copy (train/<class>/*.jpg, test/<class>/..., or .tar.gz archives of them)"
        )
    with open(path, "rb") as f:
        return _parse_cifar_batch(f, path)


def _parse_cifar_batch(f, path: Path):
    try:
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
