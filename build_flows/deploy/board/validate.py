#!/usr/bin/env python3
"""CIFAR-10 test accuracy and FPS of the accelerator of this deploy folder.

    python validate.py --transport pynq --data-dir ~/cifar-10-batches-py --n 10000
    python validate.py --transport sim --data-dir DIR --n 100      # workstation, the repo's venv

DIR is the official python version's folder `cifar-10-batches-py` (its
test_batch is read), the folder that contains it, or an image tree
DIR/test/<class>/*.png|jpg with the class folders airplane, automobile,
bird, cat, deer, dog, frog, horse, ship, truck (read with PIL; the first N
pictures are taken class by class in turn). Prints progress, the accuracy
and the FPS (frames per second of DMA transfer time; simulated time with
--transport sim) and writes validate.json {"images", "accuracy", "fps",
"transport", "clock_mhz", ...}. Errors: one `error: ...` line, exit status 2.

Written by the SD-BNN build (build_flows/deploy/board/validate.py).
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
PICKLE_FOLDER, TEST_BATCH = "cifar-10-batches-py", "test_batch"


class ValidateError(Exception):
    """A problem with the data or the arguments (one line)."""


def find_dataset(data_dir) -> tuple[str, Path]:
    """("pickle", the test_batch file) or ("images", the test/ folder) of DIR."""
    d = Path(data_dir).expanduser()
    if not d.is_dir():
        raise ValidateError(f"--data-dir {d} is not a folder")
    for folder in (d, d / PICKLE_FOLDER):
        if (folder / TEST_BATCH).is_file():
            return "pickle", folder / TEST_BATCH
    if (d / "test").is_dir():
        return "images", d / "test"
    raise ValidateError(
        f"{d} holds no CIFAR-10 test set: expected {PICKLE_FOLDER}/{TEST_BATCH} (the official "
        f"python version, or that folder itself) or an image tree test/<class>/*.png|jpg with "
        f"the class folders {', '.join(CLASSES)}")


def read_pickle(path: Path, n: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The first n pictures (N, 3, 32, 32) uint8 and labels of a CIFAR-10 batch file."""
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
    except Exception as e:
        raise ValidateError(f"{path} is not a CIFAR-10 batch pickle ({type(e).__name__}: "
                            f"{e})") from None
    if not isinstance(batch, dict):
        raise ValidateError(f"{path} is not a CIFAR-10 batch pickle (no dict inside)")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if data is None or labels is None:
        raise ValidateError(f"{path} has no b'data' / b'labels' entries: not a CIFAR-10 batch")
    data, labels = np.asarray(data), np.asarray(labels, np.int64).reshape(-1)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise ValidateError(f"{path}: data of shape {data.shape} with {len(labels)} labels, "
                            "expected (N, 3072) and N labels")
    if n is not None:
        data, labels = data[:n], labels[:n]
    return data.astype(np.uint8).reshape(-1, 3, 32, 32), labels


def list_images(root: Path) -> list[tuple[Path, int]]:
    """(file, label) of an image tree root/<class>/*, taken class by class in
    turn (so the first N pictures cover every class)."""
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    unknown = [p.name for p in folders if p.name not in CLASSES]
    if unknown:
        raise ValidateError(f"{root}: unknown class folder {unknown[0]!r} (CIFAR-10 classes: "
                            f"{', '.join(CLASSES)})")
    per_class = [[(f, CLASSES.index(p.name)) for f in sorted(p.iterdir())
                  if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES] for p in folders]
    items = [item for rank in range(max(map(len, per_class), default=0))
             for files in per_class if rank < len(files) for item in [files[rank]]]
    if not items:
        raise ValidateError(f"{root} holds no pictures: expected <class>/*.png|jpg with the "
                            f"class folders {', '.join(CLASSES)}")
    return items


