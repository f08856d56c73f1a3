"""Training throughput: images/s of the data path alone, of the bare training
step on one batch held in memory, and of the training loop (data + step), on
the same model, batch size and thread count.

    python benchmarks/train_throughput.py --model cnv --dataset cifar10 --data-dir ../shared/data

The loop's rate is the one an epoch runs at; the gap to the bare step is what
the data path costs.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from quant_models.data import get_loaders  # noqa: E402
from quant_models.models import get_model  # noqa: E402


def _step(net, opt, x, y):
    loss = F.cross_entropy(net(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def measure(model="cnv", dataset="cifar10", data_dir=None, batch_size=128, batches=10,
            workers=0, asd="static", threads=None) -> list[dict]:
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = get_model(model, asd=asd)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    loader, _ = get_loaders(dataset, data_dir, batch_size, workers)
    loader.sampler.set_epoch(0)
    it = iter(loader)
    x, y = next(it)
    _step(net, opt, x, y)  # warm-up: Brevitas scale initialisation, allocator
    rows = []

    t = time.perf_counter()
    n = 0
    for _, (bx, _by) in zip(range(batches), iter(loader)):
        n += len(bx)
    rows.append(dict(what="data path alone (load, augment, batch)", images=n, s=time.perf_counter() - t))

    t = time.perf_counter()
    for _ in range(batches):
        _step(net, opt, x, y)
    rows.append(dict(what="bare step (one batch in memory)", images=batches * len(x),
                     s=time.perf_counter() - t))

    t = time.perf_counter()
    n = 0
    for _, (bx, by) in zip(range(batches), iter(loader)):
        _step(net, opt, bx, by)
        n += len(bx)
    rows.append(dict(what="training loop (data + step)", images=n, s=time.perf_counter() - t))
    for r in rows:
        r["images_per_s"] = r["images"] / r["s"]
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="cnv")
    p.add_argument("--dataset", default="cifar10")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--batches", type=int, default=10)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--asd", default="static", choices=("none", "static", "dynamic"))
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args(argv)
    rows = measure(a.model, a.dataset, a.data_dir, a.batch_size, a.batches, a.workers, a.asd, a.threads)
    print(f"{a.model} on {a.dataset}, asd {a.asd}, batch {a.batch_size}, {a.batches} batches, "
          f"{torch.get_num_threads()} threads, {a.workers} workers")
    print(f"| {'measured':40s} | images/s | s/batch | ratio to bare step |")
    print(f"|{'-' * 42}|---------:|--------:|-------------------:|")
    bare = rows[1]["images_per_s"]
    for r in rows:
        print(f"| {r['what']:40s} | {r['images_per_s']:8.1f} | {r['s'] / a.batches:7.3f} | "
              f"{r['images_per_s'] / bare:18.2f} |")
    epoch = 50000 / rows[2]["images_per_s"] / 60 if a.dataset == "cifar10" else None
    if epoch:
        print(f"one CIFAR-10 epoch (50,000 images) at the loop's rate: {epoch:.1f} min")
    return rows


if __name__ == "__main__":
    main()
