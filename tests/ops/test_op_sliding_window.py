"""A convolution's sliding window alone: ConvolutionInputGenerator
(non-depthwise) -> FINN's own RTL generator (ConvolutionInputGenerator_rtl),
bit-exact with FINN's execution of the node (an Im2Col).

The node is made the way the build makes it: an Im2Col (what
LowerConvsToMatMul leaves) through FINN's InferConvInpGen; its SIMD (which
the MVAU it feeds sets in a build) is set by hand."""

import numpy as np
import pytest
from onnx import helper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes

from opgraph import (assert_bit_exact, assert_varied, check_stages, finn_outputs, make_model,
                     map_graph)

N_FRAMES = 3


def window_hw_model(h, w, c, k, stride, simd):
    from finn.transformation.fpgadataflow.convert_to_hw.conv_inp_gen import InferConvInpGen

    oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
    node = helper.make_node("Im2Col", ["inp"], ["out"], domain="qonnx.custom_op.general",
                            stride=[stride, stride], kernel_size=[k, k],
                            input_shape=f"(1,{h},{w},{c})", name="Im2Col_0")
    model = make_model([node], {"inp": ([1, h, w, c], "BINARY"),
                                "out": ([1, oh, ow, k * k * c], "BINARY")})
    model = model.transform(InferConvInpGen())
    model = model.transform(InferShapes()).transform(InferDataTypes())
    assert [n.op_type for n in model.graph.node] == ["ConvolutionInputGenerator"]
    swg = getCustomOp(model.graph.node[0])
    assert swg.get_nodeattr("depthwise") == 0
    swg.set_nodeattr("SIMD", simd)
    return model


@pytest.mark.parametrize("h,w,c,k,stride,simd", [
    pytest.param(5, 6, 4, 3, 1, 2, id="5x6x4-k3-s1-SIMD2"),
    pytest.param(6, 6, 8, 3, 1, 8, id="6x6x8-k3-s1-SIMD8"),
])
def test_sliding_window(tmp_path, h, w, c, k, stride, simd):
    model = window_hw_model(h, w, c, k, stride, simd)
    rng = np.random.default_rng(30 + simd)
    frames = rng.integers(0, 2, (N_FRAMES, h * w * c))
    want = finn_outputs(model, frames)
    oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
    assert want.shape == (N_FRAMES, oh * ow * k * k * c)
    assert_varied(want)
    graph = map_graph(model, tmp_path)
    check_stages(graph, ["ConvolutionInputGenerator"])
    st = graph.layers()[0]
    assert (st.style, st.simd, st.in_width, st.out_width) == ("finn", simd, simd, simd)
    assert st.expected_cycles >= oh * ow * k * k * c // simd  # at least one cycle per beat out
    assert_bit_exact(graph, frames, want)
