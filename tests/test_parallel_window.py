"""FINN's parallel sliding window: a convolution whose SIMD is above its input
channels gets one whole K x K window of every channel a beat (and a width
converter down to the MVAU's SIMD where SIMD < MW), built end to end and
verified beat for beat."""

from __future__ import annotations

import json

from qonnx.custom_op.registry import getCustomOp

from build_flows.config import DEFAULT_CHECKPOINT, BuildConfig
from build_flows.flow import run_build
from helpers import assert_ii_at_analytic


def test_parallel_windows_from_a_finn_folding_json(tmp_path):
    """As FINN's SetFolding writes it: the window's parallel_window=1 with SIMD =
    its channels, the MVAU's SIMD = MW (MVAU_0) or a divisor of MW above the
    channels (MVAU_1: 96 of 288, 3 beats a window)."""
    folding = {"Defaults": {},
               "ConvolutionInputGenerator_0": {"SIMD": 1, "parallel_window": 1},
               "MVAU_0": {"SIMD": 9, "PE": 8},
               "ConvolutionInputGenerator_1": {"SIMD": 32, "parallel_window": 1},
               "MVAU_1": {"SIMD": 96, "PE": 8}}
    path = tmp_path / "fold.json"
    path.write_text(json.dumps(folding))
    cfg = BuildConfig(board="pynq-z2", checkpoint=DEFAULT_CHECKPOINT, folding=path, verify_images=6,
                      dataset="digits", out=tmp_path / "b", yosys=False)
    state = run_build(cfg)
    sim = state.sim
    assert sim["mismatches"] == 0 and sim["differences"] == []
    assert min(sim["links_stalled"].values()) > 0
    assert_ii_at_analytic(sim)
    stages = {st.name: st for st in state.graph.layers()}
    # a window a beat: 9 x 1 x 8 bits, and 9 x 32 x 1 bit regrouped to 96 for MVAU_1
    assert stages["ConvolutionInputGenerator_0"].out_width == 72
    assert stages["ConvolutionInputGenerator_1"].out_width == 288
    assert stages["MVAU_1"].in_width == 96
    written = json.loads((cfg.out / "folding_config.json").read_text())
    assert written["ConvolutionInputGenerator_1"] == {"SIMD": 32, "parallel_window": 1}
    assert written["ConvolutionInputGenerator_2"]["parallel_window"] == 0  # the pool's window
    for name in ("ConvolutionInputGenerator_0", "ConvolutionInputGenerator_1"):
        assert getCustomOp(state.hw.get_node_from_name(name)).get_nodeattr("parallel_window") == 1


def _window(stride, kernel=(3, 3), depthwise=0, dim=(9, 9)):
    from onnx import helper
    node = helper.make_node("ConvolutionInputGenerator", ["x"], ["y"], name="ConvolutionInputGenerator_0",
                            domain="finn.custom_op.fpgadataflow", ConvKernelDim=list(kernel),
                            IFMChannels=4, IFMDim=list(dim), OFMDim=[4, 4], Stride=list(stride),
                            Dilation=[1, 1], SIMD=4, inputDataType="BINARY",
                            outputDataType="BINARY", depthwise=depthwise)
    return node


def test_parallel_form_only_where_finn_builds_it_right():
    """Stride-1 windows larger than 1x1 whose line buffers (W - KW pixels) are at
    least 2 long: FINN's swg_ram_buffer reads out of range at depth 1 (the fuzzer
    found wrong pixels for 5x5 over a 6-wide map and 2x2 over a 3-wide one). Not
    for strided, 1x1 or depthwise (max-pool) windows either."""
    from build_flows.ops.base import can_go_parallel
    assert can_go_parallel(_window((1, 1)))
    assert not can_go_parallel(_window((2, 2)))
    assert not can_go_parallel(_window((1, 2)))
    assert not can_go_parallel(_window((1, 1), kernel=(1, 1)))
    assert not can_go_parallel(_window((1, 1), depthwise=1))
    assert not can_go_parallel(None)
    assert can_go_parallel(_window((1, 1), kernel=(2, 2), dim=(4, 4)))  # line buffers of 2
    assert not can_go_parallel(_window((1, 1), kernel=(2, 2), dim=(3, 3)))  # of 1
    assert not can_go_parallel(_window((1, 1), kernel=(5, 5), dim=(6, 6)))
    assert not can_go_parallel(_window((1, 1), kernel=(3, 3), dim=(3, 3)))  # of 0
    assert not can_go_parallel(_window((1, 1), kernel=(3, 1), dim=(5, 2)))  # 2 - 1 = 1
    assert can_go_parallel(_window((1, 1), kernel=(1, 3), dim=(1, 3)))  # 1D: no line buffer
