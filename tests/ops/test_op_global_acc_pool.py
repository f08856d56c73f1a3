"""GlobalAccPool -> hw/global_acc_pool.sv (per-channel sums over H x W),
bit-exact with FINN's execution of the node, under the four stream patterns;
alone (BINARY bits, as the flow streams a pooled sign; a signed input) and
feeding an MVAU in integer x bipolar mode, as in a GAP head."""

import numpy as np
import pytest

from opgraph import (assert_bit_exact, assert_varied, check_stages, finn_outputs, hw_node,
                     make_model, map_graph, mvau_node)

N_FRAMES = 3


def pool_node(c, pe, h, w, idt):
    return hw_node("GlobalAccPool", ["inp"], ["out"], "GlobalAccPool_0", NumChannels=c, PE=pe,
                   inputDataType=idt, numInputVectors=[1, h, w])


@pytest.mark.parametrize("c, pe, h, w, idt, odt", [(6, 3, 4, 5, "BINARY", "UINT5"),
                                                   (4, 1, 3, 3, "INT3", "INT7")],
                         ids=["binary-4x5-c6-pe3", "int3-3x3-c4-pe1"])
def test_global_acc_pool(tmp_path, c, pe, h, w, idt, odt):
    model = make_model([pool_node(c, pe, h, w, idt)], {"inp": ([1, h, w, c], idt),
                                                       "out": ([1, 1, 1, c], odt)})
    from qonnx.core.datatype import DataType
    dt = DataType[idt]
    rng = np.random.default_rng(c + h)
    frames = rng.integers(int(dt.min()), int(dt.max()) + 1, (N_FRAMES, h, w, c))
    want = finn_outputs(model, frames)
    np.testing.assert_array_equal(want, frames.sum(axis=(1, 2)))  # FINN's node is a sum
    assert model.get_tensor_datatype("out") == DataType[odt]  # 9 * -4 = -36 needs INT7
    assert_varied(want)
    graph = map_graph(model, tmp_path)
    check_stages(graph, ["GlobalAccPool"])
    st = graph.layers()[0]
    assert st.params["PIXELS"] == h * w and st.params["ACC_W"] == DataType[odt].bitwidth()
    assert st.expected_cycles == h * w * c // pe
    assert_bit_exact(graph, frames, want)


def test_global_acc_pool_into_mvau(tmp_path):
    """The sums (UINT5, 0..20) feed an FC of bipolar weights without activation."""
    c, h, w, mh = 4, 4, 5, 3
    rng = np.random.default_rng(5)
    pool = hw_node("GlobalAccPool", ["inp"], ["sums"], "GlobalAccPool_0", NumChannels=c, PE=2,
                   inputDataType="BINARY", numInputVectors=[1, h, w])
    mvau, inits = mvau_node("MVAU_0", "sums", "out", c, mh, 2, 1, "UINT5", "BIPOLAR", "INT8",
                            rng.choice([-1, 1], (c, mh)), xnor=False)
    model = make_model([pool, mvau], {"inp": ([1, h, w, c], "BINARY"), "sums": ([1, c], "UINT5"),
                                      "out": ([1, mh], "INT8")}, inits)
    frames = rng.integers(0, 2, (N_FRAMES, h, w, c))
    want = finn_outputs(model, frames)
    assert_varied(want)
    graph = map_graph(model, tmp_path)
    check_stages(graph, ["GlobalAccPool", "MVAU"])
    assert graph.layers()[1].params["MODE"] == 1  # integer x bipolar
    assert_bit_exact(graph, frames, want)
