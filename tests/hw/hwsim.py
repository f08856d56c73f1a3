"""Shared helpers for the RTL tests: stream patterns and throughput checks."""

from __future__ import annotations

from pathlib import Path

from build_flows.ops.base import HW_DIR
from build_flows.sim.verilator import SimResult, simulate

TEST_RTL = Path(__file__).resolve().parent / "rtl"  # test-only wrappers

# (name, in_gap_prob, out_stall_prob): idle-free, input gaps, back-pressure, both
PATTERNS = [("full", 0.0, 0.0), ("gaps", 0.4, 0.0), ("stall", 0.0, 0.4), ("both", 0.3, 0.3)]

SOURCES = {
    "mvtu": ["mvtu.sv", "axis_skid.sv"],
    "maxpool_bin": ["maxpool_bin.sv", "axis_skid.sv"],
    "window_or": ["window_or.sv", "axis_skid.sv"],
    "global_acc_pool": ["global_acc_pool.sv", "axis_skid.sv"],
    "label_select": ["label_select.sv"],
    "dynamic_asd": ["dynamic_asd.sv", "axis_skid.sv"],
    "axis_fifo": ["axis_fifo.sv"],
    "axis_skid": ["axis_skid.sv"],
    "axis_throttle": ["axis_throttle.sv"],
    "dma_to_stream": ["dma_to_stream.sv", "axis_skid.sv"],
    "stream_to_dma": ["stream_to_dma.sv", "axis_skid.sv"],
    "stream_to_dma_tap": [TEST_RTL / "stream_to_dma_tap.sv", "stream_to_dma.sv", "axis_skid.sv"],
}


def sources(top: str) -> list:
    """The source files of `top`: names in hw/, or absolute paths (test wrappers)."""
    return [HW_DIR / name for name in SOURCES[top]]


def run_patterns(top, params, in_words, in_width, out_width, n_out, mem_files=None, seed=0):
    """Simulate every stream pattern; return {pattern name: SimResult}."""
    return {
        name: simulate(top, sources(top), params, in_words, in_width, out_width, n_out,
                       in_gap_prob=gap, out_stall_prob=stall, seed=seed + i,
                       mem_files=mem_files)
        for i, (name, gap, stall) in enumerate(PATTERNS)
    }


def steady_cycles(res: SimResult, words_per_vector: int) -> float:
    """Mean cycles between the first input handshakes of vectors 1..N-1."""
    starts = res.in_cycles[::words_per_vector]
    assert len(starts) >= 3, "need at least 3 vectors to measure the steady state"
    return (starts[-1] - starts[1]) / (len(starts) - 2)
