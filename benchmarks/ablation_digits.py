"""Ablation of SD-BNN's parts on the embedded digits set.

Trains ``digits_cnv`` as plain BNN, +WSD, +static ASD, +WSD+static ASD and
+WSD+dynamic ASD, for each seed, with the same recipe (SGD, cosine, EDE), and
prints the final-epoch test accuracy per run, mean and standard deviation per
variant, and each variant's gain over the plain BNN.

    python benchmarks/ablation_digits.py --epochs 30 --seeds 0 1 2 --jobs 2
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from concurrent.futures import ProcessPoolExecutor

VARIANTS = [
    ("plain BNN", dict(wsd=False, asd="none")),
    ("+WSD", dict(wsd=True, asd="none")),
    ("+static ASD", dict(wsd=False, asd="static")),
    ("+WSD +static ASD", dict(wsd=True, asd="static")),
    ("+WSD +dynamic ASD", dict(wsd=True, asd="dynamic")),
]


def run_one(job):
    """Train one (variant, seed) and return its final test accuracy in %."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    from quant_models.train import train

    torch.set_num_threads(1)
    label, sd, seed, args = job
    with tempfile.TemporaryDirectory() as out:
        row = train("digits_cnv", "digits", epochs=args.epochs, batch_size=args.batch_size,
                    lr=args.lr, seed=seed, out=out, **sd)
    return label, seed, 100.0 * row["test_acc"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    jobs = [(label, sd, seed, args) for label, sd in VARIANTS for seed in args.seeds]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run_one, jobs))
    acc = {label: [a for l, _, a in results if l == label] for label, _ in VARIANTS}
    base = statistics.mean(acc[VARIANTS[0][0]])
    print(f"digits_cnv, {args.epochs} epochs, seeds {args.seeds}, final-epoch test accuracy (%)")
    print(f"| variant | {' | '.join(f'seed {s}' for s in args.seeds)} | mean | std | vs plain |")
    print("|---|" + "---|" * (len(args.seeds) + 3))
    for label, _ in VARIANTS:
        a = acc[label]
        sd = statistics.stdev(a) if len(a) > 1 else 0.0
        mean = statistics.mean(a)
        print(f"| {label} | {' | '.join(f'{x:.2f}' for x in a)} | {mean:.2f} | {sd:.2f} | {mean - base:+.2f} |")


if __name__ == "__main__":
    main()
