"""LabelSelect -> hw/label_select.sv (top-K indices, ties to the lower
index), bit-exact with FINN's execution (an onnxruntime TopK).

Why a two-node graph, MVAU(noActivation=1) -> LabelSelect: ops/label_select.py
takes the width of the values from the stage that produces them (our MVTU's
accumulators need not be as wide as FINN's datatype; alone, a LabelSelect
takes its inputDataType's width). In the accelerator a LabelSelect always
follows the last MVAU's accumulators, so the test builds exactly that pair and
feeds random inputs to the MVAU; FINN's execution of the pair is the reference
for the indices.

Two accumulator kinds: XNOR popcounts (UINT, many ties at MW=16) and a
first-and-last layer's UINT8 x BIPOLAR sums (INT: signed compare)."""

import numpy as np
import pytest

from opgraph import (assert_bit_exact, assert_varied, check_stages, finn_outputs, hw_node,
                     make_model, map_graph, mvau_node)

N_FRAMES = 4
LABELS = 10


def mvau_label_select_model(rng, mode, mw, mvau_pe, ls_pe, k):
    if mode == "xnor":
        idt, wdt, acc = "BINARY", "BINARY", "UINT5"
        w = rng.integers(0, 2, (mw, LABELS))
    else:
        idt, wdt, acc = "UINT8", "BIPOLAR", "INT12"
        w = rng.choice([-1, 1], (mw, LABELS))
    mvau, inits = mvau_node("MVAU_0", "inp", "acc", mw, LABELS, 4, mvau_pe, idt, wdt, acc, w,
                            xnor=mode == "xnor")
    ls = hw_node("LabelSelect", ["acc"], ["out"], "LabelSelect_0", Labels=LABELS, PE=ls_pe, K=k,
                 inputDataType=acc, outputDataType="UINT8", numInputVectors=[1])
    return make_model([mvau, ls], {"inp": ([1, mw], idt), "acc": ([1, LABELS], acc),
                                   "out": ([1, k], "UINT8")}, inits), idt


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("mode,mw", [("xnor", 16), ("int_bipolar", 8)])
def test_label_select(tmp_path, mode, mw, k):
    rng = np.random.default_rng(60 + k + mw)
    model, idt = mvau_label_select_model(rng, mode, mw, mvau_pe=2, ls_pe=2, k=k)
    n_frames = 2 * N_FRAMES  # top-K indices of few labels: more frames for varied outputs
    frames = rng.integers(0, 2 if idt == "BINARY" else 256, (n_frames, mw))
    want = finn_outputs(model, frames)
    assert want.shape == (n_frames, k)
    assert_varied(want)
    graph = map_graph(model, tmp_path)
    check_stages(graph, ["MVAU", "LabelSelect"])
    mvau, ls = graph.layers()
    assert ls.params["VAL_WIDTH"] == mvau.out_elem_bits
    assert ls.params["SIGNED"] == int(mode != "xnor")
    assert (ls.params["K"], ls.pe, ls.in_width) == (k, 2, 2 * mvau.out_elem_bits)
    assert ls.expected_cycles == max(LABELS // 2, k + 1)
    assert_bit_exact(graph, frames, want)


def test_label_select_after_width_converter(tmp_path):
    """MVAU PE=5 (5 popcounts a beat) -> LabelSelect PE=2: map_to_stages puts a
    converter of UINT5 elements (25 -> 10 bits) between them."""
    rng = np.random.default_rng(70)
    model, _ = mvau_label_select_model(rng, "xnor", 16, mvau_pe=5, ls_pe=2, k=3)
    frames = rng.integers(0, 2, (2 * N_FRAMES, 16))
    want = finn_outputs(model, frames)
    assert_varied(want)
    graph = map_graph(model, tmp_path)
    check_stages(graph, ["MVAU", "StreamingDataWidthConverter", "LabelSelect"])
    dwc = graph.layers()[1]
    assert (dwc.in_width, dwc.out_width, dwc.in_elem_bits) == (25, 10, 5)
    assert_bit_exact(graph, frames, want)
