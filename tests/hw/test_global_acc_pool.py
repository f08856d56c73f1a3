"""hw/global_acc_pool.sv (FINN's GlobalAccPool: per-channel sums over a
feature map) against its NumPy golden model, under the four stream patterns."""

import numpy as np
import pytest

from build_flows.ops.base import RTLParamError
from build_flows.ops.global_acc_pool import GlobalAccPoolConfig
from build_flows.sim.verilator import SimCompileError, lint
from hwsim import run_patterns, sources, steady_cycles

CONFIGS = [
    pytest.param(GlobalAccPoolConfig(pixels=16, c=8, pe=8), id="binary-16px-c8-pe8"),
    pytest.param(GlobalAccPoolConfig(pixels=5, c=5, pe=1, in_width=4), id="uint4-5px-c5-pe1"),
    pytest.param(GlobalAccPoolConfig(pixels=7, c=6, pe=3, in_width=3, in_signed=True),
                 id="int3-7px-c6-pe3"),
    pytest.param(GlobalAccPoolConfig(pixels=1, c=3, pe=3, in_width=2), id="uint2-1px"),
]
N_IMAGES = 3


def _inputs(cfg, rng):
    if cfg.in_signed:
        lo, hi = -(1 << (cfg.in_width - 1)), 1 << (cfg.in_width - 1)
    else:
        lo, hi = 0, 1 << cfg.in_width
    x = rng.integers(lo, hi, (N_IMAGES, cfg.pixels, cfg.c))
    x[0] = hi - 1  # the largest sums
    x[1] = lo  # the smallest (most negative when signed)
    return x


@pytest.mark.parametrize("cfg", CONFIGS)
def test_global_acc_pool_matches_golden(cfg):
    lint("global_acc_pool", sources("global_acc_pool"), cfg.verilog_params())
    x = _inputs(cfg, np.random.default_rng(7))
    want = cfg.golden(x)
    # by hand: channel c of image n is the sum of x[n, p, c] over the pixels p
    hand = np.array([[sum(int(x[n, p, c]) for p in range(cfg.pixels)) for c in range(cfg.c)]
                     for n in range(N_IMAGES)])
    np.testing.assert_array_equal(want, hand)
    results = run_patterns("global_acc_pool", cfg.verilog_params(), cfg.pack_input(x),
                           cfg.pe * cfg.in_width, cfg.pe * cfg.out_width,
                           N_IMAGES * cfg.out_words_per_image())
    for name, res in results.items():
        np.testing.assert_array_equal(cfg.unpack_output(res.out_words), want, err_msg=name)
    per_image = cfg.in_words_per_image()
    if per_image > 1:
        assert per_image <= steady_cycles(results["full"], per_image) <= per_image + 0.5


def test_accumulator_width_holds_the_extremes():
    assert GlobalAccPoolConfig(pixels=64, c=1, pe=1).min_acc_width() == 7  # 0..64
    assert GlobalAccPoolConfig(pixels=4, c=1, pe=1, in_width=4, in_signed=True).min_acc_width() == 6
    assert GlobalAccPoolConfig(pixels=1, c=1, pe=1, in_width=3).min_acc_width() == 3


def test_bad_params():
    with pytest.raises(RTLParamError, match="PE=4 does not divide C=6"):
        GlobalAccPoolConfig(pixels=4, c=6, pe=4).validate()
    with pytest.raises(RTLParamError, match="ACC_W=3 cannot hold the sums"):
        GlobalAccPoolConfig(pixels=16, c=2, pe=1, acc_width=3).validate()
    with pytest.raises(SimCompileError, match="must be >= 1"):
        lint("global_acc_pool", sources("global_acc_pool"),
             {"PE": 1, "FOLDS": 1, "PIXELS": 0, "IN_W": 1, "IN_SIGNED": 0, "ACC_W": 3})
