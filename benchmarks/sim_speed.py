"""Simulation speed: frames per second of our cycle-accurate Verilator
simulation of the stitched design versus finn-plus' Python execution
(qonnx execute_onnx) of the same un-specialised, folded dataflow HW graph the
build produces (model_hw.onnx), on the same images in the same run.

    python benchmarks/sim_speed.py                  # digits_cnv and CNV
    python benchmarks/sim_speed.py --models digits_cnv --frames 100

Verilator is timed on the whole free-running run of N frames (process start,
stream files, reading the outputs), with the model already compiled (the
compile time is printed separately). FINN is timed on N execute_onnx calls.
"steady FPS" is the simulated cycles per wall second over the measured II,
i.e. without the pipeline fill that a run of few frames pays. "executor FPS" is
our fast executor (build_flows/sim/executor.py: NumPy over the whole batch,
every tensor of every frame) on the same frames, after a 2-frame warm-up; its
ratio is to FINN's execution. A row prints figures only when all three give the same class for
every frame, the executor equals FINN on every tensor of every frame, and the
split run ("jobs FPS": the frames in --sim-jobs shares simulated at once, each
from reset, as build.py --sim-jobs does) gives the same output words; otherwise
it prints the disagreement instead of a figure.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from build_flows.config import DEFAULT_CHECKPOINT, BuildConfig  # noqa: E402
from build_flows.flow import run_build  # noqa: E402

DEFAULT_FRAMES = {"digits_cnv": 200, "cnv": 20}


def cnv_checkpoint(path: Path) -> Path:
    """Untrained CNV with randomised SD parameters (thresholds non-trivial)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from helpers import randomise_sd_parameters
    from quant_models import get_model
    from quant_models.checkpoint import save_checkpoint
    save_checkpoint(path, randomise_sd_parameters(get_model("cnv")))
    return path


def prepare(model: str, frames: int, work: Path, target_fps: float | None):
    """The build's steps up to FIFO sizing: the stitched design and its HW graph."""
    if model == "digits_cnv":
        cfg = BuildConfig(board="pynq-z2", checkpoint=DEFAULT_CHECKPOINT, verify_images=frames,
                          out=work / model, yosys=False, target_fps=target_fps or 100_000)
    else:
        cfg = BuildConfig(board="pynq-z2", model="cnv", checkpoint=cnv_checkpoint(work / "cnv.pt"),
                          dataset="random", verify_images=frames, out=work / model, yosys=False,
                          target_fps=target_fps or 3050)
    return run_build(cfg, to_step="size_fifos"), cfg


def measure(model: str, frames: int, work: Path, target_fps: float | None, threads: int,
            jobs: int = 2) -> dict:
    from qonnx.core.onnx_exec import execute_onnx
    from build_flows.sim.stitched import measure as measure_ii, run_design
    state, cfg = prepare(model, frames, work, target_fps)
    x = state.frames()
    t = time.time()  # compile (or fetch from the cache) with two frames
    run_design(state.graph, state.rtl, x[:2], 0.0, cfg.seed, threads=threads)
    compile_s = time.time() - t
    t = time.time()
    run = run_design(state.graph, state.rtl, x, 0.0, cfg.seed, timeout_cycles=10_000_000,
                     threads=threads)
    sim_s = time.time() - t
    rtl_classes = run.outputs[:, 0]
    from concurrent.futures import ThreadPoolExecutor
    from build_flows.sim.stitched import merge_runs, shares
    parts = shares(len(x), jobs)
    t = time.time()  # the same frames in `jobs` shares at once (--sim-jobs), each from reset
    with ThreadPoolExecutor(max_workers=len(parts)) as pool:
        split = merge_runs(list(pool.map(lambda p: run_design(
            state.graph, state.rtl, x[p[0]:p[1]], 0.0, cfg.seed, timeout_cycles=10_000_000,
            threads=threads), parts)))
    jobs_s = time.time() - t
    split_bad = int((split.outputs != run.outputs).any(axis=1).sum())

    hw = state.hw
    iname, oname = hw.graph.input[0].name, hw.graph.output[0].name
    shape = hw.get_tensor_shape(iname)
    finn_classes, contexts = [], []
    t = time.time()
    for k in range(len(x)):
        ctx = execute_onnx(hw, {iname: x[k:k + 1].reshape(shape).astype(np.float32)},
                           return_full_exec_context=True)
        contexts.append(ctx)
        finn_classes.append(int(np.asarray(ctx[oname]).reshape(-1)[0]))
    finn_s = time.time() - t
    finn_classes = np.array(finn_classes)
    from build_flows.sim.executor import execute
    execute(hw, x[:2].reshape(2, -1))  # warm-up (imports), not counted
    t = time.time()
    fast = execute(hw, x.reshape(len(x), -1))  # every tensor of every frame
    exec_s = time.time() - t
    # the executor must equal FINN on every tensor of every frame, the RTL's
    # output words (the classes) FINN's output
    tensor_bad = sum(int((fast[name][k].reshape(-1) != np.asarray(ctx[name]).reshape(-1)).any())
                     for name in fast for k, ctx in enumerate(contexts))
    disagree = int((finn_classes != rtl_classes).sum() + tensor_bad + split_bad)
    ref_bad = int((finn_classes != state.ref_classes.reshape(-1)).sum())
    ii, _ = measure_ii(run, state.graph.words_per_frame(state.graph.output_edge))
    return {"model": model, "frames": len(x), "ii": ii, "compile_s": compile_s,
            "sim_s": sim_s, "finn_s": finn_s, "exec_s": exec_s, "disagree": disagree,
            "ref_bad": ref_bad, "jobs": len(parts), "jobs_s": jobs_s,
            "cycles": run.total_cycles, "threads": threads}


