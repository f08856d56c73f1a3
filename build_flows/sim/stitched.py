"""Verilator runs of a stitched design (an RTL folder written by
rtl/stitch.py), the throughput/latency measurement and FIFO sizing."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from build_flows.rtl.graph import StageGraph
from build_flows.rtl.stitch import LINKS_FILE, OCCUPANCY_FILE, TOP, Probes, RtlDir, write_rtl_dir
from build_flows.rtl.stream import pack_stream, unpack_stream
from build_flows.sim.verilator import simulate


@dataclass
class StitchedRun:
    outputs: np.ndarray  # (N, elements per frame)
    out_cycles: list[int]
    in_cycles: list[int]
    total_cycles: int
    occupancy: dict[str, int] | None = None  # largest occupancy per FIFO (occupancy probes)
    extra_words: int = 0  # output words beyond the expected ones (caught while draining)
    links: dict[int, list[int]] = field(default_factory=dict)  # edge index -> recorded beats
    violations: list[tuple[int, int]] = field(default_factory=list)  # (edge, cycle) of protocol errors
    stalls: dict[int, int] = field(default_factory=dict)  # edge index -> back-pressure cycles


def drain_cycles(graph: StageGraph) -> int:
    """Cycles to run on after the last output word when links are recorded:
    a stage may still owe words of the last frame that no output waits for
    (a pool drops a leftover row, and its producer still sends it), so the
    recorded links are complete only after every stage has had a frame's
    worth of its cycles again, with room for the throttles' stalls."""
    return 64 + 4 * sum(st.expected_cycles for st in graph.layers())


def run_design(graph: StageGraph, rtl: RtlDir, frames: np.ndarray, stall_prob: float = 0.0,
               seed: int = 0, probes: Probes | None = None, timeout_cycles: int = 200_000,
               trace: Path | None = None, threads: int = 1,
               gap_prob: float | None = None, link_frames: int = 0) -> StitchedRun:
    """Simulate the design in `rtl` (written from `graph` with `probes`) on
    frames (N, ...) of input elements; the probes' files are read back.
    stall_prob: output back-pressure and (unless gap_prob is given) input gaps.
    trace: a waveform of the run (.vcd or .fst, see sim/verilator.py);
    threads: Verilator model threads; link_frames: frames whose every beat
    the link probes record."""
    probes = probes or Probes()
    src, dst = graph.input_edge, graph.output_edge
    in_w, in_bits = graph.width(src), graph.elem_bits(src)
    out_w, out_bits = graph.width(dst), graph.elem_bits(dst)
    n = len(frames)
    n_words = n * graph.words_per_frame(dst)
    collect = ((OCCUPANCY_FILE,) if probes.occupancy else ()) + ((LINKS_FILE,) if probes.link_words else ())
    res = simulate(TOP, rtl.sources, {}, pack_stream(frames, in_w, in_bits), in_w, out_w, n_words,
                   in_gap_prob=stall_prob if gap_prob is None else gap_prob,
                   out_stall_prob=stall_prob, seed=seed,
                   timeout_cycles=timeout_cycles, mem_files=rtl.mem_texts(), trace=trace,
                   threads=threads, collect=collect,
                   plusargs=(f"+link_frames={link_frames}", f"+drain={drain_cycles(graph)}")
                   if probes.link_words else ())
    outputs = unpack_stream(res.out_words[:n_words], out_w, out_bits, n, graph.src_port(dst).signed)
    run = StitchedRun(outputs, res.out_cycles, res.in_cycles, res.total_cycles,
                      extra_words=max(0, len(res.out_words) - n_words))
    if probes.occupancy:
        lines = res.files[OCCUPANCY_FILE].splitlines()
        run.occupancy = {name: int(value) for name, value in (line.split() for line in lines)}
    if probes.link_words:
        _read_links(res.files[LINKS_FILE], run)
    return run


def _read_links(text: str, run: StitchedRun) -> None:
    for line in text.splitlines():
        a, b, *c = line.split()
        if a == "P":
            run.violations.append((int(b), int(c[0])))
        elif a == "S":
            run.stalls[int(b)] = int(c[0])
        else:
            run.links.setdefault(int(a), []).append(int(b, 16))


def compile_design(graph: StageGraph, rtl: RtlDir, threads: int = 1) -> None:
    """Compile (or find in the cache) the model run_design will simulate."""
    from build_flows.sim.verilator import build, render_harness
    harness = render_harness(TOP, graph.width(graph.input_edge), graph.width(graph.output_edge))
    build(TOP, rtl.sources, {}, harness, threads=threads)


def merge_runs(runs: list[StitchedRun]) -> StitchedRun:
    """One run of consecutive shares of the frames, each simulated from reset:
    outputs, recorded beats and stall counts joined in order. The cycle
    stamps (and so the II and latency) are the first share's; total_cycles
    is the sum."""
    first = runs[0]
    merged = StitchedRun(np.concatenate([r.outputs for r in runs]), first.out_cycles,
                         first.in_cycles, sum(r.total_cycles for r in runs),
                         extra_words=sum(r.extra_words for r in runs))
    for r in runs:
        for edge, beats in r.links.items():
            merged.links.setdefault(edge, []).extend(beats)
        for edge, n in r.stalls.items():
            merged.stalls[edge] = merged.stalls.get(edge, 0) + n
        merged.violations += r.violations
    return merged


def shares(n: int, jobs: int) -> list[tuple[int, int]]:
    """(start, stop) of `jobs` consecutive near-equal shares of n frames, each
    of at least 2 frames (the II is measured on the first); fewer shares when
    n is too small."""
    jobs = max(1, min(jobs, n // 2))
    bounds = [round(k * n / jobs) for k in range(jobs + 1)]
    return list(zip(bounds, bounds[1:]))


def run_graph(graph: StageGraph, frames: np.ndarray, probes: Probes | None = None, **kw) -> StitchedRun:
    """run_design on a temporary RTL folder of the graph."""
    with tempfile.TemporaryDirectory(prefix="sdbnn-rtl-") as tmp:
        rtl = write_rtl_dir(graph, Path(tmp) / "rtl", probes)
        return run_design(graph, rtl, frames, probes=probes, **kw)


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
    probes = Probes(occupancy=True)
    rtl = write_rtl_dir(deep, Path(work) / "rtl", probes)
    runs = [run_design(deep, rtl, frames, stall, seed, probes) for stall in (0.0, 0.3)]
    return {name: max(2, max(r.occupancy[name] for r in runs) + margin) for name in deep.depths()}
