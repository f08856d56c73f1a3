"""Datasets: the digits split, MNIST idx and CIFAR-10 pickle readers, their errors,
and the CIFAR-10 augmentation. Files are written in the standard formats here."""
import gzip
import pickle
import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from quant_models.data import (
    DatasetError,
    RandomCropFlip,
    digits_split,
    get_loaders,
    load_dataset,
)

# ---------------------------------------------------------------- digits


def test_digits_split_sizes_shapes_and_ranges():
    train, test = load_dataset("digits", train=True), load_dataset("digits", train=False)
    assert (len(train), len(test)) == (1437, 360)
    x, y = train[0]
    assert x.shape == (1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    for ds in (train, test):
        images = torch.stack([ds[i][0] for i in range(len(ds))])
        assert 0.0 <= images.min() and images.max() <= 1.0
        assert torch.equal(images * 16, (images * 16).round())  # pixels are k / 16


def test_digits_split_is_deterministic_disjoint_and_stratified():
    from sklearn.datasets import load_digits

    labels = load_digits().target
    train_idx, test_idx = digits_split(labels)
    again = digits_split(labels)
    assert np.array_equal(train_idx, again[0]) and np.array_equal(test_idx, again[1])
    assert not set(train_idx) & set(test_idx)
    assert sorted(np.concatenate([train_idx, test_idx])) == list(range(len(labels)))
    for c in range(10):
        share = np.sum(labels[test_idx] == c) / np.sum(labels == c)
        assert abs(share - 0.2) < 0.01
    first = load_dataset("digits", train=False)
    assert torch.equal(first.images, load_dataset("digits", train=False).images)


def test_unknown_dataset_lists_known_names():
    with pytest.raises(ValueError, match="digits, mnist, cifar10"):
        load_dataset("imagenet")


def test_get_loaders_batches_and_epoch_order():
    train_loader, test_loader = get_loaders("digits", batch_size=64, seed=3)
    x, y = next(iter(test_loader))
    assert x.shape == (64, 1, 8, 8) and y.shape == (64,)
    orders = []
    for epoch in (0, 0, 1):
        train_loader.sampler.set_epoch(epoch)
        orders.append(list(train_loader.sampler))
    assert orders[0] == orders[1] != orders[2]
    assert sorted(orders[0]) == list(range(1437))


# ---------------------------------------------------------------- MNIST


def write_idx(path, array: np.ndarray, gz: bool = False):
    """An idx file of unsigned bytes: 0, 0, 0x08, ndim, big-endian dims, data."""
    raw = struct.pack(">HBB", 0, 0x08, array.ndim)
    raw += struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        raw = gzip.compress(raw)
    path.write_bytes(raw)
    return path


def write_mnist(folder, gz=False, n_train=6, n_test=4, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test),
    }
    for name, a in arrays.items():
        write_idx(folder / name, a, gz)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_roundtrip(tmp_path, gz):
    arrays = write_mnist(tmp_path, gz)
    for train, prefix in ((True, "train"), (False, "t10k")):
        ds = load_dataset("mnist", tmp_path, train=train)
        images = arrays[f"{prefix}-images-idx3-ubyte"]
        labels = arrays[f"{prefix}-labels-idx1-ubyte"]
        assert len(ds) == len(labels)
        for i in range(len(ds)):
            x, y = ds[i]
            assert x.shape == (1, 28, 28)
            assert torch.equal(x, torch.from_numpy(images[i][None] / 255).float())
            assert y.item() == labels[i]


def test_mnist_missing_file_is_named(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte") as err:
        load_dataset("mnist", tmp_path, train=False)
    assert str(tmp_path) in str(err.value) and isinstance(err.value, FileNotFoundError)


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda p: p.write_bytes(b"\x00\x00\x08\x01" + p.read_bytes()[4:]), "magic number"),
        (lambda p: p.write_bytes(p.read_bytes()[:-5]), "data bytes"),
        (lambda p: p.write_bytes(b"\x00\x00"), "magic number"),
    ],
    ids=["wrong-magic", "truncated", "tiny"],
)
def test_mnist_corrupt_file_is_named(tmp_path, corrupt, message):
    write_mnist(tmp_path)
    corrupt(tmp_path / "train-images-idx3-ubyte")
    with pytest.raises(DatasetError, match=message) as err:
        load_dataset("mnist", tmp_path)
    assert "train-images-idx3-ubyte" in str(err.value)


def test_mnist_bad_gzip_and_label_count(tmp_path):
    write_mnist(tmp_path, gz=True)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DatasetError, match="train-labels-idx1-ubyte.gz"):
        load_dataset("mnist", tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(3), gz=True)  # 4 images
    with pytest.raises(DatasetError, match="4 images but .* 3 labels"):
        load_dataset("mnist", tmp_path, train=False)


