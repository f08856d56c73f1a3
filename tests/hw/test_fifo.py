"""hw/axis_fifo.sv and hw/axis_skid.sv: every word through, in order, at full rate."""

import numpy as np
import pytest

from build_flows.ops.fifo import FIFOConfig, RTLParamError
from build_flows.sim.verilator import SimCompileError, lint
from hwsim import run_patterns, sources

CONFIGS = [
    pytest.param(FIFOConfig(8, 4), id="w8-d4"),
    pytest.param(FIFOConfig(1, 2), id="w1-d2"),
    pytest.param(FIFOConfig(100, 5), id="w100-d5"),
    pytest.param(FIFOConfig(64, 16), id="w64-d16"),
    pytest.param(FIFOConfig(33, 7), id="w33-d7"),
    pytest.param(FIFOConfig(3, 33), id="w3-d33"),
]
N_WORDS = 200


def random_words(width, rng, n=N_WORDS):
    return [int.from_bytes(rng.bytes((width + 7) // 8), "little") % (1 << width) for _ in range(n)]


@pytest.mark.parametrize("cfg", [pytest.param(*c.values, id=c.id) for c in CONFIGS])
def test_lint(cfg):
    lint("axis_fifo", sources("axis_fifo"), cfg.verilog_params())


@pytest.mark.parametrize("cfg", CONFIGS)
def test_fifo_passes_every_word(cfg):
    words = random_words(cfg.data_width, np.random.default_rng(4))
    results = run_patterns("axis_fifo", cfg.verilog_params(), words, cfg.data_width,
                           cfg.data_width, N_WORDS)
    for name, res in results.items():
        assert res.out_words == words, name
    full = results["full"]
    assert full.in_cycles[-1] - full.in_cycles[0] == N_WORDS - 1  # one word per cycle


@pytest.mark.parametrize("width", [pytest.param(1), pytest.param(8), 130])
def test_skid_passes_every_word(width):
    words = random_words(width, np.random.default_rng(5))
    for name, res in run_patterns("axis_skid", {"DATA_WIDTH": width}, words, width, width,
                                  N_WORDS).items():
        assert res.out_words == words, name


def test_bad_params():
    with pytest.raises(RTLParamError, match="DEPTH=1 must be >= 2"):
        FIFOConfig(8, 1).validate()
    with pytest.raises(SimCompileError, match="DEPTH=1 must be >= 2"):
        lint("axis_fifo", sources("axis_fifo"), {"DEPTH": 1})
