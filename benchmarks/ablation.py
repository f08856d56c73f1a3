"""Ablation of SD-BNN's parts: the same model, recipe and budget trained as a
plain BNN and with WSD / static ASD / dynamic ASD, for several seeds.

    python benchmarks/ablation.py --model cnv --cfg width=0.125 --dataset cifar10 \\
        --data-dir ../shared/data --epochs 10 --seeds 0 1 --optimizer adam --lr 0.005 \\
        --weight-decay 0 --variants plain wsd_static wsd_dynamic --jobs 2

Prints the final-epoch test accuracy per run (as each run ends, and as a table
at the end: mean, sample standard deviation, gain over the plain BNN). Each run
trains in ``--out/<variant>-s<seed>``; a run stopped half-way continues from its
last epoch when the same command is given again (``quant_models.train``'s
``--resume``), and a finished run is read back, not trained again.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VARIANTS = {
    "plain": ("plain BNN", dict(wsd=False, asd="none")),
    "wsd": ("+WSD", dict(wsd=True, asd="none")),
    "static": ("+static ASD", dict(wsd=False, asd="static")),
    "wsd_static": ("+WSD +static ASD", dict(wsd=True, asd="static")),
    "wsd_dynamic": ("+WSD +dynamic ASD", dict(wsd=True, asd="dynamic")),
}


def _finished(run_dir: Path, epochs: int) -> dict | None:
    """The last log row of a run that has all ``epochs``, else None."""
    log = run_dir / "log.csv"
    if not log.exists():
        return None
    rows = list(csv.DictReader(log.open()))
    if len(rows) < epochs:
        return None
    return {k: float(v) for k, v in rows[epochs - 1].items()}


def run_one(job: dict) -> dict:
    """Train one (variant, seed), or read it back when it is done; final-epoch row."""
    threads = job.pop("threads")
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    import torch

    from quant_models.train import train

    torch.set_num_threads(threads)
    run_dir = Path(job["out"])
    t0 = time.time()
    row = _finished(run_dir, job["epochs"])
    if row is None:
        resume = (run_dir / "last.pt").exists() or None
        row = train(**job, resume=resume)
    return dict(test_acc=100.0 * row["test_acc"], train_acc=100.0 * row["train_acc"],
                minutes=(time.time() - t0) / 60)


def parse_args(argv=None):
    from quant_models.train import _parse_key_value

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="digits_cnv")
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--cfg", action="append", default=[], metavar="KEY=VALUE",
                    help="extra model argument, e.g. width=0.125")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    ap.add_argument("--jobs", type=int, default=2, help="runs trained at once")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per run")
    ap.add_argument("--out", default=None, help="folder of the runs (default: runs/ablation-<model>-<dataset>)")
    args = ap.parse_args(argv)
    args.cfg = dict(_parse_key_value(kv) for kv in args.cfg)
    args.out = Path(args.out or f"runs/ablation-{args.model}-{args.dataset}")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    jobs = {}
    for key in args.variants:
        _, sd = VARIANTS[key]
        for seed in args.seeds:
            jobs[key, seed] = dict(model=args.model, dataset=args.dataset, data_dir=args.data_dir,
                                   epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                   optimizer=args.optimizer, weight_decay=args.weight_decay,
                                   seed=seed, out=str(args.out / f"{key}-s{seed}"),
                                   cfg=dict(args.cfg), threads=args.threads, **sd)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "command.json").write_text(json.dumps(sys.argv[1:] if argv is None else list(argv)))
    cfg = ", ".join(f"{k}={v}" for k, v in args.cfg.items())
    print(f"{args.model}{f' ({cfg})' if cfg else ''} on {args.dataset}: {len(jobs)} runs, "
          f"{args.epochs} epochs each, {args.jobs} at once", flush=True)
    results = {}
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = {pool.submit(run_one, dict(job)): key for key, job in jobs.items()}
        for fut in as_completed(futures):
            key = futures[fut]
            results[key] = r = fut.result()
            print(f"done {VARIANTS[key[0]][0]} seed {key[1]}: test {r['test_acc']:.2f} %, "
                  f"train {r['train_acc']:.2f} % ({r['minutes']:.1f} min; "
                  f"{len(results)}/{len(jobs)} runs)", flush=True)
    print(f"\n{args.model}{f' ({cfg})' if cfg else ''}, {args.dataset}, {args.epochs} epochs, "
          f"{args.optimizer} lr {args.lr}, batch {args.batch_size}, seeds {args.seeds}: "
          "final-epoch test accuracy (%)")
    print(f"| variant | {' | '.join(f'seed {s}' for s in args.seeds)} | mean | std | vs plain |")
    print("|---|" + "---|" * (len(args.seeds) + 3))
    table = {}
    for key in args.variants:
        table[key] = [results[key, s]["test_acc"] for s in args.seeds]
    base = statistics.mean(table[args.variants[0]])
    for key in args.variants:
        a = table[key]
        sd = statistics.stdev(a) if len(a) > 1 else 0.0
        mean = statistics.mean(a)
        print(f"| {VARIANTS[key][0]} | {' | '.join(f'{x:.2f}' for x in a)} | {mean:.2f} | {sd:.2f} "
              f"| {mean - base:+.2f} |")
    if args.variants[0] != "plain":
        print(f"(vs plain: against the first variant, {VARIANTS[args.variants[0]][0]})")
    return table


if __name__ == "__main__":
    main()
