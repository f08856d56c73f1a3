"""hw/maxpool_bin.sv against the NumPy golden model."""

import numpy as np
import pytest

from build_flows.ops.maxpool import MaxPoolConfig, RTLParamError
from build_flows.sim.verilator import SimCompileError, lint
from hwsim import run_patterns, sources, steady_cycles

CONFIGS = [
    pytest.param(MaxPoolConfig(4, 4, c=8, simd=8, k=2), id="4x4c8-s8k2"),
    pytest.param(MaxPoolConfig(5, 7, c=6, simd=2, k=3), id="5x7c6-s2k3-leftover"),
    pytest.param(MaxPoolConfig(6, 6, c=1, simd=1, k=2), id="6x6c1-s1k2"),
    pytest.param(MaxPoolConfig(3, 3, c=4, simd=4, k=1), id="3x3c4-k1"),
    pytest.param(MaxPoolConfig(7, 5, c=64, simd=16, k=2), id="7x5c64-s16k2-leftover"),
    pytest.param(MaxPoolConfig(4, 4, c=3, simd=3, k=4), id="4x4c3-k4-global"),
]
N_IMAGES = 4


@pytest.mark.parametrize("cfg", [pytest.param(*c.values, id=c.id) for c in CONFIGS])
def test_lint(cfg):
    lint("maxpool_bin", sources("maxpool_bin"), cfg.verilog_params())


@pytest.mark.parametrize("cfg", CONFIGS)
def test_maxpool_matches_golden(cfg):
    x = np.random.default_rng(2).integers(0, 2, (N_IMAGES, cfg.ifm_h, cfg.ifm_w, cfg.c))
    n_out = N_IMAGES * cfg.out_words_per_image()
    results = run_patterns("maxpool_bin", cfg.verilog_params(), cfg.pack_input(x), cfg.simd,
                           cfg.simd, n_out)
    for name, res in results.items():
        np.testing.assert_array_equal(cfg.unpack_output(res.out_words), cfg.golden(x),
                                      err_msg=name)
    per_image = cfg.in_words_per_image()
    assert per_image <= steady_cycles(results["full"], per_image) <= per_image + 0.5


def test_bad_params():
    with pytest.raises(RTLParamError, match="SIMD=3 does not divide C=8"):
        MaxPoolConfig(4, 4, c=8, simd=3, k=2).validate()
    with pytest.raises(RTLParamError, match="K=5 exceeds"):
        MaxPoolConfig(4, 4, c=8, simd=8, k=5).validate()
    with pytest.raises(SimCompileError, match="SIMD=3 must divide C=8"):
        lint("maxpool_bin", sources("maxpool_bin"), {"C": 8, "SIMD": 3})
