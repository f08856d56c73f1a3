"""hw/window_or.sv (the max-pool after a depthwise sliding window) against
its NumPy golden model, under the four stream patterns."""

import numpy as np
import pytest

from build_flows.ops.maxpool import WindowOrConfig
from build_flows.ops.base import RTLParamError
from build_flows.sim.verilator import SimCompileError, lint
from hwsim import run_patterns, sources, steady_cycles

CONFIGS = [
    pytest.param(WindowOrConfig(3, 3, c=8, simd=8, k2=9), id="3x3-c8-s8-k3x3"),
    pytest.param(WindowOrConfig(2, 5, c=6, simd=2, k2=4), id="2x5-c6-s2-k2x2"),
    pytest.param(WindowOrConfig(4, 3, c=5, simd=1, k2=6), id="4x3-c5-s1-k2x3"),
    pytest.param(WindowOrConfig(2, 2, c=3, simd=3, k2=1), id="2x2-c3-k1"),
]
N_IMAGES = 3


@pytest.mark.parametrize("cfg", CONFIGS)
def test_window_or_matches_golden(cfg):
    lint("window_or", sources("window_or"), cfg.verilog_params())
    x = np.random.default_rng(4).integers(0, 2, (N_IMAGES, cfg.oh, cfg.ow, cfg.k2 * cfg.c))
    want = cfg.golden(x)
    # the golden model by hand: channel c of pixel (r, q) is the OR of x[.., r, q, k*C + c]
    hand = np.zeros_like(want)
    for k in range(cfg.k2):
        hand |= x[..., k * cfg.c:(k + 1) * cfg.c]
    np.testing.assert_array_equal(want, hand)
    results = run_patterns("window_or", cfg.verilog_params(), cfg.pack_input(x), cfg.simd,
                           cfg.simd, N_IMAGES * cfg.out_words_per_image())
    for name, res in results.items():
        np.testing.assert_array_equal(cfg.unpack_output(res.out_words), want, err_msg=name)
    per_image = cfg.in_words_per_image()
    assert per_image <= steady_cycles(results["full"], per_image) <= per_image + 0.5


def test_stream_order_is_the_depthwise_windows():
    cfg = WindowOrConfig(1, 1, c=4, simd=2, k2=3)
    x = np.arange(12).reshape(1, 1, 1, 12)  # positions outer: k*4 + c
    # per group of 2 channels, the 3 positions one after another
    assert cfg.stream_order(x).reshape(-1).tolist() == [0, 1, 4, 5, 8, 9, 2, 3, 6, 7, 10, 11]


def test_bad_params():
    with pytest.raises(RTLParamError, match="SIMD=4 does not divide C=6"):
        WindowOrConfig(2, 2, c=6, simd=4, k2=4).validate()
    with pytest.raises(SimCompileError, match="K2=0 must be >= 1"):
        lint("window_or", sources("window_or"), {"SIMD": 2, "K2": 0})
