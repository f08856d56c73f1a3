"""Image-folder data (``cifar10`` and ``imagefolder``): trees, archives, the
official CIFAR-10 archive, the decoded-array cache, their errors, batch
indexing and batch augmentation; and the real CIFAR-10 JPEG copy when this
machine has it. Synthetic files are PNG (lossless) written here."""
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from quant_models.data import CIFAR10_CLASSES, DatasetError, RandomCropFlip, get_loaders, load_dataset

SHARED = Path(os.environ.get("SDBNN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SDBNN_CACHE", str(tmp_path / "cache"))


def make_tree(root: Path, classes, per_class=(3, 2), size=(5, 4), mode="RGB", seed=0):
    """``root/train/<class>/k.png`` and ``root/test/...``; returns {split: [(class, k, array)]}."""
    rng = np.random.default_rng(seed)
    written = {}
    for split, n in zip(("train", "test"), per_class):
        rows = []
        for c in classes:
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for k in range(n):
                shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
                a = rng.integers(0, 256, shape, dtype=np.uint8)
                Image.fromarray(a, mode).save(root / split / c / f"{k:04d}.png")
                rows.append((c, k, a))
        written[split] = rows
    return written


def expected(rows, classes):
    """Images (N, C, H, W) and labels in the loader's order: by class index, then file name."""
    order = sorted(rows, key=lambda r: (classes.index(r[0]), r[1]))
    arrays = [r[2] if r[2].ndim == 3 else r[2][..., None] for r in order]
    return np.stack(arrays).transpose(0, 3, 1, 2), np.array([classes.index(r[0]) for r in order])


def make_tar(path: Path, root: Path, members=("train", "test"), prefix=""):
    with tarfile.open(path, "w:gz") as tar:
        for m in members:
            tar.add(root / m, arcname=f"{prefix}{m}")
    return path


# ---------------------------------------------------------------- layouts


def test_imagefolder_tree_classes_labels_pixels(tmp_path):
    classes = ["zebra", "ant", "mole"]  # labels follow sorted names, not creation order
    written = make_tree(tmp_path / "d", classes)
    for train, split in ((True, "train"), (False, "test")):
        ds = load_dataset("imagefolder", tmp_path / "d", train=train)
        assert ds.classes == ("ant", "mole", "zebra") and ds.num_classes == 3
        images, labels = expected(written[split], sorted(classes))
        assert ds.sample_shape == (3, 4, 5)
        assert torch.equal(ds.images, torch.from_numpy(images))
        assert ds.labels.tolist() == labels.tolist()


def test_imagefolder_grayscale_gives_one_channel(tmp_path):
    written = make_tree(tmp_path, ["a", "b"], mode="L", size=(6, 6))
    ds = load_dataset("imagefolder", tmp_path, train=False)
    images, _ = expected(written["test"], ["a", "b"])
    assert ds.sample_shape == (1, 6, 6) and torch.equal(ds.images, torch.from_numpy(images))


@pytest.mark.parametrize("layout", ["one-archive", "archive-per-split", "archive-is-data-dir", "nested-prefix"])
def test_archives_read_the_same_images_as_the_tree(tmp_path, layout):
    tree = tmp_path / "tree"
    make_tree(tree, list(CIFAR10_CLASSES), per_class=(2, 1), size=(32, 32))
    data = tmp_path / "data"
    data.mkdir()
    if layout == "one-archive":
        make_tar(data / "all.tar.gz", tree)
    elif layout == "archive-per-split":
        make_tar(data / "x-test.tgz", tree, ["test"])
        make_tar(data / "x-train.tar.gz", tree, ["train"])
    elif layout == "archive-is-data-dir":
        data = make_tar(tmp_path / "both.tar.gz", tree)
    else:
        make_tar(data / "all.tar.gz", tree, prefix="cifar10-jpeg/")
    for train in (True, False):
        want = load_dataset("cifar10", tree, train=train, augment=False)
        got = load_dataset("cifar10", data, train=train, augment=False)
        assert len(got) == (20 if train else 10)
        assert torch.equal(got.images, want.images) and torch.equal(got.labels, want.labels)
        assert got.classes == CIFAR10_CLASSES


def test_official_cifar10_archive_is_read_without_extracting(tmp_path):
    rng = np.random.default_rng(1)
    batches = {}
    src = tmp_path / "src" / "cifar-10-batches-py"
    src.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batches[name] = {b"labels": rng.integers(0, 10, 2).tolist(),
                         b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8)}
        (src / name).write_bytes(pickle.dumps(batches[name], protocol=2))
    data = tmp_path / "data"
    data.mkdir()
    with tarfile.open(data / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(src, arcname="cifar-10-batches-py")
    test = load_dataset("cifar10", data, train=False)
    train = load_dataset("cifar10", data / "cifar-10-python.tar.gz", train=True, augment=False)
    assert test.images.flatten(1).numpy().tobytes() == batches["test_batch"][b"data"].tobytes()
    assert train.labels.tolist() == sum((batches[f"data_batch_{i}"][b"labels"] for i in range(1, 6)), [])


# ---------------------------------------------------------------- cache


def test_decoded_arrays_are_cached_and_a_changed_file_is_decoded_again(tmp_path):
    written = make_tree(tmp_path / "d", ["a", "b"])
    first = load_dataset("imagefolder", tmp_path / "d", train=False)
    cached = list((tmp_path / "cache" / "datasets").glob("imagefolder-test-*.npz"))
    assert len(cached) == 1
    again = load_dataset("imagefolder", tmp_path / "d", train=False)
    assert torch.equal(first.images, again.images)
    new = np.zeros_like(written["test"][0][2])
    Image.fromarray(new, "RGB").save(tmp_path / "d" / "test" / "a" / "0000.png")
    os.utime(tmp_path / "d" / "test" / "a" / "0000.png", ns=(1, 10**18))
    changed = load_dataset("imagefolder", tmp_path / "d", train=False)
    assert changed.images[0].sum() == 0 and not torch.equal(changed.images, first.images)
    current = set((tmp_path / "cache" / "datasets").glob("imagefolder-test-*.npz")) - set(cached)
    assert len(current) == 1
    current.pop().write_bytes(b"damaged")  # a damaged cache file is decoded again, not an error
    assert torch.equal(load_dataset("imagefolder", tmp_path / "d", train=False).images, changed.images)


# ---------------------------------------------------------------- errors


def test_unknown_cifar10_class_is_named(tmp_path):
    make_tree(tmp_path, list(CIFAR10_CLASSES[:9]) + ["bicycle"], per_class=(1, 1), size=(32, 32))
    with pytest.raises(DatasetError, match="'bicycle' is not a cifar10 class; the classes are airplane"):
        load_dataset("cifar10", tmp_path, train=False)


def test_missing_cifar10_class_is_named(tmp_path):
    make_tree(tmp_path, list(CIFAR10_CLASSES[:9]), per_class=(1, 1), size=(32, 32))
    with pytest.raises(DatasetError, match="no images of class.* truck"):
        load_dataset("cifar10", tmp_path, train=False)


def test_cifar10_tree_with_wrong_image_size_is_refused(tmp_path):
    make_tree(tmp_path, list(CIFAR10_CLASSES), per_class=(1, 1), size=(8, 8))
    with pytest.raises(DatasetError, match="32x32 RGB, these are 8x8"):
        load_dataset("cifar10", tmp_path, train=False)


def test_missing_split_is_named(tmp_path):
    make_tree(tmp_path, ["a", "b"])
    import shutil
    shutil.rmtree(tmp_path / "test")
    with pytest.raises(DatasetError, match="no test/ split"):
        load_dataset("imagefolder", tmp_path, train=False)
    assert len(load_dataset("imagefolder", tmp_path, train=True)) == 6


def test_folder_with_neither_layout(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match="not an image-folder data set"):
        load_dataset("imagefolder", tmp_path, train=False)
    with pytest.raises(DatasetError, match="test_batch not found .* or point --data-dir at an image-folder"):
        load_dataset("cifar10", tmp_path, train=False)


def test_undecodable_and_mismatched_images_are_named(tmp_path):
    make_tree(tmp_path, ["a", "b"])
    bad = tmp_path / "test" / "b" / "0001.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"0001.png cannot be decoded"):
        load_dataset("imagefolder", tmp_path, train=False)
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(bad)
    with pytest.raises(DatasetError, match=r"0001.png is 9x9 but .*0000.png is 5x4"):
        load_dataset("imagefolder", tmp_path, train=False)


def test_corrupt_archive_is_named(tmp_path):
    (tmp_path / "data.tar.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(DatasetError, match="data.tar.gz is not a readable tar archive"):
        load_dataset("imagefolder", tmp_path, train=False)


def test_train_and_test_classes_must_agree(tmp_path):
    make_tree(tmp_path, ["a", "b"])
    (tmp_path / "test" / "c").mkdir()
    Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(tmp_path / "test" / "c" / "x.png")
    with pytest.raises(DatasetError, match="'c' is not a imagefolder class"):
        get_loaders("imagefolder", tmp_path)


# ---------------------------------------------------------------- batches


def test_batch_indexing_equals_item_indexing(tmp_path):
    make_tree(tmp_path, ["a", "b", "c"], per_class=(4, 1))
    ds = load_dataset("imagefolder", tmp_path, train=True)
    idx = [5, 0, 11, 3]
    x, y = ds[idx]
    assert torch.equal(x, torch.stack([ds[i][0] for i in idx]))
    assert y.tolist() == [ds[i][1].item() for i in idx]


def test_batch_augmentation_crops_and_flips_every_image_on_its_own():
    torch.manual_seed(0)
    batch = torch.rand(64, 3, 8, 8)
    out = RandomCropFlip(padding=2)(batch)
    keys = set()
    for x, o in zip(batch, out):
        padded = F.pad(x, (2, 2, 2, 2))
        match = [(i, j, f) for i in range(5) for j in range(5) for f in (False, True)
                 if torch.equal(o, padded[:, i:i + 8, j:j + 8].flip(-1) if f else padded[:, i:i + 8, j:j + 8])]
        assert match, "an output is not a window of its own padded image"
        keys.add(match[0])
    assert len(keys) > 20 and {f for *_, f in keys} == {False, True}


def test_loaders_with_workers_give_the_same_batches_for_the_same_seed(tmp_path):
    make_tree(tmp_path, ["a", "b"], per_class=(10, 2))
    runs = []
    for workers in (1, 1, 0):
        train, test = get_loaders("imagefolder", tmp_path, batch_size=4, workers=workers, seed=5)
        train.sampler.set_epoch(2)
        torch.manual_seed(7)
        runs.append([(x.clone(), y.clone()) for x, y in train])
        assert len(runs[-1]) == len(train) == 5
        assert sum(len(y) for _, y in test) == 4
    for (xa, ya), (xb, yb) in zip(runs[0], runs[1]):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert [y.tolist() for _, y in runs[0]] == [y.tolist() for _, y in runs[2]]  # same order


# ---------------------------------------------------------------- the real JPEG copy


@pytest.mark.skipif(not (SHARED / "cifar10-jpeg-test.tar.gz").is_file(),
                    reason=f"CIFAR-10 JPEG copy not on this machine ({SHARED}); set SDBNN_SHARED_DATA")
def test_real_cifar10_jpeg_copy_test_split():
    ds = load_dataset("cifar10", SHARED, train=False)
    assert len(ds) == 10000 and ds.sample_shape == (3, 32, 32)
    assert torch.bincount(ds.labels).tolist() == [1000] * 10
    # one image decoded here from the archive lands at its class's block, in file order
    with tarfile.open(SHARED / "cifar10-jpeg-test.tar.gz") as tar:
        raw = tar.extractfile("test/cat/0007.jpg").read()
    pixels = np.asarray(Image.open(io.BytesIO(raw)).convert("RGB")).transpose(2, 0, 1)
    assert ds.labels[3 * 1000 + 7].item() == 3
    assert torch.equal(ds.images[3 * 1000 + 7], torch.from_numpy(pixels))
    assert ds.images.float().mean().item() == pytest.approx(121, abs=4)  # CIFAR-10's mean pixel
