"""The price of SD-BNN's activation shift in hardware: none / static / dynamic ASD.

Trains ``digits_cnv`` with WSD and each ASD variant for every seed (the recipe
of benchmarks/ablation_digits.py), builds every checkpoint for pynq-z2 at one
folding target, and prints one table: PyTorch test accuracy per seed, the
hardware's accuracy on the same 360 test images (the folded HW graph, equal to
the simulated RTL on the verified frames), and the built design's LUT, FF,
BRAM36, DSP (Yosys on the first seed's build), II, latency and FPS
(Verilator). Training and build times are printed apart.

    python benchmarks/asd_tradeoff.py --seeds 0 1 2 --epochs 60 --target-fps 20000
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

VARIANTS = [("WSD, no ASD", "none"), ("WSD + static ASD", "static"), ("WSD + dynamic ASD", "dynamic")]


def train_one(asd: str, seed: int, epochs: int, out: Path) -> tuple[float, Path, float]:
    import torch

    from quant_models.train import train
    torch.set_num_threads(1)
    t0 = time.time()
    row = train("digits_cnv", "digits", epochs=epochs, batch_size=64, lr=0.1, seed=seed, out=out,
                wsd=True, asd=asd)
    return 100.0 * row["test_acc"], out / "last.pt", time.time() - t0


def build_one(ckpt: Path, out: Path, target_fps: float, yosys: bool) -> tuple[object, float]:
    from build_flows.config import BuildConfig
    from build_flows.flow import run_build
    t0 = time.time()
    state = run_build(BuildConfig(board="pynq-z2", checkpoint=ckpt, dataset="digits",
                                  verify_images=20, accuracy_images=-1, target_fps=target_fps,
                                  yosys=yosys, out=out))
    return state, time.time() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--target-fps", type=float, default=20_000)
    ap.add_argument("--variants", nargs="+", choices=[a for _, a in VARIANTS],
                    default=[a for _, a in VARIANTS], help="ASD variants to run (default: all)")
    ap.add_argument("--out", type=Path, default=None, help="keep checkpoints and builds here")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    root = args.out or Path(tempfile.mkdtemp(prefix="asd_tradeoff_"))
    rows, train_s, build_s = [], 0.0, 0.0
    for label, asd in (v for v in VARIANTS if v[1] in args.variants):
        accs, hw_accs, hw = [], [], None
        for i, seed in enumerate(args.seeds):
            run = root / f"{asd}_seed{seed}"
            print(f"[{label}, seed {seed}] training {args.epochs} epochs", flush=True)
            acc, ckpt, s = train_one(asd, seed, args.epochs, run / "train")
            train_s += s
            print(f"[{label}, seed {seed}] {acc:.2f} %; building (Yosys: {i == 0})", flush=True)
            state, s = build_one(ckpt, run / "build", args.target_fps, yosys=i == 0)
            build_s += s
            accs.append(acc)
            hw_accs.append(100.0 * state.accuracy["hardware_accuracy"])
            assert state.sim["mismatches"] == 0 and state.accuracy["differing_images"] == 0
            if hw is None:
                hw = {**state.resources, "II": state.sim["cycles_per_frame"],
                      "latency": state.sim["latency_cycles"], "fps": state.sim["fps_at_clock"]}
        rows.append((label, accs, hw_accs, hw))
    print(f"\ndigits_cnv (WSD), {args.epochs} epochs, seeds {args.seeds}, pynq-z2 at "
          f"--target-fps {args.target_fps:g} (100 MHz); accuracy on the 360 test images (%)")
    print(f"| variant | {' | '.join(f'seed {s}' for s in args.seeds)} | mean | std | hardware mean "
          "| LUT | FF | BRAM36 | DSP | II (cycles) | latency (cycles) | FPS |")
    print("|---|" + "---|" * (len(args.seeds) + 10))
    for label, accs, hw_accs, hw in rows:
        sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
        print(f"| {label} | {' | '.join(f'{a:.2f}' for a in accs)} | {statistics.mean(accs):.2f} | "
              f"{sd:.2f} | {statistics.mean(hw_accs):.2f} | {hw['LUT']:,} | {hw['FF']:,} | "
              f"{hw['BRAM36']} | {hw['DSP']} | {hw['II']:,.0f} | {hw['latency']:,} | "
              f"{hw['fps']:,.0f} |")
    print(f"\ntraining {train_s:.0f} s, builds {build_s:.0f} s (apart from the table); runs in {root}")


if __name__ == "__main__":
    main()
