"""FINN's own W1A1 reference topologies (Brevitas brevitas_examples.bnn_pynq,
untrained, randomised BN: benchmarks/finn_reference.py) through --onnx; the
reference is the QONNX execution of the exported file. TFC-W1A1 binarises its
UINT8 input with a standalone threshold layer (FINN's RTL thresholding unit,
ops/thresholding.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from build_flows.config import BuildConfig
from build_flows.flow import run_build

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from finn_reference import export_finn_reference  # noqa: E402


def _check(state, frames: int) -> None:
    sim = state.sim
    assert sim["frames"] == frames
    assert sim["mismatches_free_running"] == 0 and sim["mismatches_back_pressure"] == 0
    assert sim["cycles_per_frame"] == sim["expected_cycles_per_frame"]
    assert sim["differences"] == [] and sim["checked"]["accumulators"] == "the QONNX execution's logits"
    assert min(sim["links_stalled"].values()) > 0


@pytest.mark.parametrize("name", ["tfc", "sfc"])
def test_finn_fc_w1a1(tmp_path, name):
    """At 100,000 FPS (the default fastest folding's wide layers take minutes
    more to compile). SFC also needs a width converter of 1 -> 392 bits, more
    than FINN's converter regroups under Verilator 5.48 (256): two are chained."""
    onnx = export_finn_reference(name, tmp_path / f"{name}_1w1a.onnx")
    cfg = BuildConfig(board="pynq-z2", onnx=onnx, dataset="random", verify_images=6,
                      target_fps=100_000, out=tmp_path / "b", yosys=False)
    state = run_build(cfg)
    _check(state, 6)
    ops = [st.op for st in state.graph.layers()]
    assert ops[0] == "Thresholding" and ops.count("MVAU") == 4 and ops[-1] == "LabelSelect"
    assert state.layout == "NCHW"
    dwcs = [st for st in state.graph.layers() if st.op == "StreamingDataWidthConverter"]
    assert all(max(st.in_width, st.out_width) // min(st.in_width, st.out_width) <= 256 for st in dwcs)


@pytest.mark.slow
def test_finn_lfc_w1a1(tmp_path):
    """LFC-W1A1 (4 x 1024 neurons) at 20,000 FPS: II 4,096 cycles."""
    onnx = export_finn_reference("lfc", tmp_path / "lfc_1w1a.onnx")
    cfg = BuildConfig(board="pynq-z2", onnx=onnx, dataset="random", verify_images=3,
                      target_fps=20_000, out=tmp_path / "b", yosys=False)
    state = run_build(cfg)
    _check(state, 3)
    assert state.sim["cycles_per_frame"] == 4096
    ops = [st.op for st in state.graph.layers()]
    assert ops[0] == "Thresholding" and ops.count("MVAU") == 4 and ops[-1] == "LabelSelect"


@pytest.mark.slow
def test_finn_cnv_w1a1_reference_topology(tmp_path):
    """FINN's own CNV-W1A1 (brevitas_examples.bnn_pynq, untrained) through --onnx;
    the reference is the QONNX execution of the exported file."""
    onnx = export_finn_reference("cnv", tmp_path / "cnv_1w1a.onnx")
    cfg = BuildConfig(board="pynq-z2", onnx=onnx, dataset="random", verify_images=3,
                      target_fps=3050, out=tmp_path / "b", yosys=False)
    state = run_build(cfg)
    _check(state, 3)
