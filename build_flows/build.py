"""One command from an SD-BNN (or any QONNX W1A1 model) to a simulated,
bit-exact streaming accelerator with resource estimates and a report.

    python build_flows/build.py --board pynq-z2
    python build_flows/build.py --board pynq-z2 --model tfc --checkpoint tfc.pt --target-fps 50000
    python build_flows/build.py --board pynq-z2 --onnx cnv_w1a1.onnx --folding folding.json

Each step is `step_<verb>(state, cfg)`: it reads and extends the BuildState,
prints its progress and writes its artefacts under cfg.out. User errors end as
one `error: ...` line and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python build_flows/build.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from build_flows.build_config import (BOARDS, DEFAULT_CHECKPOINT, DEFAULT_MODEL, DEFAULT_TARGET_FPS,
                                      BuildConfig)
from build_flows.build_errors import (BuildError, InputShapeError, ModelInputError,
                                      SimulationMismatchError)


@dataclass
class BuildState:
    """Everything the steps hand on to each other."""

    torch_model: object = None  # the PyTorch model (None with --onnx)
    qonnx: object = None  # QONNX ModelWrapper as exported / given
    name: str = ""  # model name for messages and the default out dir
    images: np.ndarray | None = None  # float pixels in [0, 1], (N, C, H, W)
    pixels: np.ndarray | None = None  # UINT8 pixels the accelerator takes, (N, C, H, W)
    labels: np.ndarray | None = None  # dataset labels
    ref_classes: np.ndarray | None = None  # PyTorch (or QONNX for --onnx) classes
    hw: object = None  # folded FINN HW graph (dataflow partition)
    layout: str = "NHWC"  # order in which the host streams the pixels
    layers: list = field(default_factory=list)  # rtl_backend.Stage per layer
    numel: list = field(default_factory=list)  # elements per frame of each layer's output
    fifo_depths: list = field(default_factory=list)
    sim: dict = field(default_factory=dict)
    resources: dict = field(default_factory=dict)
    layer_resources: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)


def say(msg: str) -> None:
    print(msg, flush=True)


# ---------------------------------------------------------------------------
# steps


def step_load(state: BuildState, cfg: BuildConfig) -> BuildState:
    """The model (checkpoint or ONNX file) and the verification images."""
    if cfg.onnx is not None:
        from qonnx.core.modelwrapper import ModelWrapper
        if not Path(cfg.onnx).is_file():
            raise ModelInputError(f"ONNX file {cfg.onnx} not found; pass an existing QONNX file")
        try:
            state.qonnx = ModelWrapper(str(cfg.onnx))
        except Exception as e:
            raise ModelInputError(f"{cfg.onnx} is not a readable ONNX model ({e}); export it with "
                                  "brevitas.export.export_qonnx") from e
        state.name = Path(cfg.onnx).stem
        shape = tuple(state.qonnx.get_tensor_shape(state.qonnx.graph.input[0].name))[1:]
        say(f"[load] {cfg.onnx}: QONNX, input {shape}")
    else:
        from quant_models.checkpoint import CheckpointError, load_checkpoint
        path = Path(cfg.checkpoint) if cfg.checkpoint else DEFAULT_CHECKPOINT
        try:
            state.torch_model = load_checkpoint(path)
        except CheckpointError as e:
            raise ModelInputError(str(e)) from e
        got = state.torch_model.config["name"]
        if cfg.model and cfg.model != got:
            raise ModelInputError(f"checkpoint {path} holds model {got!r}, not --model {cfg.model!r}; "
                                  "pass the matching checkpoint or drop --model")
        state.name = got
        shape = tuple(state.torch_model.input_shape)
        say(f"[load] {path}: model {got}, input {shape}")
    _load_images(state, cfg, shape)
    return state


def _load_images(state: BuildState, cfg: BuildConfig, shape: tuple) -> None:
    import torch
    from quant_models.data import DatasetError, load_dataset
    dataset = cfg.dataset or ("digits" if shape == (1, 8, 8) else "random")
    n = cfg.verify_images
    if dataset == "random":
        rng = np.random.default_rng(cfg.seed)
        state.images = rng.integers(0, 256, (n, *shape)).astype(np.float32) / 255.0
        state.labels = np.full(n, -1)
    else:
        try:
            ds = load_dataset(dataset, data_dir=cfg.data_dir, train=False)
        except (DatasetError, ValueError) as e:
            raise ModelInputError(str(e)) from e
        if tuple(ds.sample_shape) != shape:
            raise InputShapeError(f"dataset {dataset} has images of shape {tuple(ds.sample_shape)} but "
                                  f"model {state.name} takes {shape}; pass a matching --dataset "
                                  "(or --dataset random)")
        n = min(n, len(ds))
        xs, ys = zip(*(ds[i] for i in range(n)))
        state.images = torch.stack(xs).numpy()
        state.labels = torch.stack(ys).numpy()
    if state.torch_model is not None:
        with torch.no_grad():
            x = torch.from_numpy(state.images)
            q = state.torch_model.input_quant(x).numpy()
            state.ref_classes = state.torch_model(x).argmax(dim=1).numpy()
        state.pixels = np.clip(np.round(q * 255.0), 0, 255).astype(np.int64)
    else:
        state.pixels = np.clip(np.round(state.images * 255.0), 0, 255).astype(np.int64)
    say(f"[load] {len(state.images)} {dataset} images for verification")


def step_export(state: BuildState, cfg: BuildConfig) -> BuildState:
    """Brevitas -> QONNX (checked against PyTorch); with --onnx, the QONNX
    execution of the given file becomes the reference."""
    from qonnx.core.onnx_exec import execute_onnx
    if state.torch_model is not None:
        from quant_models.export import ExportError, export_qonnx
        try:
            state.qonnx = export_qonnx(state.torch_model, cfg.out / "model_qonnx.onnx")
        except ExportError as e:
            raise InputShapeError(str(e)) from e
    iname, oname = state.qonnx.graph.input[0].name, state.qonnx.graph.output[0].name
    want = tuple(state.qonnx.get_tensor_shape(iname))[1:]
    if tuple(state.pixels.shape[1:]) != want:
        raise InputShapeError(f"input images have shape {tuple(state.pixels.shape[1:])} but "
                              f"{cfg.onnx or state.name} takes {want}; pass a matching --dataset")
    n_check = len(state.pixels) if state.torch_model is None else min(3, len(state.pixels))
    t = time.time()
    classes = []
    for k in state.pixels[:n_check]:
        out = execute_onnx(state.qonnx, {iname: (k[None] / 255.0).astype(np.float32)})[oname]
        classes.append(int(np.argmax(out.reshape(-1))))
    if state.torch_model is None:
        state.ref_classes = np.array(classes)
        say(f"[export] reference: QONNX execution of {n_check} images ({time.time() - t:.1f} s)")
    else:
        bad = int((np.array(classes) != state.ref_classes[:n_check]).sum())
        if bad:
            raise SimulationMismatchError(f"QONNX export differs from PyTorch on {bad} of {n_check} images")
        say(f"[export] model_qonnx.onnx: QONNX = PyTorch on {n_check} images")
    return state


def step_streamline(state: BuildState, cfg: BuildConfig) -> BuildState:
    """Integer pixel input, then QONNX -> streamlined FINN-ONNX."""
    from build_flows import to_hw
    to_hw.init_finn_settings()
    to_hw.check_supported(state.qonnx)
    model = to_hw.streamline_for_hw(to_hw.prepare_pixel_input(state.qonnx))
    model, table = to_hw.split_host_table(model)
    if table is not None:  # a non-identity pixel requantiser runs on the host
        state.pixels = to_hw.apply_host_table(state.pixels, table)
        say(f"[streamline] pixel requantiser -> host table, accelerator takes "
            f"{model.get_tensor_datatype(model.graph.input[0].name).name}")
    to_hw.check_streamlined(model)
    model.save(str(cfg.out / "model_streamlined.onnx"))
    state.hw = model
    say(f"[streamline] {len(model.graph.node)} nodes: "
        + ", ".join(sorted({n.op_type for n in model.graph.node})))
    return state


def step_to_hw(state: BuildState, cfg: BuildConfig) -> BuildState:
    """FINN HW layers, dataflow partition, folding, width converters."""
    from build_flows import folding, to_hw
    model = to_hw.convert_to_hw(state.hw)
    model, state.layout = to_hw.partition_dataflow(model, cfg.out / "partitions")
    to_hw.check_hw_graph(model)
    if cfg.folding is not None:
        model = folding.apply_folding_json(model, cfg.folding)
        source = f"from {cfg.folding}"
    else:
        fps = cfg.target_fps or DEFAULT_TARGET_FPS
        cycles = max(1, int(cfg.clock_mhz * 1e6 / fps))
        model = folding.fold_for_target(model, cycles)
        source = f"for {fps:g} FPS at {cfg.clock_mhz:g} MHz ({cycles} cycles/frame)"
    folding.check_folding(model)
    (cfg.out / "folding_config.json").write_text(json.dumps(folding.folding_dict(model), indent=2) + "\n")
    model.save(str(cfg.out / "model_hw.onnx"))
    state.hw = model
    say(f"[to-hw] host streams {state.layout} pixels; folding {source} -> folding_config.json")
    for node in model.graph.node:
        say(f"         {node.name:32s} {_fold_text(node)}")
    return state


def _fold_text(node) -> str:
    from qonnx.custom_op.registry import getCustomOp
    inst = getCustomOp(node)
    attrs = [a for a in ("MW", "MH", "SIMD", "PE") if a in inst.get_nodeattr_types()]
    return " ".join(f"{a}={inst.get_nodeattr(a)}" for a in attrs)


def step_rtl(state: BuildState, cfg: BuildConfig) -> BuildState:
    """Every HW node -> an RTL stage (ours or FINN's generators)."""
    from build_flows import rtl_backend
    layers = rtl_backend.map_to_rtl(state.hw, cfg.out / "rtl" / "gen", cfg.board_info.part,
                                    1000.0 / cfg.clock_mhz)
    state.layers = layers
    state.numel = [int(np.prod(state.hw.get_tensor_shape(st.out_tensor))) for st in layers]
    from build_flows import estimate
    analytic = estimate.analytic_total(state.hw, layers, cfg.board_info.part)
    estimate.check_fits(analytic, cfg, max(st.expected_cycles for st in layers))
    for st in layers:
        say(f"[rtl] {st.name:32s} -> {st.module:28s} in {st.in_width:4d} b, out {st.out_width:4d} b, "
            f"{st.expected_cycles} cycles/frame")
    return state


def step_size_fifos(state: BuildState, cfg: BuildConfig) -> BuildState:
    """Deep FIFOs, record each FIFO's largest occupancy, size them."""
    from build_flows import stitched_sim
    n = min(len(state.pixels), 8)
    t = time.time()
    depths, _ = stitched_sim.size_fifos(state.layers, state.numel, cfg.out / "rtl", _frames(state, n),
                                        state.numel[-1], cfg.fifo_margin, cfg.seed)
    state.fifo_depths = depths
    say(f"[fifo] depths from {n} frames with deep FIFOs: {depths} ({time.time() - t:.1f} s)")
    return state


def _frames(state: BuildState, n: int | None = None) -> np.ndarray:
    """UINT8 pixels as the host streams them (NHWC or flattened NCHW)."""
    px = state.pixels if n is None else state.pixels[:n]
    return px.transpose(0, 2, 3, 1) if state.layout == "NHWC" else px


def step_simulate(state: BuildState, cfg: BuildConfig) -> BuildState:
    """Verilator: free-running (throughput) and with random back-pressure and
    input gaps; every class checked against the reference. With --waves both
    runs dump waveforms to OUT/waves/ and a mismatch is localised (with the
    per-layer runs' waveforms) but does not stop the build."""
    from build_flows import rtl_backend, stitched_sim
    chain = rtl_backend.with_fifos(state.layers, state.fifo_depths)
    frames = _frames(state)
    words = stitched_sim.words_per_frame(state.numel[-1], chain[-1].out_width, chain[-1].out_elem_bits)
    waves = cfg.out / "waves" if cfg.waves else None
    if waves:
        shutil.rmtree(waves, ignore_errors=True)  # no stale per-layer dumps of an earlier build
    t = time.time()
    free = stitched_sim.run_stitched(chain, cfg.out / "rtl", frames, state.numel[-1], 0.0, cfg.seed,
                                     trace=waves / f"free_running{WAVES_SUFFIX}" if waves else None,
                                     threads=cfg.sim_threads)
    stressed = stitched_sim.run_stitched(chain, cfg.out / "rtl", frames, state.numel[-1],
                                         cfg.stall_prob, cfg.seed + 1,
                                         trace=waves / f"back_pressure{WAVES_SUFFIX}" if waves else None,
                                         threads=cfg.sim_threads)
    ii, latency = stitched_sim.measure(free, words)
    expected = max(st.expected_cycles for st in state.layers)
    ref = state.ref_classes.reshape(-1)
    mism = [int(((r.outputs[:, 0] != ref)).sum()) for r in (free, stressed)]
    state.sim = {"frames": int(len(frames)), "mismatches": int(max(mism)),
                 "mismatches_free_running": mism[0], "mismatches_back_pressure": mism[1],
                 "cycles_per_frame": round(float(ii), 2), "expected_cycles_per_frame": int(expected),
                 "latency_cycles": int(latency),
                 "fps_at_clock": round(cfg.clock_mhz * 1e6 / ii, 1) if ii == ii else None,
                 "back_pressure_prob": cfg.stall_prob,
                 "accuracy": (float((ref == state.labels).mean()) if (state.labels >= 0).all() else None)}
    say(f"[sim] {len(frames)} frames, {mism[0]} / {mism[1]} mismatches (free / back-pressure), "
        f"II {ii:.1f} cycles (analytic {expected}), latency {latency} cycles ({time.time() - t:.1f} s)")
    bad = int(np.argmax(np.logical_or(free.outputs[:, 0] != ref, stressed.outputs[:, 0] != ref)))
    if max(mism) and not cfg.waves:
        raise SimulationMismatchError(_localise(state, bad))
    if waves:
        if max(mism):
            msg = _localise(state, bad, waves / "layers")
            state.sim["mismatch"] = msg
            say(f"[sim] MISMATCH (kept going for --waves): {msg}")
        state.sim["waves"] = sorted(str(f.relative_to(cfg.out)) for f in waves.rglob(f"*{WAVES_SUFFIX}"))
        say("[sim] waveforms: " + ", ".join(state.sim["waves"]) + f" in {cfg.out}")
    return state


WAVES_SUFFIX = ".vcd"  # --waves format; ".fst" needs the zlib and lz4 headers (no lz4 here)


def _localise(state: BuildState, frame: int, waves_dir: Path | None = None) -> str:
    from qonnx.core.onnx_exec import execute_onnx
    from build_flows import stitched_sim
    hw = state.hw
    iname = hw.graph.input[0].name
    x = _frames(state, frame + 1)[frame:frame + 1].reshape(hw.get_tensor_shape(iname))
    ctx = execute_onnx(hw, {iname: x.astype(np.float32)}, return_full_exec_context=True)
    found = stitched_sim.first_bad_layer(state.layers, ctx, waves_dir=waves_dir,
                                         waves_suffix=WAVES_SUFFIX)
    where = (f"first differing layer: {found[0].name} ({found[0].module}), {found[1]}" if found
             else "every layer alone matches the HW graph: check the stitching / FIFOs")
    return (f"hardware output differs from the reference on image {frame}; {where}")


def step_estimate(state: BuildState, cfg: BuildConfig) -> BuildState:
    """LUT/FF/BRAM36/DSP per layer (Yosys for our RTL, FINN's models for the
    rest) and the check against the board."""
    from build_flows import estimate
    t = time.time()
    per_layer, total = estimate.estimate(state, cfg)
    state.layer_resources, state.resources = per_layer, total
    say(f"[estimate] {total} of {cfg.board} ({time.time() - t:.1f} s)")
    estimate.check_fits(total, cfg, max(st.expected_cycles for st in state.layers))
    return state


def step_report(state: BuildState, cfg: BuildConfig) -> BuildState:
    """report.json (stable keys) and report.html."""
    from build_flows import report
    report.write(state, cfg)
    say(f"[report] {cfg.out / 'report.json'}, {cfg.out / 'report.html'}")
    return state


STEPS = [step_load, step_export, step_streamline, step_to_hw, step_rtl, step_size_fifos,
         step_simulate, step_estimate, step_report]


def run_build(cfg: BuildConfig) -> BuildState:
    """Run every step in order; returns the final state."""
    if cfg.out is None:
        cfg.out = Path("build") / (cfg.model or (Path(cfg.onnx).stem if cfg.onnx else DEFAULT_MODEL))
    cfg.out = Path(cfg.out).resolve()
    cfg.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("FINN_BUILD_DIR", str(cfg.out / "finn_build"))
    state = BuildState()
    for step in STEPS:
        t = time.time()
        state = step(state, cfg)
        state.timings[step.__name__[5:]] = round(time.time() - t, 2)
    return state


def summary(state: BuildState, cfg: BuildConfig, wall: float) -> str:
    s, r, b = state.sim, state.resources, cfg.board_info
    return "\n".join([
        f"== build {state.name} for {cfg.board} ({b.part}) at {cfg.clock_mhz:g} MHz: {cfg.out}",
        f"   simulation : {s['frames']} frames, {s['mismatches']} mismatches "
        f"(with {cfg.stall_prob:g} back-pressure too)"
        + (f"; accuracy {100 * s['accuracy']:.2f} % on labelled images" if s.get("accuracy") is not None else ""),
        f"   throughput : {s['cycles_per_frame']} cycles/frame measured, "
        f"{s['expected_cycles_per_frame']} analytic -> {s['fps_at_clock']:,} FPS; "
        f"latency {s['latency_cycles']} cycles",
        f"   resources  : LUT {r['LUT']:,}/{b.LUT:,}  FF {r['FF']:,}/{b.FF:,}  "
        f"BRAM36 {r['BRAM36']}/{b.BRAM36}  DSP {r['DSP']}/{b.DSP}",
        *(["   waveforms  : " + ", ".join(str(cfg.out / w) for w in s["waves"])] if s.get("waves") else []),
        *([f"   MISMATCH   : {s['mismatch']}"] if s.get("mismatch") else []),
        f"   wall time  : {wall:.1f} s",
    ])


def parse_args(argv=None) -> BuildConfig:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--board", required=True, choices=sorted(BOARDS), help="target board")
    p.add_argument("--model", help=f"registry model name (default {DEFAULT_MODEL})")
    p.add_argument("--checkpoint", type=Path, help=f"SD-BNN checkpoint (default {DEFAULT_CHECKPOINT})")
    p.add_argument("--onnx", type=Path, help="any QONNX W1A1 model instead of --model/--checkpoint")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--target-fps", type=float, help=f"folding target (default {DEFAULT_TARGET_FPS})")
    g.add_argument("--folding", type=Path, help="FINN-format folding JSON")
    p.add_argument("--clock-mhz", type=float, default=100.0, help="clock (default 100)")
    p.add_argument("--verify-images", type=int, default=100, help="images simulated (default 100)")
    p.add_argument("--dataset", help="digits, mnist, cifar10 or random (default: from the input shape)")
    p.add_argument("--data-dir", type=Path, help="dataset folder (mnist, cifar10)")
    p.add_argument("--out", type=Path, help="artefact directory (default build/<model>)")
    p.add_argument("--waves", action="store_true",
                   help="dump VCD waveforms of the verification simulations to OUT/waves/ (and of the "
                        "per-layer runs on a mismatch, which then does not stop the build)")
    p.add_argument("--sim-threads", type=int, default=1,
                   help="Verilator threads for the verification runs (2 speeds up CNV-size "
                        "designs on an idle machine; default 1)")
    p.add_argument("--no-yosys", action="store_true",
                   help="estimate with FINN's analytic models only (skips Yosys synthesis)")
    a = p.parse_args(argv)
    if a.onnx is not None and (a.model or a.checkpoint):
        p.error("--onnx excludes --model and --checkpoint")
    if a.model and not a.checkpoint and a.model != DEFAULT_MODEL:
        p.error(f"--model {a.model} needs --checkpoint (only {DEFAULT_MODEL} has an embedded one)")
    if a.verify_images < 2:
        p.error("--verify-images must be at least 2 (the II is measured between frames)")
    return BuildConfig(board=a.board, model=a.model, checkpoint=a.checkpoint, onnx=a.onnx,
                       target_fps=a.target_fps, folding=a.folding, clock_mhz=a.clock_mhz,
                       verify_images=a.verify_images, dataset=a.dataset, data_dir=a.data_dir,
                       out=a.out, waves=a.waves, yosys=not a.no_yosys, sim_threads=a.sim_threads)


def main(argv=None) -> int:
    cfg = parse_args(argv)
    t = time.time()
    try:
        state = run_build(cfg)
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(summary(state, cfg, time.time() - t))
    return 0


if __name__ == "__main__":
    sys.exit(main())
