"""Synthesise hw/ modules with Yosys synth_xilinx (xc7) and compare with FINN's estimate.

    python benchmarks/hw_resources.py [--quick] [--jobs N]

For each MVTU folding (MW = MH = 64, XNOR mode, one threshold, random weights
and thresholds) prints LUT, FF, BRAM36, DSP from Yosys `stat` beside FINN's
analytic estimate for the same binary MVAU (MVAU_hls, binaryXnorMode=1, its
lut_estimation / bram_estimation) and the ratio ours/FINN; then the other
modules (no FINN counterpart). MVTU rows use the default MEM_STYLE "auto"
(the "mem" column shows what it resolved to); extra rows force "distributed"
(LUT ROM) or "block" (block RAM) weights at a few foldings for comparison. LUT counts LUT1..LUT6 plus the LUTs inside LUT
RAMs and shift registers; BRAM36 counts a RAMB18 as one half.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from build_flows.estimate.yosys import synth  # noqa: E402
from build_flows.ops.base import HW_DIR, finn_hls_estimate  # noqa: E402
from build_flows.ops.maxpool import MaxPoolConfig  # noqa: E402
from build_flows.ops.mvau import MVTUConfig  # noqa: E402

# (SIMD, PE, weight MEM_STYLE)
FOLDINGS_FULL = [(1, 1, "auto"), (1, 1, "distributed"), (4, 4, "auto"), (4, 4, "distributed"),
                 (16, 4, "auto"), (16, 4, "block"), (32, 8, "auto"), (64, 16, "auto")]
FOLDINGS_QUICK = [(4, 4, "auto"), (16, 4, "auto")]


def finn_estimate(mw: int, mh: int, simd: int, pe: int) -> dict:
    """FINN's analytic LUT / BRAM estimate of the binary MVAU (one threshold)."""
    from onnx import helper
    node = helper.make_node(
        "MVAU", ["inp", "weights", "thresh"], ["outp"],
        domain="finn.custom_op.fpgadataflow", backend="fpgadataflow",
        MW=mw, MH=mh, SIMD=simd, PE=pe, inputDataType="BINARY", weightDataType="BINARY",
        outputDataType="BINARY", binaryXnorMode=1, noActivation=0, ActVal=0,
        numInputVectors=[1], accDataType=f"UINT{int(np.ceil(np.log2(mw + 1)))}")
    return finn_hls_estimate(node, "xc7z020clg400-1")


def hw(*names: str) -> list[Path]:
    return [HW_DIR / n for n in names]


def mvtu_row(simd: int, pe: int, mem_style: str = "auto", mw: int = 64, mh: int = 64) -> dict:
    cfg = MVTUConfig(mw, mh, simd=simd, pe=pe, n_thres=1, mem_style=mem_style)
    rng = np.random.default_rng(0)
    mem = cfg.mem_files(rng.integers(0, 2, (mh, mw)), rng.integers(0, mw + 1, (mh, 1)))
    ours = synth("mvtu", hw("mvtu.sv", "axis_skid.sv"), cfg.verilog_params(), mem)
    finn = finn_estimate(mw, mh, simd, pe)
    style = cfg.weight_mem_style()
    return {"name": f"mvtu {mw}x{mh} SIMD{simd} PE{pe}", "mem": (
                f"auto:{style[:5]}" if mem_style == "auto" else style[:5]), **ours,
            "FINN_LUT": finn["LUT"], "FINN_BRAM36": finn["BRAM36"],
            "ratio": ours["LUT"] / finn["LUT"]}


def other_rows() -> list[tuple[str, str, list[Path], dict]]:
    mp = MaxPoolConfig(32, 32, c=64, simd=16, k=2).verilog_params()
    return [
        ("maxpool_bin 32x32 C64 SIMD16 K2", "maxpool_bin", hw("maxpool_bin.sv", "axis_skid.sv"), mp),
        ("label_select MH10 PE1 16b top1", "label_select", hw("label_select.sv"),
         {"MH": 10, "PE": 1, "VAL_WIDTH": 16, "SIGNED": 1, "K": 1}),
        ("label_select MH10 PE2 16b top3", "label_select", hw("label_select.sv"),
         {"MH": 10, "PE": 2, "VAL_WIDTH": 16, "SIGNED": 1, "K": 3}),
        ("axis_fifo 32b x 32", "axis_fifo", hw("axis_fifo.sv"), {"DATA_WIDTH": 32, "DEPTH": 32}),
        ("axis_skid 64b", "axis_skid", hw("axis_skid.sv"), {"DATA_WIDTH": 64}),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two MVTU foldings, one other module")
    ap.add_argument("--jobs", type=int, default=2, help="parallel Yosys runs")
    args = ap.parse_args()
    foldings = FOLDINGS_QUICK if args.quick else FOLDINGS_FULL
    others = other_rows()[:1] if args.quick else other_rows()
    with ThreadPoolExecutor(args.jobs) as pool:
        mvtu = list(pool.map(lambda f: mvtu_row(*f), foldings))
        rest = list(pool.map(lambda o: {"name": o[0], **synth(*o[1:])}, others))
    head = (f"| {'design':34} | {'mem':10} | {'LUT':>6} | {'FF':>6} | {'BRAM36':>6} "
            f"| {'DSP':>3} |")
    head += f" {'FINN LUT':>8} | {'FINN BRAM36':>11} | {'LUT ours/FINN':>13} |"
    print(head)
    print("|" + "|".join("-" * len(c) for c in head[1:-1].split("|")) + "|")
    for r in mvtu + rest:
        print(f"| {r['name']:34} | {r.get('mem', '-'):10} | {r['LUT']:>6} | {r['FF']:>6} | "
              f"{r['BRAM36']:>6} | "
              f"{r['DSP']:>3} | {r.get('FINN_LUT', '-'):>8} | {r.get('FINN_BRAM36', '-'):>11} | "
              + (f"{r['ratio']:>13.2f}" if "ratio" in r else f"{'-':>13}") + " |")


if __name__ == "__main__":
    main()
