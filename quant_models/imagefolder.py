"""Image-folder data sets: ``train/<class>/*.jpg|png`` and ``test/<class>/...``.

The tree may be a folder, a ``.tar.gz`` / ``.tgz`` / ``.tar`` archive of one, or
a folder of such archives (one per split or one for both), possibly under one
extra top folder inside the archive. Images are decoded once with Pillow and
the uint8 arrays cached under ``$SDBNN_CACHE`` (default
``$XDG_CACHE_HOME/sd-bnn`` or ``~/.cache/sd-bnn``), keyed by the sources' paths,
sizes and modification times, so a changed file is decoded again.

Labels are the class's index in ``classes``: CIFAR-10's own order when the
classes are given (``cifar10``), otherwise the sorted folder names of the
training split (``imagefolder``).
"""
from __future__ import annotations

import hashlib
import io
import os
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPLITS = {True: "train", False: "test"}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".webp")
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
CACHE_VERSION = 1


class ImageFolderError(FileNotFoundError, ValueError):
    """A missing split or class, an unknown class, an undecodable image."""


def cache_dir() -> Path:
    """Where decoded arrays are kept: ``$SDBNN_CACHE``, else the user cache."""
    if os.environ.get("SDBNN_CACHE"):
        return Path(os.environ["SDBNN_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sd-bnn"


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.endswith(ARCHIVE_SUFFIXES)


@dataclass(frozen=True)
class _Source:
    """One place the images of a split come from: a folder or an archive."""

    path: Path
    archive: bool

    def fingerprint(self, split: str) -> list:
        if self.archive:
            st = self.path.stat()
            return [str(self.path.resolve()), st.st_size, st.st_mtime_ns]
        rows = [str(self.path.resolve())]
        for f in sorted((self.path / split).rglob("*")):
            if f.is_file():
                st = f.stat()
                rows.append([str(f.relative_to(self.path)), st.st_size, st.st_mtime_ns])
        return rows


def has_image_tree(folder: Path) -> bool:
    """True when ``folder`` looks like image-folder data (a split folder or archives)."""
    folder = Path(folder)
    if is_archive(folder):
        return True
    if not folder.is_dir():
        return False
    return any((folder / s).is_dir() for s in SPLITS.values()) or bool(_archives(folder))


def _archives(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if is_archive(p))


def _entry(name: str, split: str):
    """(class, name) when archive member ``name`` is an image of ``split``, else None."""
    parts = name.strip("/").split("/")
    if len(parts) < 3 or parts[-3] != split or not parts[-1].lower().endswith(IMAGE_SUFFIXES):
        return None
    return parts[-2], name


def _find_source(root: Path, split: str) -> _Source:
    """The folder or archive holding ``split`` under ``root``."""
    if is_archive(root):
        return _Source(root, True)
    if (root / split).is_dir():
        return _Source(root, False)
    archives = _archives(root)
    # archives named after the split are looked at first, then the others
    archives.sort(key=lambda p: split not in p.name)
    for path in archives:
        if any(_entry(n, split) for n in _member_names(path)):
            return _Source(path, True)
    others = [s for s in SPLITS.values() if s != split]
    raise ImageFolderError(
        f"{root} has no {split}/ split: expected {split}/<class>/*.jpg|png next to "
        f"{others[0]}/, as a folder or inside a .tar.gz in {root}"
    )


def _member_names(path: Path) -> list[str]:
    try:
        with tarfile.open(path) as tar:
            return [m.name for m in tar.getmembers() if m.isfile()]
    except (tarfile.TarError, OSError, EOFError) as e:
        raise ImageFolderError(f"{path} is not a readable tar archive: {e}") from e


def _iter_images(source: _Source, split: str):
    """(class, name, bytes) of every image of ``split`` in ``source``."""
    if source.archive:
        try:
            with tarfile.open(source.path) as tar:
                for m in tar:
                    e = _entry(m.name, split) if m.isfile() else None
                    if e is not None:
                        yield e[0], f"{source.path}:{m.name}", tar.extractfile(m).read()
        except (tarfile.TarError, OSError, EOFError) as e:
            raise ImageFolderError(f"{source.path} is not a readable tar archive: {e}") from e
        return
    for cls_dir in sorted(p for p in (source.path / split).iterdir() if p.is_dir()):
        for f in sorted(cls_dir.iterdir()):
            if f.is_file() and f.name.lower().endswith(IMAGE_SUFFIXES):
                yield cls_dir.name, str(f), f.read_bytes()


def load_split(root, train: bool, classes: tuple[str, ...] | None = None, what: str = "image-folder"):
    """(images uint8 (N, C, H, W), labels int64 (N,), classes) of one split.

    ``classes`` fixes the label order and the allowed class names; None takes
    the sorted class folders of the training split.
    """
    root = Path(root)
    split = SPLITS[train]
    if not root.exists():
        raise ImageFolderError(f"{root} does not exist: point --data-dir at a folder with "
                               f"train/<class>/ and test/<class>/ image folders or a .tar.gz of them")
    # the key needs only stat() calls, so a cached split is found without
    # reading any archive
    key = hashlib.sha256(repr([CACHE_VERSION, split, classes, _fingerprint(root, split)]).encode())
    cached = cache_dir() / "datasets" / f"{what}-{split}-{key.hexdigest()[:20]}.npz"
    if cached.is_file():
        try:
            with np.load(cached) as z:
                return z["images"], z["labels"], tuple(str(c) for c in z["classes"])
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache file is decoded again
    if classes is None:
        classes = _classes(root, split)
    images, labels = _decode(_find_source(root, split), split, classes, what)
    _save_atomic(cached, images=images, labels=labels, classes=np.array(classes))
    return images, labels, classes


def _fingerprint(root: Path, split: str) -> list:
    """Paths, sizes and modification times of everything the split can come
    from: the archive, the split's and train/'s files, or every archive in root."""
    if is_archive(root):
        return _Source(root, True).fingerprint(split)
    trees = [s for s in dict.fromkeys((split, "train")) if (root / s).is_dir()]
    if trees:
        return [_Source(root, False).fingerprint(s) for s in trees]
    return [_Source(p, True).fingerprint(split) for p in _archives(root)]


def _classes(root: Path, split: str) -> tuple[str, ...]:
    """The sorted class folders of the training split (of ``split`` without one)."""
    try:
        source, split = _find_source(root, "train"), "train"
    except ImageFolderError:
        source = _find_source(root, split)
    if source.archive:
        names = {e[0] for e in (_entry(n, split) for n in _member_names(source.path)) if e}
    else:
        names = {p.name for p in (source.path / split).iterdir() if p.is_dir()}
    if not names:
        raise ImageFolderError(f"{source.path}: {split}/ holds no class folders with images")
    return tuple(sorted(names))


def _decode(source: _Source, split: str, classes: tuple[str, ...], what: str):
    from PIL import Image

    index = {c: i for i, c in enumerate(classes)}
    rows, t0, shown = [], time.time(), sys.stderr.isatty()
    mode = shape = first = None
    for cls, name, raw in _iter_images(source, split):
        if cls not in index:
            raise ImageFolderError(
                f"{name}: class folder {cls!r} is not a {what} class; the classes are "
                f"{', '.join(classes)}")
        try:
            with Image.open(io.BytesIO(raw)) as im:
                if mode is None:
                    mode = "L" if what != "cifar10" and im.mode in ("1", "L", "I;16", "I") else "RGB"
                arr = np.asarray(im.convert(mode), dtype=np.uint8)
        except Exception as e:  # Pillow raises many kinds for a bad file
            raise ImageFolderError(f"{name} cannot be decoded as an image: {e}") from e
        if shape is None:
            shape, first = arr.shape, name
        elif arr.shape != shape:
            raise ImageFolderError(f"{name} is {arr.shape[1]}x{arr.shape[0]} but {first} is "
                                   f"{shape[1]}x{shape[0]}: all images must have one size")
        rows.append((index[cls], name, arr))
        if shown and len(rows) % 5000 == 0:
            print(f"\rdecoding {split} images: {len(rows)}", end="", file=sys.stderr, flush=True)
    if shown:
        print(f"\rdecoded {len(rows)} {split} images in {time.time() - t0:.1f} s", file=sys.stderr)
    if not rows:
        raise ImageFolderError(f"{source.path}: {split}/ holds no images (*.jpg, *.png)")
    missing = sorted(set(classes) - {classes[r[0]] for r in rows})
    if missing:
        raise ImageFolderError(f"{source.path}: {split}/ has no images of class(es) {', '.join(missing)}")
    rows.sort(key=lambda r: (r[0], r[1]))
    images = np.stack([r[2] for r in rows])
    images = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
    labels = np.array([r[0] for r in rows], dtype=np.int64)
    return np.ascontiguousarray(images), labels


def _save_atomic(path: Path, **arrays) -> None:
    """Write ``path`` via a temporary file; a cache that cannot be written is skipped."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except OSError as e:
        print(f"warning: decoded images not cached ({path}: {e})", file=sys.stderr)
