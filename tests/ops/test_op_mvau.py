"""One MVAU node -> hw/mvtu.sv, bit-exact with FINN's execution of the node:
XNOR-popcount (the hidden layers), integer x bipolar (the first layer) and
no activation (the last layer's accumulators)."""

import numpy as np
import pytest

from opgraph import (assert_bit_exact, assert_varied, check_stages, finn_outputs, map_graph,
                     mvau_model)

N_FRAMES = 4


@pytest.mark.parametrize("mw,mh,simd,pe,vectors", [
    pytest.param(16, 8, 4, 2, (1,), id="MW16-MH8-SIMD4-PE2"),
    pytest.param(16, 8, 16, 1, (1,), id="MW16-MH8-SIMD16-PE1"),
    pytest.param(12, 6, 3, 3, (1, 2, 2), id="MW12-MH6-SIMD3-PE3-4vectors"),
])
def test_mvau_xnor(tmp_path, mw, mh, simd, pe, vectors):
    """BINARY input and weights, binaryXnorMode=1, one popcount threshold per
    channel, BINARY output (as InferBinaryMatrixVectorActivation makes it)."""
    rng = np.random.default_rng(100 + mw + simd + pe)
    w = rng.integers(0, 2, (mw, mh))
    t = rng.integers(mw // 2 - 2, mw // 2 + 3, (mh, 1))  # near the mean popcount
    model = mvau_model(mw, mh, simd, pe, "BINARY", "BINARY", "BINARY", w, t, vectors=vectors)
    frames = rng.integers(0, 2, (N_FRAMES, int(np.prod(vectors)) * mw))
    want = finn_outputs(model, frames)
    assert_varied(want)
    graph = map_graph(model, tmp_path)
    check_stages(graph, ["MVAU"])
    st = graph.layers()[0]
    assert (st.pe, st.simd, st.in_width, st.out_width) == (pe, simd, simd, pe)
    assert st.expected_cycles == (mh // pe) * (mw // simd) * int(np.prod(vectors))
    assert_bit_exact(graph, frames, want)


@pytest.mark.parametrize("odt", ["BINARY", "BIPOLAR"])
def test_mvau_int_bipolar_first_layer(tmp_path, odt):
    """UINT8 pixels x BIPOLAR weights (binaryXnorMode=0), one signed threshold
    per channel. InferQuantizedMatrixVectorActivation sets ActVal=0 for either
    output type (a BIPOLAR out_bias of -1 is dropped: "binary->bipolar is
    achieved by reinterpretation"); FINN's execution of a BIPOLAR output is
    then -1/+1 (out_scale 2, bias -1), which the hardware sends as bit 0/1."""
    mw, mh, simd, pe = 12, 6, 3, 2
    rng = np.random.default_rng(7)
    w = rng.choice([-1, 1], (mw, mh))
    t = rng.integers(-300, 301, (mh, 1))
    model = mvau_model(mw, mh, simd, pe, "UINT8", "BIPOLAR", odt, w, t, xnor=False)
    frames = rng.integers(0, 256, (N_FRAMES, mw))
    want = finn_outputs(model, frames)
    assert_varied(want)
    assert set(np.unique(want)) <= ({0, 1} if odt == "BINARY" else {-1, 1})
    graph = map_graph(model, tmp_path)
    check_stages(graph, ["MVAU"])
    st = graph.layers()[0]
    assert (st.params["MODE"], st.in_width, st.in_elem_bits, st.out_width) == (1, 3 * 8, 8, pe)
    decode = None if odt == "BINARY" else (lambda bits: 2 * bits - 1)  # bit 1 = +1, bit 0 = -1
    assert_bit_exact(graph, frames, want, decode)


def test_mvau_xnor_no_activation(tmp_path):
    """The last layer: BINARY x BINARY XNOR-popcount, noActivation=1, the
    popcounts 0..MW out (UINT5 for MW=16: FINN's flow gives UINT32 and
    minimises it; the hardware's accumulator is (MW+1).bit_length() bits)."""
    mw, mh, simd, pe = 16, 10, 4, 2
    rng = np.random.default_rng(3)
    w = rng.integers(0, 2, (mw, mh))
    model = mvau_model(mw, mh, simd, pe, "BINARY", "BINARY", "UINT5", w)
    frames = rng.integers(0, 2, (N_FRAMES, mw))
    want = finn_outputs(model, frames)
    assert_varied(want)
    graph = map_graph(model, tmp_path)
    check_stages(graph, ["MVAU"])
    st = graph.layers()[0]
    assert (st.params["N_THRES"], st.out_elem_bits, st.out_width) == (0, 5, pe * 5)
    assert_bit_exact(graph, frames, want)


def test_mvau_int_bipolar_no_activation(tmp_path):
    """A first layer that is also the last: UINT8 x BIPOLAR, noActivation=1,
    signed accumulators out: the stage's output port is signed, so run_graph
    reads its lanes as two's complement."""
    mw, mh, simd, pe = 8, 4, 2, 2
    rng = np.random.default_rng(5)
    w = rng.choice([-1, 1], (mw, mh))
    model = mvau_model(mw, mh, simd, pe, "UINT8", "BIPOLAR", "INT12", w, xnor=False)
    frames = rng.integers(0, 256, (N_FRAMES, mw))
    want = finn_outputs(model, frames)
    assert_varied(want)
    assert want.min() < 0 < want.max()
    graph = map_graph(model, tmp_path)
    check_stages(graph, ["MVAU"])
    assert graph.layers()[0].outputs[0].signed
    assert_bit_exact(graph, frames, want)


def test_mvau_int_int_first_layer(tmp_path):
    """A few-bit first layer: UINT8 pixels x INT4 weights (binaryXnorMode=0,
    the MVTU's integer x integer mode), one threshold per channel."""
    mw, mh, simd, pe = 9, 6, 3, 2
    rng = np.random.default_rng(21)
    w = rng.integers(-8, 8, (mw, mh))
    frames = rng.integers(0, 256, (N_FRAMES, mw))
    acc = frames @ w
    t = np.median(acc, axis=0).astype(int).reshape(mh, 1)  # splits the frames
    model = mvau_model(mw, mh, simd, pe, "UINT8", "INT4", "BINARY", w, t, xnor=False)
    want = finn_outputs(model, frames)
    assert_varied(want)
    graph = map_graph(model, tmp_path)
    check_stages(graph, ["MVAU"])
    st = graph.layers()[0]
    assert (st.params["MODE"], st.params["W_WIDTH"]) == (2, 4)
    assert_bit_exact(graph, frames, want)


def test_mvau_multi_threshold(tmp_path):
    """Three sorted thresholds per channel (a 2-bit activation, UINT2 out) on
    XNOR popcounts: the MVTU's N_THRES > 1 path."""
    mw, mh, simd, pe = 16, 4, 8, 2
    rng = np.random.default_rng(33)
    w = rng.integers(0, 2, (mw, mh))
    t = np.sort(rng.integers(5, 12, (mh, 3)), axis=1)
    model = mvau_model(mw, mh, simd, pe, "BINARY", "BINARY", "UINT2", w, t)
    frames = rng.integers(0, 2, (8, mw))
    want = finn_outputs(model, frames)
    assert_varied(want)
    assert want.max() >= 2  # more than one threshold passed somewhere
    graph = map_graph(model, tmp_path)
    st = graph.layers()[0]
    assert (st.params["N_THRES"], st.out_elem_bits) == (3, 2)
    assert_bit_exact(graph, frames, want)


def test_fast_executor_disagreement_is_caught(monkeypatch):
    """check_against_finn (run on every build before the executor serves as
    the reference) refuses an executor that computes one element wrong."""
    from build_flows.ops.mvau import MVAU
    from build_flows.sim.executor import ExecutorError, check_against_finn, execute
    rng = np.random.default_rng(8)
    model = mvau_model(16, 8, 4, 2, "BINARY", "BINARY", "BINARY", rng.integers(0, 2, (16, 8)),
                       rng.integers(6, 11, (8, 1)))
    frames = rng.integers(0, 2, (2, 16))
    good = MVAU.execute

    def off_by_one(self, model, node, x):
        y = good(self, model, node, x)
        y[0, ..., 0] ^= 1
        return y
    monkeypatch.setattr(MVAU, "execute", off_by_one)
    with pytest.raises(ExecutorError, match="differs from FINN's execution at tensor out, frame 0"):
        check_against_finn(model, frames, execute(model, frames), ["out"])
