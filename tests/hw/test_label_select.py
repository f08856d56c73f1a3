"""hw/label_select.sv against numpy argsort (stable on -x)."""

import numpy as np
import pytest

from build_flows.ops.label_select import LabelSelectConfig, RTLParamError
from build_flows.sim.verilator import SimCompileError, lint
from hwsim import run_patterns, sources, steady_cycles

CONFIGS = [
    pytest.param(LabelSelectConfig(10, pe=1, val_width=16, signed=True, k=1), id="10-p1-s16-top1"),
    pytest.param(LabelSelectConfig(12, pe=4, val_width=8, signed=False, k=3), id="12-p4-u8-k3"),
    pytest.param(LabelSelectConfig(8, pe=8, val_width=1, signed=False, k=8), id="8-pMH-u1-kMH"),
    pytest.param(LabelSelectConfig(1, pe=1, val_width=4, k=1), id="1-label"),
    pytest.param(LabelSelectConfig(100, pe=10, val_width=24, signed=True, k=5),
                 id="100-p10-s24-k5"),
    pytest.param(LabelSelectConfig(6, pe=3, val_width=64, signed=True, k=2), id="6-p3-s64-k2"),
]
N_VECTORS = 8


def random_values(cfg, rng):
    """Values from a few levels (many ties) plus the extremes of the range."""
    lo = -(1 << (cfg.val_width - 1)) if cfg.signed else 0
    hi = lo + (1 << cfg.val_width) - 1
    levels = np.unique(np.array([lo, hi, lo + 1, hi - 1, (lo + hi) // 2, 0 if cfg.signed else 1],
                                dtype=object).clip(lo, hi)).astype(object)
    return rng.choice(levels, (N_VECTORS, cfg.mh))


@pytest.mark.parametrize("cfg", [pytest.param(*c.values, id=c.id) for c in CONFIGS])
def test_lint(cfg):
    lint("label_select", sources("label_select"), cfg.verilog_params())


@pytest.mark.parametrize("cfg", CONFIGS)
def test_label_select_matches_argsort(cfg):
    x = random_values(cfg, np.random.default_rng(3))
    results = run_patterns("label_select", cfg.verilog_params(), cfg.pack_input(x),
                           cfg.pe * cfg.val_width, cfg.idx_width, N_VECTORS * cfg.k)
    want = cfg.golden(x)
    if cfg.val_width <= 32:
        np.testing.assert_array_equal(
            want, np.argsort(-x.astype(np.int64), axis=1, kind="stable")[:, : cfg.k])
    for name, res in results.items():
        np.testing.assert_array_equal(cfg.unpack_output(res.out_words), want, err_msg=name)
    steady = steady_cycles(results["full"], cfg.mh // cfg.pe)
    assert cfg.cycles_per_vector() <= steady + 0.5 and steady <= cfg.cycles_per_vector() + 0.5


def test_bad_params():
    with pytest.raises(RTLParamError, match="PE=4 does not divide MH=10"):
        LabelSelectConfig(10, pe=4).validate()
    with pytest.raises(RTLParamError, match="K=11 exceeds MH=10"):
        LabelSelectConfig(10, k=11).validate()
    with pytest.raises(SimCompileError, match="K=11 must be in 1..MH=10"):
        lint("label_select", sources("label_select"), {"MH": 10, "K": 11})
