"""hw/axis_throttle.sv (verification only): every word passes once and in order
under the four stream patterns, it stalls as often as asked, and it passes a
word per cycle when it never stalls."""

import numpy as np
import pytest

from build_flows.estimate.yosys import YosysError, elaborate
from build_flows.sim.verilator import lint
from hwsim import PATTERNS, run_patterns, sources


@pytest.mark.parametrize("width, prob, seed", [(8, 64, 1), (37, 128, 99), (1, 200, 0)])
def test_throttle_passes_every_word(width, prob, seed):
    words = [int(w) for w in np.random.default_rng(seed).integers(0, 2 ** min(width, 62), 300)]
    params = {"DATA_WIDTH": width, "STALL_PROB": prob, "SEED": seed}
    for name, res in run_patterns("axis_throttle", params, words, width, width, len(words)).items():
        assert res.out_words == words, name
        # with its own stalls, 300 words take clearly longer than 300 cycles
        assert res.total_cycles > 300 * (1 + prob / 512), name


def test_throttle_refuses_the_first_offered_beat():
    """Even where its pseudo-random pattern would let a beat pass, the first beat
    offered after reset waits a cycle: a link with few beats is stalled at least
    once (STALL_PROB=1 of 256 stalls almost never otherwise)."""
    words = list(range(20))
    res = run_patterns("axis_throttle", {"DATA_WIDTH": 8, "STALL_PROB": 1, "SEED": 5}, words, 8, 8, 20)
    full = res["full"]
    assert full.out_words == words
    free = run_patterns("axis_throttle", {"DATA_WIDTH": 8, "STALL_PROB": 0}, words, 8, 8, 20)["full"]
    assert full.total_cycles >= free.total_cycles + 1


def test_throttle_without_stalls_is_full_rate():
    words = list(range(100))
    res = run_patterns("axis_throttle", {"DATA_WIDTH": 8, "STALL_PROB": 0}, words, 8, 8, 100)
    assert res["full"].out_words == words
    assert res["full"].total_cycles <= 100 + 2
    assert len(PATTERNS) == 4


def test_throttle_lint_and_bad_parameters():
    lint("axis_throttle", sources("axis_throttle"), {"DATA_WIDTH": 8, "STALL_PROB": 64})
    with pytest.raises(YosysError, match="STALL_PROB"):
        elaborate("axis_throttle", sources("axis_throttle"), {"DATA_WIDTH": 8, "STALL_PROB": 300})
