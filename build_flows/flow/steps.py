"""The build steps: `step_<verb>(state, cfg)`, each doing one job, reading
and extending the BuildState, printing its progress and writing its
artefacts under cfg.out (listed with the step in flow/__init__.py)."""

from __future__ import annotations

import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from build_flows.config import DEFAULT_CHECKPOINT, BuildConfig
from build_flows.errors import (ConfigError, InputShapeError, ModelInputError, SimulationMismatchError,
                                 UnsupportedLayerError)
from build_flows.flow.state import BuildState, CheckpointSource, OnnxSource

WAVES_SUFFIX = ".vcd"  # --waves format; ".fst" needs the zlib and lz4 headers (no lz4 here)


def say(msg: str) -> None:
    print(msg, flush=True)


def step_load(state: BuildState, cfg: BuildConfig) -> BuildState:
    """The model source (checkpoint or ONNX file, chosen here once) and the
    verification images with their reference classes."""
    if cfg.onnx is not None:
        state.source = OnnxSource(cfg.onnx)
    else:
        state.source = CheckpointSource(cfg.checkpoint or DEFAULT_CHECKPOINT, cfg.model)
    state.name = state.source.name
    say(f"[load] {state.source.describe()}")
    dataset = _load_images(state, cfg, state.source.input_shape)
    state.pixels, state.ref_logits = state.source.reference(state.images)
    say(f"[load] {len(state.images)} {dataset} images for verification")
    return state


def _load_images(state: BuildState, cfg: BuildConfig, shape: tuple) -> str:
    import torch
    from quant_models.data import DatasetError, load_dataset
    dataset = cfg.dataset or ("digits" if shape == (1, 8, 8) else "random")
    state.dataset = dataset
    if dataset == "random" and cfg.accuracy_images:
        raise ConfigError("--accuracy-images needs a labelled data set, not random images: pass "
                          "--dataset (digits, mnist, cifar10 or imagefolder, with --data-dir)")
    n = cfg.verify_images
    if dataset == "random":
        rng = np.random.default_rng(cfg.seed)
        state.images = rng.integers(0, 256, (n, *shape)).astype(np.float32) / 255.0
        state.labels = np.full(n, -1)
        return dataset
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
    return dataset


def step_export(state: BuildState, cfg: BuildConfig) -> BuildState:
    """Brevitas -> QONNX, executed on every verification image (checked
    against PyTorch in the integer domain by the streamline step); with
    --onnx, the QONNX execution of the given file becomes the reference."""
    from qonnx.core.onnx_exec import execute_onnx
    state.qonnx = state.source.to_qonnx(cfg.out / "model_qonnx.onnx")
    iname, oname = state.qonnx.graph.input[0].name, state.qonnx.graph.output[0].name
    want = tuple(state.qonnx.get_tensor_shape(iname))[1:]
    if tuple(state.pixels.shape[1:]) != want:
        raise InputShapeError(f"input images have shape {tuple(state.pixels.shape[1:])} but "
                              f"{cfg.onnx or state.name} takes {want}; pass a matching --dataset")
    t = time.time()
    state.qonnx_logits = np.stack([
        np.asarray(execute_onnx(state.qonnx, {iname: (k[None] / 255.0).astype(np.float32)})[oname],
                   dtype=np.float64).reshape(-1) for k in state.pixels])
    if state.ref_logits is None:
        state.ref_logits = state.qonnx_logits
        say(f"[export] reference: QONNX execution of {len(state.pixels)} images ({time.time() - t:.1f} s)")
    else:
        say(f"[export] model_qonnx.onnx executed on {len(state.pixels)} images ({time.time() - t:.1f} s)")
    return state


