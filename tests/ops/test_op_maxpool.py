"""Max-pool: FINN's depthwise ConvolutionInputGenerator + Pool(MaxPool) pair
-> one hw/maxpool_bin.sv stage, bit-exact with FINN's execution of the pair.

The pair is made the way the build makes it: a MaxPoolNHWC on a BINARY
tensor through FINN's InferPool (Im2Col(depthwise) + Pool) and
InferConvInpGen (Im2Col -> ConvolutionInputGenerator), then folded by hand
(Pool PE, the window's SIMD = PE, as ops/maxpool.py's sync sets it)."""

import numpy as np
import pytest
from onnx import helper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes

from opgraph import (assert_bit_exact, assert_varied, check_stages, finn_outputs, make_model,
                     map_graph)

N_FRAMES = 4


def maxpool_hw_model(h, w, c, k, pe):
    from finn.transformation.fpgadataflow.convert_to_hw.conv_inp_gen import InferConvInpGen
    from finn.transformation.fpgadataflow.convert_to_hw.pool import InferPool

    oh, ow = h // k, w // k
    node = helper.make_node("MaxPoolNHWC", ["inp"], ["out"], domain="qonnx.custom_op.general",
                            kernel_shape=[k, k], strides=[k, k], pads=[0, 0, 0, 0],
                            name="MaxPool_0")
    model = make_model([node], {"inp": ([1, h, w, c], "BINARY"),
                                "out": ([1, oh, ow, c], "BINARY")})
    model = model.transform(InferPool()).transform(InferConvInpGen())
    model = model.transform(InferShapes()).transform(InferDataTypes())
    assert [n.op_type for n in model.graph.node] == ["ConvolutionInputGenerator", "Pool"]
    swg, pool = (getCustomOp(n) for n in model.graph.node)
    assert swg.get_nodeattr("depthwise") == 1 and pool.get_nodeattr("Function") == "MaxPool"
    pool.set_nodeattr("PE", pe)
    swg.set_nodeattr("SIMD", pe)
    return model


@pytest.mark.parametrize("h,w,c,k,pe", [
    pytest.param(4, 6, 8, 2, 2, id="4x6x8-k2-PE2"),
    pytest.param(6, 6, 4, 3, 4, id="6x6x4-k3-PE4"),
    pytest.param(5, 7, 2, 2, 1, id="5x7x2-k2-PE1-leftover"),
])
def test_maxpool(tmp_path, h, w, c, k, pe):
    model = maxpool_hw_model(h, w, c, k, pe)
    rng = np.random.default_rng(20 + k)
    # mostly 0 (= -1) so that a window's max (an OR) is not always 1
    frames = (rng.random((N_FRAMES, h * w * c)) < 0.2).astype(np.int64)
    want = finn_outputs(model, frames)
    assert want.shape == (N_FRAMES, (h // k) * (w // k) * c)
    assert_varied(want)
    graph = map_graph(model, tmp_path)
    check_stages(graph, ["MaxPool"])  # the window is part of the max-pool stage
    st = graph.layers()[0]
    assert (st.params["K"], st.params["SIMD"], st.in_width, st.out_width) == (k, pe, pe, pe)
    assert st.in_tensor == model.graph.input[0].name
    assert st.expected_cycles == h * w * c // pe
    assert_bit_exact(graph, frames, want)
