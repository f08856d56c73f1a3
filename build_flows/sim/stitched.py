"""Verilator runs of a stitched design (an RTL folder written by
rtl/stitch.py), the throughput/latency measurement, FIFO sizing and the
per-layer search for a mismatch."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from build_flows.rtl.graph import StageGraph
from build_flows.rtl.stitch import OCCUPANCY_FILE, TOP, RtlDir, write_rtl_dir
from build_flows.rtl.stream import pack_stream, unpack_stream
from build_flows.sim.verilator import SimStallError, simulate


@dataclass
class StitchedRun:
    outputs: np.ndarray  # (N, elements per frame)
    out_cycles: list[int]
    in_cycles: list[int]
    total_cycles: int
    occupancy: dict[str, int] | None  # largest occupancy per FIFO (monitor runs)


def run_design(graph: StageGraph, rtl: RtlDir, frames: np.ndarray, stall_prob: float = 0.0,
               seed: int = 0, monitor: bool = False, timeout_cycles: int = 200_000,
               trace: Path | None = None, threads: int = 1) -> StitchedRun:
    """Simulate the design in `rtl` (written from `graph`) on frames (N, ...)
    of input elements. monitor: the folder was written with monitor=True and
    the FIFO occupancies are read back. trace: a waveform of the run (.vcd or
    .fst, see sim/verilator.py); threads: Verilator model threads."""
    src, dst = graph.input_edge, graph.output_edge
    in_w, in_bits = graph.width(src), graph.elem_bits(src)
    out_w, out_bits = graph.width(dst), graph.elem_bits(dst)
    n = len(frames)
    n_words = n * graph.words_per_frame(dst)
    res = simulate(TOP, rtl.sources, {}, pack_stream(frames, in_w, in_bits), in_w, out_w, n_words,
                   in_gap_prob=stall_prob, out_stall_prob=stall_prob, seed=seed,
                   timeout_cycles=timeout_cycles, mem_files=rtl.mem_texts(), trace=trace,
                   threads=threads, collect=(OCCUPANCY_FILE,) if monitor else ())
    occupancy = None
    if monitor:
        lines = res.files[OCCUPANCY_FILE].splitlines()
        occupancy = {name: int(value) for name, value in (line.split() for line in lines)}
    outputs = unpack_stream(res.out_words[:n_words], out_w, out_bits, n, graph.src_port(dst).signed)
    return StitchedRun(outputs, res.out_cycles, res.in_cycles, res.total_cycles, occupancy)


def run_graph(graph: StageGraph, frames: np.ndarray, **kw) -> StitchedRun:
    """run_design on a temporary RTL folder of the graph."""
    with tempfile.TemporaryDirectory(prefix="sdbnn-rtl-") as tmp:
        rtl = write_rtl_dir(graph, Path(tmp) / "rtl", monitor=kw.get("monitor", False))
        return run_design(graph, rtl, frames, **kw)


def measure(run: StitchedRun, out_words_per_frame: int) -> tuple[float, int]:
    """Steady-state cycles per frame (between the last words of the first and
    the last frame) and the latency of the first frame (first input to its
    last output word)."""
    ends = run.out_cycles[out_words_per_frame - 1::out_words_per_frame]
    ii = (ends[-1] - ends[0]) / (len(ends) - 1) if len(ends) > 1 else float("nan")
    latency = ends[0] - run.in_cycles[0] + 1
    return ii, latency


def deep_depths(graph: StageGraph) -> dict[str, int]:
    """A whole frame of words (+8) on every internal edge: never deadlocks."""
    return {e.name: graph.words_per_frame(e) + 8 for e in graph.internal_edges()}


def size_fifos(graph: StageGraph, work: Path, frames: np.ndarray, margin: int,
               seed: int) -> dict[str, int]:
    """Simulate with deep FIFOs (free-running and with back-pressure) in
    work/rtl, take the largest occupancy per FIFO plus margin (at least 2)."""
    deep = graph.with_depths(deep_depths(graph))
    rtl = write_rtl_dir(deep, Path(work) / "rtl", monitor=True)
    runs = [run_design(deep, rtl, frames, stall, seed, monitor=True) for stall in (0.0, 0.3)]
    return {name: max(2, max(r.occupancy[name] for r in runs) + margin) for name in deep.depths()}


def layer_waves_file(waves_dir: Path, index: int, name: str, suffix: str = ".vcd") -> Path:
    """Where first_bad_layer puts the waveform of layer `index` run alone."""
    return Path(waves_dir) / f"layer{index:02d}_{name}{suffix}"


def first_bad_layer(graph: StageGraph, context: dict[str, np.ndarray], seed: int = 0,
                    waves_dir: Path | None = None, waves_suffix: str = ".vcd"):
    """Simulate each stage alone on its golden input, the FINN HW graph
    executed in NumPy; return (stage, description of the first differing
    element) for the first stage whose output stream differs, else None.
    With waves_dir, each isolation run up to that stage leaves its waveform
    there (layer_waves_file)."""
    for i, st in enumerate(graph.layers()):
        x, want = context[st.in_tensor], context[st.out_tensor].astype(np.int64).reshape(-1)
        try:
            trace = layer_waves_file(waves_dir, i, st.name, waves_suffix) if waves_dir else None
            run = run_graph(graph.alone(st.name), x.reshape(1, -1), seed=seed, trace=trace)
        except SimStallError as e:
            return st, f"stalled: {e}"
        got = run.outputs.reshape(-1)
        if got.shape != want.shape or (got != want).any():
            idx = int(np.argmax(got != want)) if got.shape == want.shape else 0
            return st, (f"element {idx} of {want.size}: hardware "
                        f"{got[idx] if got.size > idx else 'missing'}, HW graph {want[idx]}")
    return None