def step_streamline(state: BuildState, cfg: BuildConfig) -> BuildState:
    """Integer pixel input, then QONNX -> streamlined FINN-ONNX."""
    from build_flows.frontend import convert, pixels, support
    from build_flows.frontend.dynamic_asd import FuseError
    support.check_supported(state.qonnx)
    try:
        model, affine = convert.streamline_for_hw(pixels.prepare_pixel_input(state.qonnx))
    except FuseError as e:
        raise UnsupportedLayerError(f"{e}; the dynamic-ASD unit takes the block that "
                                    "quant_models.layers.DynamicASD exports (or train with "
                                    "python -m quant_models.train --asd static)") from e
    state.ref_acc = _integer_logits(state.ref_logits, affine, "the reference")
    state.output_affine = affine
    if state.source.kind == "checkpoint":  # QONNX = PyTorch, in integers, on every image
        exported = _integer_logits(state.qonnx_logits, affine, "the QONNX export")
        bad = np.argwhere(exported != state.ref_acc)
        if bad.size:
            i, c = (int(v) for v in bad[0])
            raise SimulationMismatchError(
                f"the QONNX export differs from PyTorch on {len({int(r) for r, _ in bad})} of "
                f"{len(state.ref_acc)} images: image {i}, class {c}: QONNX {exported[i, c]}, "
                f"PyTorch {state.ref_acc[i, c]} (in the last layer's integers)")
        say(f"[streamline] QONNX = PyTorch on {len(state.ref_acc)} images, every logit "
            f"(as the last layer's integers: logit = a * integer + b)")
    state.host_tail = convert.has_host_tail(model)
    if state.host_tail:
        say("[streamline] host tail: the scale / bias after the last layer (not one positive "
            "scalar scale and a scalar bias) and the argmax run on the host (logit = a * integer "
            "+ b, report.json host_tail); the accelerator streams the last layer's integers")
    model, state.host_table = pixels.split_host_table(model)
    if state.host_table is not None:  # a non-identity pixel requantiser runs on the host
        say(f"[streamline] pixel requantiser -> host table, accelerator takes "
            f"{model.get_tensor_datatype(model.graph.input[0].name).name}")
    support.check_streamlined(model)
    model.save(str(cfg.out / "model_streamlined.onnx"))
    state.streamlined = model
    say(f"[streamline] {len(model.graph.node)} nodes: "
        + ", ".join(sorted({n.op_type for n in model.graph.node})))
    return state


def _integer_logits(logits: np.ndarray, affine, what: str) -> np.ndarray:
    """Logits -> the last layer's integers (logit = a * integer + b); a logit
    that is not such an integer means the graph is not what the hardware computes."""
    a, b = affine
    x = (np.asarray(logits, dtype=np.float64) - b) / a
    ints = np.round(x)
    off = np.abs(x - ints)
    if (off > 1e-2).any():
        i, c = (int(v) for v in np.argwhere(off > 1e-2)[0])
        raise SimulationMismatchError(
            f"{what}'s logit {logits[i, c]:.6g} of image {i}, class {c} is not a * integer + b "
            f"(a={np.ravel(a)[0]:.6g}, b={np.ravel(b)[0]:.6g}): the streamlined graph does not "
            "compute what the model does")
    return ints.astype(np.int64)


def step_to_hw(state: BuildState, cfg: BuildConfig) -> BuildState:
    """FINN HW layers, dataflow partition, support check, folding."""
    from build_flows.frontend import convert, folding, support
    model = convert.convert_to_hw(state.streamlined)
    model, state.layout = convert.partition_dataflow(model, cfg.out / "partitions")
    support.check_hw_graph(model)
    support.check_board(model, cfg.board, cfg.board_info)
    if cfg.folding is not None:
        notes = []
        model = folding.apply_folding_json(model, cfg.folding, notes)
        source = f"from {cfg.folding}"
        for note in notes:
            say(f"[to-hw] note: {note}")
    elif cfg.target_fps is None:  # the fastest folding that fits the board
        model, chosen = folding.fold_fastest_fitting(model, cfg.board_info)
        fps = cfg.clock_mhz * 1e6 / chosen["cycles"]
        est = chosen["estimate"]
        state.folding_choice = {**chosen, "fps": round(fps, 1), "share": folding.FIT_SHARE}
        if chosen["fits"]:
            source = (f"the fastest that fits {cfg.board}: {fps:,.0f} FPS at {cfg.clock_mhz:g} MHz "
                      f"({chosen['cycles']:,} cycles/frame), FINN's estimate {est['LUT']:,} LUT, "
                      f"{est['BRAM36']} BRAM36, {est['DSP']} DSP within {folding.FIT_SHARE:.0%} of "
                      "the board (--target-fps F picks a slower, smaller design)")
        else:
            source = (f"the most folded design ({fps:,.0f} FPS), which exceeds "
                      f"{folding.FIT_SHARE:.0%} of {cfg.board} in FINN's estimate")
    else:
        fps = cfg.target_fps
        cycles = max(1, int(cfg.clock_mhz * 1e6 / fps))
        model = folding.fold_for_target(model, cycles)
        source = f"for {fps:g} FPS at {cfg.clock_mhz:g} MHz ({cycles} cycles/frame)"
        cap = folding.throughput_cap(model, cycles)
        state.fold_cap = dict(cap, target_fps=fps) if cap else {}
        if cap:
            best = cfg.clock_mhz * 1e6 / cap["cycles"]
            say(f"[to-hw] note: the target of {fps:,.0f} FPS is not met: layer {cap['layer']} needs "
                f"{cap['cycles']:,} cycles a frame at its fastest folding ({cap['why']}), so the "
                f"design reaches at most {best:,.0f} FPS at {cfg.clock_mhz:g} MHz")
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
    text = " ".join(f"{a}={inst.get_nodeattr(a)}" for a in attrs)
    if "parallel_window" in inst.get_nodeattr_types() and inst.get_nodeattr("parallel_window"):
        text += " parallel_window=1 (one whole window a beat)"
    return text


