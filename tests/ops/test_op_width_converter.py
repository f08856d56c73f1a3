"""Width converters (FINN's StreamingDataWidthConverter_rtl generator): one
converter alone, and the ones map_to_stages inserts between two stages whose
beat widths differ; bit-exact with FINN's execution of the graph.

A converter alone is not a layer the accelerator graph may hold
(ops.SUPPORTED_HW: "a DWC only once we insert it"), so map_to_stages refuses
it; the alone test makes its stage with the layer kind's own `stage` (what
the insertion uses) and chains that one stage."""

import numpy as np
import pytest

from build_flows.errors import UnsupportedLayerError
from build_flows.frontend.finn_settings import finn_build_dir
from build_flows.ops import REGISTRY, MapContext
from build_flows.rtl.graph import StageGraph
from opgraph import (CLK_NS, PART, assert_bit_exact, assert_varied, check_stages, finn_outputs,
                     hw_node, make_model, map_graph, mvau_node)

N_FRAMES = 4


def dwc_model(numel, in_width, out_width, dt="BINARY"):
    node = hw_node("StreamingDataWidthConverter", ["inp"], ["out"], "DWC_0",
                   inShape=[1, numel], outShape=[1, numel], inWidth=in_width,
                   outWidth=out_width, dataType=dt)
    return make_model([node], {"inp": ([1, numel], dt), "out": ([1, numel], dt)})


@pytest.mark.parametrize("in_width,out_width", [(4, 12), (12, 4), (6, 4)])
def test_width_converter_alone(tmp_path, in_width, out_width):
    numel = 24
    model = dwc_model(numel, in_width, out_width)
    rng = np.random.default_rng(40 + in_width)
    frames = rng.integers(0, 2, (N_FRAMES, numel))
    want = finn_outputs(model, frames)  # FINN executes a converter as the identity
    assert_varied(want)
    node = model.graph.node[0]
    with finn_build_dir(tmp_path / "finn_build"):
        kind = REGISTRY[node.op_type]
        st = kind.stage(model, node, MapContext(tmp_path / "gen", PART, CLK_NS))
    graph = StageGraph.chain([st], [numel], numel)
    check_stages(graph, ["StreamingDataWidthConverter"])
    assert (st.in_width, st.out_width, st.style) == (in_width, out_width, "finn")
    assert st.expected_cycles == numel // min(in_width, out_width)
    assert_bit_exact(graph, frames, want)


def test_width_converter_is_not_a_graph_layer(tmp_path):
    with pytest.raises(UnsupportedLayerError, match="DWC_0"):
        map_graph(dwc_model(24, 4, 12), tmp_path)


@pytest.mark.parametrize("pe0,simd1,ops", [
    pytest.param(2, 6, ["MVAU", "StreamingDataWidthConverter", "MVAU"], id="PE2-SIMD6-dwc"),
    pytest.param(4, 3, ["MVAU", "StreamingDataWidthConverter", "MVAU"], id="PE4-SIMD3-dwc"),
    pytest.param(3, 3, ["MVAU", "MVAU"], id="PE3-SIMD3-no-dwc"),
])
def test_width_converter_inserted_between_mvaus(tmp_path, pe0, simd1, ops):
    """XNOR MVAU (MW 16 -> MH 12, PE pe0: pe0 bits a beat) -> XNOR MVAU
    (MW 12 -> MH 6, SIMD simd1: simd1 bits a beat)."""
    mw0, mh0, mh1 = 16, 12, 6
    rng = np.random.default_rng(50 + pe0 + simd1)
    w0, w1 = rng.integers(0, 2, (mw0, mh0)), rng.integers(0, 2, (mh0, mh1))
    t0 = rng.integers(mw0 // 2 - 2, mw0 // 2 + 3, (mh0, 1))
    t1 = rng.integers(mh0 // 2 - 2, mh0 // 2 + 3, (mh1, 1))
    n0, i0 = mvau_node("MVAU_0", "inp", "mid", mw0, mh0, 4, pe0, "BINARY", "BINARY", "BINARY",
                       w0, t0)
    n1, i1 = mvau_node("MVAU_1", "mid", "out", mh0, mh1, simd1, 2, "BINARY", "BINARY", "BINARY",
                       w1, t1)
    model = make_model([n0, n1], {"inp": ([1, mw0], "BINARY"), "mid": ([1, mh0], "BINARY"),
                                  "out": ([1, mh1], "BINARY")}, {**i0, **i1})
    frames = rng.integers(0, 2, (N_FRAMES, mw0))
    want = finn_outputs(model, frames)
    assert_varied(want)
    graph = map_graph(model, tmp_path)
    check_stages(graph, ops)
    layers = graph.layers()
    if len(layers) == 3:
        dwc = layers[1]
        assert (dwc.name, dwc.in_width, dwc.out_width) == ("DWC_MVAU_0", pe0, simd1)
        assert [e.name for e in graph.internal_edges()] == ["fifo_0", "fifo_1"]
    else:
        assert [e.name for e in graph.internal_edges()] == ["fifo_0"]
    assert_bit_exact(graph, frames, want)


def test_large_regrouping_is_split(tmp_path):
    """1 -> 392 bits (SFC's first layer) is two converters in the stage graph:
    FINN's converter regroups at most 256 elements under Verilator 5.48."""
    from build_flows.ops.finn_generated import WidthConverter
    kind = WidthConverter()
    assert kind._intermediate(1, 392) == [2] and kind._intermediate(392, 1) == [196]
    assert kind._intermediate(1, 256) == [] and kind._intermediate(8, 392) == []