def table(rows: list[dict]) -> str:
    """One row per model; "break-even" is the number of frames after which the
    compile (or cache fetch) has paid for itself against FINN's execution."""
    head = (f"{'model':12s} {'frames':>6s} {'II (cyc)':>9s} {'Verilator FPS':>14s} "
            f"{'sim kcyc/s':>10s} {'steady FPS':>10s} {'jobs FPS':>9s} {'FINN Python FPS':>16s} "
            f"{'ratio':>8s} {'executor FPS':>13s} {'ratio':>8s} {'compile s':>9s} "
            f"{'break-even':>10s}  notes")
    lines = [head, "-" * len(head)]
    for r in rows:
        if r["disagree"] or r["ref_bad"]:
            lines.append(f"{r['model']:12s} {r['frames']:6d}  no figures: Verilator, FINN and the "
                         f"executor disagree on {r['disagree']} frame output(s) or tensor(s), "
                         f"FINN and the reference "
                         f"on {r['ref_bad']}")
            continue
        v, f, e = r["frames"] / r["sim_s"], r["frames"] / r["finn_s"], r["frames"] / r["exec_s"]
        j = r["frames"] / r["jobs_s"]
        even = (f"{r['compile_s'] / (1 / f - 1 / v):10.0f}" if v > f else f"{'never':>10s}")
        lines.append(f"{r['model']:12s} {r['frames']:6d} {r['ii']:9.0f} {v:14.1f} "
                     f"{r['cycles'] / r['sim_s'] / 1e3:10.0f} {r['cycles'] / r['sim_s'] / r['ii']:10.1f} "
                     f"{j:9.1f} {f:16.2f} {v / f:7.1f}x {e:13.0f} {e / f:7.0f}x "
                     f"{r['compile_s']:9.1f} {even}  "
                     f"outputs agree; {r['threads']} Verilator thread(s); jobs: {r['jobs']} "
                     "processes on shares of the frames")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["digits_cnv", "cnv"], choices=sorted(DEFAULT_FRAMES))
    p.add_argument("--frames", type=int, help="frames per model (default: digits_cnv 200, cnv 20)")
    p.add_argument("--target-fps", type=float, help="folding target (default: digits_cnv 100000, CNV 3050)")
    p.add_argument("--work", type=Path, help="work directory (default: a temporary one)")
    p.add_argument("--sim-threads", type=int, default=1,
                   help="Verilator model threads (default 1: threads busy-wait)")
    p.add_argument("--sim-jobs", type=int, default=2,
                   help="processes for the 'jobs FPS' column (default 2, our core count)")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sdbnn-simspeed-") as tmp:
        work = a.work or Path(tmp)
        rows = [measure(m, a.frames or DEFAULT_FRAMES[m], work, a.target_fps, a.sim_threads,
                        a.sim_jobs) for m in a.models]
    print(table(rows))
    return 1 if any(r["disagree"] or r["ref_bad"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
