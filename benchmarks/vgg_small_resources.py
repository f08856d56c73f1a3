"""Resources of the paper's full-size VGG-Small (our registry's `vgg_small`,
128-128-P-256-256-P-512-512-P, 3x3 convs with padding 1, 32x32 inputs) as our
flow builds it, up to the stitched RTL: per layer the folding, the weight and
threshold bits and FINN's analytic LUT / BRAM36 estimates (the check the build
makes before any simulation), the totals, and the fit on each board.

The registry's default last layer has 8-bit weights, which the dataflow does
not take (only the first layer may have few-bit weights), so the network is
built W1A1 with `last_bits=1`; the weights are random (seeded) with
randomised BN, since no trained VGG-Small is shipped. FIFOs are left out (the
build sizes them by simulation, which this script does not run).

    python benchmarks/vgg_small_resources.py --board zcu104
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from build_flows.config import BOARDS, BuildConfig  # noqa: E402
from build_flows.errors import BuildError  # noqa: E402


def mem_bits(stage) -> dict:
    """Bits of a stage's weight and threshold memories, from its memory files
    (one hex word per line; a word's width from the stage's parameters)."""
    p = stage.params
    if stage.module != "mvtu":
        return {"W": 0, "T": 0}
    pe, simd = p["PE"], p["SIMD"]
    wbits = p["MW"] * p["MH"] * p.get("W_WIDTH", 1)
    n_cls = p.get("N_RC", 1) * p.get("N_CC", 1)
    tbits = p["MH"] * p.get("N_THRES", 0) * p["ACC_WIDTH"] * n_cls
    assert p["MW"] % simd == 0 and p["MH"] % pe == 0
    return {"W": wbits, "T": tbits}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--board", default="zcu104", choices=sorted(BOARDS))
    ap.add_argument("--target-fps", type=float, default=None,
                    help="folding target (default: the fastest folding that fits the board)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=None, help="work folder (default: a temporary one)")
    args = ap.parse_args(argv)

    import torch
    from helpers import randomise_sd_parameters
    from build_flows.estimate import finn_estimate
    from build_flows.flow import run_build
    from quant_models import get_model
    from quant_models.checkpoint import save_checkpoint

    work = args.work or Path(tempfile.mkdtemp(prefix="vgg-small-"))
    work.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    ckpt = work / "vgg_small.pt"
    save_checkpoint(ckpt, randomise_sd_parameters(get_model("vgg_small", last_bits=1),
                                                  seed=args.seed))
    cfg = BuildConfig(board=args.board, model="vgg_small", checkpoint=ckpt, dataset="random",
                      out=work / "build", yosys=False, target_fps=args.target_fps)
    t = time.time()
    try:
        state = run_build(cfg, to_step="rtl")
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    build_s = time.time() - t
    part = BOARDS[args.board].part
    rows, tot = [], {"W": 0, "T": 0, "LUT": 0, "BRAM36": 0.0}
    for st in state.graph.layers():
        res = finn_estimate(state.hw, st, part)
        bits = mem_bits(st)
        rows.append((st.name, st.pe, st.simd, st.expected_cycles, bits["W"], bits["T"],
                     res["LUT"], res["BRAM36"]))
        for k, v in (("W", bits["W"]), ("T", bits["T"]), ("LUT", res["LUT"]),
                     ("BRAM36", res["BRAM36"])):
            tot[k] += v
    ii = max(r[3] for r in rows)
    print(f"\nvgg_small (W1A1, last_bits=1), board {args.board}, "
          f"II {ii} cycles = {cfg.clock_mhz * 1e6 / ii:,.1f} FPS at {cfg.clock_mhz:g} MHz "
          f"(flow to the RTL: {build_s:.0f} s)")
    print(f"{'layer':34} {'PE':>4} {'SIMD':>5} {'cycles':>9} {'weight bits':>12} "
          f"{'thresh bits':>12} {'LUT':>8} {'BRAM36':>7}")
    for name, pe, simd, cyc, w, th, lut, bram in rows:
        print(f"{name:34} {pe or '':>4} {simd or '':>5} {cyc:9d} {w:12,d} {th:12,d} "
              f"{lut:8,d} {bram:7.1f}")
    print(f"{'total (FIFOs not included)':34} {'':>4} {'':>5} {'':>9} {tot['W']:12,d} "
          f"{tot['T']:12,d} {tot['LUT']:8,d} {tot['BRAM36']:7.1f}")
    ideal = (tot["W"] + tot["T"]) / 36864
    print(f"\nweights + thresholds: {(tot['W'] + tot['T']) / 1e6:.2f} Mbit = {ideal:.1f} BRAM36 "
          "at perfect packing")
    for name in sorted(BOARDS):
        b = BOARDS[name]
        fits = tot["LUT"] <= b.LUT and tot["BRAM36"] <= b.BRAM36
        print(f"  {name:11} {b.LUT:8,d} LUT {b.BRAM36:6g} BRAM36: "
              f"{'fits' if fits else 'does not fit'} "
              f"({100 * tot['LUT'] / b.LUT:.0f} % LUT, {100 * tot['BRAM36'] / b.BRAM36:.0f} % BRAM36)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
