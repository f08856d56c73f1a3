"""Every hw/ module elaborates in Yosys' SystemVerilog front end, and
synthesis honours the MVTU memory style (build_flows/estimate/yosys.py, the
runner the estimate step and the resource benchmark use)."""

import numpy as np
import pytest

from build_flows.estimate.yosys import YosysError, elaborate, parse_stat, synth
from build_flows.ops.mvau import MVTUConfig
from hwsim import sources

MVTU_MODES = {
    "xnor": MVTUConfig(16, 8, simd=4, pe=2, n_thres=3),
    "int_bipolar": MVTUConfig(9, 8, simd=3, pe=2, mode="int_bipolar", in_width=8, n_thres=1),
    "int_int": MVTUConfig(8, 4, simd=2, pe=2, mode="int_int", in_width=4, in_signed=True,
                          w_width=4, n_thres=0),
}


def mvtu_case(mode):
    """(params, mem files) of one MVTU mode."""
    cfg = MVTU_MODES[mode]
    weights = np.ones((cfg.mh, cfg.mw), int)
    thresholds = np.tile(np.arange(1, cfg.n_thres + 1) * 3, (cfg.mh, 1))
    return cfg.verilog_params(), lambda: cfg.mem_files(weights, thresholds)


@pytest.mark.parametrize("top, params, mems", [
    *[("mvtu", *mvtu_case(mode)) for mode in MVTU_MODES],
    ("maxpool_bin", {"IFM_H": 5, "IFM_W": 7, "C": 6, "SIMD": 2, "K": 3}, dict),
    ("label_select", {"MH": 12, "PE": 4, "K": 3}, dict),
    ("axis_fifo", {"DATA_WIDTH": 8, "DEPTH": 5}, dict),
    ("axis_skid", {"DATA_WIDTH": 8}, dict),
])
def test_yosys_elaborates(top, params, mems):
    elaborate(top, sources(top), params, mems())


def test_yosys_refuses_bad_parameters():
    """The modules' elaboration-time checks reach Yosys too."""
    with pytest.raises(YosysError, match="DEPTH"):
        elaborate("axis_fifo", sources("axis_fifo"), {"DATA_WIDTH": 8, "DEPTH": 1})


@pytest.mark.parametrize("style, bram", [("block", True), ("distributed", False)])
def test_yosys_honours_mvtu_mem_style(tmp_path, monkeypatch, style, bram):
    """synth_xilinx puts the weights in a RAMB18 for "block" and in LUTs otherwise."""
    monkeypatch.setenv("SDBNN_SIM_CACHE", str(tmp_path / "cache" / "verilator"))
    cfg = MVTUConfig(16, 8, simd=4, pe=2, n_thres=3, mem_style=style)
    w = np.random.default_rng(0).integers(0, 2, (8, 16))  # constant weights would fold away
    res = synth("mvtu", sources("mvtu"), cfg.verilog_params(),
                cfg.mem_files(w, np.tile([1, 5, 9], (8, 1))))
    assert (res["BRAM36"] > 0) == bram
    assert res["LUT"] > 0 and res["FF"] > 0


def test_parse_stat_counts_cells():
    """A `stat` table of Yosys 0.70 (as synth_xilinx prints it), counted by hand:
    LUT = 6+7+2+3 + 4 per RAM32M (6) + 1 SRL16E, FF = FDRE + FDSE, BRAM36 = 1 + 0.5."""
    text = """
        +----------Local Count, excluding submodules.
      155 wires
      125 cells
        1   BUFG
        6   CARRY4
       21   FDRE
        2   FDSE
        6   LUT2
        7   LUT3
        2   LUT5
        3   LUT6
        6   RAM32M
        1   SRL16E
        1   RAMB36E1
        1   RAMB18E1
        3   DSP48E1
"""
    assert parse_stat(text) == {"LUT": 18 + 24 + 1, "FF": 23, "BRAM36": 1.5, "DSP": 3}


def test_a_synthesis_timeout_is_cached(tmp_path, monkeypatch):
    """A stage that timed out is not synthesised again under the same or a
    shorter limit (a rerun does not wait again); a longer limit retries it."""
    import time

    from build_flows.estimate.yosys import YosysTimeout
    monkeypatch.setenv("SDBNN_SIM_CACHE", str(tmp_path / "cache" / "verilator"))
    params = {"DATA_WIDTH": 8, "DEPTH": 5}
    with pytest.raises(YosysTimeout, match="more than 0.01 s"):
        synth("axis_fifo", sources("axis_fifo"), params, timeout=0.01)
    entries = list((tmp_path / "cache" / "yosys").glob("*.json"))
    assert len(entries) == 1 and '"timed_out_after": 0.01' in entries[0].read_text()
    t = time.monotonic()
    with pytest.raises(YosysTimeout, match="an earlier run"):
        synth("axis_fifo", sources("axis_fifo"), params, timeout=0.01)
    assert time.monotonic() - t < 0.5  # answered from the cache, no Yosys run
    res = synth("axis_fifo", sources("axis_fifo"), params, timeout=300)
    assert res["FF"] > 0 and "timed_out_after" not in entries[0].read_text()
