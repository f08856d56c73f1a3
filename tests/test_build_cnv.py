"""CNV-class builds: a reduced CNV (same layer kinds and 32x32 input as CNV,
fewer channels) in `make test`, the full CNV as a slow test (FINN's own
CNV-W1A1 is in test_build_finn_reference.py)."""

from __future__ import annotations

import json

import pytest
from qonnx.custom_op.registry import getCustomOp

from build_flows.flow import run_build
from build_flows.config import BuildConfig
from helpers import reduced_cnv_onnx



def _check(state, frames: int, exact_ii: bool = True) -> None:
    """exact_ii=False: the bottleneck is a sliding window, whose FINN formula
    (get_exp_cycles) counts a few cycles more than the window takes; the
    measured II may then be below the analytic one, never above."""
    sim = state.sim
    assert sim["frames"] == frames
    assert sim["mismatches_free_running"] == 0 and sim["mismatches_back_pressure"] == 0
    if exact_ii:
        assert sim["cycles_per_frame"] == sim["expected_cycles_per_frame"]
    else:
        assert 0.99 * sim["expected_cycles_per_frame"] <= sim["cycles_per_frame"] \
            <= sim["expected_cycles_per_frame"]
    assert sim["latency_cycles"] > 0
    assert sim["differences"] == [] and sim["checked"]["layer_frames"] == frames
    assert min(sim["links_stalled"].values()) > 0


def test_reduced_cnv_bit_exact(tmp_path):
    onnx = reduced_cnv_onnx(tmp_path / "cnv_reduced.onnx")
    cfg = BuildConfig(board="pynq-z2", onnx=onnx, dataset="random", verify_images=3,
                      target_fps=25_000, out=tmp_path / "b", yosys=False)
    state = run_build(cfg)
    _check(state, 3, exact_ii=state.sim["bottleneck"]["exact"])
    # the 3-channel first conv and the 8-channel second one meet 25,000 FPS only
    # with FINN's parallel window in front (SIMD above their channels)
    assert state.sim["fps_at_clock"] >= 25_000
    parallel = [n.name for n in state.hw.graph.node
                if n.op_type.startswith("ConvolutionInputGenerator")
                and getCustomOp(n).get_nodeattr("parallel_window")]
    assert {"ConvolutionInputGenerator_0", "ConvolutionInputGenerator_1"} <= set(parallel)
    ops = {layer.op for layer in state.graph.layers()}
    assert {"MVAU", "MaxPool", "ConvolutionInputGenerator", "LabelSelect"} <= ops
    assert len([st for st in state.graph.layers() if st.op == "MVAU"]) == 9  # 6 conv + 3 FC, as CNV


def test_host_table_for_non_identity_pixel_quantiser():
    """FINN's CNV quantises 2k/255 - 1 to Q1.7: not the identity on k, so the
    build moves it to the host as a table (and the graph takes INT8)."""
    import numpy as np
    from build_flows.frontend.pixels import apply_host_table
    table = np.stack([np.arange(256) - 128, 127 - np.arange(256)])
    px = np.array([[[[0, 255]], [[0, 255]]]])
    assert apply_host_table(px, table).tolist() == [[[[-128, 127]], [[127, -128]]]]


@pytest.mark.slow
def test_full_cnv_at_finn_throughput(tmp_path):
    """CNV (SD-BNN, randomised) at FINN's CNV-W1A1 throughput (3,050 FPS at 100 MHz)."""
    from helpers import randomise_sd_parameters
    from quant_models import get_model
    from quant_models.checkpoint import save_checkpoint
    ckpt = tmp_path / "cnv.pt"
    save_checkpoint(ckpt, randomise_sd_parameters(get_model("cnv")))
    cfg = BuildConfig(board="pynq-z2", model="cnv", checkpoint=ckpt, dataset="random",
                      verify_images=3, target_fps=3050, out=tmp_path / "b", yosys=False)
    state = run_build(cfg)
    _check(state, 3)
    assert state.sim["fps_at_clock"] >= 3050
    r = json.loads((tmp_path / "b" / "report.json").read_text())
    assert r["fits_board"] is True
