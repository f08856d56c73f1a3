"""One command from an SD-BNN (or any QONNX W1A1 model) to a simulated,
bit-exact streaming accelerator with resource estimates and a report.

    python build_flows/build.py --board pynq-z2
    python build_flows/build.py --board pynq-z2 --model tfc --checkpoint tfc.pt --target-fps 50000
    python build_flows/build.py --board pynq-z2 --onnx cnv_w1a1.onnx --folding folding.json

    python build_flows/build.py --config OUT/build_config.json --from-step simulate

The steps are in build_flows/flow/ (STEPS, run_build); each writes its
artefacts under --out. User errors end as one `error: ...` line and exit
status 2; an internal failure (a tool, or a bug of ours) ends as one
`error: internal: ...` line naming the tool or step, also with exit status 2
(its traceback goes to OUT/error.log, never to the terminal).
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
import warnings
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python build_flows/build.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from build_flows.config import BOARDS, DEFAULT_CHECKPOINT, DEFAULT_MODEL, BuildConfig
from build_flows.errors import BuildError, ConfigError, ToolError
from build_flows.flow import STEP_NAMES, BuildState, run_build


def summary(state: BuildState, cfg: BuildConfig, wall: float) -> str:
    s, r, b = state.sim, state.resources, cfg.board_info
    c = s["checked"]
    return "\n".join([
        f"== build {state.name} for {cfg.board} ({b.part}) at {cfg.clock_mhz:g} MHz: {cfg.out}",
        f"   simulation : {s['frames']} frames, {s['mismatches']} class mismatches "
        f"(with {cfg.stall_prob:g} back-pressure too)"
        + (f"; hardware accuracy {100 * s['accuracy']:.2f} % on labelled images"
           if s.get("accuracy") is not None else ""),
        f"   verified   : every beat of {c['links']} links on {c['layer_frames']} frames = the HW graph "
        f"(FINN's execution on {c['finn_frames']}); last layer's integers = {c['accumulators']}; "
        f"free-running and with stalls at the "
        f"ports and on all {len(s['links_stalled'])} internal links; AXI-Stream protocol on every link"
        + ("" if not s.get("differences") else f"; {len(s['differences'])} DIFFERENCE(S)"),
        f"   throughput : {s['cycles_per_frame']} cycles/frame measured, "
        f"{s['expected_cycles_per_frame']} analytic -> {s['fps_at_clock']:,} FPS; "
        f"latency {s['latency_cycles']} cycles",
        *([f"   accuracy   : {a['images']:,} {a['dataset']} test images: hardware "
           f"{100 * a['hardware_accuracy']:.2f} %, {a['reference']} {100 * a['reference_accuracy']:.2f} %, "
           f"equal image for image in every last-layer integer (fast executor of the HW graph)"]
          if (a := state.accuracy) else []),
        f"   resources  : LUT {r['LUT']:,}/{b.LUT:,}  FF {r['FF']:,}/{b.FF:,}  "
        f"BRAM36 {r['BRAM36']}/{b.BRAM36}  DSP {r['DSP']}/{b.DSP}",
        *(["   waveforms  : " + ", ".join(str(cfg.out / w) for w in s["waves"])] if s.get("waves") else []),
        *([f"   MISMATCH   : {s['mismatch']}"] if s.get("mismatch") else []),
        f"   wall time  : {wall:.1f} s",
    ])


def parse_args(argv=None) -> BuildConfig:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--board", choices=sorted(BOARDS), help="target board (required without --config)")
    p.add_argument("--config", type=Path,
                   help="build config JSON (the fields of BuildConfig, e.g. OUT/build_config.json "
                        "of an earlier build); options given on the command line override it")
    p.add_argument("--model", help=f"registry model name (default {DEFAULT_MODEL})")
    p.add_argument("--checkpoint", type=Path, help=f"SD-BNN checkpoint (default {DEFAULT_CHECKPOINT})")
    p.add_argument("--onnx", type=Path, help="any QONNX W1A1 model instead of --model/--checkpoint")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--target-fps", type=float, help="folding target (default: the fastest folding whose FINN estimate fits "
                   "70%% of the board)")
    g.add_argument("--folding", type=Path, help="FINN-format folding JSON")
    p.add_argument("--clock-mhz", type=float, help="clock (default 100)")
    p.add_argument("--verify-images", type=int, help="images simulated (default 100)")
    p.add_argument("--dataset", help="digits, mnist, cifar10, imagefolder or random (default: from the "
                                     "input shape)")
    p.add_argument("--data-dir", type=Path, help="dataset folder (mnist, cifar10, imagefolder): "
                                                 "cifar-10-batches-py pickles, or train/<class>/*.jpg "
                                                 "and test/<class>/... as folders or .tar.gz")
    p.add_argument("--accuracy-images", type=_count_or_all, metavar="N|all",
                   help="also run N test images (or all) through the fast executor of the HW graph "
                        "and the reference, image for image: hardware accuracy (default 0)")
    p.add_argument("--out", type=Path, help="artefact directory (default build/<model>)")
    p.add_argument("--waves", action="store_true", default=None,
                   help="dump VCD waveforms of the verification simulations to OUT/waves/ (and of the "
                        "per-layer runs on a mismatch, which then does not stop the build)")
    p.add_argument("--sim-threads", type=int,
                   help="Verilator threads for the verification runs (2 speeds up CNV-size "
                        "designs on an idle machine; default 1)")
    p.add_argument("--sim-jobs", type=int,
                   help="processes per verification run, each simulating its share of the frames "
                        "from reset (both runs together use twice as many); the II and latency "
                        "come from the first share (default 1)")
    p.add_argument("--layer-check-frames", type=int,
                   help="frames whose every link is compared with the HW graph (default 200; "
                        "beyond them only the class is compared)")
    p.add_argument("--no-yosys", dest="yosys", action="store_false", default=None,
                   help="estimate with FINN's analytic models only (skips Yosys synthesis)")
    p.add_argument("--dma-frames", type=int,
                   help="frames per DMA transfer of the deploy package (TLAST after each group; "
                        "default: as many as fit 64 KiB of input, at most 256)")
    p.add_argument("--vivado", action="store_true", default=None,
                   help="run OUT/vivado/build.tcl with the vivado on PATH to a bitfile in OUT/deploy/ "
                        "(the docker image of docker/ provides the rest)")
    p.add_argument("--from-step", choices=STEP_NAMES,
                   help="start at this step, from the state an earlier build saved in --out "
                        "(whose build_config.json is then the default config)")
    p.add_argument("--to-step", choices=STEP_NAMES, help="stop after this step")
    a = p.parse_args(argv)
    fields = dict(board=a.board, model=a.model, checkpoint=a.checkpoint, onnx=a.onnx,
                  target_fps=a.target_fps, folding=a.folding, clock_mhz=a.clock_mhz,
                  verify_images=a.verify_images, dataset=a.dataset, data_dir=a.data_dir, out=a.out,
                  waves=a.waves, yosys=a.yosys, sim_threads=a.sim_threads, sim_jobs=a.sim_jobs,
                  layer_check_frames=a.layer_check_frames, accuracy_images=a.accuracy_images,
                  dma_frames=a.dma_frames, vivado=a.vivado, from_step=a.from_step,
                  to_step=a.to_step)
    if a.config is None and a.from_step and a.out and (a.out / "build_config.json").is_file():
        a.config = a.out / "build_config.json"  # rerun steps of that build with its config
    if a.config is not None:
        cfg = BuildConfig.from_json(a.config, **fields)
    elif a.board is None:
        p.error("--board is required (or --config FILE.json)")
    else:
        cfg = BuildConfig(**{k: v for k, v in fields.items() if v is not None})
    if cfg.model and not cfg.checkpoint and cfg.model != DEFAULT_MODEL:
        raise ConfigError(f"--model {cfg.model} needs --checkpoint (only {DEFAULT_MODEL} has an "
                          "embedded one)")
    return cfg


def _count_or_all(text: str) -> int:
    if text == "all":
        return -1
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or 'all', got {text!r}") from None


def main(argv=None) -> int:
    """The error boundary: no traceback reaches the user."""
    # the dependencies' own warnings (qonnx's GemmToMatMul opset note, brevitas'
    # missing hadamard package, ...) say nothing about the user's model
    warnings.filterwarnings("ignore", category=UserWarning,
                            module=r"(qonnx|brevitas|torch|onnx|finn|onnxscript)(\.|$)")
    t = time.time()
    try:
        cfg = parse_args(argv).resolved()
        state = run_build(cfg)
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - the boundary of every internal failure
        log = _write_error_log(locals().get("cfg"))
        tool = e.tool if isinstance(e, ToolError) else type(e).__name__
        first = (str(e).strip().splitlines() or [""])[0]
        print(f"error: internal: {tool} failed: {first} (traceback and full message: {log}); "
              "please report it", file=sys.stderr)
        return 2
    if cfg.to_step and cfg.to_step != STEP_NAMES[-1]:
        print(f"== stopped after step {cfg.to_step}: {cfg.out}")
    else:
        print(summary(state, cfg, time.time() - t))
    return 0


def _write_error_log(cfg) -> Path:
    """The traceback of an internal failure, in OUT/error.log (or the cwd)."""
    folder = cfg.out if cfg is not None and cfg.out is not None and cfg.out.is_dir() else Path.cwd()
    log = folder / "error.log"
    log.write_text(traceback.format_exc())
    return log


if __name__ == "__main__":
    sys.exit(main())