# ---------------------------------------------------------------- CIFAR-10

CIFAR_NAMES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def write_cifar(folder, n=3, seed=0):
    """Batch pickles as the official files hold them: bytes keys, uint8 rows of 3072."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    batches = {}
    for name in CIFAR_NAMES:
        batch = {
            b"batch_label": name.encode(),
            b"labels": rng.integers(0, 10, n).tolist(),
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"filenames": [f"img{i}.png".encode() for i in range(n)],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
        batches[name] = batch
    return batches


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "cifar-10-batches-py"])
def test_cifar10_roundtrip(tmp_path, nested):
    batches = write_cifar(tmp_path / "cifar-10-batches-py" if nested else tmp_path)
    train = load_dataset("cifar10", tmp_path, train=True, augment=False)
    test = load_dataset("cifar10", tmp_path, train=False)
    data = np.concatenate([batches[n][b"data"] for n in CIFAR_NAMES[:5]])
    labels = sum((batches[n][b"labels"] for n in CIFAR_NAMES[:5]), [])
    assert len(train) == 15 and len(test) == 3
    assert torch.equal(train.images, torch.from_numpy(data.reshape(-1, 3, 32, 32)))
    assert train.labels.tolist() == labels
    x, y = test[1]
    row = batches["test_batch"][b"data"][1]
    assert x.shape == (3, 32, 32)
    assert torch.equal(x[1, 0], torch.from_numpy(row[1024:1056] / 255).float())  # G plane, row 0
    assert y.item() == batches["test_batch"][b"labels"][1]


def test_cifar10_reads_pickles_written_by_old_numpy(tmp_path):
    """The official files name numpy.core.multiarray, numpy >= 2 writes numpy._core."""
    batches = write_cifar(tmp_path)
    path = tmp_path / "test_batch"
    path.write_bytes(path.read_bytes().replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    test = load_dataset("cifar10", tmp_path, train=False)
    assert test.images.flatten(1).numpy().tobytes() == batches["test_batch"][b"data"].tobytes()


def test_cifar10_missing_file_says_what_to_download(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DatasetError, match="data_batch_3") as err:
        load_dataset("cifar10", tmp_path)
    message = str(err.value)
    assert "cifar-10-python.tar.gz" in message and str(tmp_path / "cifar-10-batches-py") in message
    with pytest.raises(DatasetError, match="test_batch"):
        load_dataset("cifar10", tmp_path / "empty", train=False)


class _Evil:
    def __reduce__(self):
        return (print, ("executed",))


@pytest.mark.parametrize(
    "content, message",
    [
        (b"garbage", "not a CIFAR-10 batch pickle"),
        (pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}), "3072"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}), "1 labels"),
        (pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}), "labels must be"),
        (pickle.dumps({b"labels": [0]}), "not a CIFAR-10 batch pickle"),
        (pickle.dumps(_Evil()), "refusing to load builtins.print"),
    ],
    ids=["garbage", "width", "label-count", "label-range", "no-data", "code"],
)
def test_cifar10_corrupt_file_is_named(tmp_path, content, message):
    write_cifar(tmp_path)
    (tmp_path / "test_batch").write_bytes(content)
    with pytest.raises(DatasetError, match=message) as err:
        load_dataset("cifar10", tmp_path, train=False)
    assert "test_batch" in str(err.value) and isinstance(err.value, ValueError)


def test_cifar10_augments_only_training_by_default(tmp_path):
    write_cifar(tmp_path)
    assert isinstance(load_dataset("cifar10", tmp_path, train=True).transform, RandomCropFlip)
    assert load_dataset("cifar10", tmp_path, train=False).transform is None
    with pytest.raises(ValueError, match="no augmentation"):
        load_dataset("digits", augment=True)


def test_augmentation_is_a_crop_or_flip_of_the_padded_image():
    torch.manual_seed(0)
    x = torch.rand(3, 32, 32)
    padded = F.pad(x, (4, 4, 4, 4))
    windows = {
        (i, j, flip): (w.flip(-1) if flip else w)
        for i in range(9)
        for j in range(9)
        for flip in (False, True)
        for w in [padded[:, i : i + 32, j : j + 32]]
    }
    seen = set()
    augment = RandomCropFlip(padding=4)
    for _ in range(200):
        out = augment(x)
        assert out.shape == x.shape
        matches = [key for key, w in windows.items() if torch.equal(out, w)]
        assert matches, "output is not a window of the padded image"
        seen.add(matches[0])
    assert {flip for _, _, flip in seen} == {False, True}
    assert len({(i, j) for i, j, _ in seen}) > 20