def step_rtl(state: BuildState, cfg: BuildConfig) -> BuildState:
    """Every HW node -> an RTL stage (ours or FINN's generators), the stage
    graph with one-frame FIFOs, the early resource check, and the
    self-contained OUT/rtl/."""
    from build_flows import estimate
    from build_flows.rtl.mapping import map_to_stages
    from build_flows.rtl.stitch import write_rtl_dir
    from build_flows.sim.stitched import deep_depths
    graph = map_to_stages(state.hw, cfg.out / "finn_gen", cfg.board_info.part, cfg.clk_ns)
    analytic = estimate.analytic_total(state.hw, graph, cfg.board_info.part)
    estimate.check_fits(analytic, cfg.board, cfg.board_info, cfg.clock_mhz, _bottleneck(graph))
    state.graph = graph.with_depths(deep_depths(graph))
    state.rtl = write_rtl_dir(state.graph, cfg.out / "rtl")
    for st in graph.layers():
        say(f"[rtl] {st.name:32s} -> {st.module:28s} in {st.in_width:4d} b, out {st.out_width:4d} b, "
            f"{st.expected_cycles} cycles/frame")
    return state


def _bottleneck(graph) -> int:
    return max(st.expected_cycles for st in graph.layers())


def _bottleneck_stage(graph):
    """The slowest layer by its analytic cycles, and the most cycles of our
    own modules (exact models) when FINN's generated stages are counted out."""
    layers = list(graph.layers())
    slowest = max(layers, key=lambda st: st.expected_cycles)
    ours = max((st.expected_cycles for st in layers if st.style == "ours"), default=0)
    return slowest, ours


def step_size_fifos(state: BuildState, cfg: BuildConfig) -> BuildState:
    """Deep FIFOs, record each FIFO's largest occupancy, size them; OUT/rtl/
    is rewritten with the sized FIFOs."""
    from build_flows.rtl.stitch import write_rtl_dir
    from build_flows.sim.stitched import size_fifos
    n = min(len(state.pixels), 8)
    t = time.time()
    depths = size_fifos(state.graph, cfg.out / "fifo_sizing", state.frames(n), cfg.fifo_margin, cfg.seed)
    state.graph = state.graph.with_depths(depths)
    state.rtl = write_rtl_dir(state.graph, cfg.out / "rtl")
    say(f"[fifo] depths from {n} frames with deep FIFOs: {list(depths.values())} ({time.time() - t:.1f} s)")
    return state