def read_images(items: list[tuple[Path, int]], shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    """The pictures (N, C, H, W) uint8 and labels; each must be H x W."""
    try:
        from PIL import Image
    except ImportError:
        raise ValidateError("reading an image folder needs PIL (pip install pillow); or give "
                            f"the {PICKLE_FOLDER} folder") from None
    c, h, w = shape
    mode = {1: "L", 3: "RGB"}.get(c)
    if mode is None:
        raise ValidateError(f"the design takes {c} channels; image folders give 1 or 3")
    out = np.zeros((len(items), c, h, w), np.uint8)
    for k, (path, _) in enumerate(items):
        try:
            with Image.open(path) as im:
                a = np.asarray(im.convert(mode), np.uint8)
        except Exception as e:
            raise ValidateError(f"cannot read {path} ({type(e).__name__}: {e})") from None
        a = a.reshape(*a.shape[:2], c)
        if a.shape != (h, w, c):
            raise ValidateError(f"{path} is {a.shape[1]}x{a.shape[0]} pixels, the design takes "
                                f"{w}x{h}")
        out[k] = a.transpose(2, 0, 1)
    return out, np.array([label for _, label in items], np.int64)


def open_dataset(data_dir) -> tuple[str, Path, list | None]:
    """The data set's kind, path and (image trees) files, checked before anything runs."""
    kind, path = find_dataset(data_dir)
    return kind, path, list_images(path) if kind == "images" else None


def load(data_dir, n: int | None, shape: tuple, found=None) -> tuple[np.ndarray, np.ndarray]:
    """The first n pictures (N, *shape) uint8 and their labels of DIR (see the
    module doc); found: open_dataset(DIR) when already called."""
    kind, path, items = found or open_dataset(data_dir)
    shape = tuple(int(d) for d in shape)
    if kind == "pickle":
        pixels, labels = read_pickle(path, n)
    else:
        if len(shape) != 3:
            raise ValidateError(f"the design's input shape {list(shape)} is not C, H, W images")
        pixels, labels = read_images(items[:n], shape)
    if pixels.shape[1:] != shape:
        raise ValidateError(f"the pictures of {path} are {'x'.join(map(str, pixels.shape[1:]))}"
                            f" (C x H x W), the design takes {'x'.join(map(str, shape))} "
                            "(io.json input.shape)")
    if not len(pixels):
        raise ValidateError(f"{path} holds no pictures")
    return pixels, labels


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ValidateError(f"{message} (see --help)")


def parse_args(argv):
    p = _Parser(description="CIFAR-10 accuracy and FPS of this deploy folder's accelerator.")
    p.add_argument("--transport", choices=("pynq", "sim"), default="pynq",
                   help="pynq: the board's DMA (default); sim: the build's Verilator model")
    p.add_argument("--data-dir", required=True,
                   help=f"{PICKLE_FOLDER} (or its parent) or a folder with test/<class>/*.png")
    p.add_argument("--n", type=int, default=None, help="pictures to run (default: all)")
    p.add_argument("--deploy", default=str(HERE), help="the deploy folder (default: this file's)")
    p.add_argument("--out", default="validate.json", help="report file (default: validate.json)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per DMA packet")
    args = p.parse_args(argv)
    if args.n is not None and args.n < 1:
        raise ValidateError(f"--n {args.n} must be >= 1")
    return args


def run(argv=None) -> dict:
    args = parse_args(argv)
    found = open_dataset(args.data_dir)  # a wrong folder is reported before the accelerator starts
    sys.path.insert(0, str(HERE))
    import driver
    acc = driver.Accelerator(args.deploy, transport=args.transport, timeout_s=args.timeout)
    try:
        pixels, labels = load(args.data_dir, args.n, acc.input_shape, found)
        n, fpp = len(pixels), acc.frames_per_packet
        chunk = fpp * max(1, 1000 // fpp)
        print(f"validate: {n} pictures, transport {args.transport}, clock {acc.clock_mhz:g} MHz,"
              f" packets of {fpp} frames", flush=True)
        correct, transfer_s, t0 = 0, 0.0, time.perf_counter()
        for start in range(0, n, chunk):
            classes = acc.execute(pixels[start:start + chunk])
            correct += int((classes == labels[start:start + chunk]).sum())
            transfer_s += acc.stats["transfer_s"]
            done = min(n, start + chunk)
            print(f"validate: {done}/{n} pictures, accuracy so far {correct / done:.2%}",
                  flush=True)
        wall = time.perf_counter() - t0
        kind = args.transport + (" (simulated)" if acc.transport.simulated else "")
        report = {"images": n, "accuracy": correct / n,
                  "fps": n / transfer_s if transfer_s > 0 else float("inf"),
                  "transport": args.transport, "clock_mhz": acc.clock_mhz, "correct": correct,
                  "fps_end_to_end": n / wall if wall > 0 else float("inf"),
                  "simulated": bool(acc.transport.simulated),
                  "design": acc.manifest.get("design")}
    finally:
        acc.close()
    print(f"validate: accuracy {report['accuracy']:.2%} ({correct}/{n}), "
          f"{report['fps']:.1f} FPS ({kind}, {report['clock_mhz']:g} MHz; "
          f"{report['fps_end_to_end']:.1f} FPS end to end with the host's packing)")
    out = Path(args.out)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"validate: wrote {out}")
    return report


def main(argv=None) -> int:
    try:
        run(argv)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # every failure is one error line, never a traceback
        drv = sys.modules.get("driver")
        known = isinstance(e, (ValidateError, OSError)) or (
            drv is not None and isinstance(e, getattr(drv, "DriverError", ())))
        text = str(e) if known else f"{type(e).__name__}: {e}"
        first, *rest = text.splitlines() or [type(e).__name__]
        print("\n".join([f"error: {first}", *rest]), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
