"""Verilator runs of the stitched design: stream packing, FIFO sizing, the
throughput/latency measurement and the per-layer search for a mismatch."""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from build_flows import rtl_backend, rtl_params
from build_flows.rtl_backend import Stage
from build_flows.verilator_sim import SimStallError, cache_dir, simulate


def lanes(width: int, elem_bits: int) -> int:
    return width // elem_bits


def pack_stream(tensors: np.ndarray, width: int, elem_bits: int) -> list[int]:
    """Frames (N, ...) -> words of width/elem_bits elements (element 0 low)."""
    return rtl_params.pack_lanes(np.asarray(tensors).astype(np.int64).reshape(-1),
                                 elem_bits, lanes(width, elem_bits))


def unpack_stream(words: list[int], width: int, elem_bits: int, n_frames: int) -> np.ndarray:
    return rtl_params.unpack_lanes(words, elem_bits, lanes(width, elem_bits)).reshape(n_frames, -1)


def words_per_frame(numel: int, width: int, elem_bits: int) -> int:
    return numel // lanes(width, elem_bits)


@dataclass
class StitchedRun:
    outputs: np.ndarray  # (N, elements per frame)
    out_cycles: list[int]
    in_cycles: list[int]
    total_cycles: int
    occupancy: dict[str, int] | None


def run_stitched(chain: list[Stage], rtl_dir: Path, frames: np.ndarray, out_numel: int,
                 stall_prob: float = 0.0, seed: int = 0, monitor: bool = False,
                 timeout_cycles: int = 200_000, trace: Path | None = None,
                 threads: int = 1) -> StitchedRun:
    """Simulate the chain on frames (N, ...) of input elements; trace: also dump
    a waveform of the run to this file (.vcd or .fst, see verilator_sim);
    threads: Verilator model threads (verilator_sim.build)."""
    first, last = chain[0], chain[-1]
    n = len(frames)
    occ_file = None
    if monitor:  # a path fixed by the design, so identical designs reuse the compiled model
        key = hashlib.sha256(rtl_backend.render_top(chain, "OCC").encode()).hexdigest()[:20]
        occ_dir = cache_dir() / "occupancy"
        occ_dir.mkdir(parents=True, exist_ok=True)
        occ_file = str(occ_dir / f"{key}.txt")
    top_text = rtl_backend.render_top(chain, occ_file)
    sources = rtl_backend.collect_sources(chain, rtl_dir, top_text)
    res = simulate(rtl_backend.TOP, sources, {}, pack_stream(frames, first.in_width, first.in_elem_bits),
                   first.in_width, last.out_width,
                   n * words_per_frame(out_numel, last.out_width, last.out_elem_bits),
                   in_gap_prob=stall_prob, out_stall_prob=stall_prob, seed=seed,
                   timeout_cycles=timeout_cycles, mem_files=rtl_backend.mem_files(chain),
                   trace=trace, threads=threads)
    occupancy = None
    if monitor:
        lines = Path(occ_file).read_text().splitlines()
        occupancy = {name: int(value) for name, value in (line.split() for line in lines)}
    n_words = n * words_per_frame(out_numel, last.out_width, last.out_elem_bits)
    outputs = unpack_stream(res.out_words[:n_words], last.out_width, last.out_elem_bits, n)
    return StitchedRun(outputs, res.out_cycles, res.in_cycles, res.total_cycles, occupancy)


def deep_depths(layers: list[Stage], numel: list[int]) -> list[int]:
    """A whole frame of words between every two layers: never deadlocks."""
    return [words_per_frame(numel[i], st.out_width, st.out_elem_bits) + 8
            for i, st in enumerate(layers[:-1])]


def size_fifos(layers: list[Stage], numel: list[int], rtl_dir: Path, frames: np.ndarray,
               out_numel: int, margin: int, seed: int) -> tuple[list[int], StitchedRun]:
    """Simulate with deep FIFOs (free-running and with back-pressure), take the
    largest occupancy per FIFO plus margin."""
    deep = deep_depths(layers, numel)
    chain = rtl_backend.with_fifos(layers, deep)
    runs = [run_stitched(chain, rtl_dir, frames, out_numel, stall, seed, monitor=True)
            for stall in (0.0, 0.3)]
    names = [st.name for st in chain if st.op == "FIFO"]
    depths = [max(2, max(r.occupancy[nm] for r in runs) + margin) for nm in names]
    return depths, runs[0]


def measure(run: StitchedRun, out_words_per_frame: int) -> tuple[float, int]:
    """Steady-state cycles per frame (between the last words of the first and
    the last frame) and the latency of the first frame (first input to its
    last output word)."""
    ends = run.out_cycles[out_words_per_frame - 1::out_words_per_frame]
    ii = (ends[-1] - ends[0]) / (len(ends) - 1) if len(ends) > 1 else float("nan")
    latency = ends[0] - run.in_cycles[0] + 1
    return ii, latency


def layer_waves_file(waves_dir: Path, index: int, st: Stage, suffix: str = ".vcd") -> Path:
    """Where first_bad_layer puts the waveform of layer `index` run alone."""
    return Path(waves_dir) / f"layer{index:02d}_{st.name}{suffix}"


def first_bad_layer(layers: list[Stage], context: dict[str, np.ndarray],
                    seed: int = 0, waves_dir: Path | None = None,
                    waves_suffix: str = ".vcd") -> tuple[Stage, str] | None:
    """Simulate each layer alone (wrapped in a one-stage top) on its golden
    input, the FINN HW graph executed in NumPy; return the first layer whose
    output stream differs, with the first differing element. With waves_dir,
    each isolation run up to that layer leaves its waveform there
    (layer_waves_file)."""
    for i, st in enumerate(layers):
        x, want = context[st.in_tensor], context[st.out_tensor].astype(np.int64).reshape(-1)
        with tempfile.TemporaryDirectory(prefix="sdbnn-layer-") as tmp:
            try:
                trace = layer_waves_file(waves_dir, i, st, waves_suffix) if waves_dir else None
                run = run_stitched([st], Path(tmp), x.reshape(1, -1), want.size, seed=seed,
                                   trace=trace)
            except SimStallError as e:
                return st, f"stalled: {e}"
        got = run.outputs.reshape(-1)
        if got.shape != want.shape or (got != want).any():
            idx = int(np.argmax(got != want)) if got.shape == want.shape else 0
            return st, (f"element {idx} of {want.size}: hardware "
                        f"{got[idx] if got.size > idx else 'missing'}, HW graph {want[idx]}")
    return None
