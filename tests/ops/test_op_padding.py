"""FMPadding -> FINN's RTL padding unit (ops/padding.py), bit-exact with FINN's
execution under the four stream patterns: a UINT8 pixel stream (a padded
first layer) and a BINARY stream (the unit itself; the build refuses binary
padding because the model pads {-1, +1} activations with 0)."""

import numpy as np
import pytest

from opgraph import assert_bit_exact, check_stages, finn_outputs, hw_node, make_model, map_graph


@pytest.mark.parametrize("dt, dims, chans, simd, pads", [
    ("UINT8", (5, 6), 3, 3, [1, 1, 1, 1]),
    ("BINARY", (4, 4), 8, 8, [1, 2, 1, 0]),
    ("BINARY", (3, 5), 6, 2, [2, 2, 2, 2]),
])
def test_padding(tmp_path, dt, dims, chans, simd, pads):
    h, w = dims
    oh, ow = h + pads[0] + pads[2], w + pads[1] + pads[3]
    node = hw_node("FMPadding", ["inp"], ["out"], "FMPadding_0", ImgDim=list(dims), Padding=pads,
                   NumChannels=chans, SIMD=simd, inputDataType=dt, numInputVectors=1)
    model = make_model([node], {"inp": ([1, h, w, chans], dt), "out": ([1, oh, ow, chans], dt)})
    rng = np.random.default_rng(oh * ow + chans)
    hi = 256 if dt == "UINT8" else 2
    frames = rng.integers(1 if dt == "UINT8" else 0, hi, (3, h * w * chans))
    want = finn_outputs(model, frames)
    assert (want.reshape(3, oh, ow, chans)[:, 0] == 0).all() or pads[0] == 0  # the border is 0
    graph = map_graph(model, tmp_path)
    check_stages(graph, ["FMPadding"])
    assert graph.layers()[0].expected_cycles == oh * ow * chans // simd
    assert_bit_exact(graph, frames, want)
