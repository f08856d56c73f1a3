"""Thresholding -> FINN's RTL thresholding unit (ops/thresholding.py),
bit-exact with FINN's execution of the same node: the input binarisation of
FINN's TFC (UINT8 -> BINARY, one threshold shared by every channel) and a
multi-level requantiser (per-channel thresholds, INT8 -> UINT2)."""

import numpy as np
import pytest

from build_flows.errors import FoldingError, UnsupportedLayerError
from build_flows.frontend.folding import check_folding
from build_flows.frontend.support import check_hw_graph
from opgraph import assert_bit_exact, assert_varied, check_stages, finn_outputs, hw_node, make_model, map_graph

N_FRAMES = 4


def threshold_model(channels, pe, idt, odt, thresholds, vectors=(1,)):
    steps = thresholds.shape[1]
    node = hw_node("Thresholding", ["inp", "thresh"], ["out"], "Thresholding_0", PE=pe,
                   NumChannels=channels, numSteps=steps, inputDataType=idt, weightDataType="INT32",
                   outputDataType=odt, numInputVectors=list(vectors), ActVal=0)
    return make_model([node], {"inp": ([*vectors, channels], idt), "out": ([*vectors, channels], odt)},
                      {"thresh": (thresholds, "INT32")})


@pytest.mark.parametrize("pe", [1, 4])
def test_input_binarisation(tmp_path, pe):
    """TFC's first layer: x >= 128 on 16 UINT8 pixels, one shared threshold."""
    model = threshold_model(16, pe, "UINT8", "BINARY", np.array([[128]]))
    rng = np.random.default_rng(pe)
    frames = rng.integers(0, 256, (N_FRAMES, 16))
    want = finn_outputs(model, frames)
    assert_varied(want)
    graph = map_graph(model, tmp_path)
    check_stages(graph, ["Thresholding"])
    st = graph.layers()[0]
    assert (st.in_width, st.out_width, st.pe) == (8 * pe, pe, pe)
    assert st.mem_files and all(name.endswith(".dat") for name in st.mem_files)
    assert st.expected_cycles == 16 // pe
    assert_bit_exact(graph, frames, want)


def test_multi_level_per_channel(tmp_path):
    """Three sorted thresholds per channel (a 2-bit requantiser) on signed input,
    over 3 input vectors (pixels) of 6 channels, PE 2."""
    rng = np.random.default_rng(3)
    thr = np.sort(rng.integers(-100, 100, (6, 3)), axis=1)
    model = threshold_model(6, 2, "INT8", "UINT2", thr, vectors=(3,))
    frames = rng.integers(-128, 128, (N_FRAMES, 18))
    want = finn_outputs(model, frames)
    assert_varied(want)
    assert set(np.unique(want)) <= {0, 1, 2, 3} and len(np.unique(want)) == 4
    graph = map_graph(model, tmp_path)
    check_stages(graph, ["Thresholding"])
    assert graph.layers()[0].expected_cycles == 9
    assert_bit_exact(graph, frames, want)


def test_folding_and_support_errors():
    model = threshold_model(6, 4, "UINT8", "BINARY", np.array([[128]]))
    with pytest.raises(FoldingError, match=r"Thresholding_0: PE=4 does not divide NumChannels=6"):
        check_folding(model)
    frac = threshold_model(6, 2, "UINT8", "BINARY", np.array([[127.5]]))
    with pytest.raises(UnsupportedLayerError, match="Thresholding_0 .*non-integer thresholds"):
        check_hw_graph(frac)