def step_simulate(state: BuildState, cfg: BuildConfig) -> BuildState:
    """Verilator, two runs with link probes (sim/verify.py): free-running (II,
    latency) and stressed (random stalls at the top and a throttle on every
    internal link). Every link of the first cfg.layer_check_frames frames
    against FINN's execution of the HW graph, the last layer's integers of
    those frames against the reference's logits, every class against the
    reference, the protocol on every link, no word lost or extra. With --waves
    both runs dump waveforms to OUT/waves/ and a difference is reported but
    does not stop the build."""
    from build_flows.sim import verify as V
    from build_flows.sim.stitched import measure, shares
    graph, frames = state.graph, state.frames()
    n = len(frames)
    layer_frames = min(n, cfg.layer_check_frames)
    waves = cfg.out / "waves" if cfg.waves else None
    t = time.time()
    tensors = sorted({graph.src_port(e).tensor for e in V.link_order(graph)})
    ref = V.hw_reference(state.hw, frames[:layer_frames], tensors, say=say)
    t_ref = time.time() - t
    with ThreadPoolExecutor(max_workers=2) as pool:  # the two runs are independent processes
        futures = {name: pool.submit(
            V.run_verification, graph, state.rtl.path, cfg.out / "verify" / name, frames,
            layer_frames, stressed, cfg.stall_prob, cfg.seed + i, V.watchdog_cycles(graph),
            threads=cfg.sim_threads, trace=waves / f"{name}{WAVES_SUFFIX}" if waves else None,
            jobs=cfg.sim_jobs)
            for i, (name, stressed) in enumerate((("free_running", False), ("back_pressure", True)))}
        runs = {name: f.result() for name, f in futures.items()}
    free, stressed = runs["free_running"], runs["back_pressure"]
    out_words = graph.words_per_frame(graph.output_edge)
    ii, latency = measure(free, out_words)
    ii_stressed, _ = measure(stressed, out_words)
    slowest, ours_max = _bottleneck_stage(graph)
    expected = slowest.expected_cycles
    exact = slowest.style == "ours"
    if state.host_tail:  # the host's class of the streamed integers
        from build_flows.frontend.convert import host_classes
        classes = {name: host_classes(r.outputs, state.output_affine) for name, r in runs.items()}
    else:
        classes = {name: r.outputs[:, 0] for name, r in runs.items()}
    mism = [int((classes[name] != state.ref_classes).sum()) for name in runs]
    checked = V.check_runs(graph, runs, ref, layer_frames, state.ref_acc, state.ref_classes,
                           "PyTorch's logits" if state.source.kind == "checkpoint"
                           else "the QONNX execution's logits",
                           host_classes=classes if state.host_tail else None)
    hw_acc = (float((classes["free_running"] == state.labels).mean())
              if (state.labels >= 0).all() else None)
    state.sim = {"frames": n, "mismatches": int(max(mism)),
                 "mismatches_free_running": mism[0], "mismatches_back_pressure": mism[1],
                 "cycles_per_frame": round(float(ii), 2), "expected_cycles_per_frame": int(expected),
                 # our modules' cycle models are exact; FINN's generated ones (sliding
                 # window, padding, width converter) carry FINN's estimate, an upper bound
                 "bottleneck": {"layer": slowest.name, "exact": exact, "ours_cycles": int(ours_max)},
                 "cycles_per_frame_back_pressure": round(float(ii_stressed), 2),
                 "latency_cycles": int(latency),
                 "fps_at_clock": round(cfg.clock_mhz * 1e6 / ii, 1) if ii == ii else None,
                 "back_pressure_prob": cfg.stall_prob,
                 "sim_jobs": len(shares(n, 1 if waves else cfg.sim_jobs)),
                 "accuracy": hw_acc,
                 "checked": checked.summary(), "links_stalled": checked.links_stalled,
                 "differences": [str(d) for d in checked.differences] + checked.violations}
    stalls = checked.links_stalled.values()
    say(f"[sim] {n} frames, {mism[0]} / {mism[1]} class mismatches (free / back-pressure), "
        f"II {ii:.1f} cycles (analytic {expected}"
        f"{'' if exact else f': FINN estimate of {slowest.name}, an upper bound'}), latency {latency} cycles "
        f"({time.time() - t:.1f} s, HW-graph reference {t_ref:.1f} s)")
    say(f"[sim] checked: every beat of {checked.links} links on {layer_frames} frames "
        f"({checked.elements_per_frame:,} elements a frame) against the HW graph, the last "
        f"layer's integers against {checked.accumulators}, {n} classes, the protocol on every "
        f"link; internal links stalled {min(stalls, default=0):,} to {max(stalls, default=0):,} "
        "cycles in the back-pressure run")
    _write_rtlsim_performance(state, cfg, free.total_cycles)
    problems = state.sim["differences"]
    if problems and not cfg.waves:
        raise SimulationMismatchError(f"hardware differs: {problems[0]}"
                                      + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    if waves:
        if problems:
            state.sim["mismatch"] = problems[0]
            say(f"[sim] MISMATCH (kept going for --waves): {problems[0]}")
        state.sim["waves"] = sorted(str(f.relative_to(cfg.out)) for f in waves.rglob(f"*{WAVES_SUFFIX}"))
        say("[sim] waveforms: " + ", ".join(state.sim["waves"]) + f" in {cfg.out}")
    return state


def _write_rtlsim_performance(state: BuildState, cfg: BuildConfig, total_cycles: int) -> None:
    """FINN's rtlsim_performance.json keys, from the free-running run."""
    s = state.sim
    runtime_ms = total_cycles / (cfg.clock_mhz * 1e3)
    perf = {"N": s["frames"], "cycles": int(total_cycles), "fclk[mhz]": cfg.clock_mhz,
            "runtime[ms]": round(runtime_ms, 6),
            "throughput[images/s]": round(s["frames"] / runtime_ms * 1e3, 1),
            "stable_throughput[images/s]": s["fps_at_clock"],
            "latency_cycles": s["latency_cycles"], "II_cycles": s["cycles_per_frame"]}
    (cfg.out / "rtlsim_performance.json").write_text(json.dumps(perf, indent=2) + "\n")


def step_accuracy(state: BuildState, cfg: BuildConfig) -> BuildState:
    """With --accuracy-images: the test split (all of it, or its first N
    images) through the fast executor of the HW graph and through the
    reference (PyTorch for a checkpoint, QONNX for --onnx), image for image,
    every integer of the last layer and every class. The executor is the
    engine because the RTL equals it on every link of the verified frames
    (simulate) and it equals FINN's execution on every tensor of the first
    frames; accuracy.json holds both accuracies."""
    if not cfg.accuracy_images:
        return state
    from build_flows.sim.executor import execute
    from quant_models.data import DatasetError, load_dataset
    try:
        ds = load_dataset(state.dataset, data_dir=cfg.data_dir, train=False)
    except (DatasetError, ValueError) as e:
        raise ModelInputError(str(e)) from e
    n = len(ds) if cfg.accuracy_images < 0 else min(cfg.accuracy_images, len(ds))
    select = next((x for x in state.hw.graph.node if x.op_type == "LabelSelect"), None)
    if select is None and not state.host_tail:
        raise ConfigError("--accuracy-images needs a design that ends in a class (TopK / "
                          "LabelSelect); this one has none: drop --accuracy-images")
    if select is None:  # the host tail: the accelerator streams the integers
        from build_flows.frontend.convert import host_classes
        acc_t = cls_t = state.hw.graph.output[0].name
    else:
        acc_t, cls_t = select.input[0], select.output[0]
    t0, last, batch = time.time(), time.time(), 100
    hw_cls, ref_cls, labels, bad = [], [], [], []
    for start in range(0, n, batch):
        idx = list(range(start, min(n, start + batch)))
        x, y = ds[idx]
        pixels, logits = state.source.reference(x.numpy())
        if logits is None:
            logits = _qonnx_logits(state.qonnx, pixels)
        ints = _integer_logits(logits, state.output_affine, "the reference")
        out = execute(state.hw, state.host_frames(pixels), [acc_t, cls_t])
        got = out[acc_t].reshape(len(idx), -1)
        for k in np.flatnonzero((got != ints).any(axis=1)):
            bad.append((start + int(k), int(np.argmax(got[k] != ints[k]))))
        hw_cls.append(host_classes(got, state.output_affine) if select is None
                      else out[cls_t].reshape(len(idx), -1)[:, 0])
        ref_cls.append(np.argmax(logits, axis=1))
        labels.append(y.numpy())
        done = start + len(idx)
        if time.time() - last > 10 or done == n:
            last = time.time()
            rate = done / (last - t0)
            say(f"[accuracy] {done}/{n} images, {rate:.0f} images/s, "
                f"ETA {(n - done) / rate:.0f} s, {len(bad)} differing")
    hw_cls, ref_cls, labels = (np.concatenate(v) for v in (hw_cls, ref_cls, labels))
    seconds = time.time() - t0
    state.accuracy = {
        "images": n, "dataset": state.dataset, "split": "test",
        "hardware_accuracy": float((hw_cls == labels).mean()),
        "reference_accuracy": float((ref_cls == labels).mean()),
        "reference": "PyTorch" if state.source.kind == "checkpoint" else "QONNX execution",
        "differing_images": len(bad), "differing_classes": int((hw_cls != ref_cls).sum()),
        "engine": "fast executor of the folded HW graph (equal to the RTL on every link of "
                  f"{state.sim.get('checked', {}).get('layer_frames', 0)} simulated frames)",
        "seconds": round(seconds, 1), "images_per_s": round(n / seconds, 1)}
    (cfg.out / "accuracy.json").write_text(json.dumps(state.accuracy, indent=2) + "\n")
    if bad:
        i, c = bad[0]
        raise SimulationMismatchError(
            f"the HW graph differs from {state.accuracy['reference']} on {len(bad)} of {n} test "
            f"images: first image {i}, class {c} (every integer of the last layer compared)")
    say(f"[accuracy] {n} test images: hardware {100 * state.accuracy['hardware_accuracy']:.2f} %, "
        f"{state.accuracy['reference']} {100 * state.accuracy['reference_accuracy']:.2f} %, "
        f"every image equal in every last-layer integer ({seconds:.1f} s)")
    return state


def _qonnx_logits(qonnx, pixels: np.ndarray) -> np.ndarray:
    from qonnx.core.onnx_exec import execute_onnx
    iname, oname = qonnx.graph.input[0].name, qonnx.graph.output[0].name
    return np.stack([np.asarray(execute_onnx(qonnx, {iname: (k[None] / 255.0).astype(np.float32)})[oname],
                                dtype=np.float64).reshape(-1) for k in pixels])


def step_estimate(state: BuildState, cfg: BuildConfig) -> BuildState:
    """LUT/FF/BRAM36/DSP per stage (Yosys for our RTL, FINN's models for the
    rest) and the check against the board."""
    from build_flows import estimate
    t = time.time()
    per_layer, total = estimate.estimate(state.graph, state.hw, cfg.board_info.part, cfg.out,
                                         yosys=cfg.yosys, say=say)
    state.layer_resources, state.resources = per_layer, total
    say(f"[estimate] {total} of {cfg.board} ({time.time() - t:.1f} s)")
    estimate.check_fits(total, cfg.board, cfg.board_info, cfg.clock_mhz, _bottleneck(state.graph))
    return state


def step_package(state: BuildState, cfg: BuildConfig) -> BuildState:
    """OUT/deploy/ (PYNQ driver, validate.py, notebook, io.json, manifest),
    OUT/deploy.zip and OUT/vivado/ (deploy top, build.tcl); with --vivado, the
    bitfile through the vivado on PATH (deploy/package.py)."""
    from build_flows.deploy.package import run_vivado, write_package
    t = time.time()
    io = write_package(state, cfg)
    state.deploy = {"dir": str(cfg.out / "deploy"), "bus_bits": io["bus_bits"],
                    "frames_per_packet": io["frames_per_packet"],
                    "input_bus_words_per_frame": io["input"]["bus_words_per_frame"],
                    "output_bus_words_per_frame": io["output"]["bus_words_per_frame"],
                    "bitfile": None}
    say(f"[package] {cfg.out / 'deploy'} and deploy.zip (driver, validate.py, io.json, manifest), "
        f"{cfg.out / 'vivado' / 'build.tcl'}; DMA packets of {io['frames_per_packet']} frames on a "
        f"{io['bus_bits']}-bit bus ({time.time() - t:.1f} s)")
    if cfg.vivado:
        man = run_vivado(state, cfg, say)
        state.deploy["bitfile"] = man["bitfile"]
    else:
        say("[package] no bitfile: rerun with --vivado where Vivado is installed "
            "(--from-step package keeps this build)")
    return state


def step_report(state: BuildState, cfg: BuildConfig) -> BuildState:
    """report.json (stable keys), report.html and FINN's per-layer report files."""
    from build_flows import report
    report.write(state, cfg)
    say(f"[report] {cfg.out / 'report.json'}, {cfg.out / 'report.html'}")
    return state


def clear(paths) -> None:
    """Remove files and folders (artefacts of an earlier build)."""
    for p in paths:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()
